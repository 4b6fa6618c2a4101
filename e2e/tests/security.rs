//! Security from outside: the happy path with every service's gRPC on TLS, plaintext and
//! wrong-CA clients refused; JWTs from an identity provider, checked for expiry, audience and
//! key, and bound to a customer or a carrier as token file entries are.

use orderflow_e2e::{SHIPPED_AND_CAPTURED, Stack, event_types, order_request, with_token};
use orderflow_kit::auth::test_issuer::TestIssuer;
use orderflow_kit::tls::ClientTls;
use orderflow_kit::tls::test_pki::pki;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{GetOrderRequest, OrderStatus, PaymentStatus};
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use orderflow_proto::shipping::v1::{RecordTrackingEventRequest, ShipmentStatus};
use serde_json::json;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_an_order_ships_and_clients_without_the_ca_are_refused() {
    let ours = pki("e2e", &["localhost"]);
    let mut stack = Stack::start_with_tls(ours.clone()).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let placed = stack.orders.place_order(order_request("c-tls", &[("MUG", 1)])).await.unwrap().into_inner();
    let order = stack.wait_for_payment(&placed.order.unwrap().order_id, PaymentStatus::Captured).await;
    assert_eq!(event_types(&order), SHIPPED_AND_CAPTURED);

    let order_id = order.order_id.clone();
    let reaches = |tls: ClientTls, addr: String| {
        let order_id = order_id.clone();
        async move {
            let endpoint = tls.endpoint(&addr).unwrap().connect_timeout(Duration::from_secs(5));
            let Ok(channel) = endpoint.connect().await else { return false };
            let mut client = OrderServiceClient::new(with_token(channel, orderflow_kit::testing::ADMIN_TOKEN));
            client.get_order(GetOrderRequest { order_id }).await.is_ok()
        }
    };
    let trusting = ClientTls { ca_file: Some(ours.ca.clone()), identity: None };
    assert!(reaches(trusting, stack.order_addr.clone()).await);
    let theirs = pki("e2e-other", &["localhost"]);
    let wrong_ca = ClientTls { ca_file: Some(theirs.ca), identity: None };
    assert!(!reaches(wrong_ca, stack.order_addr.clone()).await, "a client trusting another CA");
    let plaintext = stack.order_addr.replace("https://", "http://");
    assert!(!reaches(ClientTls::default(), plaintext).await, "a plaintext client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_checked_and_bound_to_their_customer_or_carrier() {
    let issuer = TestIssuer::new("e2e-key", 11);
    let mut stack = Stack::start_with_jwt(issuer.verifier()).await;
    stack.stock_product("MUG", "A-01", 350, 20).await;
    let client = |token: &str| OrderServiceClient::new(with_token(stack.order_channel.clone(), token));
    let shop = "orders:read orders:write";
    let mut ada = client(&issuer.token("ada", shop, json!({"customer_id": "c-ada"})));
    let mut bob = client(&issuer.token("bob", shop, json!({"customer_id": "c-bob"})));

    let own = ada.place_order(order_request("c-ada", &[("MUG", 1)])).await.unwrap().into_inner().order.unwrap();
    let get = |order_id: &str| GetOrderRequest { order_id: order_id.into() };
    ada.get_order(get(&own.order_id)).await.unwrap();
    let hidden = bob.get_order(get(&own.order_id)).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "another customer's order does not exist for it");
    let refused = bob.place_order(order_request("c-ada", &[("MUG", 1)])).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut reader = client(&issuer.token("reader", "orders:read", json!({})));
    assert_eq!(
        reader.place_order(order_request("c-r", &[("MUG", 1)])).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let now = chrono::Utc::now().timestamp();
    let stranger = TestIssuer::new("e2e-key", 12); // the same key id, another key
    for (why, token) in [
        ("expired", issuer.token("ada", shop, json!({"exp": now - 300}))),
        ("another audience", issuer.token("ada", shop, json!({"aud": "another-system"}))),
        ("an unknown key", issuer.sign_as("rotated-away", &issuer.claims("ada", shop, json!({})))),
        ("a key not the provider's", stranger.token("ada", shop, json!({}))),
    ] {
        let status = client(&token).get_order(get(&own.order_id)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{why}: {}", status.message());
    }

    // A carrier's JWT scans its parcels only: a parcel to France goes with DHL.
    let mut abroad = order_request("c-fr", &[("MUG", 1)]);
    abroad.shipping_address.as_mut().unwrap().country = "FR".into();
    let abroad = stack.orders.place_order(abroad).await.unwrap().into_inner().order.unwrap();
    let abroad = stack.wait_for_status(&abroad.order_id, OrderStatus::Shipped).await;
    assert_eq!(abroad.carrier, "DHL");
    let carrier = |name: &str| issuer.token(&format!("{name}-scanner"), "carrier", json!({"carrier": name}));
    let scan = RecordTrackingEventRequest {
        tracking_number: abroad.tracking_number.clone(),
        scan_id: "jwt-scan".into(),
        status: ShipmentStatus::InTransit as i32,
        ..Default::default()
    };
    let mut dpd = ShippingServiceClient::new(with_token(stack.shipping_channel.clone(), &carrier("DPD")));
    assert_eq!(dpd.record_tracking_event(scan.clone()).await.unwrap_err().code(), Code::NotFound);
    let mut dhl = ShippingServiceClient::new(with_token(stack.shipping_channel.clone(), &carrier("DHL")));
    dhl.record_tracking_event(scan).await.unwrap();
}
