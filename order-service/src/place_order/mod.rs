//! PlaceOrder → OrderPlaced: a valid request is stored with its event in one transaction and
//! answered at once with status PLACED; concurrent calls share that transaction (`group`). A
//! repeated idempotency key replays the first answer; the same key with a different request is
//! ALREADY_EXISTS.

mod domain;
mod group;
mod grpc;
mod price;

pub use group::{Committer, committer};
pub use grpc::{Caller, place_order};
