//! The OrderPlaced adapter for a run of orders (the consumer's fast path): the run's
//! reservations are claimed, its SKUs' stock rows locked and read, and the decisions, the
//! reserved quantities and the events written, one statement each. The orders are decided in
//! the order they were placed, each on the stock the ones before it left (`ReserveStock`'s
//! `evolve`), so a run decides exactly as one order at a time does.

use super::OnOrderPlaced;
use super::domain::ReserveStock;
use crate::{backorder, low_stock, store};
use orderflow_kit::decider::Decider;
use orderflow_kit::envelope::{self, Cause, EventEnvelope};
use orderflow_kit::inbox::{self, HandlerError};
use orderflow_kit::outbox;
use orderflow_kit::types::order_lines;
use orderflow_proto::events::v1::OrderPlaced;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

impl OnOrderPlaced {
    /// Reserves for `placed` (each an OrderPlaced event with its payload), in order.
    pub async fn reserve_all(
        &self,
        conn: &mut PgConnection,
        placed: &[(&EventEnvelope, &OrderPlaced)],
    ) -> Result<(), HandlerError> {
        if placed.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(placed.len());
        for (event, _) in placed {
            ids.push(inbox::order_id(event)?);
        }
        let mut claimed = store::claim_reservations(conn, &ids).await?;
        // Only the first event of an order that was not decided before is decided.
        let run: Vec<_> = ids.iter().zip(placed).filter(|(id, _)| claimed.remove(*id)).collect();
        if run.is_empty() {
            return Ok(());
        }
        let skus: BTreeSet<String> = run
            .iter()
            .flat_map(|(_, (_, order))| order_lines(&order.lines).unwrap_or_default())
            .map(|line| line.sku.to_string())
            .collect();
        let skus: Vec<String> = skus.into_iter().collect();
        let mut levels = store::lock_stock(conn, &skus).await?;
        let mut reserved: BTreeMap<String, i64> = BTreeMap::new();
        let (mut decisions, mut events) = (Vec::with_capacity(run.len()), Vec::with_capacity(run.len()));
        let mut holds = Vec::new();
        for (order_id, (event, order)) in run {
            let Ok(decided) = ReserveStock::decide(&levels, order);
            for mut payload in decided {
                levels = ReserveStock::evolve(levels, &payload);
                let status = match &mut payload {
                    Payload::StockHeld(held) => {
                        let until = self.hold_until();
                        held.expires_at = Some(envelope::timestamp(until));
                        tracing::info!(order_id = %order_id, reason = %held.reason, "order held for a restock");
                        holds.push((*order_id, *event, until));
                        store::HELD
                    }
                    Payload::StockReserved(stock) => {
                        for line in &stock.lines {
                            *reserved.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
                        }
                        store::RESERVED
                    }
                    Payload::StockRejected(rejected) => {
                        tracing::info!(order_id = %order_id, reason = %rejected.reason, "order rejected");
                        store::REJECTED
                    }
                    _ => continue,
                };
                decisions.push((*order_id, status, payload.clone()));
                events.push(envelope::build(crate::SERVICE, &event.order_id, payload, &Cause::event(event)));
            }
        }
        store::reserve_totals(conn, &reserved).await?;
        backorder::store::hold_all(conn, &holds).await?;
        if let Some(last) = events.last() {
            low_stock::check(conn, self.topic(), &skus, &Cause::event(last)).await?;
        }
        store::record_decisions(conn, &decisions).await?;
        outbox::enqueue_all(conn, self.topic(), &events).await?;
        Ok(())
    }
}
