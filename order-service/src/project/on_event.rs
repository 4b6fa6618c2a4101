//! The projection's adapter: every order event the consumer hands over is projected in the
//! inbox transaction, with the webhooks it announces and the payment call it makes due (a
//! capture once shipped, a void once rejected); a Packed then goes on to `request_shipment`.

use super::domain;
use crate::project::domain::View;
use crate::{payment, request_shipment, store, webhooks};
use orderflow_kit::envelope::{self, EventEnvelope};
use orderflow_kit::inbox::{self, EventHandler, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The order projection, fed by the inventory, fulfillment and shipping topics.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The orders topic, where ShipmentRequested goes.
    pub orders_topic: String,
}

/// Projects `event` onto its order's view and timeline: the view as it was before and as it is
/// now, or `None` for events that are not about an order. Decides nothing; the live projection
/// and a rebuild share it.
pub async fn apply(conn: &mut PgConnection, event: &EventEnvelope) -> Result<Option<(View, View)>, HandlerError> {
    let Some((payload, step)) = about_an_order(event) else { return Ok(None) };
    let order_id = inbox::order_id(event)?;
    let Some(view) = store::lock_view(conn, order_id).await? else {
        return Err(HandlerError::Rejected(format!("unknown order {order_id}")));
    };
    let next = domain::evolve(&view, payload);
    if next != view {
        store::save_view(conn, order_id, &next).await?;
    }
    store::append_timeline(conn, order_id, event, step).await?;
    Ok(Some((view, next)))
}

/// The event's payload and timeline step if it is about an order; `None` for stock-only events
/// (restocks, low-stock alerts). (order-service's own events never arrive here: the consumer
/// dead-letters an event that is not its topic's, `inbox::misplaced`.)
fn about_an_order(event: &EventEnvelope) -> Option<(&Payload, i32)> {
    let payload = event.payload.as_ref()?;
    domain::timeline_step(envelope::event_type(payload)).map(|step| (payload, step))
}

impl EventHandler for Projection {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let views = apply(conn, event).await?;
        // After the order's row lock: deliveries are numbered in the order their changes commit.
        webhooks::enqueue(conn, &[event]).await?;
        let Some((before, after)) = views else { return Ok(()) };
        payment::follow(conn, &[(inbox::order_id(event)?, &before, &after, event)]).await?;
        request_shipment::on_packed(conn, &self.orders_topic, event, &before).await
    }

    /// The batch at once, deciding as `handle` does event by event: the batch's orders are
    /// locked and read in one statement, evolved in order in memory, and written back with
    /// their timeline entries in one statement each.
    async fn handle_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
        let mut about = Vec::with_capacity(events.len());
        for event in events {
            let Some((payload, step)) = about_an_order(event) else { continue };
            about.push((inbox::order_id(event)?, *event, payload, step));
        }
        if about.is_empty() {
            return webhooks::enqueue(conn, events).await.map_err(Into::into);
        }
        let mut ids: Vec<Uuid> = about.iter().map(|(id, ..)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let locked = store::lock_views(conn, &ids).await?;
        // After the orders' row locks: deliveries are numbered in the order their changes commit.
        webhooks::enqueue(conn, events).await?;
        let mut views = locked.clone();
        let mut requests = Vec::new();
        let mut timeline = Vec::with_capacity(about.len());
        let mut last_cause: HashMap<Uuid, &EventEnvelope> = HashMap::new();
        for (order_id, event, payload, step) in about {
            last_cause.insert(order_id, event);
            let Some(before) = views.get(&order_id).cloned() else {
                return Err(HandlerError::Rejected(format!("unknown order {order_id}")));
            };
            timeline.push((order_id, event, step));
            for request in request_shipment::requests(event, &before) {
                requests.push((timeline.len(), order_id, request));
            }
            views.insert(order_id, domain::evolve(&before, payload));
        }
        let mut rows: Vec<(Uuid, &EventEnvelope, i32)> = Vec::with_capacity(timeline.len() + requests.len());
        let mut requested = requests.iter().peekable();
        for (i, row) in timeline.into_iter().enumerate() {
            rows.push(row);
            while let Some((_, order_id, request)) = requested.next_if(|(after, ..)| *after == i + 1) {
                rows.push((*order_id, request, request_shipment::TIMELINE_STEP));
            }
        }
        let changed: Vec<(Uuid, &View)> =
            views.iter().filter(|(id, view)| locked.get(*id) != Some(*view)).map(|(id, view)| (*id, view)).collect();
        store::save_views(conn, &changed).await?;
        store::append_timeline_all(conn, &rows).await?;
        let follows: Vec<_> = changed
            .iter()
            .filter_map(|(id, after)| Some((*id, locked.get(id)?, *after, *last_cause.get(id)?)))
            .collect();
        payment::follow(conn, &follows).await?;
        let handovers: Vec<EventEnvelope> = requests.into_iter().map(|(_, _, request)| request).collect();
        outbox::enqueue_all(conn, &self.orders_topic, &handovers).await?;
        Ok(())
    }
}
