//! fulfillment-service: the warehouse steps of the flow. StockReserved starts a fulfillment;
//! automatic mode picks, sorts and packs it (Picked, Sorted, Packed), optionally with a delay
//! per step (`FULFILLMENT_STEP_DELAY_MS`).

mod api;
mod domain;
mod steps;
mod store;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::fulfillment::v1::fulfillment_service_server::FulfillmentServiceServer;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events.
pub const SERVICE: &str = "fulfillment-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// fulfillment-service's wiring: the fulfillment API and the automatic warehouse steps.
#[derive(Debug)]
pub struct Fulfillment {
    /// `FULFILLMENT_STEP_DELAY_MS` (default 0): wait before each automatic step.
    step_delay: Duration,
}

/// fulfillment-service, built from its configuration.
pub type App = orderflow_kit::App<Fulfillment>;

impl Wiring for Fulfillment {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = 50053;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        Ok(Self { step_delay: Duration::from_millis(orderflow_kit::config::var("FULFILLMENT_STEP_DELAY_MS", 0)?) })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let steps = steps::Steps { topic: service.topics.name(Topic::Fulfillment), delay: self.step_delay };
        let scheduler = steps.clone().run(service.pool.clone(), shutdown.clone());
        let consumer = service.consumer(&[Topic::Inventory], steps)?;
        let api = FulfillmentServiceServer::new(api::FulfillmentApi::new(&service));
        let workers = vec![Box::pin(consumer.run(shutdown.clone())) as _, Box::pin(scheduler) as _];
        service
            .serve(
                FulfillmentServiceServer::<api::FulfillmentApi>::NAME,
                |router| router.add_service(api),
                workers,
                shutdown,
            )
            .await
    }
}
