//! ShipmentRequested → Labelled: choose the carrier (`kit::delivery::rates`), label the parcel
//! with a tracking number, a printable label and the carrier's delivery promise, and record the
//! shipment with its event in the inbox transaction; with a courier that collects at once,
//! Shipped is decided with it. A parcel no carrier takes (no rate for its destination, level
//! and weight) is refused with ShipmentRejected, so the order still ends (REJECTED, its stock
//! released) instead of waiting for good. order-service requests a shipment only for a packed
//! order it did not cancel (and refuses cancels from then on), so no cancelled order is ever
//! labelled (docs/adr/0002).

mod domain;
mod on_shipment_requested;

pub use on_shipment_requested::OnShipmentRequested;

#[cfg(test)]
mod tests;
