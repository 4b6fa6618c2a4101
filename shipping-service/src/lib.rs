//! shipping-service: the last step of the flow. Packed becomes Shipped: a carrier chosen from
//! the rate table (`rates`), a label with a tracking number.

mod api;
mod domain;
mod rates;
mod ship;
mod store;

use orderflow_kit::topics::Topic;
use orderflow_kit::{Application, Config, Service};
use orderflow_proto::shipping::v1::shipping_service_server::ShippingServiceServer;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// The producer name on this service's events and its consumer group.
pub const SERVICE: &str = "shipping-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// shipping-service, built and ready to run.
#[derive(Debug)]
pub struct App {
    service: Service,
    origin_country: String,
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }
}

impl Application for App {
    async fn build(config: Config) -> anyhow::Result<Self> {
        let origin_country =
            orderflow_kit::config::var("SHIPPING_ORIGIN_COUNTRY", "DE".to_owned())?.to_ascii_uppercase();
        Ok(Self { service: Service::start(config, &MIGRATIONS).await?, origin_country })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ship =
            ship::OnPacked { topic: self.service.topics.name(Topic::Shipping), origin_country: self.origin_country };
        let consumer = self.service.consumer(&[Topic::Fulfillment], ship)?;
        let api = ShippingServiceServer::new(api::ShippingApi::new(&self.service));
        let workers = vec![Box::pin(consumer.run(shutdown.clone())) as _];
        self.service
            .serve(ShippingServiceServer::<api::ShippingApi>::NAME, |router| router.add_service(api), workers, shutdown)
            .await
    }
}
