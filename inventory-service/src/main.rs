//! inventory-service binary: see the crate docs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow_kit::run_main::<inventory_service::Inventory>().await
}
