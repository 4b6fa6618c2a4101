//! CancelOrder → OrderCancelled, decided under the order's row lock (the lock the projection
//! takes to hand a packed order to shipping), so a cancel and a handover never both happen
//! (docs/adr/0002). Compensation follows from the event: inventory releases the reservation
//! (StockReleased), fulfillment stops.

mod domain;
mod grpc;

pub use grpc::cancel_order;
