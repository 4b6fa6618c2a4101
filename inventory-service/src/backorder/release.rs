//! A restock's second half: the held orders needing the restocked SKU are locked in arrival
//! order and those the stock now serves are reserved whole, each with its StockReserved in its
//! own order's chain, in the restock's transaction. The caller has locked the stock rows of
//! every SKU those orders need, in SKU order (`store::skus_waiting_with`), before it changed
//! any, so restocks and reservations take the rows in one order and cannot deadlock.

use super::domain::serve;
use super::store;
use crate::store as stock;
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::outbox;
use orderflow_proto::events::v1::event_envelope::Payload;
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

/// Serves what the restock of `sku` allows; the SKUs whose reserved stock changed.
pub async fn release(conn: &mut PgConnection, topic: &str, sku: &str) -> Result<Vec<String>, sqlx::Error> {
    let waiting = store::lock_waiting(conn, sku).await?;
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let skus: BTreeSet<String> =
        waiting.iter().flat_map(|w| w.held.placed.lines.iter().map(|l| l.sku.clone())).collect();
    let skus: Vec<String> = skus.into_iter().collect();
    let levels = stock::lock_stock(conn, &skus).await?;
    let held: Vec<_> = waiting.iter().map(|w| w.held.clone()).collect();
    let served = serve(&held, levels);
    if served.is_empty() {
        return Ok(Vec::new());
    }
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    let (mut decisions, mut events, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for (order_id, reserved) in served {
        for line in &reserved.lines {
            *totals.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
        }
        let Some(placed) = waiting.iter().find(|w| w.held.order_id == order_id) else { continue };
        tracing::info!(order_id = %order_id, "backorder reserved after a restock");
        let payload = Payload::StockReserved(reserved);
        events.push(envelope::build(
            crate::SERVICE,
            &placed.event.order_id,
            payload.clone(),
            &Cause::event(&placed.event),
        ));
        decisions.push((order_id, stock::RESERVED, payload));
        ids.push(order_id);
    }
    stock::reserve_totals(conn, &totals).await?;
    stock::record_decisions(conn, &decisions).await?;
    store::remove_all(conn, &ids).await?;
    outbox::enqueue_all(conn, topic, &events).await?;
    Ok(totals.into_keys().collect())
}
