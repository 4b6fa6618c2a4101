//! order-service: the first and last step of the flow. `PlaceOrder` validates an order and
//! emits OrderPlaced with its delivery promise; `payment` authorises it at the gateway (then
//! PaymentAuthorized sends it on to inventory), captures on Shipped and voids on a cancel or a
//! rejection; the projection consumes every later event
//! (StockReserved or StockRejected, Picked, Sorted, Packed, Labelled, Shipped, TrackingUpdated,
//! Delivered or Returned, StockReleased) into the order's
//! status and timeline and hands packed orders to shipping (ShipmentRequested); `CancelOrder`
//! emits OrderCancelled until then; `WatchOrder` streams an order's timeline as it grows.

mod api;
mod cancel_order;
mod gauges;
mod payment;
mod place_order;
mod project;
#[cfg(feature = "rebuild")]
pub mod rebuild;
mod request_shipment;
mod store;
mod watch_order;
mod webhooks;

use orderflow_kit::auth::{Policy, scope};
use orderflow_kit::config::var;
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::order::v1::order_service_server::OrderServiceServer;
use orderflow_proto::order::v1::webhook_service_server::WebhookServiceServer;
use sqlx::migrate::Migrator;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Who may call what on OrderService (the README's Authentication section).
pub const POLICY: Policy = Policy {
    api: <OrderServiceServer<api::OrderApi> as NamedService>::NAME,
    methods: &[
        ("PlaceOrder", &[scope::ORDERS_WRITE]),
        ("CancelOrder", &[scope::ORDERS_WRITE]),
        ("GetOrder", &[scope::ORDERS_READ]),
        ("ListOrders", &[scope::ORDERS_READ]),
        ("WatchOrder", &[scope::ORDERS_READ]),
    ],
    also: &[Policy {
        api: <WebhookServiceServer<webhooks::WebhookApi> as NamedService>::NAME,
        methods: &[
            ("CreateWebhook", &[scope::WEBHOOKS]),
            ("ListWebhooks", &[scope::WEBHOOKS]),
            ("DeleteWebhook", &[scope::WEBHOOKS]),
            ("ListWebhookDeliveries", &[scope::WEBHOOKS]),
            ("RedeliverWebhook", &[scope::WEBHOOKS]),
        ],
        also: &[],
    }],
};

/// Every webhook type an endpoint may subscribe to (docs/webhooks.md).
pub use webhooks::TYPES as WEBHOOK_TYPES;

/// The producer name on this service's events.
pub const SERVICE: &str = "order-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// The topics the order projection consumes.
pub const CONSUMED: [Topic; 3] = [Topic::Inventory, Topic::Fulfillment, Topic::Shipping];

/// order-service's wiring: the order API, the order projection and WatchOrder's fan-out.
#[derive(Debug)]
pub struct Orders {
    watch: watch_order::Limits,
    /// Where parcels leave from, for the delivery promise.
    warehouse: Warehouse,
    /// `PAYMENT_GATEWAY_URL`: the payment gateway every order's payment goes through.
    gateway: Option<String>,
}

impl Orders {
    /// The same wiring with its payments at the gateway at `url`.
    #[must_use]
    pub fn with_gateway(mut self, url: &str) -> Self {
        self.gateway = Some(url.to_owned());
        self
    }
}

pub use payment::api as gateway_api;
#[cfg(feature = "gateway")]
pub use payment::simulator as gateway_simulator;

/// order-service, built from its configuration.
pub type App = orderflow_kit::App<Orders>;

impl Wiring for Orders {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = orderflow_proto::order::v1::DEFAULT_PORT;
    const DATABASE: &'static str = "orders";

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        const MAX_WATCHERS: NonZeroUsize = NonZeroUsize::new(10_000).expect("not zero");
        const MAX_SECONDS: NonZeroU64 = NonZeroU64::new(3600).expect("not zero");
        let watch = watch_order::Limits {
            max_watchers: var("WATCH_MAX_WATCHERS", MAX_WATCHERS)?,
            max_stream: Duration::from_secs(var("WATCH_MAX_SECONDS", MAX_SECONDS)?.get()),
        };
        let gateway = std::env::var("PAYMENT_GATEWAY_URL").ok().filter(|url| !url.is_empty());
        Ok(Self { watch, warehouse: Warehouse::from_env()?, gateway })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let projection = project::Projection { orders_topic: service.topics.name(Topic::Orders) };
        let projection = service.consumer(&CONSUMED, projection)?;
        let watchers = watch_order::Watchers::new(self.watch);
        let fanout = watch_order::Fanout::new(service.consumer_pool.clone(), watchers.clone());
        let url = self.gateway.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "PAYMENT_GATEWAY_URL is not set: order-service authorises every order's payment at a gateway \
                 (`orderctl gateway serve` runs the development one; docs/payments.md)"
            )
        })?;
        let orders_topic = service.topics.name(Topic::Orders);
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let payments = payment::Worker {
            pool: service.pool.clone(),
            gateway: payment::Gateway::new(url)?,
            topic: orders_topic.clone(),
            wake: wake.clone(),
        };
        let (committer, commits) = place_order::committer(service.pool.clone(), orders_topic, wake);
        let api = OrderServiceServer::new(api::OrderApi::new(&service, watchers, committer, self.warehouse));
        let hooks = WebhookServiceServer::new(webhooks::WebhookApi { pool: service.pool.clone() });
        let sender = webhooks::Sender::new(service.pool.clone())?;
        let workers = vec![
            Box::pin(projection.run(shutdown.clone())) as _,
            Box::pin(fanout.run(shutdown.clone())) as _,
            Box::pin(commits.run(shutdown.clone())) as _,
            Box::pin(sender.run(shutdown.clone())) as _,
            Box::pin(payments.run(shutdown.clone())) as _,
            Box::pin(gauges::run(service.consumer_pool.clone(), shutdown.clone())) as _,
        ];
        service.serve(POLICY, |router| router.add_service(api).add_service(hooks), workers, shutdown).await
    }
}
