//! ListBackorders: per SKU, the units held orders await and the orders, in arrival order.

use super::store;
use orderflow_kit::types::Sku;
use orderflow_kit::{ServiceError, envelope};
use orderflow_proto::inventory::v1::{Backorder, HeldOrder, ListBackordersRequest, ListBackordersResponse};
use sqlx::PgPool;

pub async fn list_backorders(
    pool: &PgPool,
    request: &ListBackordersRequest,
) -> Result<ListBackordersResponse, ServiceError> {
    let sku = if request.sku.trim().is_empty() { None } else { Some(Sku::parse("sku", &request.sku)?) };
    let mut items: Vec<Backorder> = Vec::new();
    for waiting in store::list(pool, sku.as_ref().map(Sku::as_str)).await? {
        if items.last().is_none_or(|b| b.sku != waiting.sku) {
            items.push(Backorder { sku: waiting.sku.clone(), ..Default::default() });
        }
        let Some(backorder) = items.last_mut() else { continue };
        backorder.units_awaited += waiting.quantity;
        backorder.orders.push(HeldOrder {
            order_id: waiting.order_id.to_string(),
            quantity: waiting.quantity,
            held_at: Some(envelope::timestamp(waiting.held_at)),
            expires_at: Some(envelope::timestamp(waiting.expires_at)),
        });
    }
    Ok(ListBackordersResponse { items })
}
