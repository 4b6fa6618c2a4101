//! The `orderflow.shipping.v1.ShippingService` adapter.

use crate::store;
use orderflow_kit::types::uuid;
use orderflow_kit::{Service, ServiceError};
use orderflow_proto::shipping::v1::shipping_service_server::ShippingService;
use orderflow_proto::shipping::v1::{
    ConfirmDeliveryRequest, ConfirmDeliveryResponse, GetShipmentRequest, GetShipmentResponse, TrackShipmentRequest,
    TrackShipmentResponse,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct ShippingApi {
    pool: PgPool,
}

impl ShippingApi {
    pub fn new(service: &Service) -> Self {
        Self { pool: service.pool.clone() }
    }
}

#[tonic::async_trait]
impl ShippingService for ShippingApi {
    async fn get_shipment(
        &self,
        request: Request<GetShipmentRequest>,
    ) -> Result<Response<GetShipmentResponse>, Status> {
        let order_id = uuid("order_id", &request.get_ref().order_id).map_err(ServiceError::from)?;
        let shipment = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let shipment = shipment.ok_or_else(|| ServiceError::NotFound(format!("no shipment for order {order_id}")))?;
        Ok(Response::new(GetShipmentResponse { shipment: Some(shipment) }))
    }

    async fn track_shipment(
        &self,
        _request: Request<TrackShipmentRequest>,
    ) -> Result<Response<TrackShipmentResponse>, Status> {
        Err(Status::unimplemented("TrackShipment is not available yet"))
    }

    async fn confirm_delivery(
        &self,
        _request: Request<ConfirmDeliveryRequest>,
    ) -> Result<Response<ConfirmDeliveryResponse>, Status> {
        Err(Status::unimplemented("ConfirmDelivery is not available yet"))
    }
}
