//! The `orderflow.fulfillment.v1.FulfillmentService` adapter.

use crate::fulfillment::{Fulfillment as State, Step};
use crate::pack::Measured;
use crate::steps::Steps;
use crate::store;
use orderflow_kit::types::OrderId;
use orderflow_kit::{Service, ServiceError, grpc};
use orderflow_proto::fulfillment::v1::fulfillment_service_server::FulfillmentService;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, ConfirmStepResponse, Fulfillment, FulfillmentLine,
    GetFulfillmentRequest, GetFulfillmentResponse, ListPickTasksRequest, ListPickTasksResponse, PickTask,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct FulfillmentApi {
    pool: PgPool,
    steps: Steps,
}

impl FulfillmentApi {
    pub fn new(service: &Service, steps: Steps) -> Self {
        Self { pool: service.pool.clone(), steps }
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
        let order_id = OrderId::try_from(request.get_ref().order_id.as_str()).map_err(ServiceError::from)?.uuid();
        let state = store::load(&self.pool, order_id).await.map_err(ServiceError::from)?;
        let state = state.ok_or_else(|| ServiceError::NotFound(format!("no fulfillment for order {order_id}")))?;
        Ok(Response::new(GetFulfillmentResponse { fulfillment: Some(to_proto(state)) }))
    }

    async fn list_pick_tasks(
        &self,
        request: Request<ListPickTasksRequest>,
    ) -> Result<Response<ListPickTasksResponse>, Status> {
        let size = grpc::page_size(request.get_ref().page_size, 100, 1_000);
        let waiting = store::awaiting_pick(&self.pool, size).await.map_err(ServiceError::from)?;
        let mut tasks: Vec<PickTask> = waiting
            .into_iter()
            .flat_map(|f| {
                let order_id = f.order_id;
                f.reserved.lines.into_iter().map(move |l| PickTask {
                    order_id: order_id.clone(),
                    sku: l.sku,
                    quantity: l.quantity,
                    bin_location: l.bin_location,
                })
            })
            .collect();
        // One walk through the warehouse: the pick list is in bin order.
        tasks.sort_by(|a, b| (&a.bin_location, &a.order_id).cmp(&(&b.bin_location, &b.order_id)));
        tasks.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        Ok(Response::new(ListPickTasksResponse { tasks }))
    }

    async fn confirm_pick(
        &self,
        request: Request<ConfirmPickRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        self.confirm(&request.get_ref().order_id, Step::Pick, None).await
    }

    async fn confirm_sort(
        &self,
        request: Request<ConfirmSortRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        self.confirm(&request.get_ref().order_id, Step::Sort, None).await
    }

    async fn confirm_pack(
        &self,
        request: Request<ConfirmPackRequest>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        let r = request.get_ref();
        let measured =
            Measured::parse(r.weight_grams, r.length_mm, r.width_mm, r.height_mm).map_err(ServiceError::from)?;
        self.confirm(&r.order_id, Step::Pack, measured).await
    }
}

impl FulfillmentApi {
    async fn confirm(
        &self,
        order_id: &str,
        step: Step,
        measured: Option<Measured>,
    ) -> Result<Response<ConfirmStepResponse>, Status> {
        let order_id = OrderId::try_from(order_id).map_err(ServiceError::from)?.uuid();
        let state = self.steps.confirm(&self.pool, order_id, step, measured).await?;
        Ok(Response::new(ConfirmStepResponse { fulfillment: Some(to_proto(state)) }))
    }
}
