//! What inventory-service consumes, routed to its step: PaymentAuthorized (or an OrderPlaced
//! that does not await payment) → `reserve_stock`,
//! OrderCancelled and ShipmentRejected → `release_stock`, Shipped → `commit_stock`. Other
//! events on those topics are not about stock.

use crate::reserve_stock::{OnOrderPlaced, to_reserve};
use crate::{commit_stock, release_stock};
use orderflow_kit::envelope::EventEnvelope;
use orderflow_kit::inbox::{EventHandler, HandlerError};
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;

#[derive(Debug, Clone)]
pub struct InventoryInbox {
    pub reserve: OnOrderPlaced,
}

impl EventHandler for InventoryInbox {
    async fn handle(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
        match event.payload {
            Some(Payload::OrderPlaced(_) | Payload::PaymentAuthorized(_)) => self.reserve.handle(conn, event).await,
            Some(Payload::OrderCancelled(_) | Payload::ShipmentRejected(_)) => {
                release_stock::release(conn, self.reserve.topic(), event).await
            }
            Some(Payload::Shipped(_)) => commit_stock::on_shipped(conn, event).await,
            _ => Ok(()),
        }
    }

    /// A batch in order: each run of OrderPlaced events reserved at once (`reserve_all`), each
    /// run of Shipped events committed at once (`on_shipped_all`), every other event on its own
    /// between them. At most one run is open at a time, so the batch's order is kept.
    async fn handle_all(&self, conn: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), HandlerError> {
        let (mut placed, mut shipped) = (Vec::new(), Vec::new());
        for event in events {
            if let Some(order) = to_reserve(event.payload.as_ref()) {
                commit_stock::on_shipped_all(conn, &std::mem::take(&mut shipped)).await?;
                placed.push((*event, order));
                continue;
            }
            match &event.payload {
                Some(Payload::Shipped(_)) => {
                    self.reserve.reserve_all(conn, &std::mem::take(&mut placed)).await?;
                    shipped.push(*event);
                }
                _ => {
                    self.reserve.reserve_all(conn, &std::mem::take(&mut placed)).await?;
                    commit_stock::on_shipped_all(conn, &std::mem::take(&mut shipped)).await?;
                    self.handle(conn, event).await?;
                }
            }
        }
        self.reserve.reserve_all(conn, &placed).await?;
        commit_stock::on_shipped_all(conn, &shipped).await
    }
}
