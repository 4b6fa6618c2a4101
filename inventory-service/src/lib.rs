//! inventory-service: the second step of the flow. The catalogue (UpsertProduct, Restock,
//! GetStock) keeps stock levels; `reserve_stock` turns OrderPlaced into StockReserved (every
//! line, atomically) or StockRejected (none).

mod api;
mod catalogue;
mod reserve_stock;
mod store;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Application, Config, Service};
use orderflow_proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events and its consumer group.
pub const SERVICE: &str = "inventory-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// inventory-service, built and ready to run.
#[derive(Debug)]
pub struct App {
    service: Service,
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }
}

impl Application for App {
    async fn build(config: Config) -> anyhow::Result<Self> {
        Ok(Self { service: Service::start(config, &MIGRATIONS).await? })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let reserve = reserve_stock::OnOrderPlaced::new(self.service.topics.name(Topic::Inventory));
        let consumer = self.service.consumer(&[Topic::Orders], reserve)?;
        let api = InventoryServiceServer::new(api::InventoryApi::new(&self.service));
        let workers = vec![Box::pin(consumer.run(shutdown.clone())) as _];
        self.service
            .serve(
                InventoryServiceServer::<api::InventoryApi>::NAME,
                |router| router.add_service(api),
                workers,
                shutdown,
            )
            .await
    }
}
