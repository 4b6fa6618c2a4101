//! The policy table, the token file and the check of a call.

use super::*;
use tonic::{Code, Status};

const PLACE: &str = "/orderflow.order.v1.OrderService/PlaceOrder";
const POLICY: Policy = Policy {
    api: "orderflow.order.v1.OrderService",
    methods: &[("PlaceOrder", &[scope::ORDERS_WRITE]), ("GetOrder", &[scope::ORDERS_READ])],
    also: &[],
};

fn tokens() -> Tokens {
    let file = format!(
        "# name digest scopes\nshop {} orders:write,orders:read\n\nops {} *  # everything\n",
        digest("shop-secret"),
        digest("ops-secret")
    );
    Tokens::parse(&file).unwrap()
}

fn code(result: Result<Option<&Caller>, Status>) -> Code {
    result.map_or_else(|s| s.code(), |_| Code::Ok)
}

#[test]
fn a_second_api_of_the_server_has_its_own_scopes_and_unknown_ones_need_everything() {
    const SERVER: Policy = Policy {
        also: &[Policy {
            api: "orderflow.order.v1.WebhookService",
            methods: &[("ListWebhooks", &[scope::WEBHOOKS])],
            also: &[],
        }],
        ..POLICY
    };
    assert_eq!(SERVER.required_scopes("/orderflow.order.v1.WebhookService/ListWebhooks"), Some(&[scope::WEBHOOKS][..]));
    assert_eq!(SERVER.required_scopes(PLACE), Some(&[scope::ORDERS_WRITE][..]));
    assert_eq!(SERVER.required_scopes("/orderflow.other.v1.Api/Call"), Some(&[scope::ALL][..]));
    let tokens = tokens();
    let denied =
        tokens.authorize(&SERVER, "/orderflow.order.v1.WebhookService/ListWebhooks", Some(b"Bearer shop-secret"));
    assert_eq!(code(denied), Code::PermissionDenied);
}

#[test]
fn health_and_reflection_need_no_token_and_everything_else_does() {
    let tokens = tokens();
    assert_eq!(code(tokens.authorize(&POLICY, "/grpc.health.v1.Health/Check", None)), Code::Ok);
    assert_eq!(
        code(tokens.authorize(&POLICY, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", None)),
        Code::Ok
    );
    assert_eq!(code(tokens.authorize(&POLICY, PLACE, None)), Code::Unauthenticated);
    assert_eq!(code(tokens.authorize(&POLICY, "/some.Unknown/Method", None)), Code::Unauthenticated);
}

#[test]
fn bad_tokens_are_unauthenticated_and_missing_scopes_permission_denied() {
    let tokens = tokens();
    assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer shop-secret"))), Code::Ok);
    assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer nope"))), Code::Unauthenticated);
    assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Basic c2hvcA=="))), Code::Unauthenticated);
    assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(b"Bearer "))), Code::Unauthenticated);
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let header = format!("{scheme} shop-secret");
        assert_eq!(code(tokens.authorize(&POLICY, PLACE, Some(header.as_bytes()))), Code::Ok, "{scheme}");
    }
    let restock = "/orderflow.inventory.v1.InventoryService/Restock";
    let inventory = Policy {
        api: "orderflow.inventory.v1.InventoryService",
        methods: &[("Restock", &[scope::INVENTORY_WRITE])],
        also: &[],
    };
    let denied = tokens.authorize(&inventory, restock, Some(b"Bearer shop-secret")).unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("inventory:write"), "{}", denied.message());
    assert_eq!(code(tokens.authorize(&inventory, restock, Some(b"Bearer ops-secret"))), Code::Ok);
    assert_eq!(
        code(tokens.authorize(&POLICY, "/some.Unknown/Method", Some(b"Bearer shop-secret"))),
        Code::PermissionDenied
    );
}

#[test]
fn the_policy_gives_listed_methods_their_scopes_and_denies_everything_else_but_to_star() {
    assert_eq!(POLICY.required_scopes(PLACE), Some(&[scope::ORDERS_WRITE][..]));
    assert_eq!(POLICY.required_scopes("/orderflow.order.v1.OrderService/GetOrder"), Some(&[scope::ORDERS_READ][..]));
    assert_eq!(POLICY.required_scopes("/orderflow.other.v1.Other/GetOrder"), Some(&[scope::ALL][..]));
    let unlisted = "/orderflow.order.v1.OrderService/ListOrders";
    assert_eq!(POLICY.required_scopes(unlisted), Some(&[scope::ALL][..]), "a method not listed: only *");
    assert_eq!(POLICY.required_scopes("/grpc.health.v1.Health/Watch"), None);
}

#[test]
fn a_token_file_with_mistakes_names_the_line() {
    assert_eq!(Tokens::parse("shop abc orders:read").unwrap_err().line, 1);
    let unknown = Tokens::parse(&format!("\nshop {} orders:delete", digest("x"))).unwrap_err();
    assert_eq!(unknown.line, 2);
    assert!(unknown.reason.contains("orders:delete"));
    assert!(Tokens::parse(&format!("a {0} *\nb {0} *", digest("x"))).is_err(), "duplicate token");
    assert!(Tokens::parse("only-two fields").is_err());
    for bad in ["customer=", "customer", "tenant=acme", &format!("customer={}", "c".repeat(65))] {
        let line = format!("shop {} orders:read {bad}", digest("x"));
        assert!(Tokens::parse(&line).is_err(), "{bad}");
    }
}

#[test]
fn a_token_may_be_bound_to_a_customer_or_a_carrier() {
    let file = format!(
        "ada {} orders:write,orders:read customer=c-ada\ndpd {} carrier carrier=DPD\n",
        digest("ada-secret"),
        digest("dpd-secret")
    );
    let tokens = Tokens::parse(&file).unwrap();
    let ada = tokens.authorize(&POLICY, PLACE, Some(b"Bearer ada-secret")).unwrap().unwrap();
    assert_eq!(ada.binding, Some(Binding::Customer("c-ada".into())));
    let mut request = tonic::Request::new(());
    request.extensions_mut().insert(ada.clone());
    assert_eq!((bound_customer(&request), bound_carrier(&request)), (Some("c-ada"), None));
    const SCANS: Policy = Policy { api: "a.B", methods: &[("Scan", &[scope::CARRIER])], also: &[] };
    let dpd = tokens.authorize(&SCANS, "/a.B/Scan", Some(b"Bearer dpd-secret")).unwrap().unwrap().clone();
    let mut request = tonic::Request::new(());
    request.extensions_mut().insert(dpd);
    assert_eq!((bound_customer(&request), bound_carrier(&request)), (None, Some("DPD")));
    assert_eq!(bound_customer(&tonic::Request::new(())), None, "no token, no binding");
}
