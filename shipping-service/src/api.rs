//! The `orderflow.shipping.v1.ShippingService` adapter. A token bound to a carrier
//! (`carrier=<name>` in the token file) lists, confirms and scans only that carrier's parcels.

use crate::{pickup, store, track, track_shipment};
use orderflow_kit::topics::Topic;
use orderflow_kit::types::OrderId;
use orderflow_kit::{Service, ServiceError, auth, grpc};
use orderflow_proto::shipping::v1::shipping_service_server::ShippingService;
use orderflow_proto::shipping::v1::{
    ConfirmDeliveryRequest, ConfirmDeliveryResponse, ConfirmPickupRequest, ConfirmPickupResponse, GetShipmentRequest,
    GetShipmentResponse, ListPickupsRequest, ListPickupsResponse, RecordTrackingEventRequest,
    RecordTrackingEventResponse, TrackShipmentRequest, TrackShipmentResponse,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct ShippingApi {
    pool: PgPool,
    /// The shipping topic, where the carriers' events go.
    topic: String,
}

impl ShippingApi {
    pub fn new(service: &Service) -> Self {
        Self { pool: service.pool.clone(), topic: service.topics.name(Topic::Shipping) }
    }
}

#[tonic::async_trait]
impl ShippingService for ShippingApi {
    async fn get_shipment(
        &self,
        request: Request<GetShipmentRequest>,
    ) -> Result<Response<GetShipmentResponse>, Status> {
        let order_id = OrderId::try_from(request.get_ref().order_id.as_str()).map_err(ServiceError::from)?.uuid();
        let shipment = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let shipment = shipment.ok_or_else(|| ServiceError::NotFound(format!("no shipment for order {order_id}")))?;
        Ok(Response::new(GetShipmentResponse { shipment: Some(shipment) }))
    }

    async fn track_shipment(
        &self,
        request: Request<TrackShipmentRequest>,
    ) -> Result<Response<TrackShipmentResponse>, Status> {
        Ok(Response::new(track_shipment::track(&self.pool, &request.get_ref().tracking_number).await?))
    }

    async fn confirm_delivery(
        &self,
        request: Request<ConfirmDeliveryRequest>,
    ) -> Result<Response<ConfirmDeliveryResponse>, Status> {
        let trace = grpc::trace_of(&request);
        let number = &request.get_ref().tracking_number;
        let carrier = auth::bound_carrier(&request);
        let shipment = track::confirm_delivery(&self.pool, &self.topic, trace, carrier, number).await?;
        Ok(Response::new(ConfirmDeliveryResponse { shipment: Some(shipment) }))
    }

    async fn list_pickups(
        &self,
        request: Request<ListPickupsRequest>,
    ) -> Result<Response<ListPickupsResponse>, Status> {
        own_carrier(&request, &request.get_ref().carrier)?;
        Ok(Response::new(pickup::list_pickups(&self.pool, request.get_ref()).await?))
    }

    async fn confirm_pickup(
        &self,
        request: Request<ConfirmPickupRequest>,
    ) -> Result<Response<ConfirmPickupResponse>, Status> {
        let trace = grpc::trace_of(&request);
        own_carrier(&request, &request.get_ref().carrier)?;
        Ok(Response::new(pickup::confirm_pickup(&self.pool, &self.topic, trace, request.get_ref()).await?))
    }

    async fn record_tracking_event(
        &self,
        request: Request<RecordTrackingEventRequest>,
    ) -> Result<Response<RecordTrackingEventResponse>, Status> {
        let trace = grpc::trace_of(&request);
        let carrier = auth::bound_carrier(&request);
        Ok(Response::new(
            track::record_tracking_event(&self.pool, &self.topic, trace, carrier, request.get_ref()).await?,
        ))
    }
}

/// A token bound to a carrier lists and confirms only that carrier's pick-ups.
fn own_carrier<T>(request: &Request<T>, carrier: &str) -> Result<(), Status> {
    match auth::bound_carrier(request) {
        Some(bound) if !bound.eq_ignore_ascii_case(carrier.trim()) => {
            Err(Status::permission_denied(format!("carrier: this token confirms {bound}'s pick-ups only")))
        }
        _ => Ok(()),
    }
}
