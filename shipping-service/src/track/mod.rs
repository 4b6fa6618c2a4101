//! Carrier scans: `RecordTrackingEvent` records each scan once per scan id and places it by
//! its time, so a scan that arrives late never moves the parcel backwards; the parcel's
//! current scan recomputes its delivery promise, DELIVERED ends the order DELIVERED and
//! RETURNED ends it RETURNED. A scan of a parcel still awaiting pick-up is the carrier's
//! proof of collection: it is Shipped first. `ConfirmDelivery` is a DELIVERED scan's
//! shorthand.

mod domain;
mod grpc;

pub use grpc::{confirm_delivery, record_tracking_event};
