//! shipping-service: the last mile (docs/shipments.md). A packed order that order-service
//! hands over (ShipmentRequested) is labelled (`ship`): a carrier chosen from the rate table, a
//! tracking number, a label and a delivery promise; the courier's collection makes it Shipped
//! (`pickup`), and carrier scans track it to Delivered or Returned (`track`). TrackShipment
//! shows the history (`track_shipment`).

mod api;
mod pickup;
mod ship;
mod store;
mod track;
mod track_shipment;
mod tracking_number;

use orderflow_kit::auth::{Policy, scope};
use orderflow_kit::delivery::Warehouse;
use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::shipping::v1::shipping_service_server::ShippingServiceServer;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Who may call what on ShippingService (the README's Authentication section).
pub const POLICY: Policy = Policy {
    api: <ShippingServiceServer<api::ShippingApi> as NamedService>::NAME,
    methods: &[
        ("ConfirmDelivery", &[scope::CARRIER]),
        ("ConfirmPickup", &[scope::CARRIER]),
        ("RecordTrackingEvent", &[scope::CARRIER]),
        ("GetShipment", &[scope::ORDERS_READ, scope::CARRIER]),
        ("TrackShipment", &[scope::ORDERS_READ, scope::CARRIER]),
        ("ListPickups", &[scope::ORDERS_READ, scope::CARRIER]),
    ],
    also: &[],
};

/// The producer name on this service's events.
pub const SERVICE: &str = "shipping-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// shipping-service's wiring: the shipping API, labelling packed parcels and, in automatic
/// pick-up mode with a delay, the simulated courier.
#[derive(Debug)]
pub struct Shipping {
    /// `WAREHOUSE_COUNTRY`, `WAREHOUSE_CUTOFF_UTC`.
    warehouse: Warehouse,
    pickup: PickupMode,
}

/// Who collects labels: `SHIPPING_PICKUP_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickupMode {
    /// A simulated courier collects each label this long after it is printed (at once for
    /// zero): `auto` with `SHIPPING_PICKUP_DELAY_MS`.
    Auto(Duration),
    /// Carriers confirm their collections (ConfirmPickup) or scan the parcels.
    Manual,
}

impl Shipping {
    /// Shipping with the default warehouse and the given pick-up mode.
    pub fn with_pickup(pickup: PickupMode) -> Self {
        Self { warehouse: Warehouse::default(), pickup }
    }
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
        let mode = orderflow_kit::config::var("SHIPPING_PICKUP_MODE", "auto".to_owned())?.to_ascii_lowercase();
        let delay = Duration::from_millis(orderflow_kit::config::var("SHIPPING_PICKUP_DELAY_MS", 0)?);
        let pickup = match mode.as_str() {
            "auto" => PickupMode::Auto(delay),
            "manual" => PickupMode::Manual,
            other => anyhow::bail!("SHIPPING_PICKUP_MODE={other:?} is invalid: use auto or manual"),
        };
        Ok(Self { warehouse: Warehouse::from_env()?, pickup })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let topic = service.topics.name(Topic::Shipping);
        let collect_at_once = self.pickup == PickupMode::Auto(Duration::ZERO);
        let ship = ship::OnShipmentRequested { topic: topic.clone(), warehouse: self.warehouse, collect_at_once };
        let consumer = service.consumer(&[Topic::Orders], ship)?;
        let api = ShippingServiceServer::new(api::ShippingApi::new(&service));
        let mut workers = vec![Box::pin(consumer.run(shutdown.clone())) as _];
        if let PickupMode::Auto(delay) = self.pickup
            && !delay.is_zero()
        {
            let courier = pickup::Courier { topic, delay };
            workers.push(Box::pin(courier.run(service.pool.clone(), shutdown.clone())) as _);
        }
        service.serve(POLICY, |router| router.add_service(api), workers, shutdown).await
    }
}
