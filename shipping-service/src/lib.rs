//! shipping-service: the last step of the flow. A packed order that order-service hands over
//! (ShipmentRequested) becomes Shipped (`ship`): a carrier chosen from the rate table, a label
//! with a tracking number; a carrier's delivery scan (ConfirmDelivery) becomes Delivered
//! (`deliver`), and TrackShipment shows the history (`track_shipment`).

mod api;
mod deliver;
mod ship;
mod store;
mod track_shipment;
mod tracking_number;

use orderflow_kit::auth::{Policy, scope};
use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::shipping::v1::shipping_service_server::ShippingServiceServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Who may call what on ShippingService (the README's Authentication section).
pub const POLICY: Policy = Policy {
    api: <ShippingServiceServer<api::ShippingApi> as NamedService>::NAME,
    methods: &[("ConfirmDelivery", &[scope::CARRIER])],
    others: &[scope::ORDERS_READ, scope::CARRIER],
};

/// The producer name on this service's events.
pub const SERVICE: &str = "shipping-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// shipping-service's wiring: the shipping API and labelling packed parcels.
#[derive(Debug)]
pub struct Shipping {
    /// `SHIPPING_ORIGIN_COUNTRY` (default DE): where the warehouse is.
    origin_country: String,
}

/// shipping-service, built from its configuration.
pub type App = orderflow_kit::App<Shipping>;

impl Wiring for Shipping {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = orderflow_proto::shipping::v1::DEFAULT_PORT;
    const DATABASE: &'static str = "shipping";

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            origin_country: orderflow_kit::config::var("SHIPPING_ORIGIN_COUNTRY", "DE".to_owned())?
                .to_ascii_uppercase(),
        })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ship = ship::OnShipmentRequested {
            topic: service.topics.name(Topic::Shipping),
            origin_country: self.origin_country,
        };
        let consumer = service.consumer(&[Topic::Orders], ship)?;
        let api = ShippingServiceServer::new(api::ShippingApi::new(&service));
        let workers = vec![Box::pin(consumer.run(shutdown.clone())) as _];
        service.serve(POLICY, |router| router.add_service(api), workers, shutdown).await
    }
}
