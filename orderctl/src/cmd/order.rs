//! `orderctl order`: place, show, follow, list and cancel orders through order-service (the
//! trace across the topics is `ops::trace`).

use crate::print;
use anyhow::Context;
use clap::{Args, Subcommand};
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::{Address, Customer, Money, OrderLine, ServiceLevel};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{
    CancelOrderRequest, GetOrderRequest, ListOrdersRequest, PlaceOrderRequest, WatchOrderRequest,
};

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    #[command(flatten)]
    Api(OrderApiCommand),
    /// An order's journey across every topic, with the time spent at each hop (reads the
    /// topics: KAFKA_BROKERS, TOPIC_NAMESPACE; no token needed).
    Trace { order_id: String },
}

/// The order commands that call order-service.
#[derive(Debug, Subcommand)]
pub enum OrderApiCommand {
    /// Place an order; prints the order id at once.
    Place(Box<PlaceArgs>),
    /// Show an order with its timeline.
    Get { order_id: String },
    /// Follow an order: one line per event until it ends (or Ctrl-C).
    Watch { order_id: String },
    /// A customer's orders, newest first; with --late only those running late (of everyone
    /// without --customer-id).
    List {
        #[arg(long, default_value = "")]
        customer_id: String,
        #[arg(long)]
        late: bool,
    },
    /// Cancel an order before it is handed to shipping; its reserved stock is released.
    Cancel {
        order_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct PlaceArgs {
    #[arg(long, default_value = "cust-1")]
    customer_id: String,
    #[arg(long, default_value = "Ada Lovelace")]
    customer_name: String,
    #[arg(long, default_value = "ada@example.com")]
    email: String,
    /// A line as SKU:QUANTITY, or SKU:QUANTITY@UNIT_PRICE in minor units (e.g. MUG:2@1250 is
    /// two at 12.50); repeat for more lines.
    #[arg(long = "line", required = true)]
    lines: Vec<String>,
    /// The currency of the lines' prices (ISO 4217).
    #[arg(long, default_value = "EUR")]
    currency: String,
    #[arg(long, default_value = "12 Analytical Row")]
    line1: String,
    #[arg(long, default_value = "Berlin")]
    city: String,
    #[arg(long, default_value = "10115")]
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[arg(long, default_value = "DE")]
    country: String,
    #[arg(long, default_value = "pay-demo")]
    payment_reference: String,
    #[arg(long)]
    express: bool,
    /// When stock is short, hold the order (ON_HOLD) until a restock instead of rejecting it.
    #[arg(long)]
    allow_backorder: bool,
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

/// One `--line SKU:QUANTITY[@PRICE]` (the last colon splits, so the server judges the SKU).
fn parse_line(line: &str, currency: &str) -> anyhow::Result<OrderLine> {
    let (item, price) = match line.rsplit_once('@') {
        Some((item, price)) => (item, Some(price)),
        None => (line, None),
    };
    let (sku, quantity) = item.rsplit_once(':').with_context(|| format!("line {line:?} is not SKU:QUANTITY"))?;
    let unit_price = price
        .map(|p| p.parse().with_context(|| format!("price in {line:?} (minor units, e.g. 1250)")))
        .transpose()?
        .map(|amount_minor| Money { currency_code: currency.to_owned(), amount_minor });
    let quantity = quantity.parse().with_context(|| format!("quantity in {line:?}"))?;
    Ok(OrderLine { sku: sku.to_owned(), quantity, unit_price })
}

impl PlaceArgs {
    fn into_request(self) -> anyhow::Result<PlaceOrderRequest> {
        let lines = self.lines.iter().map(|line| parse_line(line, &self.currency)).collect::<anyhow::Result<_>>()?;
        Ok(PlaceOrderRequest {
            idempotency_key: self.idempotency_key,
            customer: Some(Customer { id: self.customer_id, name: self.customer_name.clone(), email: self.email }),
            lines,
            shipping_address: Some(Address {
                name: self.customer_name,
                line1: self.line1,
                line2: String::new(),
                city: self.city,
                postal_code: self.postal_code,
                country: self.country,
            }),
            payment_reference: self.payment_reference,
            service_level: if self.express { ServiceLevel::Express } else { ServiceLevel::Standard } as i32,
            allow_backorder: self.allow_backorder,
        })
    }
}

pub async fn run(command: OrderApiCommand, mut orders: OrderServiceClient<Authorized>) -> anyhow::Result<()> {
    match command {
        OrderApiCommand::Place(args) => {
            let order = orders.place_order((*args).into_request()?).await?.into_inner().order.unwrap_or_default();
            println!("order {} {} (payment {})", order.order_id, print::status(order.status), print::payment(&order));
        }
        OrderApiCommand::Get { order_id } => {
            let order = orders.get_order(GetOrderRequest { order_id }).await?.into_inner().order.unwrap_or_default();
            print::order(&order);
        }
        OrderApiCommand::Watch { order_id } => {
            let mut stream = orders.watch_order(WatchOrderRequest { order_id }).await?.into_inner();
            while let Some(update) = stream.message().await? {
                let order = update.order.unwrap_or_default();
                let entry = order.timeline.last().cloned().unwrap_or_default();
                let at = print::time(entry.occurred_at.as_ref());
                println!("{at}  {:<9}  {:<17} {}", print::status(order.status), entry.event_type, entry.producer);
            }
        }
        OrderApiCommand::Cancel { order_id, reason } => {
            let order = orders.cancel_order(CancelOrderRequest { order_id, reason }).await?.into_inner().order;
            let order = order.unwrap_or_default();
            println!("order {} {}", order.order_id, print::status(order.status));
        }
        OrderApiCommand::List { customer_id, late } => {
            let request = ListOrdersRequest { customer_id, page_size: 50, late, ..Default::default() };
            let page = orders.list_orders(request).await?.into_inner();
            for order in page.orders {
                let promise = order.delivery_promise.clone().unwrap_or_default();
                let late = if promise.late { format!("  LATE: {}", promise.late_reason) } else { String::new() };
                let held =
                    if order.hold_reason.is_empty() { String::new() } else { format!("  {}", order.hold_reason) };
                println!(
                    "{}  {:<9}  payment {:<10}  {} line(s)  due {}..{}{late}{held}",
                    order.order_id,
                    print::status(order.status),
                    print::payment(&order),
                    order.lines.len(),
                    promise.earliest,
                    promise.latest
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Place {
        #[command(flatten)]
        args: PlaceArgs,
    }

    fn request(args: &[&str]) -> anyhow::Result<PlaceOrderRequest> {
        let argv = std::iter::once("place").chain(args.iter().copied());
        Place::try_parse_from(argv)?.args.into_request()
    }

    fn parse_line_eur(line: &str) -> anyhow::Result<OrderLine> {
        parse_line(line, "EUR")
    }

    #[test]
    fn a_line_may_carry_its_unit_price() {
        let line = parse_line_eur("MUG-RED:2@1250").unwrap();
        assert_eq!((line.sku.as_str(), line.quantity, line.unit_price.unwrap().amount_minor), ("MUG-RED", 2, 1_250));
        assert!(parse_line_eur("MUG:2@cheap").unwrap_err().to_string().contains("price in"));
    }

    #[test]
    fn a_line_is_sku_colon_quantity() {
        let line = parse_line_eur("MUG-RED:2").unwrap();
        assert_eq!((line.sku.as_str(), line.quantity), ("MUG-RED", 2));
        // The last colon splits: the SKU is the server's to judge.
        let line = parse_line_eur("A:B:3").unwrap();
        assert_eq!((line.sku.as_str(), line.quantity), ("A:B", 3));
        let line = parse_line_eur("MUG:-1").unwrap();
        assert_eq!(line.quantity, -1, "the server refuses it, with the field named");
    }

    #[test]
    fn a_line_without_a_quantity_is_refused() {
        assert!(parse_line_eur("MUG-RED").unwrap_err().to_string().contains("is not SKU:QUANTITY"));
        assert!(parse_line_eur("MUG-RED:two").unwrap_err().to_string().contains("quantity in \"MUG-RED:two\""));
        assert!(parse_line_eur("MUG-RED:").is_err());
    }

    #[test]
    fn place_builds_the_request_with_the_defaults() {
        let request = request(&["--line", "MUG-RED:2", "--line", "TEE-M:1"]).unwrap();
        let skus: Vec<_> = request.lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect();
        assert_eq!(skus, [("MUG-RED", 2), ("TEE-M", 1)]);
        let customer = request.customer.unwrap();
        assert_eq!((customer.id.as_str(), customer.name.as_str()), ("cust-1", "Ada Lovelace"));
        let address = request.shipping_address.unwrap();
        assert_eq!(
            (address.name.as_str(), address.city.as_str(), address.country.as_str()),
            ("Ada Lovelace", "Berlin", "DE")
        );
        assert_eq!(request.service_level, ServiceLevel::Standard as i32);
        assert_eq!((request.payment_reference.as_str(), request.idempotency_key.as_str()), ("pay-demo", ""));
    }

    #[test]
    fn place_takes_express_and_a_key() {
        let request = request(&["--line", "A:1", "--express", "--idempotency-key", "k-1", "--country", "fr"]).unwrap();
        assert_eq!(request.service_level, ServiceLevel::Express as i32);
        assert_eq!(request.idempotency_key, "k-1");
        assert_eq!(request.shipping_address.unwrap().country, "fr", "the server normalises the case");
    }

    #[test]
    fn place_needs_a_line() {
        assert!(request(&[]).is_err());
        assert!(request(&["--line", "A"]).is_err());
    }
}
