//! The `orderflow.order.v1.OrderService` adapter: maps requests to the steps and errors to
//! status codes. A token bound to a customer (`customer=<id>` in the token file) places, reads,
//! lists, watches and cancels only that customer's orders: another's is NOT_FOUND, as if it did
//! not exist. Idempotency keys are the caller's own.

use crate::watch_order::{self, Watchers};
use crate::{cancel_order, place_order, store};
use futures::Stream;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::topics::Topics;
use orderflow_kit::types::{OrderId, required_text};
use orderflow_kit::{Service, ServiceError, auth, grpc};
use orderflow_proto::order::v1::order_service_server::OrderService;
use orderflow_proto::order::v1::{
    CancelOrderRequest, CancelOrderResponse, GetOrderRequest, GetOrderResponse, ListOrdersRequest, ListOrdersResponse,
    PlaceOrderRequest, PlaceOrderResponse, WatchOrderRequest, WatchOrderResponse,
};
use sqlx::PgPool;
use std::pin::Pin;
use tonic::{Request, Response, Status};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct OrderApi {
    pool: PgPool,
    topics: Topics,
    watchers: Watchers,
    committer: place_order::Committer,
    warehouse: Warehouse,
}

impl OrderApi {
    pub fn new(service: &Service, watchers: Watchers, committer: place_order::Committer, warehouse: Warehouse) -> Self {
        Self { pool: service.pool.clone(), topics: service.topics.clone(), watchers, committer, warehouse }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchOrderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn place_order(&self, request: Request<PlaceOrderRequest>) -> Result<Response<PlaceOrderResponse>, Status> {
        let trace = grpc::trace_of(&request);
        let caller = auth::caller(&request).map_or_else(String::new, |c| c.name.clone());
        if let Some(bound) = auth::bound_customer(&request) {
            let customer = request.get_ref().customer.as_ref().map(|c| c.id.trim());
            if customer != Some(bound) {
                return Err(Status::permission_denied(format!(
                    "customer.id: this token places orders for {bound:?} only"
                )));
            }
        }
        let placing = place_order::Caller { name: &caller, trace };
        let order =
            place_order::place_order(&self.pool, &self.committer, &self.warehouse, placing, request.into_inner())
                .await?;
        Ok(Response::new(PlaceOrderResponse { order: Some(order) }))
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<GetOrderResponse>, Status> {
        let order_id = OrderId::try_from(request.get_ref().order_id.as_str()).map_err(ServiceError::from)?.uuid();
        let stored = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let stored = visible(order_id, stored, auth::bound_customer(&request))?;
        Ok(Response::new(GetOrderResponse { order: Some(stored.order) }))
    }

    async fn list_orders(&self, request: Request<ListOrdersRequest>) -> Result<Response<ListOrdersResponse>, Status> {
        let bound = auth::bound_customer(&request).map(str::to_owned);
        let request = request.into_inner();
        // Everyone's orders only for the late list (an operator's question); else a customer's;
        // a bound token's customer's only, whatever it asks.
        let customer_id = if let Some(bound) = bound {
            let asked = request.customer_id.trim();
            if !asked.is_empty() && asked != bound {
                return Ok(Response::new(ListOrdersResponse::default()));
            }
            Some(bound)
        } else if request.late && request.customer_id.trim().is_empty() {
            None
        } else {
            Some(required_text("customer_id", &request.customer_id, 64).map_err(ServiceError::from)?)
        };
        let before = if request.page_token.is_empty() {
            None
        } else {
            Some(OrderId::parse("page_token", &request.page_token).map_err(ServiceError::from)?.uuid())
        };
        let size = grpc::page_size(request.page_size, 20, 100);
        let orders = store::list(&self.pool, customer_id.as_deref(), request.late, before, size + 1)
            .await
            .map_err(ServiceError::from)?;
        let (orders, next_page_token) = grpc::page(orders, size, |o| o.order_id.clone());
        Ok(Response::new(ListOrdersResponse { orders, next_page_token }))
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let trace = grpc::trace_of(&request);
        if let Some(bound) = auth::bound_customer(&request) {
            let order_id = OrderId::try_from(request.get_ref().order_id.as_str()).map_err(ServiceError::from)?.uuid();
            let customer = store::customer_of(&self.pool, order_id).await.map_err(ServiceError::from)?;
            if customer.as_deref() != Some(bound) {
                return Err(ServiceError::NotFound(format!("order {order_id} not found")).into());
            }
        }
        let order = cancel_order::cancel_order(&self.pool, &self.topics, trace, request.get_ref()).await?;
        Ok(Response::new(CancelOrderResponse { order: Some(order) }))
    }

    type WatchOrderStream = WatchStream;

    async fn watch_order(
        &self,
        request: Request<WatchOrderRequest>,
    ) -> Result<Response<Self::WatchOrderStream>, Status> {
        let order_id = OrderId::try_from(request.get_ref().order_id.as_str()).map_err(ServiceError::from)?.uuid();
        // Subscribed first: whatever commits after the load below reaches the stream.
        let subscription = self.watchers.subscribe(order_id)?;
        let stored = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let stored = visible(order_id, stored, auth::bound_customer(&request))?;
        Ok(Response::new(Box::pin(watch_order::watch(subscription, stored.order))))
    }
}

/// The stored order if the caller may see it: any, for a token bound to no customer; only that
/// customer's for one that is. Another's is NOT_FOUND, as a missing one: nothing says it exists.
fn visible(order_id: Uuid, stored: Option<store::Stored>, bound: Option<&str>) -> Result<store::Stored, ServiceError> {
    stored
        .filter(|s| bound.is_none_or(|c| s.order.customer.as_ref().is_some_and(|owner| owner.id == c)))
        .ok_or_else(|| ServiceError::NotFound(format!("order {order_id} not found")))
}
