//! ShipmentRequested → Shipped: choose the carrier (`rates`), label the parcel, record the
//! shipment and emit Shipped in the inbox transaction. A parcel no carrier takes (no rate for
//! its destination, level and weight) is refused with ShipmentRejected, so the order still ends
//! (REJECTED, its stock released) instead of waiting for good. order-service requests a
//! shipment only for a packed order it did not cancel (and refuses cancels from then on), so no
//! cancelled order is ever labelled (docs/adr/0002).

mod domain;
mod on_shipment_requested;
mod on_shipments_requested;
mod rates;

pub use on_shipment_requested::OnShipmentRequested;

#[cfg(test)]
mod tests;
