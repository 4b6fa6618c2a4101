//! The catalogue's adapters: each command validated at the edge, applied with its low-stock
//! check (and StockRestocked) in one transaction.

use super::domain::{NewProduct, Restock};
use crate::{backorder, low_stock, store};
use orderflow_kit::envelope::Cause;
use orderflow_kit::outbox::{self, Subject};
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::trace::TraceParent;
use orderflow_kit::types::Sku;
use orderflow_kit::{ServiceError, grpc};
use orderflow_proto::events::v1::StockRestocked;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::inventory::v1::{
    GetStockResponse, ListLowStockResponse, ListStockRequest, ListStockResponse, Product, RestockRequest,
    UpsertProductRequest,
};
use sqlx::PgPool;

/// Creates or describes a product; a new threshold may raise (or clear) its low-stock alert.
pub async fn upsert_product(
    pool: &PgPool,
    topics: &Topics,
    trace: TraceParent,
    request: &UpsertProductRequest,
) -> Result<Product, ServiceError> {
    let NewProduct(product) = NewProduct::try_from(request)?;
    let mut tx = pool.begin().await?;
    let row = store::upsert_product(&mut *tx, &product).await?;
    low_stock::check(&mut tx, &topics.name(Topic::Inventory), std::slice::from_ref(&row.sku), &Cause::command(trace))
        .await?;
    tx.commit().await?;
    tracing::info!(sku = %row.sku, "product upserted");
    Ok(GetStockResponse::from(row).product.unwrap_or_default())
}

/// Adds stock and emits StockRestocked, then reserves the held orders the stock now serves
/// (`backorder::release`), in one transaction. The stock rows of the SKU and of every SKU its
/// held orders need are locked first, in SKU order, as every reservation locks them.
pub async fn restock(
    pool: &PgPool,
    topics: &Topics,
    trace: TraceParent,
    request: &RestockRequest,
) -> Result<GetStockResponse, ServiceError> {
    let Restock { sku, quantity } = Restock::try_from(request)?;
    let mut tx = pool.begin().await?;
    let mut locked = backorder::store::skus_waiting_with(&mut tx, sku.as_str()).await?;
    locked.push(sku.to_string());
    locked.sort_unstable();
    locked.dedup();
    store::lock_stock(&mut tx, &locked).await?;
    let row = store::restock(&mut tx, sku.as_str(), quantity).await?.ok_or_else(|| not_found(&sku))?;
    let payload = Payload::StockRestocked(StockRestocked {
        sku: row.sku.clone(),
        quantity,
        on_hand: row.on_hand,
        available: row.on_hand - row.reserved,
    });
    let topic = topics.name(Topic::Inventory);
    let event =
        outbox::emit(&mut tx, crate::SERVICE, &topic, Subject::Stock(sku.as_str()), payload, &Cause::command(trace))
            .await?;
    let mut touched = backorder::release(&mut tx, &topic, sku.as_str()).await?;
    touched.push(row.sku.clone());
    touched.sort_unstable();
    touched.dedup();
    low_stock::check(&mut tx, &topic, &touched, &Cause::event(&event)).await?;
    let row = store::get(&mut *tx, sku.as_str()).await?.ok_or_else(|| not_found(&sku))?;
    tx.commit().await?;
    tracing::info!(sku = %sku, quantity, on_hand = row.on_hand, "restocked");
    Ok(row.into())
}

pub async fn get_stock(pool: &PgPool, sku: &str) -> Result<GetStockResponse, ServiceError> {
    let sku = Sku::parse("sku", sku)?;
    let row = store::get(pool, sku.as_str()).await?.ok_or_else(|| not_found(&sku))?;
    Ok(row.into())
}

/// A page of stock levels in SKU order; the token is the last SKU of the previous page.
pub async fn list_stock(pool: &PgPool, request: &ListStockRequest) -> Result<ListStockResponse, ServiceError> {
    let size = grpc::page_size(request.page_size, 50, 500);
    let rows = store::list(pool, &request.page_token, size + 1).await?;
    let (rows, next_page_token) = grpc::page(rows, size, |r| r.sku.clone());
    Ok(ListStockResponse { items: rows.into_iter().map(Into::into).collect(), next_page_token })
}

pub async fn list_low_stock(pool: &PgPool) -> Result<ListLowStockResponse, ServiceError> {
    Ok(ListLowStockResponse { items: store::list_low(pool).await?.into_iter().map(Into::into).collect() })
}

fn not_found(sku: &Sku) -> ServiceError {
    ServiceError::NotFound(format!("product {sku} not found"))
}
