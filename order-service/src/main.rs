//! order-service binary: see the crate docs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow_kit::run_main::<order_service::Orders>().await
}
