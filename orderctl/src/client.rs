//! The way in to the services: their addresses, and a gRPC channel to each that sends the API
//! token with every call (over TLS for an `https://` address, verified against
//! `ORDERFLOW_CA_FILE`: `orderflow_kit::tls`).

use anyhow::Context;
use clap::Args;
use orderflow_proto::client::{Authorized, Bearer};
use orderflow_proto::fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::webhook_service_client::WebhookServiceClient;
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use tonic::service::interceptor::InterceptedService;

/// Where the four services listen.
#[derive(Debug, Args)]
pub struct Addrs {
    /// order-service address.
    #[arg(long, env = "ORDER_ADDR", default_value_t = local(orderflow_proto::order::v1::DEFAULT_PORT), global = true)]
    pub order_addr: String,
    /// inventory-service address.
    #[arg(long, env = "INVENTORY_ADDR", default_value_t = local(orderflow_proto::inventory::v1::DEFAULT_PORT), global = true)]
    pub inventory_addr: String,
    /// fulfillment-service address.
    #[arg(long, env = "FULFILLMENT_ADDR", default_value_t = local(orderflow_proto::fulfillment::v1::DEFAULT_PORT), global = true)]
    pub fulfillment_addr: String,
    /// shipping-service address.
    #[arg(long, env = "SHIPPING_ADDR", default_value_t = local(orderflow_proto::shipping::v1::DEFAULT_PORT), global = true)]
    pub shipping_addr: String,
}

/// A service on this machine, on `port`.
fn local(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl Addrs {
    /// Each service's name and address.
    pub fn services(&self) -> [(&'static str, &str); 4] {
        [
            ("order-service", self.order_addr.as_str()),
            ("inventory-service", self.inventory_addr.as_str()),
            ("fulfillment-service", self.fulfillment_addr.as_str()),
            ("shipping-service", self.shipping_addr.as_str()),
        ]
    }

    pub async fn orders(&self, token: &Bearer) -> anyhow::Result<OrderServiceClient<Authorized>> {
        Ok(OrderServiceClient::new(connect(&self.order_addr, token).await?))
    }

    pub async fn webhooks(&self, token: &Bearer) -> anyhow::Result<WebhookServiceClient<Authorized>> {
        Ok(WebhookServiceClient::new(connect(&self.order_addr, token).await?))
    }

    pub async fn inventory(&self, token: &Bearer) -> anyhow::Result<InventoryServiceClient<Authorized>> {
        Ok(InventoryServiceClient::new(connect(&self.inventory_addr, token).await?))
    }

    pub async fn fulfillment(&self, token: &Bearer) -> anyhow::Result<FulfillmentServiceClient<Authorized>> {
        Ok(FulfillmentServiceClient::new(connect(&self.fulfillment_addr, token).await?))
    }

    pub async fn shipping(&self, token: &Bearer) -> anyhow::Result<ShippingServiceClient<Authorized>> {
        Ok(ShippingServiceClient::new(connect(&self.shipping_addr, token).await?))
    }

    /// The clients that drive orders: order-service, and inventory-service to stock the products.
    pub async fn shop(
        &self,
        token: &Bearer,
    ) -> anyhow::Result<(OrderServiceClient<Authorized>, InventoryServiceClient<Authorized>)> {
        let orders = self.orders(token).await?;
        Ok((orders, self.inventory(token).await?))
    }
}

/// A channel to `addr` that sends `token` with every call.
pub async fn connect(addr: &str, token: &Bearer) -> anyhow::Result<Authorized> {
    let channel =
        orderflow_kit::tls::endpoint(addr)?.connect().await.with_context(|| format!("cannot reach {addr}"))?;
    Ok(InterceptedService::new(channel, token.clone()))
}

/// The API token of `--token` / `ORDERFLOW_TOKEN`, which only the gRPC commands need.
pub fn bearer(token: Option<&str>) -> anyhow::Result<Bearer> {
    let token = token.filter(|t| !t.trim().is_empty()).context(
        "no API token: set ORDERFLOW_TOKEN or pass --token (scripts/up.sh prints where its development tokens are)",
    )?;
    Bearer::new(token).context("the API token must be printable ASCII")
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn a_missing_or_blank_token_says_where_to_get_one() {
        for token in [None, Some(""), Some("  ")] {
            let error = bearer(token).unwrap_err().to_string();
            assert!(error.contains("ORDERFLOW_TOKEN"), "{error}");
        }
        assert!(bearer(Some("dev-token")).is_ok());
    }
}
