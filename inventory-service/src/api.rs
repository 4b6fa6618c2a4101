//! The `orderflow.inventory.v1.InventoryService` adapter.

use crate::{backorder, catalogue};
use orderflow_kit::topics::Topics;
use orderflow_kit::{Service, grpc};
use orderflow_proto::inventory::v1::inventory_service_server::InventoryService;
use orderflow_proto::inventory::v1::{
    GetStockRequest, GetStockResponse, ListBackordersRequest, ListBackordersResponse, ListLowStockRequest,
    ListLowStockResponse, ListStockRequest, ListStockResponse, RestockRequest, RestockResponse, UpsertProductRequest,
    UpsertProductResponse,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct InventoryApi {
    pool: PgPool,
    topics: Topics,
}

impl InventoryApi {
    pub fn new(service: &Service) -> Self {
        Self { pool: service.pool.clone(), topics: service.topics.clone() }
    }
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn upsert_product(
        &self,
        request: Request<UpsertProductRequest>,
    ) -> Result<Response<UpsertProductResponse>, Status> {
        let trace = grpc::trace_of(&request);
        let product = catalogue::upsert_product(&self.pool, &self.topics, trace, request.get_ref()).await?;
        Ok(Response::new(UpsertProductResponse { product: Some(product) }))
    }

    async fn restock(&self, request: Request<RestockRequest>) -> Result<Response<RestockResponse>, Status> {
        let trace = grpc::trace_of(&request);
        let stock = catalogue::restock(&self.pool, &self.topics, trace, request.get_ref()).await?;
        Ok(Response::new(RestockResponse { stock: Some(stock) }))
    }

    async fn get_stock(&self, request: Request<GetStockRequest>) -> Result<Response<GetStockResponse>, Status> {
        Ok(Response::new(catalogue::get_stock(&self.pool, &request.get_ref().sku).await?))
    }

    async fn list_stock(&self, request: Request<ListStockRequest>) -> Result<Response<ListStockResponse>, Status> {
        Ok(Response::new(catalogue::list_stock(&self.pool, request.get_ref()).await?))
    }

    async fn list_low_stock(
        &self,
        _request: Request<ListLowStockRequest>,
    ) -> Result<Response<ListLowStockResponse>, Status> {
        Ok(Response::new(catalogue::list_low_stock(&self.pool).await?))
    }

    async fn list_backorders(
        &self,
        request: Request<ListBackordersRequest>,
    ) -> Result<Response<ListBackordersResponse>, Status> {
        Ok(Response::new(backorder::list_backorders(&self.pool, request.get_ref()).await?))
    }
}
