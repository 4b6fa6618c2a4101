//! fulfillment-service binary: see the crate docs.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orderflow_kit::run_main::<fulfillment_service::App>(fulfillment_service::SERVICE, 50053).await
}
