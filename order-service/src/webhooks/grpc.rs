//! The `orderflow.order.v1.WebhookService` adapter.

use super::domain::{NewWebhook, new_secret};
use super::store;
use orderflow_kit::types::FieldError;
use orderflow_kit::{ServiceError, grpc};
use orderflow_proto::order::v1::webhook_service_server::WebhookService;
use orderflow_proto::order::v1::{
    CreateWebhookRequest, CreateWebhookResponse, DeleteWebhookRequest, DeleteWebhookResponse,
    ListWebhookDeliveriesRequest, ListWebhookDeliveriesResponse, ListWebhooksRequest, ListWebhooksResponse,
    RedeliverWebhookRequest, RedeliverWebhookResponse, WebhookDeliveryState,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct WebhookApi {
    pub pool: PgPool,
}

fn id(field: &str, value: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(value.trim()).map_err(|_| FieldError::new(field, "must be a UUID").into())
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<CreateWebhookRequest>,
    ) -> Result<Response<CreateWebhookResponse>, Status> {
        let new = NewWebhook::try_from(request.get_ref()).map_err(ServiceError::from)?;
        let webhook = store::create(&self.pool, &new, &new_secret()).await.map_err(ServiceError::from)?;
        tracing::info!(webhook_id = %webhook.webhook_id, url = %webhook.url, "webhook created");
        Ok(Response::new(CreateWebhookResponse { webhook: Some(webhook) }))
    }

    async fn list_webhooks(&self, _: Request<ListWebhooksRequest>) -> Result<Response<ListWebhooksResponse>, Status> {
        let webhooks = store::list(&self.pool).await.map_err(ServiceError::from)?;
        Ok(Response::new(ListWebhooksResponse { webhooks }))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<DeleteWebhookResponse>, Status> {
        let webhook_id = id("webhook_id", &request.get_ref().webhook_id)?;
        if !store::delete(&self.pool, webhook_id).await.map_err(ServiceError::from)? {
            return Err(ServiceError::NotFound(format!("webhook {webhook_id} not found")).into());
        }
        Ok(Response::new(DeleteWebhookResponse {}))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let webhook_id = id("webhook_id", &request.webhook_id)?;
        let state = match WebhookDeliveryState::try_from(request.state) {
            Ok(WebhookDeliveryState::Unspecified) => None,
            Ok(state) => Some(state),
            Err(_) => return Err(ServiceError::from(FieldError::new("state", "is not a delivery state")).into()),
        };
        let before = if request.page_token.is_empty() {
            None
        } else {
            let token = request
                .page_token
                .parse()
                .map_err(|_| FieldError::new("page_token", "is not a token this service issued"));
            Some(token.map_err(ServiceError::from)?)
        };
        let size = grpc::page_size(request.page_size, 50, 500);
        let rows =
            store::deliveries(&self.pool, webhook_id, state, before, size + 1).await.map_err(ServiceError::from)?;
        let (rows, next_page_token) = grpc::page(rows, size, |(seq, _)| seq.to_string());
        let deliveries = rows.into_iter().map(|(_, delivery)| delivery).collect();
        Ok(Response::new(ListWebhookDeliveriesResponse { deliveries, next_page_token }))
    }

    async fn redeliver_webhook(
        &self,
        request: Request<RedeliverWebhookRequest>,
    ) -> Result<Response<RedeliverWebhookResponse>, Status> {
        let delivery_id = id("delivery_id", &request.get_ref().delivery_id)?;
        let delivery = store::redeliver(&self.pool, delivery_id).await.map_err(ServiceError::from)?;
        let delivery = delivery.ok_or_else(|| ServiceError::NotFound(format!("delivery {delivery_id} not found")))?;
        Ok(Response::new(RedeliverWebhookResponse { delivery: Some(delivery) }))
    }
}
