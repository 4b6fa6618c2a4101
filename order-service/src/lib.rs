//! order-service: the first and last step of the flow. `PlaceOrder` validates an order and
//! emits OrderPlaced; the projection consumes every later event (StockReserved or
//! StockRejected, Picked, Sorted, Packed, Shipped) into the order's status and timeline.

mod api;
mod place_order;
mod project;
mod store;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Application, Config, Service};
use orderflow_proto::order::v1::order_service_server::OrderServiceServer;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events and its consumer group.
pub const SERVICE: &str = "order-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// order-service, built and ready to run.
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
        let projection =
            self.service.consumer(&[Topic::Inventory, Topic::Fulfillment, Topic::Shipping], project::Projection)?;
        let api = OrderServiceServer::new(api::OrderApi::new(&self.service));
        let workers = vec![Box::pin(projection.run(shutdown.clone())) as _];
        self.service
            .serve(OrderServiceServer::<api::OrderApi>::NAME, |router| router.add_service(api), workers, shutdown)
            .await
    }
}
