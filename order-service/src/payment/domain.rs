//! How the payment follows the order: what it needs next (`needed`), what a gateway answer
//! decides (`settle`) and how long a failed call waits (`retry_after`). Pure: no I/O.

use crate::project::domain::View;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{OrderPlaced, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided};
use orderflow_proto::order::v1::{OrderStatus, PaymentStatus};
use std::time::Duration;

/// A call to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Authorize,
    Capture,
    Void,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::Void => "void",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Authorize, Self::Capture, Self::Void].into_iter().find(|a| a.as_str() == name)
    }
}

/// What the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authorized {
        authorization_id: String,
    },
    Declined {
        reason: String,
    },
    Captured {
        capture_id: String,
    },
    Voided,
    /// Unreachable, timed out, busy or an answer that settles nothing: tried again later.
    Failed {
        error: String,
    },
}

/// The gateway call an order's payment needs now, if any: authorise a placed order; once it is
/// authorised, capture when it has shipped, void when it ended without shipping (cancelled or
/// rejected). A cancel while the authorisation is still pending voids too: the gateway then
/// refuses that authorisation if it arrives late (docs/payments.md).
pub fn needed(view: &View) -> Option<Action> {
    let unshipped_end = matches!(view.status, OrderStatus::Cancelled | OrderStatus::Rejected);
    let shipped = matches!(view.status, OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Returned);
    match view.payment_status {
        PaymentStatus::Pending | PaymentStatus::Authorized if unshipped_end => Some(Action::Void),
        PaymentStatus::Pending => Some(Action::Authorize),
        PaymentStatus::Authorized if shipped => Some(Action::Capture),
        _ => None,
    }
}

/// What `outcome` of `action` decides for an order whose view is `view` now and that was placed
/// as `placed`: the event to record, or `None` if nothing is settled. An answer to a call the
/// order no longer needs (it was cancelled while authorising, another instance settled it
/// first) decides nothing; the payment goes on with what it needs now.
pub fn settle(view: &View, placed: &OrderPlaced, action: Action, outcome: Outcome) -> Option<Payload> {
    if needed(view) != Some(action) {
        return None;
    }
    let amount = || Some(placed.total.clone().unwrap_or_default());
    match (action, outcome) {
        (Action::Authorize, Outcome::Authorized { authorization_id }) => {
            Some(Payload::PaymentAuthorized(PaymentAuthorized {
                authorization_id,
                amount: amount(),
                order: Some(placed.clone()),
            }))
        }
        (Action::Authorize, Outcome::Declined { reason }) => {
            Some(Payload::PaymentDeclined(PaymentDeclined { reason: format!("payment declined: {reason}") }))
        }
        (Action::Capture, Outcome::Captured { capture_id }) => {
            Some(Payload::PaymentCaptured(PaymentCaptured { capture_id, amount: amount() }))
        }
        (Action::Void, Outcome::Voided) => {
            let reason = if view.status == OrderStatus::Cancelled { "order cancelled" } else { "order rejected" };
            Some(Payload::PaymentVoided(PaymentVoided { reason: reason.into() }))
        }
        _ => None,
    }
}

/// How long the `attempt`th failed call (from 1) waits before the next: 1 s, doubling, at most
/// 5 minutes. An order waits for its payment as long as it takes; it never goes on unpaid.
pub fn retry_after(attempt: u32) -> Duration {
    const MAX: Duration = Duration::from_secs(300);
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::domain::evolve;
    use orderflow_proto::common::v1::Money;

    fn view(status: OrderStatus, payment_status: PaymentStatus) -> View {
        View { status, payment_status, ..View::default() }
    }

    fn placed() -> OrderPlaced {
        let total = Money { currency_code: "EUR".into(), amount_minor: 2_500 };
        OrderPlaced { payment_reference: "pay_1".into(), total: Some(total), ..Default::default() }
    }

    #[test]
    fn the_payment_follows_the_order() {
        use OrderStatus as O;
        use PaymentStatus as P;
        for (status, payment, expected) in [
            (O::Placed, P::Pending, Some(Action::Authorize)),
            (O::Cancelled, P::Pending, Some(Action::Void)),
            (O::Placed, P::Authorized, None),
            (O::Picked, P::Authorized, None),
            (O::Labelled, P::Authorized, None),
            (O::Shipped, P::Authorized, Some(Action::Capture)),
            (O::Delivered, P::Authorized, Some(Action::Capture)),
            (O::Cancelled, P::Authorized, Some(Action::Void)),
            (O::Rejected, P::Authorized, Some(Action::Void)),
            (O::Rejected, P::Declined, None),
            (O::Shipped, P::Captured, None),
            (O::Cancelled, P::Voided, None),
            (O::Placed, P::Unspecified, None),
        ] {
            assert_eq!(needed(&view(status, payment)), expected, "{status:?} {payment:?}");
        }
    }

    #[test]
    fn an_authorised_order_goes_on_with_its_order_and_a_declined_one_ends_rejected() {
        let pending = view(OrderStatus::Placed, PaymentStatus::Pending);
        let authorized = Outcome::Authorized { authorization_id: "auth_1".into() };
        let Some(Payload::PaymentAuthorized(event)) = settle(&pending, &placed(), Action::Authorize, authorized) else {
            panic!("authorised")
        };
        assert_eq!(event.order, Some(placed()));
        assert_eq!(event.amount.map(|m| m.amount_minor), Some(2_500));
        let after = evolve(&pending, &Payload::PaymentAuthorized(PaymentAuthorized::default()));
        assert_eq!((after.status, after.payment_status), (OrderStatus::Placed, PaymentStatus::Authorized));

        let declined = Outcome::Declined { reason: "insufficient funds".into() };
        let payload = settle(&pending, &placed(), Action::Authorize, declined).unwrap();
        let after = evolve(&pending, &payload);
        assert_eq!((after.status, after.payment_status), (OrderStatus::Rejected, PaymentStatus::Declined));
        assert_eq!(after.rejection_reason, "payment declined: insufficient funds");
        assert_eq!(needed(&after), None, "a declined payment needs nothing more");
    }

    #[test]
    fn an_answer_the_order_no_longer_needs_settles_nothing() {
        let cancelled = view(OrderStatus::Cancelled, PaymentStatus::Pending);
        let authorized = Outcome::Authorized { authorization_id: "auth_1".into() };
        assert_eq!(settle(&cancelled, &placed(), Action::Authorize, authorized), None, "never reserved once cancelled");
        assert_eq!(needed(&cancelled), Some(Action::Void));
        let captured = view(OrderStatus::Shipped, PaymentStatus::Captured);
        let again = Outcome::Captured { capture_id: "cap_1".into() };
        assert_eq!(settle(&captured, &placed(), Action::Capture, again), None, "captured once");
        let failed = Outcome::Failed { error: "timed out".into() };
        let pending = view(OrderStatus::Placed, PaymentStatus::Pending);
        assert_eq!(settle(&pending, &placed(), Action::Authorize, failed), None);
    }

    #[test]
    fn capture_and_void_record_the_amount_and_the_reason() {
        let shipped = view(OrderStatus::Shipped, PaymentStatus::Authorized);
        let payload = settle(&shipped, &placed(), Action::Capture, Outcome::Captured { capture_id: "c".into() });
        assert_eq!(evolve(&shipped, payload.as_ref().unwrap()).payment_status, PaymentStatus::Captured);
        let rejected = view(OrderStatus::Rejected, PaymentStatus::Authorized);
        let Some(Payload::PaymentVoided(voided)) = settle(&rejected, &placed(), Action::Void, Outcome::Voided) else {
            panic!("voided")
        };
        assert_eq!(voided.reason, "order rejected");
    }

    #[test]
    fn failed_calls_back_off_to_five_minutes() {
        let waits: Vec<u64> = [1, 2, 3, 9, 10, 40].map(|n| retry_after(n).as_secs()).to_vec();
        assert_eq!(waits, [1, 2, 4, 256, 300, 300]);
        assert_eq!(Action::parse("capture"), Some(Action::Capture));
        assert_eq!(Action::parse("refund"), None);
    }
}
