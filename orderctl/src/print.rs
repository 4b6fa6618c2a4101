//! Human-readable output.

use orderflow_proto::inventory::v1::GetStockResponse;
use orderflow_proto::order::v1::{Order, OrderStatus, PaymentStatus};
use orderflow_proto::shipping::v1::{Shipment, TrackShipmentResponse};

pub fn status(status: i32) -> &'static str {
    OrderStatus::try_from(status).map_or("UNKNOWN", |s| s.as_str_name())
}

pub fn payment(order: &Order) -> &'static str {
    PaymentStatus::try_from(order.payment_status).map_or("UNKNOWN", |s| s.as_str_name())
}

pub fn time(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map_or_else(|| "-".to_owned(), |t| t.format("%H:%M:%S%.3f").to_string())
}

pub fn order(order: &Order) {
    println!("order     {}", order.order_id);
    println!("status    {}", status(order.status));
    if let Some(customer) = &order.customer {
        println!("customer  {} ({})", customer.name, customer.id);
    }
    for line in &order.lines {
        let price = line.unit_price.as_ref().map(|p| format!(" at {}", money(p))).unwrap_or_default();
        println!("line      {} x {}{price}", line.quantity, line.sku);
    }
    if let Some(total) = &order.total {
        println!("total     {}", money(total));
    }
    println!("payment   {}", payment(order));
    if !order.rejection_reason.is_empty() {
        println!("rejected  {}", order.rejection_reason);
    }
    if !order.hold_reason.is_empty() {
        println!("on hold   {}", order.hold_reason);
    }
    if !order.cancellation_reason.is_empty() {
        println!("cancelled {}", order.cancellation_reason);
    }
    if !order.tracking_number.is_empty() {
        println!("shipping  {} {}", order.carrier, order.tracking_number);
    }
    if let Some(promise) = &order.delivery_promise {
        let late = if promise.late { format!(" — LATE: {}", promise.late_reason) } else { String::new() };
        println!("expected  {} to {}{late}", promise.earliest, promise.latest);
    }
    if let Some(scan) = &order.last_tracking_event {
        println!("last scan {}  {} {} {}", time(scan.occurred_at.as_ref()), scan.status, scan.location, scan.note);
    }
    println!("timeline");
    for entry in &order.timeline {
        println!(
            "  {}  {:<17} {:<20} {}",
            time(entry.occurred_at.as_ref()),
            entry.event_type,
            entry.producer,
            entry.event_id
        );
    }
}

pub fn stock_header() {
    println!("{:<16} {:>8} {:>8} {:>9}  bin", "sku", "on_hand", "reserved", "available");
}

pub fn stock(stock: &GetStockResponse) {
    let bin = stock.product.as_ref().map(|p| p.bin_location.as_str()).unwrap_or_default();
    println!("{:<16} {:>8} {:>8} {:>9}  {}", stock.sku, stock.on_hand, stock.reserved, stock.available, bin);
}

pub fn tracking(tracked: &TrackShipmentResponse) {
    if let Some(shipment) = &tracked.shipment {
        println!(
            "parcel    {} {} ({}), order {}",
            shipment.carrier, shipment.tracking_number, shipment.carrier_service, shipment.order_id
        );
    }
    for event in &tracked.history {
        let late = if event.current { "" } else { "  (arrived late: history only)" };
        println!("  {}  {:<16} {}{late}", time(event.occurred_at.as_ref()), event.status, event.description);
    }
}

/// An amount as `12.50 EUR` (two decimals: the minor unit of most currencies).
pub fn money(money: &orderflow_proto::common::v1::Money) -> String {
    let (major, minor) = (money.amount_minor / 100, (money.amount_minor % 100).abs());
    format!("{major}.{minor:02} {}", money.currency_code)
}

/// A labelled parcel awaiting collection, one line.
pub fn pickup(shipment: &Shipment) {
    println!(
        "{}  {:<12} {:<26} order {}  labelled {}",
        shipment.tracking_number,
        shipment.carrier,
        shipment.carrier_service,
        shipment.order_id,
        time(shipment.labelled_at.as_ref())
    );
}
