//! Test support (feature `test-support`): one fresh database per test, a random topic
//! namespace per test, and `wait_until` instead of sleeps. The real PostgreSQL and broker are
//! started by `scripts/test.sh`, which exports `TEST_DATABASE_URL` and `KAFKA_BROKERS`.

use crate::auth::{Tokens, scope};
use crate::config::Config;
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is not set: run the tests through scripts/test.sh")
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    let (url, query) = admin.split_once('?').map_or((admin.as_str(), ""), |(url, query)| (url, query));
    let (base, _) = url.rsplit_once('/').expect("TEST_DATABASE_URL ends in /<database>[?<settings>]");
    if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") }
}

/// A fresh database (as [`fresh_database`]) with the kit's and `service`'s migrations applied.
pub async fn migrated_database(service: &sqlx::migrate::Migrator) -> sqlx::PgPool {
    let pool = crate::db::pool(&fresh_database().await, 5).expect("a pool for the test database");
    crate::db::migrate(&pool, service).await.expect("migrate the test database");
    pool
}

/// The test broker's address.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").expect("KAFKA_BROKERS is not set: run the tests through scripts/test.sh")
}

/// A namespace no other test uses, so tests share the broker without sharing topics.
pub fn random_namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A token with every scope, known to [`config`]'s services.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// A token that may only read orders.
pub const READER_TOKEN: &str = "test-reader-token";

/// A shop's token bound to customer [`CUSTOMER`]: its orders only.
pub const CUSTOMER_TOKEN: &str = "test-customer-token";
pub const CUSTOMER: &str = "c-bound";
/// A carrier's token bound to DPD: its parcels only.
pub const DPD_TOKEN: &str = "test-dpd-token";

/// The tokens of every test service.
pub fn tokens() -> Tokens {
    use crate::auth::Binding;
    Tokens::default()
        .with_token("test-admin", ADMIN_TOKEN, &[scope::ALL])
        .with_token("test-reader", READER_TOKEN, &[scope::ORDERS_READ])
        .with_bound_token(
            "test-customer",
            CUSTOMER_TOKEN,
            &[scope::ORDERS_WRITE, scope::ORDERS_READ],
            Some(Binding::Customer(CUSTOMER.into())),
        )
        .with_bound_token("test-dpd", DPD_TOKEN, &[scope::CARRIER], Some(Binding::Carrier("DPD".into())))
}

/// A configuration for `service` on a free port, against `database_url` and `namespace`.
pub fn config(service: &'static str, database_url: String, namespace: &str) -> Config {
    Config {
        service,
        database_url,
        database_max_connections: 5,
        database_consumer_connections: 5,
        kafka_brokers: brokers(),
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        topic_namespace: namespace.to_owned(),
        topic_partitions: 3,
        topic_replication: 1,
        consumer_batch_size: 64,
        outbox_batch_size: 256,
        kafka_linger: Duration::from_millis(0),
        kafka_fetch_wait: Duration::from_millis(5),
        metrics_addr: None,
        credentials: crate::auth::Credentials { tokens: crate::token_file::TokenStore::fixed(tokens()), jwt: None },
        tls: None,
    }
}

/// Polls `check` every 25 ms until it yields a value, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Writes a message to `topic` with a plain rdkafka producer, as any outside client could:
/// any key, headers and value bytes. Returns where it landed (partition, offset).
pub async fn send_from_outside(topic: &str, key: &[u8], headers: &[(&str, &[u8])], value: Option<&[u8]>) -> (i32, i64) {
    crate::events::send_raw(&brokers(), topic, key, headers, value).await.expect("the broker takes the message")
}

/// Asserts that every method of `policy`'s APIs (as the proto descriptor set lists them) is in
/// the policy's table, with a scope a dedicated token can hold, never only `*` (a method not
/// listed would need `*`: the table denies by default).
pub fn assert_dedicated_scopes(policy: &crate::auth::Policy) {
    for also in policy.also {
        assert_dedicated_scopes(also);
    }
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(orderflow_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut methods = 0;
    for file in &set.file {
        for service in &file.service {
            if format!("{}.{}", file.package(), service.name()) != policy.api {
                continue;
            }
            for method in &service.method {
                methods += 1;
                let path = format!("/{}/{}", policy.api, method.name());
                assert!(policy.methods.iter().any(|(name, _)| *name == method.name()), "{path} is not in the policy");
                let scopes = policy.required_scopes(&path).unwrap_or_default();
                assert!(!scopes.is_empty() && !scopes.contains(&crate::auth::scope::ALL), "{path} needs {scopes:?}");
            }
        }
    }
    assert!(methods > 0, "{} is not in the descriptor set", policy.api);
    for (method, _) in policy.methods {
        assert!(
            set.file.iter().flat_map(|f| &f.service).flat_map(|s| &s.method).any(|m| m.name() == *method),
            "the policy names {method}, which no API has"
        );
    }
}

/// Begins a transaction on `pool` that gives up waiting for a lock after 100 ms, so a test
/// observes that another transaction holds a row ([`lock_not_granted`]) without sleeping.
pub async fn impatient_transaction(pool: &sqlx::PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.expect("begin a transaction");
    sqlx::query("SET LOCAL lock_timeout = '100ms'").execute(&mut *tx).await.expect("set lock_timeout");
    tx
}

/// Whether `error` is PostgreSQL giving up waiting for a lock (`lock_timeout`, SQLSTATE 55P03).
pub fn lock_not_granted(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).as_deref() == Some("55P03")
}
