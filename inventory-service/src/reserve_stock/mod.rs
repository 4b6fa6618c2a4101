//! OrderPlaced → StockReserved | StockRejected. Locks the stock rows of the order's SKUs (in
//! SKU order, so concurrent orders cannot deadlock), decides, and stores the reservation and
//! its event in the inbox transaction. Concurrent orders for the last units are serialised by
//! those row locks, whatever the number of instances.

pub mod domain;

use crate::store;
use domain::Decision;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{EventHandler, HandlerError};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

/// Reacts to OrderPlaced on the orders topic; emits to `topic` (the inventory topic).
#[derive(Debug, Clone)]
pub struct OnOrderPlaced {
    topic: String,
}

impl OnOrderPlaced {
    pub fn new(topic: String) -> Self {
        Self { topic }
    }
}

impl EventHandler for OnOrderPlaced {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::OrderPlaced(placed)) = event.payload.as_ref() else { return Ok(()) };
        let order_id = Uuid::parse_str(&event.order_id)
            .map_err(|_| HandlerError::Rejected(format!("order_id {:?} is not a UUID", event.order_id)))?;
        if !store::claim_reservation(conn, order_id).await? {
            return Ok(()); // already decided for this order
        }
        let skus: Vec<String> = placed.lines.iter().map(|l| l.sku.clone()).collect();
        let levels = store::lock_stock(conn, &skus).await?;
        let (status, payload) = match domain::decide(placed, &levels) {
            Decision::Reserved(reserved) => {
                store::reserve(conn, &reserved.lines).await?;
                ("RESERVED", Payload::StockReserved(reserved))
            }
            Decision::Rejected(rejected) => {
                tracing::info!(order_id = %order_id, reason = %rejected.reason, "order rejected");
                ("REJECTED", Payload::StockRejected(rejected))
            }
        };
        store::record_decision(conn, order_id, status, &payload).await?;
        let decided = envelope::build(crate::SERVICE, &event.order_id, payload, &Cause::event(event));
        outbox::enqueue(conn, &self.topic, &event.order_id, &decided).await?;
        Ok(())
    }
}
