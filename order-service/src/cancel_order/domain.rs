//! Deciding a cancel, under the order's row lock: accepted in PLACED, RESERVED, PICKED and
//! SORTED; a repeat decides nothing (the caller answers as the first call did); PACKED and
//! later, or REJECTED, is refused. Pure: no I/O.

use crate::project::domain::{View, evolve};
use orderflow_kit::decider::Decider;
use orderflow_kit::types::{FieldError, OrderId, optional_text};
use orderflow_proto::events::v1::OrderCancelled;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::{CancelOrderRequest, OrderStatus};

/// Longest cancellation reason accepted.
pub const MAX_REASON_LEN: usize = 500;

/// A validated CancelOrder request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    pub order_id: OrderId,
    pub reason: String,
}

impl TryFrom<&CancelOrderRequest> for Cancel {
    type Error = FieldError;

    fn try_from(request: &CancelOrderRequest) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: OrderId::try_from(request.order_id.as_str())?,
            reason: optional_text("reason", &request.reason, MAX_REASON_LEN)?,
        })
    }
}

/// Why a cancel is refused: the order's status and what that means.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is {status} and {why}")]
pub struct Refused {
    pub status: &'static str,
    pub why: &'static str,
}

/// CancelOrder: a cancel is accepted until the order is packed and handed to shipping; from
/// then on the parcel is being labelled and only a return can undo it.
pub struct CancelOrder;

impl Decider for CancelOrder {
    type State = View;
    type Command = Cancel;
    type Event = Payload;
    type Rejection = Refused;

    fn decide(view: &View, cancel: &Cancel) -> Result<Vec<Payload>, Refused> {
        let refused = |why| Err(Refused { status: view.status.as_str_name(), why });
        match view.status {
            OrderStatus::Placed
            | OrderStatus::OnHold
            | OrderStatus::Reserved
            | OrderStatus::Picked
            | OrderStatus::Sorted => Ok(vec![Payload::OrderCancelled(OrderCancelled {
                reason: cancel.reason.clone(),
                cancelled_at_status: view.status.as_str_name().to_owned(),
            })]),
            OrderStatus::Cancelled => Ok(vec![]),
            OrderStatus::Packed
            | OrderStatus::Labelled
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Returned => refused("has been handed to shipping and can no longer be cancelled"),
            OrderStatus::Rejected => refused("was rejected: nothing to cancel"),
            OrderStatus::Unspecified => refused("is in an unknown state"),
        }
    }

    fn evolve(view: View, event: &Payload) -> View {
        evolve(&view, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_kit::decider::run;

    fn cancel(view: View) -> Result<(Vec<Payload>, View), Refused> {
        let order_id = OrderId::from(uuid::Uuid::now_v7());
        run::<CancelOrder>(view, &Cancel { order_id, reason: "changed my mind".into() })
    }

    fn view(status: OrderStatus) -> View {
        View { status, ..View::default() }
    }

    #[test]
    fn a_cancel_is_accepted_until_the_order_is_handed_to_shipping() {
        for status in [OrderStatus::Placed, OrderStatus::Reserved, OrderStatus::Picked, OrderStatus::Sorted] {
            let (events, after) = cancel(view(status)).unwrap();
            let [Payload::OrderCancelled(cancelled)] = events.as_slice() else { panic!("{events:?}") };
            assert_eq!(cancelled.cancelled_at_status, status.as_str_name());
            assert_eq!((after.status, after.cancellation_reason.as_str()), (OrderStatus::Cancelled, "changed my mind"));
        }
        let (events, after) = cancel(view(OrderStatus::Cancelled)).unwrap();
        assert!(events.is_empty(), "a repeat decides nothing");
        assert_eq!(after, view(OrderStatus::Cancelled));
        for status in [OrderStatus::Packed, OrderStatus::Shipped, OrderStatus::Delivered, OrderStatus::Rejected] {
            let refused = cancel(view(status)).unwrap_err();
            assert_eq!(refused.status, status.as_str_name());
        }
    }

    #[test]
    fn a_bad_request_names_its_field() {
        let request =
            |order_id: &str, reason: &str| CancelOrderRequest { order_id: order_id.into(), reason: reason.into() };
        assert_eq!(Cancel::try_from(&request("x", "")).unwrap_err().field, "order_id");
        let long = "x".repeat(MAX_REASON_LEN + 1);
        assert_eq!(Cancel::try_from(&request(&uuid::Uuid::now_v7().to_string(), &long)).unwrap_err().field, "reason");
    }
}
