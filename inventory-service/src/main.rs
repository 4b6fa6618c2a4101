//! inventory-service binary: see the crate docs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow_kit::run_main::<inventory_service::App>(inventory_service::SERVICE, 50052).await
}
