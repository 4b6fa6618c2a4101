//! fulfillment-service: the warehouse steps of the flow. StockReserved starts a fulfillment;
//! automatic mode picks, sorts and packs it (Picked, Sorted, Packed), optionally with a delay
//! per step (`FULFILLMENT_STEP_DELAY_MS`); manual mode (`FULFILLMENT_MODE=manual`) waits for
//! warehouse staff to confirm each step (ListPickTasks, ConfirmPick, ConfirmSort, ConfirmPack).
//! OrderCancelled stops a fulfillment wherever it is before packing. `steps` takes the steps;
//! each step's decision is its own folder (`pick`, `sort`, `pack`) over `fulfillment`'s state.

mod api;
mod fulfillment;
mod pack;
mod pick;
mod sort;
mod steps;
mod store;

use orderflow_kit::auth::{Policy, scope};
use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::fulfillment::v1::fulfillment_service_server::FulfillmentServiceServer;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Who may call what on FulfillmentService (the README's Authentication section).
pub const POLICY: Policy = Policy {
    api: <FulfillmentServiceServer<api::FulfillmentApi> as NamedService>::NAME,
    methods: &[
        ("GetFulfillment", &[scope::WAREHOUSE]),
        ("ListPickTasks", &[scope::WAREHOUSE]),
        ("ConfirmPick", &[scope::WAREHOUSE]),
        ("ConfirmSort", &[scope::WAREHOUSE]),
        ("ConfirmPack", &[scope::WAREHOUSE]),
    ],
    also: &[],
};

/// The producer name on this service's events.
pub const SERVICE: &str = "fulfillment-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// fulfillment-service's wiring: the fulfillment API and the automatic warehouse steps.
#[derive(Debug)]
pub struct Fulfillment {
    /// `FULFILLMENT_STEP_DELAY_MS` (default 0): wait before each automatic step.
    step_delay: Duration,
    /// `FULFILLMENT_MODE` (`auto`, the default, or `manual`).
    manual: bool,
}

impl Fulfillment {
    /// Manual mode: warehouse staff confirm every step.
    pub fn manual() -> Self {
        Self { step_delay: Duration::ZERO, manual: true }
    }

    /// Automatic mode, waiting `step_delay` before each step.
    pub fn automatic(step_delay: Duration) -> Self {
        Self { step_delay, manual: false }
    }
}

/// fulfillment-service, built from its configuration.
pub type App = orderflow_kit::App<Fulfillment>;

impl Wiring for Fulfillment {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = orderflow_proto::fulfillment::v1::DEFAULT_PORT;
    const DATABASE: &'static str = "fulfillment";

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        let manual =
            match orderflow_kit::config::var("FULFILLMENT_MODE", "auto".to_owned())?.to_ascii_lowercase().as_str() {
                "auto" => false,
                "manual" => true,
                other => anyhow::bail!("FULFILLMENT_MODE={other:?} is invalid: use auto or manual"),
            };
        Ok(Self {
            step_delay: Duration::from_millis(orderflow_kit::config::var("FULFILLMENT_STEP_DELAY_MS", 0)?),
            manual,
        })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let topic = service.topics.name(Topic::Fulfillment);
        let steps = steps::Steps { topic, delay: self.step_delay, manual: self.manual };
        let api = FulfillmentServiceServer::new(api::FulfillmentApi::new(&service, steps.clone()));
        let mut workers = Vec::new();
        if steps.schedules() {
            workers.push(Box::pin(steps.clone().run(service.consumer_pool.clone(), shutdown.clone())) as _);
        }
        workers.push(Box::pin(service.consumer(&[Topic::Inventory, Topic::Orders], steps)?.run(shutdown.clone())) as _);
        service.serve(POLICY, |router| router.add_service(api), workers, shutdown).await
    }
}
