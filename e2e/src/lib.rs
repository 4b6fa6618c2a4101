//! The stack the end-to-end tests in `tests/` run against.
//!
//! Starts the four services in-process on port 0, each with a fresh database of its own and
//! all on a random topic namespace, against the broker and PostgreSQL from scripts/test.sh.

mod fulfillment;

use orderflow_kit::auth::jwt::JwtVerifier;
use orderflow_kit::testing;
use orderflow_kit::tls::ClientTls;
use orderflow_kit::tls::server::ServerTlsFiles;
use orderflow_kit::tls::test_pki::Pki;
use orderflow_kit::{App, Config, Wiring};
use orderflow_proto::client::{Authorized, Bearer};
use orderflow_proto::common::v1::{Address, Customer, OrderLine};
use orderflow_proto::fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{GetOrderRequest, Order, OrderStatus, PaymentStatus, PlaceOrderRequest};
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The clients carry the test admin token; `order_channel` carries none.
pub struct Stack {
    pub orders: OrderServiceClient<Authorized>,
    pub inventory: InventoryServiceClient<Authorized>,
    pub fulfillment: FulfillmentServiceClient<Authorized>,
    pub shipping: ShippingServiceClient<Authorized>,
    pub order_channel: Channel,
    /// shipping-service's channel, with no token.
    pub shipping_channel: Channel,
    /// The topic namespace of this stack.
    pub namespace: String,
    /// order-service's database.
    pub order_database: String,
    /// Every service's database: (service, URL).
    pub databases: Vec<(&'static str, String)>,
    /// order-service's link to its database, when started with one.
    pub order_database_link: Option<Link>,
    /// order-service's link to the payment gateway, when started with one.
    pub gateway_link: Option<Link>,
    /// The development payment gateway's URL (`GET {gateway}/v1/ledger`).
    pub gateway: String,
    /// order-service's address as clients reach it (`https://localhost:<port>` under TLS).
    pub order_addr: String,
    shutdown: CancellationToken,
    services: TaskTracker,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The address a client reaches `addr` by: https and the certificate's name under TLS.
fn url(addr: SocketAddr, tls: Option<&ClientTls>) -> String {
    match tls {
        Some(_) => format!("https://localhost:{}", addr.port()),
        None => format!("http://{addr}"),
    }
}

async fn start<W: Wiring>(
    app: App<W>,
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Channel {
    let token = shutdown.clone();
    tasks.spawn(async move { app.run_until_stopped(token).await.expect("service stopped with an error") });
    let endpoint = tls.cloned().unwrap_or_default().endpoint(&url(addr, tls)).unwrap();
    endpoint.connect().await.unwrap()
}

/// `channel` sending `token` with every call.
pub fn with_token(channel: Channel, token: &str) -> Authorized {
    InterceptedService::new(channel, Bearer::new(token).expect("an ASCII token"))
}

fn admin(channel: Channel) -> Authorized {
    with_token(channel, testing::ADMIN_TOKEN)
}

async fn config(service: &'static str, namespace: &str) -> Config {
    testing::config(service, testing::fresh_database().await, namespace)
}

/// A TCP link a test can cut and restore: it takes a dependency away from one service.
pub struct Link {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
}

impl Link {
    /// Forwards connections on a free port to `target` while open.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, watching) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut open = watching.clone();
                if !*open.borrow() {
                    continue; // refused: dropped at once
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = open.wait_for(|open| !*open) => {} // cut: both ends dropped
                    }
                });
            }
        });
        Self { addr, open }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

/// The development payment gateway (`orderctl gateway serve`'s) on a port of its own, until
/// `shutdown`; its address.
async fn start_gateway(shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stopped = shutdown.clone().cancelled_owned();
    tokio::spawn(async move {
        axum::serve(listener, order_service::gateway_simulator::router(None).unwrap())
            .with_graceful_shutdown(stopped)
            .await
    });
    addr
}

/// `url` with its `host:port` replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme_user, rest) = url.split_once('@').expect("a database URL with user@host");
    let (_, path) = rest.split_once('/').expect("a database URL with a database");
    format!("{scheme_user}@{addr}/{path}")
}

fn host_of(url: &str) -> SocketAddr {
    let rest = url.split_once('@').expect("user@host").1;
    rest.split_once('/').expect("/database").0.parse().expect("host:port as an IP address")
}

/// How a test wants the stack.
#[derive(Default)]
struct Options {
    fulfillment: Option<fulfillment_service::Fulfillment>,
    shipping: Option<shipping_service::Shipping>,
    inventory: Option<inventory_service::Inventory>,
    metrics: Option<SocketAddr>,
    order_database_link: bool,
    gateway_link: bool,
    /// Every service's gRPC on TLS with these certificates (the clients trust its CA).
    tls: Option<Pki>,
    /// JWTs accepted besides the token file.
    jwt: Option<Arc<JwtVerifier>>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// With fulfillment's own settings given (manual mode, a step delay).
    pub async fn start_with_fulfillment(fulfillment: fulfillment_service::Fulfillment) -> Self {
        Self::start_with(Options { fulfillment: Some(fulfillment), ..Options::default() }).await
    }

    /// With inventory's own settings given (how long a backorder is held).
    pub async fn start_with_inventory(inventory: inventory_service::Inventory) -> Self {
        Self::start_with(Options { inventory: Some(inventory), ..Options::default() }).await
    }

    /// With shipping's own settings given (manual pick-up, a courier's delay).
    pub async fn start_with_shipping(shipping: shipping_service::Shipping) -> Self {
        Self::start_with(Options { shipping: Some(shipping), ..Options::default() }).await
    }

    /// With Prometheus metrics served on `addr` (one exporter per process: the services share it).
    pub async fn start_with_metrics(addr: SocketAddr) -> Self {
        Self::start_with(Options { metrics: Some(addr), ..Options::default() }).await
    }

    /// With order-service reaching its database through a [`Link`] the test can cut.
    pub async fn start_with_order_database_link() -> Self {
        Self::start_with(Options { order_database_link: true, ..Options::default() }).await
    }

    /// With order-service reaching the payment gateway through a [`Link`] the test can cut, and
    /// fulfillment's own settings given.
    pub async fn start_with_gateway_link(fulfillment: fulfillment_service::Fulfillment) -> Self {
        Self::start_with(Options { gateway_link: true, fulfillment: Some(fulfillment), ..Options::default() }).await
    }

    /// With every service's gRPC on TLS with `pki`'s server certificate (for localhost); the
    /// stack's clients trust `pki`'s CA.
    pub async fn start_with_tls(pki: Pki) -> Self {
        Self::start_with(Options { tls: Some(pki), ..Options::default() }).await
    }

    /// With JWTs verified by `jwt` accepted besides the token file.
    pub async fn start_with_jwt(jwt: Arc<JwtVerifier>) -> Self {
        Self::start_with(Options { jwt: Some(jwt), ..Options::default() }).await
    }

    /// The payment gateway's ledger, by authorization key (the order id).
    pub async fn ledger(&self) -> std::collections::HashMap<String, order_service::gateway_api::Entry> {
        let body = reqwest::get(format!("{}/v1/ledger", self.gateway)).await.unwrap().text().await.unwrap();
        let ledger: order_service::gateway_api::Ledger = serde_json::from_str(&body).unwrap();
        ledger.authorizations.into_iter().map(|e| (e.authorization_key.clone(), e)).collect()
    }

    async fn start_with(options: Options) -> Self {
        let Options { fulfillment, shipping, inventory, metrics, order_database_link, gateway_link, tls, jwt } =
            options;
        orderflow_kit::telemetry::init("e2e");
        let namespace = testing::random_namespace();
        let shutdown = CancellationToken::new();
        let mut order_config = config(order_service::SERVICE, &namespace).await;
        order_config.metrics_addr = metrics;
        let link =
            if order_database_link { Some(Link::start(host_of(&order_config.database_url)).await) } else { None };
        if let Some(link) = &link {
            order_config.database_url = through(&order_config.database_url, link.addr);
        }
        let order_database = order_config.database_url.clone();
        let inventory_config = config(inventory_service::SERVICE, &namespace).await;
        let fulfillment_config = config(fulfillment_service::SERVICE, &namespace).await;
        let shipping_config = config(shipping_service::SERVICE, &namespace).await;
        let mut configs = [order_config, inventory_config, fulfillment_config, shipping_config];
        for config in &mut configs {
            config.tls = tls.as_ref().map(|pki| ServerTlsFiles {
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                client_ca: None,
            });
            config.credentials.jwt.clone_from(&jwt);
        }
        let client_tls = tls.map(|pki| ClientTls { ca_file: Some(pki.ca), identity: None });
        let client_tls = client_tls.as_ref();
        let databases = configs.iter().map(|c| (c.service, c.database_url.clone())).collect();
        let [order_config, inventory_config, fulfillment_config, shipping_config] = configs;
        let gateway = start_gateway(&shutdown).await;
        let gateway_link = if gateway_link { Some(Link::start(gateway).await) } else { None };
        let order_gateway = gateway_link.as_ref().map_or(gateway, |link| link.addr);
        let orders =
            <order_service::Orders as Wiring>::from_env().unwrap().with_gateway(&format!("http://{order_gateway}"));
        let order = order_service::App::build_with(order_config, orders).await.unwrap();
        let inventory = match inventory {
            Some(wiring) => inventory_service::App::build_with(inventory_config, wiring).await,
            None => inventory_service::App::build(inventory_config).await,
        }
        .unwrap();
        let fulfillment = match fulfillment {
            Some(wiring) => fulfillment_service::App::build_with(fulfillment_config, wiring).await,
            None => fulfillment_service::App::build(fulfillment_config).await,
        }
        .unwrap();
        let shipping = match shipping {
            Some(wiring) => shipping_service::App::build_with(shipping_config, wiring).await,
            None => shipping_service::App::build(shipping_config).await,
        }
        .unwrap();
        let (order_addr, inventory_addr) = (order.local_addr(), inventory.local_addr());
        let (fulfillment_addr, shipping_addr) = (fulfillment.local_addr(), shipping.local_addr());
        let services = TaskTracker::new();
        let order_channel = start(order, order_addr, client_tls, &shutdown, &services).await;
        let shipping_channel = start(shipping, shipping_addr, client_tls, &shutdown, &services).await;
        let inventory_channel = start(inventory, inventory_addr, client_tls, &shutdown, &services).await;
        let fulfillment_channel = start(fulfillment, fulfillment_addr, client_tls, &shutdown, &services).await;
        Self {
            orders: OrderServiceClient::new(admin(order_channel.clone())),
            inventory: InventoryServiceClient::new(admin(inventory_channel)),
            fulfillment: FulfillmentServiceClient::new(admin(fulfillment_channel)),
            shipping: ShippingServiceClient::new(admin(shipping_channel.clone())),
            shipping_channel,
            order_channel,
            namespace,
            order_database,
            databases,
            order_database_link: link,
            gateway: format!("http://{gateway}"),
            order_addr: url(order_addr, client_tls),
            gateway_link,
            shutdown,
            services,
        }
    }

    /// Stops the four services as a SIGTERM would and waits until all have returned; how long
    /// that took.
    pub async fn stop(&self) -> Duration {
        let started = std::time::Instant::now();
        self.shutdown.cancel();
        self.services.close();
        self.services.wait().await;
        started.elapsed()
    }

    pub async fn stock_product(&mut self, sku: &str, bin: &str, grams: u32, quantity: i64) {
        let product = UpsertProductRequest {
            sku: sku.into(),
            name: format!("product {sku}"),
            bin_location: bin.into(),
            weight_grams: grams,
            low_stock_threshold: 1,
        };
        self.inventory.upsert_product(product).await.unwrap();
        self.inventory.restock(RestockRequest { sku: sku.into(), quantity }).await.unwrap();
    }

    /// Places an order for `customer_id` (one MUG) as a caller in a trace of its own; the
    /// order id and the caller's span.
    pub async fn place_traced(&mut self, customer_id: &str) -> (String, orderflow_kit::trace::TraceParent) {
        let caller = orderflow_kit::trace::TraceParent::new_root();
        let mut request = tonic::Request::new(order_request(customer_id, &[("MUG", 1)]));
        request.metadata_mut().insert("traceparent", caller.to_string().parse().unwrap());
        let order = self.orders.place_order(request).await.unwrap().into_inner().order.unwrap();
        (order.order_id, caller)
    }

    /// Polls GetOrder until the order reaches `status`.
    pub async fn wait_for_status(&self, order_id: &str, status: OrderStatus) -> Order {
        self.wait_for_order(order_id, status.as_str_name(), |order| order.status == status as i32).await
    }

    /// Polls GetOrder until the order's payment is `status` (a capture follows Shipped, a void
    /// a cancel or a rejection, each a moment later).
    pub async fn wait_for_payment(&self, order_id: &str, status: PaymentStatus) -> Order {
        self.wait_for_order(order_id, status.as_str_name(), |order| order.payment_status == status as i32).await
    }

    async fn wait_for_order(&self, order_id: &str, what: &str, done: impl Fn(&Order) -> bool) -> Order {
        let client = self.orders.clone();
        let done = &done;
        testing::wait_until(&format!("order {order_id} is {what}"), Duration::from_secs(60), || {
            let mut client = client.clone();
            let order_id = order_id.to_owned();
            async move {
                let order = client.get_order(GetOrderRequest { order_id }).await.ok()?.into_inner().order?;
                done(&order).then_some(order)
            }
        })
        .await
    }
}

pub fn order_request(customer_id: &str, lines: &[(&str, i32)]) -> PlaceOrderRequest {
    PlaceOrderRequest {
        idempotency_key: String::new(),
        customer: Some(Customer {
            id: customer_id.into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
        }),
        lines: lines
            .iter()
            .map(|(sku, quantity)| OrderLine { sku: (*sku).into(), quantity: *quantity, unit_price: None })
            .collect(),
        shipping_address: Some(Address {
            name: "Ada Lovelace".into(),
            line1: "12 Analytical Row".into(),
            line2: String::new(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        }),
        payment_reference: "pay-1".into(),
        service_level: 0,
        allow_backorder: false,
    }
}

/// The timeline of an order that shipped and whose payment was captured.
pub use orderflow_kit::envelope::SHIPPED_FLOW as SHIPPED_AND_CAPTURED;

pub fn event_types(order: &Order) -> Vec<&str> {
    order.timeline.iter().map(|e| e.event_type.as_str()).collect()
}
