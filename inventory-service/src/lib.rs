//! inventory-service: the second step of the flow. `reserve_stock` turns OrderPlaced into
//! StockReserved (every line, atomically) or StockRejected (none); `commit_stock` takes shipped
//! units off the shelf; `release_stock` gives a cancelled or unshippable order's reservation
//! back; `backorder` holds short orders that asked to wait until a restock serves them or the
//! hold expires; `low_stock` alerts once per crossing. The catalogue (UpsertProduct, Restock, GetStock)
//! keeps stock levels. `on_event` routes each consumed event to its step.

mod api;
mod backorder;
mod catalogue;
mod commit_stock;
mod low_stock;
mod on_event;
mod release_stock;
mod reserve_stock;
mod store;

use orderflow_kit::auth::{Policy, scope};
use orderflow_kit::config::Span;
use orderflow_kit::topics::Topic;
use orderflow_kit::{Service, Wiring};
use orderflow_proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;

/// Who may call what on InventoryService (the README's Authentication section).
pub const POLICY: Policy = Policy {
    api: <InventoryServiceServer<api::InventoryApi> as NamedService>::NAME,
    methods: &[
        ("UpsertProduct", &[scope::INVENTORY_WRITE]),
        ("Restock", &[scope::INVENTORY_WRITE]),
        ("GetStock", &[scope::INVENTORY_READ]),
        ("ListStock", &[scope::INVENTORY_READ]),
        ("ListLowStock", &[scope::INVENTORY_READ]),
        ("ListBackorders", &[scope::INVENTORY_READ]),
    ],
    also: &[],
};

/// The producer name on this service's events.
pub const SERVICE: &str = "inventory-service";

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// inventory-service's wiring: the inventory API, stock reservation and commitment, and the
/// backorders' expiry.
#[derive(Debug)]
pub struct Inventory {
    /// `BACKORDER_MAX_HOLD` (default 7d): how long a held order waits for a restock.
    max_hold: Duration,
}

impl Inventory {
    /// Holds expire after `max_hold`.
    pub fn with_max_hold(max_hold: Duration) -> Self {
        Self { max_hold }
    }
}

/// inventory-service, built from its configuration.
pub type App = orderflow_kit::App<Inventory>;

impl Wiring for Inventory {
    const SERVICE: &'static str = SERVICE;
    const PORT: u16 = orderflow_proto::inventory::v1::DEFAULT_PORT;
    const DATABASE: &'static str = "inventory";

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn from_env() -> anyhow::Result<Self> {
        let max_hold = orderflow_kit::config::var("BACKORDER_MAX_HOLD", Span(Duration::from_secs(7 * 24 * 3600)))?;
        Ok(Self { max_hold: max_hold.0 })
    }

    async fn run(self, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
        let topic = service.topics.name(Topic::Inventory);
        let reserve = reserve_stock::OnOrderPlaced::new(topic.clone(), self.max_hold);
        let consumer = service.consumer(&[Topic::Orders, Topic::Shipping], on_event::InventoryInbox { reserve })?;
        let api = InventoryServiceServer::new(api::InventoryApi::new(&service));
        let expiry = backorder::Expiry { topic, max_hold: self.max_hold };
        let workers = vec![
            Box::pin(consumer.run(shutdown.clone())) as _,
            Box::pin(expiry.run(service.pool.clone(), shutdown.clone())) as _,
        ];
        service.serve(POLICY, |router| router.add_service(api), workers, shutdown).await
    }
}

#[cfg(test)]
mod test_support {
    use orderflow_kit::testing;
    use sqlx::postgres::{PgPool, PgPoolOptions};

    /// A fresh, migrated database holding one product with `on_hand` units.
    pub async fn stocked(sku: &str, on_hand: i64, connections: u32) -> PgPool {
        let pool =
            PgPoolOptions::new().max_connections(connections).connect(&testing::fresh_database().await).await.unwrap();
        orderflow_kit::db::migrate(&pool, &crate::MIGRATIONS).await.unwrap();
        sqlx::query(
            "INSERT INTO products (sku, name, bin_location, weight_grams, on_hand) VALUES ($1, $1, 'A-1', 100, $2)",
        )
        .bind(sku)
        .bind(on_hand)
        .execute(&pool)
        .await
        .unwrap();
        pool
    }
}
