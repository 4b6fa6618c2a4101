//! ConfirmDelivery (the carrier's delivery scan) → Delivered. A repeated scan answers with the
//! delivered shipment and emits nothing.

mod domain;
mod grpc;

pub use grpc::confirm_delivery;
