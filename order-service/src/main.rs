//! order-service binary: see the crate docs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow_kit::run_main::<order_service::App>(order_service::SERVICE, 50051).await
}
