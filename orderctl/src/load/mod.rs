//! `orderctl load`: drives the running stack with PlaceOrder calls, at a fixed rate (open loop:
//! each call's latency counts from the moment it was due, so a slow system cannot hide its
//! latency behind fewer calls: coordinated omission corrected) or at a fixed concurrency, for a
//! duration or a count. It measures PlaceOrder latency and, per order, placed → shipped (from
//! the events' own timestamps: the OrderPlaced time in the answer, the Shipped event read from
//! the shipping topic), and writes a JSON report and an SVG chart over time. `drive` runs the
//! load, `report` writes down what it measured; bench, bench-watch and chaos reuse both.

mod drive;
mod report;

pub use drive::{Measured, run};
pub use report::write_report;

use crate::ops::Broker;
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::{Address, Customer, OrderLine, ServiceLevel};
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::PlaceOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Orders per second, open loop (the default: 100/s).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop instead: keep this many PlaceOrder calls in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to place orders, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many orders (whichever comes first with --duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// After the last order, wait at most this long for the rest to ship.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub drain: Duration,
    /// The SKU ordered (created and stocked first).
    #[arg(long, default_value = "LOAD-1")]
    pub sku: String,
    /// JSON report.
    #[arg(long, default_value = "load-report.json")]
    pub report: PathBuf,
    /// Chart of throughput and latency over time.
    #[arg(long, default_value = "load-report.svg")]
    pub svg: PathBuf,
    /// No progress bar (for scripts).
    #[arg(long)]
    pub quiet: bool,
}

/// A duration as the flags take it: `500ms`, `30s` (or `30`), `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len()));
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Latency histograms in microseconds, up to one minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// A standard order of `lines` for a scripted customer in Berlin (load and chaos runs).
pub fn scripted_order(customer_id: String, name: &str, lines: Vec<OrderLine>) -> PlaceOrderRequest {
    PlaceOrderRequest {
        idempotency_key: String::new(),
        customer: Some(Customer { id: customer_id, name: name.into(), email: "scripted@example.com".into() }),
        lines,
        shipping_address: Some(Address {
            name: name.into(),
            line1: "1 Benchmark Way".into(),
            line2: String::new(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        }),
        payment_reference: "pay-scripted".into(),
        service_level: ServiceLevel::Standard as i32,
        allow_backorder: false,
    }
}

/// Creates the SKU with stock for every order of the run.
pub async fn stock(inventory: &mut InventoryServiceClient<Authorized>, sku: &str, orders: u64) -> anyhow::Result<()> {
    let product = UpsertProductRequest {
        sku: sku.to_owned(),
        name: "Load test item".into(),
        bin_location: "L-01".into(),
        weight_grams: 100,
        low_stock_threshold: 0,
    };
    inventory.upsert_product(product).await.context("creating the load SKU")?;
    let mut left = i64::try_from(orders).unwrap_or(i64::MAX);
    while left > 0 {
        let quantity = left.min(1_000_000);
        inventory.restock(RestockRequest { sku: sku.to_owned(), quantity }).await.context("stocking the load SKU")?;
        left -= quantity;
    }
    Ok(())
}

/// `orderctl load`: runs, prints the summary, writes the JSON report and the chart.
pub async fn load(
    args: &LoadArgs,
    broker: &Broker,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    let measured = run(args, broker, orders, inventory).await?;
    println!("{}", report::headline(args, &measured));
    println!("{}", report::summary("PlaceOrder", &measured.place));
    println!("{}", report::summary("placed -> shipped", &measured.to_ship));
    write_report(args, &measured)?;
    println!("report: {}, chart: {}", args.report.display(), args.svg.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Err("unknown unit \"h\" in \"2h\": use ms, s or m".into()));
        assert_eq!(parse_duration("soon"), Err("\"soon\" is not a duration like 30s, 2m or 500ms".into()));
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(Duration::from_millis(3)), 3000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_scripted_order_ships_standard_to_berlin() {
        let order = scripted_order(
            "load-7".into(),
            "Load Test",
            vec![OrderLine { sku: "LOAD-1".into(), quantity: 1, unit_price: None }],
        );
        assert_eq!(order.customer.unwrap().id, "load-7");
        let address = order.shipping_address.unwrap();
        assert_eq!(
            (address.name.as_str(), address.city.as_str(), address.country.as_str()),
            ("Load Test", "Berlin", "DE")
        );
        assert_eq!((order.service_level, order.idempotency_key.as_str()), (ServiceLevel::Standard as i32, ""));
    }
}
