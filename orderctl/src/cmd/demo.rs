//! `orderctl demo`: seeds a small catalogue, places a few orders (one of them more than the
//! stock, so it is rejected) and follows each until it reaches an end of the flow and its
//! payment is settled.

use crate::print;
use clap::Args;
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::{Address, Customer, Money, OrderLine, ServiceLevel};
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{GetOrderRequest, Order, OrderStatus, PaymentStatus, PlaceOrderRequest};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many orders to place that fit the stock.
    #[arg(long, default_value_t = 3)]
    orders: usize,
    /// Give up waiting for an order after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

/// (sku, name, bin, grams, restock)
const CATALOGUE: &[(&str, &str, &str, u32, i64)] = &[
    ("MUG-BLUE", "Blue mug", "A-01-1", 350, 100),
    ("TEE-M", "T-shirt, M", "B-03-2", 200, 100),
    ("BOOK-RUST", "The Rust book", "C-07-4", 900, 100),
    ("LAMP-1", "Desk lamp", "D-02-1", 2_400, 2),
];

pub async fn run(
    args: DemoArgs,
    mut inventory: InventoryServiceClient<Authorized>,
    mut orders: OrderServiceClient<Authorized>,
) -> anyhow::Result<()> {
    for (sku, name, bin, grams, quantity) in CATALOGUE {
        let product = UpsertProductRequest {
            sku: (*sku).into(),
            name: (*name).into(),
            bin_location: (*bin).into(),
            weight_grams: *grams,
            low_stock_threshold: 5,
        };
        inventory.upsert_product(product).await?;
        inventory.restock(RestockRequest { sku: (*sku).into(), quantity: *quantity }).await?;
    }
    println!("catalogue seeded: {} products", CATALOGUE.len());
    let mut placed = Vec::new();
    for i in 0..args.orders {
        let lines =
            vec![line(CATALOGUE[i % 3].0, 1 + i32::try_from(i % 2).unwrap_or(0)), line(CATALOGUE[(i + 1) % 3].0, 1)];
        placed.push(place(&mut orders, i, lines, i % 2 == 1).await?);
    }
    placed.push(place(&mut orders, args.orders, vec![line("LAMP-1", 50)], false).await?);
    let mut failed = 0;
    for order_id in placed {
        let order = follow(&mut orders, &order_id, Duration::from_secs(args.timeout_secs)).await?;
        print::order(&order);
        println!();
        if !matches!(OrderStatus::try_from(order.status), Ok(OrderStatus::Shipped | OrderStatus::Rejected)) {
            failed += 1;
        }
    }
    anyhow::ensure!(failed == 0, "{failed} demo order(s) did not reach SHIPPED or REJECTED in time");
    println!("demo done: every order reached SHIPPED or REJECTED");
    Ok(())
}

/// A demo line, priced as a shop would (in EUR cents).
fn line(sku: &str, quantity: i32) -> OrderLine {
    let cents = match sku {
        "MUG-BLUE" => 1_290,
        "TEE-M" => 1_999,
        "BOOK-RUST" => 3_990,
        _ => 4_900,
    };
    OrderLine {
        sku: sku.into(),
        quantity,
        unit_price: Some(Money { currency_code: "EUR".into(), amount_minor: cents }),
    }
}

async fn place(
    orders: &mut OrderServiceClient<Authorized>,
    i: usize,
    lines: Vec<OrderLine>,
    express: bool,
) -> anyhow::Result<String> {
    let request = PlaceOrderRequest {
        idempotency_key: String::new(),
        customer: Some(Customer {
            id: format!("demo-{}", i % 2),
            name: "Grace Hopper".into(),
            email: "grace@example.com".into(),
        }),
        lines,
        shipping_address: Some(Address {
            name: "Grace Hopper".into(),
            line1: "1 Compiler Way".into(),
            line2: String::new(),
            city: if i % 3 == 2 { "Paris" } else { "Berlin" }.into(),
            postal_code: "10115".into(),
            country: if i % 3 == 2 { "FR" } else { "DE" }.into(),
        }),
        payment_reference: format!("pay-demo-{i}"),
        service_level: if express { ServiceLevel::Express } else { ServiceLevel::Standard } as i32,
        allow_backorder: false,
    };
    let started = Instant::now();
    let order = orders.place_order(request).await?.into_inner().order.unwrap_or_default();
    println!("placed {} -> {} in {:?}", order.order_id, print::status(order.status), started.elapsed());
    Ok(order.order_id)
}

async fn follow(
    orders: &mut OrderServiceClient<Authorized>,
    order_id: &str,
    timeout: Duration,
) -> anyhow::Result<Order> {
    let deadline = Instant::now() + timeout;
    loop {
        let order = orders
            .get_order(GetOrderRequest { order_id: order_id.to_owned() })
            .await?
            .into_inner()
            .order
            .unwrap_or_default();
        let ended = matches!(
            OrderStatus::try_from(order.status),
            Ok(OrderStatus::Shipped | OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered)
        );
        // And its payment settled: captured once shipped, voided or declined otherwise.
        let settled = !matches!(
            PaymentStatus::try_from(order.payment_status),
            Ok(PaymentStatus::Pending | PaymentStatus::Authorized)
        );
        let done = ended && settled;
        if done || Instant::now() > deadline {
            return Ok(order);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
