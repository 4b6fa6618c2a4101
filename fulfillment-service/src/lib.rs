//! fulfillment-service: the warehouse steps of the flow. StockReserved starts a fulfillment;
//! automatic mode picks, sorts and packs it (Picked, Sorted, Packed), optionally with a delay
//! per step (`FULFILLMENT_STEP_DELAY_MS`).

mod api;
mod domain;
mod steps;
mod store;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Application, Config, Service};
use orderflow_proto::fulfillment::v1::fulfillment_service_server::FulfillmentServiceServer;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events and its consumer group.
pub const SERVICE: &str = "fulfillment-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// fulfillment-service, built and ready to run.
#[derive(Debug)]
pub struct App {
    service: Service,
    step_delay: Duration,
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    /// Waits `delay` before each automatic step (the default is none).
    pub fn with_step_delay(mut self, delay: Duration) -> Self {
        self.step_delay = delay;
        self
    }
}

impl Application for App {
    async fn build(config: Config) -> anyhow::Result<Self> {
        let step_delay = Duration::from_millis(orderflow_kit::config::var("FULFILLMENT_STEP_DELAY_MS", 0)?);
        Ok(Self { service: Service::start(config, &MIGRATIONS).await?, step_delay })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let steps = steps::Steps { topic: self.service.topics.name(Topic::Fulfillment), delay: self.step_delay };
        let scheduler = steps.clone().run(self.service.pool.clone(), shutdown.clone());
        let consumer = self.service.consumer(&[Topic::Inventory], steps)?;
        let api = FulfillmentServiceServer::new(api::FulfillmentApi::new(&self.service));
        let workers = vec![Box::pin(consumer.run(shutdown.clone())) as _, Box::pin(scheduler) as _];
        self.service
            .serve(
                FulfillmentServiceServer::<api::FulfillmentApi>::NAME,
                |router| router.add_service(api),
                workers,
                shutdown,
            )
            .await
    }
}
