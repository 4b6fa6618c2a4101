//! order-service: the first and last step of the flow. `PlaceOrder` validates an order and
//! emits OrderPlaced; the projection consumes every later event (StockReserved or
//! StockRejected, Picked, Sorted, Packed, Shipped, Delivered, StockReleased) into the order's
//! status and timeline and hands packed orders to shipping (ShipmentRequested); `CancelOrder`
//! emits OrderCancelled until then.

mod api;
mod cancel_order;
mod place_order;
mod project;
pub mod rebuild;
mod store;
mod watch_order;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::order::v1::order_service_server::OrderServiceServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events.
pub const SERVICE: &str = "order-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// The topics the order projection consumes.
pub const CONSUMED: [Topic; 3] = [Topic::Inventory, Topic::Fulfillment, Topic::Shipping];

/// order-service's wiring: the order API and the order projection.
#[derive(Debug)]
pub struct Orders;

/// order-service, built from its configuration.
pub type App = orderflow_kit::App<Orders>;

impl Wiring for Orders {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = 50051;
    const DATABASE: &'static str = "orders";

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        Ok(Self)
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let projection = project::Projection { orders_topic: service.topics.name(Topic::Orders) };
        let projection = service.consumer(&CONSUMED, projection)?;
        let api = OrderServiceServer::new(api::OrderApi::new(&service));
        let workers = vec![Box::pin(projection.run(shutdown.clone())) as _];
        service
            .serve(OrderServiceServer::<api::OrderApi>::NAME, |router| router.add_service(api), workers, shutdown)
            .await
    }
}
