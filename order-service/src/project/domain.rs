//! How events move an order's status (and its payment's, `payment_status`): forward only along
//! PLACED → [ON_HOLD →] RESERVED → PICKED → SORTED → PACKED → LABELLED → SHIPPED → DELIVERED |
//! RETURNED, with REJECTED (from PLACED: a declined payment; from PLACED or ON_HOLD: stock, or an
//! expired hold; from PACKED: no carrier takes the parcel) and CANCELLED as ends. A late or duplicate event never moves an order backwards. Labelling and each
//! current carrier scan replace the delivery promise; the promise made at placement stays, so
//! lateness is judged against it (`late`).
//! The steps that decide on an order (`cancel_order`, `request_shipment`) read this view and
//! evolve it with these rules. Pure: no I/O.

use chrono::NaiveDate;
use orderflow_kit::delivery::promise::{Window, lateness};
use orderflow_kit::envelope;
use orderflow_proto::common::v1::{DeliveryPromise, TrackingScan};
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::order::v1::{OrderStatus, PaymentStatus};

/// The projected part of an order that events change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub status: OrderStatus,
    pub rejection_reason: String,
    pub carrier: String,
    pub tracking_number: String,
    pub cancellation_reason: String,
    /// What an ON_HOLD order waits for.
    pub hold_reason: String,
    /// When the order is expected now.
    pub promise: Option<Window>,
    /// The latest date PlaceOrder promised.
    pub promised_latest: Option<NaiveDate>,
    /// The carrier's scan that is the parcel's state.
    pub last_scan: Option<TrackingScan>,
    /// Where the payment stands (`payment` follows the order with it).
    pub payment_status: PaymentStatus,
}

impl View {
    /// The promise as the API shows it on `today`, with whether (and why) the order is late.
    pub fn delivery_promise(&self, today: NaiveDate) -> Option<DeliveryPromise> {
        let window = self.promise?;
        let mut promise = window.to_proto();
        let Some(promised_latest) = self.promised_latest else { return Some(promise) };
        let delivered = (self.status == OrderStatus::Delivered).then_some(window.latest);
        if let Some(reason) = lateness(window, promised_latest, delivered, is_end(self.status), today) {
            promise.late = true;
            promise.late_reason = reason;
        }
        Some(promise)
    }
}

/// The status an event announces, or `None` for events that are not about an order's progress.
pub fn announced(payload: &Payload) -> Option<OrderStatus> {
    announced_by_type(envelope::event_type(payload))
}

/// The same, from an event type name as the timeline records it.
pub fn announced_by_type(event_type: &str) -> Option<OrderStatus> {
    match event_type {
        "OrderPlaced" => Some(OrderStatus::Placed),
        "StockHeld" => Some(OrderStatus::OnHold),
        "StockReserved" => Some(OrderStatus::Reserved),
        "StockRejected" | "ShipmentRejected" | "PaymentDeclined" => Some(OrderStatus::Rejected),
        "Picked" => Some(OrderStatus::Picked),
        "Sorted" => Some(OrderStatus::Sorted),
        "Packed" => Some(OrderStatus::Packed),
        "Labelled" => Some(OrderStatus::Labelled),
        "Shipped" => Some(OrderStatus::Shipped),
        "Delivered" => Some(OrderStatus::Delivered),
        "Returned" => Some(OrderStatus::Returned),
        "OrderCancelled" => Some(OrderStatus::Cancelled),
        _ => None,
    }
}

/// Where an order event goes in the timeline (its flow step), or `None` for events the
/// timeline does not show. The handover to shipping sits with Packed, the release of stock
/// with the cancel that caused it; the payment's authorisation with the placement, its capture
/// with Shipped and its void last of all.
pub fn timeline_step(event_type: &str) -> Option<i32> {
    match event_type {
        "ShipmentRequested" => Some(step(OrderStatus::Packed)),
        "ShipmentRejected" => Some(step(OrderStatus::Labelled)),
        "TrackingUpdated" => Some(step(OrderStatus::Shipped)),
        "StockReleased" => Some(step(OrderStatus::Cancelled)),
        "PaymentVoided" => Some(step(OrderStatus::Cancelled) + 1),
        "PaymentAuthorized" | "PaymentDeclined" => Some(step(OrderStatus::Placed)),
        "PaymentCaptured" => Some(step(OrderStatus::Shipped)),
        other => announced_by_type(other).map(step),
    }
}

/// The position of a status in the flow, used to order the timeline causally (stored with
/// each timeline row: renumbering needs a migration, as 103_last_mile.sql and
/// 105_backorders.sql did).
pub const fn step(status: OrderStatus) -> i32 {
    match status {
        OrderStatus::Unspecified => 0,
        OrderStatus::Placed => 1,
        OrderStatus::OnHold => 2,
        OrderStatus::Reserved | OrderStatus::Rejected => 3,
        OrderStatus::Picked => 4,
        OrderStatus::Sorted => 5,
        OrderStatus::Packed => 6,
        OrderStatus::Labelled => 7,
        OrderStatus::Shipped => 8,
        OrderStatus::Delivered | OrderStatus::Returned => 9,
        OrderStatus::Cancelled => 10,
    }
}

/// DELIVERED, RETURNED, REJECTED and CANCELLED: nothing moves an order out of these.
pub fn is_end(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Delivered | OrderStatus::Returned | OrderStatus::Rejected | OrderStatus::Cancelled)
}

/// The view after `payload`: details are recorded whenever they arrive, the status moves only
/// forward and never out of an end state.
pub fn evolve(view: &View, payload: &Payload) -> View {
    let mut next = view.clone();
    match payload {
        Payload::StockRejected(rejected) => next.rejection_reason.clone_from(&rejected.reason),
        Payload::StockHeld(held) if view.status == OrderStatus::Placed => next.hold_reason.clone_from(&held.reason),
        Payload::StockReserved(_) => next.hold_reason.clear(),
        Payload::ShipmentRejected(rejected) if view.status == OrderStatus::Packed => {
            next.rejection_reason.clone_from(&rejected.reason);
        }
        Payload::Labelled(labelled) => {
            next.carrier.clone_from(&labelled.carrier);
            next.tracking_number.clone_from(&labelled.tracking_number);
            next.promise = labelled.delivery_promise.as_ref().and_then(Window::from_proto).or(view.promise);
        }
        Payload::Shipped(shipped) => {
            next.carrier.clone_from(&shipped.carrier);
            next.tracking_number.clone_from(&shipped.tracking_number);
        }
        Payload::TrackingUpdated(updated) if updated.current && !is_end(view.status) => {
            next.last_scan.clone_from(&updated.scan);
            next.promise = updated.delivery_promise.as_ref().and_then(Window::from_proto).or(view.promise);
        }
        Payload::OrderCancelled(cancelled) => next.cancellation_reason.clone_from(&cancelled.reason),
        Payload::PaymentAuthorized(_) => next.payment_status = PaymentStatus::Authorized,
        Payload::PaymentDeclined(declined) => {
            next.payment_status = PaymentStatus::Declined;
            if view.status == OrderStatus::Placed {
                next.rejection_reason.clone_from(&declined.reason);
            }
        }
        Payload::PaymentCaptured(_) => next.payment_status = PaymentStatus::Captured,
        Payload::PaymentVoided(_) => next.payment_status = PaymentStatus::Voided,
        _ => {}
    }
    if let Some(status) = announced(payload) {
        next.status = advance(view.status, status);
    }
    next
}

/// Where an order in `current` goes when an event announces `status`: forward only, never out
/// of an end, and REJECTED only from PLACED or ON_HOLD (stock) or PACKED (no carrier takes it).
pub fn advance(current: OrderStatus, status: OrderStatus) -> OrderStatus {
    if status == OrderStatus::Rejected {
        let rejectable = matches!(current, OrderStatus::Placed | OrderStatus::OnHold | OrderStatus::Packed);
        return if rejectable { status } else { current };
    }
    if !is_end(current) && step(status) > step(current) { status } else { current }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_proto::events::v1::{
        Delivered, Labelled, OrderCancelled, Packed, Picked, Returned, ShipmentRejected, Shipped, StockRejected,
        StockReserved, TrackingUpdated,
    };

    fn view(status: OrderStatus) -> View {
        View { status, ..View::default() }
    }

    #[test]
    fn the_happy_path_moves_forward_step_by_step() {
        let mut v = view(OrderStatus::Placed);
        for (payload, expected) in [
            (Payload::StockReserved(StockReserved::default()), OrderStatus::Reserved),
            (Payload::Picked(Picked::default()), OrderStatus::Picked),
            (Payload::Packed(Packed::default()), OrderStatus::Packed),
            (
                Payload::Shipped(Shipped { carrier: "DPD".into(), tracking_number: "T1".into(), ..Default::default() }),
                OrderStatus::Shipped,
            ),
        ] {
            v = evolve(&v, &payload);
            assert_eq!(v.status, expected);
        }
        assert_eq!((v.carrier.as_str(), v.tracking_number.as_str()), ("DPD", "T1"));
    }

    #[test]
    fn every_event_type_maps_to_its_status() {
        for (event_type, status) in [
            ("OrderPlaced", OrderStatus::Placed),
            ("StockRejected", OrderStatus::Rejected),
            ("Delivered", OrderStatus::Delivered),
        ] {
            assert_eq!(announced_by_type(event_type), Some(status));
        }
        assert_eq!(announced_by_type("StockRestocked"), None);
    }

    #[test]
    fn late_events_never_move_an_order_backwards() {
        let shipped = view(OrderStatus::Shipped);
        assert_eq!(evolve(&shipped, &Payload::Picked(Picked::default())).status, OrderStatus::Shipped);
        assert_eq!(evolve(&shipped, &Payload::StockReserved(StockReserved::default())).status, OrderStatus::Shipped);
    }

    #[test]
    fn rejection_ends_a_placed_order_only() {
        let rejected = evolve(
            &view(OrderStatus::Placed),
            &Payload::StockRejected(StockRejected { reason: "out of stock".into(), skus: vec![] }),
        );
        assert_eq!((rejected.status, rejected.rejection_reason.as_str()), (OrderStatus::Rejected, "out of stock"));
        assert_eq!(evolve(&rejected, &Payload::Picked(Picked::default())).status, OrderStatus::Rejected);
        let reserved = view(OrderStatus::Reserved);
        assert_eq!(evolve(&reserved, &Payload::StockRejected(StockRejected::default())).status, OrderStatus::Reserved);
    }

    #[test]
    fn a_packed_order_no_carrier_takes_ends_rejected_with_the_reason() {
        let refused = Payload::ShipmentRejected(ShipmentRejected { reason: "no carrier serves it".into() });
        let rejected = evolve(&view(OrderStatus::Packed), &refused);
        assert_eq!(
            (rejected.status, rejected.rejection_reason.as_str()),
            (OrderStatus::Rejected, "no carrier serves it")
        );
        let shipped = evolve(&view(OrderStatus::Shipped), &refused);
        assert_eq!((shipped.status, shipped.rejection_reason.as_str()), (OrderStatus::Shipped, ""));
        assert_eq!(timeline_step("ShipmentRejected"), Some(step(OrderStatus::Labelled)));
    }

    #[test]
    fn an_early_event_skips_ahead_and_the_late_one_is_still_harmless() {
        let v = evolve(&view(OrderStatus::Placed), &Payload::Packed(Packed::default()));
        assert_eq!(v.status, OrderStatus::Packed);
        assert_eq!(evolve(&v, &Payload::Picked(Picked::default())).status, OrderStatus::Packed);
    }

    #[test]
    fn a_cancelled_order_stays_cancelled_when_packed_late() {
        let cancelled = evolve(
            &view(OrderStatus::Picked),
            &Payload::OrderCancelled(OrderCancelled { reason: "changed my mind".into(), ..Default::default() }),
        );
        assert_eq!(
            (cancelled.status, cancelled.cancellation_reason.as_str()),
            (OrderStatus::Cancelled, "changed my mind")
        );
        let packed_late = evolve(&cancelled, &Payload::Packed(Packed::default()));
        assert_eq!(packed_late.status, OrderStatus::Cancelled);
    }

    #[test]
    fn the_timeline_places_handover_with_packed_and_release_with_the_cancel() {
        assert_eq!(timeline_step("ShipmentRequested"), Some(step(OrderStatus::Packed)));
        assert_eq!(timeline_step("StockReleased"), Some(step(OrderStatus::Cancelled)));
        assert_eq!(timeline_step("LowStock"), None);
    }

    fn window(earliest: &str, latest: &str) -> Window {
        Window { earliest: earliest.parse().unwrap(), latest: latest.parse().unwrap() }
    }

    fn scanned(id: &str, status: &str, current: bool, promise: Window) -> Payload {
        let scan = TrackingScan { scan_id: id.into(), status: status.into(), ..Default::default() };
        Payload::TrackingUpdated(TrackingUpdated {
            scan: Some(scan),
            current,
            delivery_promise: Some(promise.to_proto()),
            carrier: "DPD".into(),
        })
    }

    #[test]
    fn the_last_mile_moves_the_promise_and_ends_delivered_or_returned() {
        let placed = View {
            status: OrderStatus::Packed,
            promise: Some(window("2026-12-01", "2026-12-03")),
            promised_latest: Some("2026-12-03".parse().unwrap()),
            ..View::default()
        };
        let label = Labelled {
            carrier: "DPD".into(),
            tracking_number: "DP1".into(),
            delivery_promise: Some(window("2026-12-02", "2026-12-03").to_proto()),
            ..Default::default()
        };
        let labelled = evolve(&placed, &Payload::Labelled(label));
        assert_eq!((labelled.status, labelled.tracking_number.as_str()), (OrderStatus::Labelled, "DP1"));
        assert_eq!(labelled.promise, Some(window("2026-12-02", "2026-12-03")));
        let shipped = evolve(&labelled, &Payload::Shipped(Shipped::default()));
        assert_eq!(shipped.status, OrderStatus::Shipped);
        let moving = evolve(&shipped, &scanned("s1", "OUT_FOR_DELIVERY", true, window("2026-12-02", "2026-12-02")));
        assert_eq!(
            (moving.status, moving.last_scan.as_ref().map(|s| s.scan_id.as_str())),
            (OrderStatus::Shipped, Some("s1"))
        );
        let late_scan = evolve(&moving, &scanned("s0", "IN_TRANSIT", false, window("2026-12-09", "2026-12-09")));
        assert_eq!(late_scan, moving, "a scan that is not current changes nothing");
        let delivered = evolve(&moving, &Payload::Delivered(Delivered::default()));
        assert_eq!(delivered.status, OrderStatus::Delivered);
        assert_eq!(evolve(&shipped, &Payload::Returned(Returned::default())).status, OrderStatus::Returned);
        assert_eq!(evolve(&delivered, &Payload::Returned(Returned::default())).status, OrderStatus::Delivered);
    }

    #[test]
    fn lateness_is_judged_against_the_placement_promise() {
        let today = "2026-12-02".parse().unwrap();
        let mut v = View {
            status: OrderStatus::Shipped,
            promise: Some(window("2026-12-01", "2026-12-03")),
            promised_latest: Some("2026-12-03".parse().unwrap()),
            ..View::default()
        };
        assert!(!v.delivery_promise(today).unwrap().late);
        v.promise = Some(window("2026-12-04", "2026-12-04"));
        let late = v.delivery_promise(today).unwrap();
        assert!(late.late);
        assert_eq!(late.late_reason, "now expected by 2026-12-04, promised by 2026-12-03");
        v.status = OrderStatus::Delivered;
        assert_eq!(v.delivery_promise(today).unwrap().late_reason, "delivered on 2026-12-04, promised by 2026-12-03");
        v.status = OrderStatus::Returned;
        assert!(!v.delivery_promise(today).unwrap().late, "a returned order is not late");
        assert_eq!(View::default().delivery_promise(today), None);
    }

    #[test]
    fn a_held_order_waits_then_is_reserved_or_expires() {
        use orderflow_proto::events::v1::StockHeld;
        let held = evolve(
            &view(OrderStatus::Placed),
            &Payload::StockHeld(StockHeld { reason: "awaiting MUG x3 (1 available)".into(), ..Default::default() }),
        );
        assert_eq!((held.status, held.hold_reason.as_str()), (OrderStatus::OnHold, "awaiting MUG x3 (1 available)"));
        let reserved = evolve(&held, &Payload::StockReserved(StockReserved::default()));
        assert_eq!((reserved.status, reserved.hold_reason.as_str()), (OrderStatus::Reserved, ""));
        let expired =
            evolve(&held, &Payload::StockRejected(StockRejected { reason: "backorder expired".into(), skus: vec![] }));
        assert_eq!(expired.status, OrderStatus::Rejected);
        assert_eq!(timeline_step("StockHeld"), Some(step(OrderStatus::OnHold)));
        assert!(
            step(OrderStatus::Placed) < step(OrderStatus::OnHold)
                && step(OrderStatus::OnHold) < step(OrderStatus::Reserved)
        );
    }
}
