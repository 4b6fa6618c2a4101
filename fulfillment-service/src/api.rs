//! The `orderflow.fulfillment.v1.FulfillmentService` adapter.

use crate::domain::Fulfillment as State;
use crate::store;
use orderflow_kit::types::uuid;
use orderflow_kit::{Service, ServiceError};
use orderflow_proto::fulfillment::v1::fulfillment_service_server::FulfillmentService;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, ConfirmStepResponse, Fulfillment, FulfillmentLine,
    GetFulfillmentRequest, GetFulfillmentResponse, ListPickTasksRequest, ListPickTasksResponse,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct FulfillmentApi {
    pool: PgPool,
}

impl FulfillmentApi {
    pub fn new(service: &Service) -> Self {
        Self { pool: service.pool.clone() }
    }
}

fn to_proto(state: State) -> Fulfillment {
    Fulfillment {
        order_id: state.order_id,
        status: state.status as i32,
        lines: state
            .reserved
            .lines
            .into_iter()
            .map(|l| FulfillmentLine {
                sku: l.sku,
                quantity: l.quantity,
                bin_location: l.bin_location,
                unit_weight_grams: l.unit_weight_grams,
            })
            .collect(),
        tote_id: state.tote_id,
        package_id: state.package_id,
        package_weight_grams: state.weight_grams,
    }
}

#[tonic::async_trait]
impl FulfillmentService for FulfillmentApi {
    async fn get_fulfillment(
        &self,
        request: Request<GetFulfillmentRequest>,
    ) -> Result<Response<GetFulfillmentResponse>, Status> {
        let order_id = uuid("order_id", &request.get_ref().order_id).map_err(ServiceError::from)?;
        let state = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let state = state.ok_or_else(|| ServiceError::NotFound(format!("no fulfillment for order {order_id}")))?;
        Ok(Response::new(GetFulfillmentResponse { fulfillment: Some(to_proto(state)) }))
    }

    async fn list_pick_tasks(
        &self,
        _request: Request<ListPickTasksRequest>,
    ) -> Result<Response<ListPickTasksResponse>, Status> {
        Err(Status::unimplemented("ListPickTasks is not available yet: fulfillment runs in automatic mode"))
    }

    async fn confirm_pick(
        &self,
        _request: Request<ConfirmPickRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        Err(Status::unimplemented("ConfirmPick is not available yet: fulfillment runs in automatic mode"))
    }

    async fn confirm_sort(
        &self,
        _request: Request<ConfirmSortRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        Err(Status::unimplemented("ConfirmSort is not available yet: fulfillment runs in automatic mode"))
    }

    async fn confirm_pack(
        &self,
        _request: Request<ConfirmPackRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        Err(Status::unimplemented("ConfirmPack is not available yet: fulfillment runs in automatic mode"))
    }
}
