//! A service whose background task dies (ends or panics) must not go on looking healthy: it
//! reports NOT_SERVING, stops and returns an error, so its supervisor restarts it. Against the
//! real PostgreSQL and broker.

use orderflow_kit::auth::Policy;
use orderflow_kit::{Service, testing};
use sqlx::migrate::Migrator;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;
const POLICY: Policy = Policy { api: "test.Api", methods: &[], also: &[] };

async fn dies_after_serving(panics: bool) {
    let config = testing::config("lifecycle-test", testing::fresh_database().await, &testing::random_namespace());
    let service = Service::start(config, &NO_MIGRATIONS).await.unwrap();
    let addr = service.local_addr();
    let (die, dies) = tokio::sync::oneshot::channel::<()>();
    let worker = Box::pin(async move {
        let _ = dies.await;
        assert!(!panics, "a worker's bug");
    });
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(service.serve(POLICY, |router| router, vec![worker], shutdown.clone()));

    let channel = testing::wait_until("the server accepts connections", Duration::from_secs(30), || async {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await;
    let mut health = HealthClient::new(channel);
    let request = || HealthCheckRequest { service: "test.Api".into() };
    testing::wait_until("it reports SERVING", Duration::from_secs(30), || {
        let mut health = health.clone();
        async move { (health.check(request()).await.ok()?.into_inner().status() == ServingStatus::Serving).then_some(()) }
    })
    .await;
    let mut watch = health.watch(request()).await.unwrap().into_inner();

    die.send(()).unwrap();
    let reported = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(update)) = watch.message().await {
            if update.status() == ServingStatus::NotServing {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(reported, Ok(true), "NOT_SERVING is reported before the service stops");
    let stopped = tokio::time::timeout(Duration::from_secs(15), serving).await.expect("it stops by itself");
    let error = stopped.unwrap().expect_err("a dead task is an error: the process exits non-zero");
    assert!(error.to_string().contains(if panics { "panicked" } else { "ended" }), "{error}");
    assert!(shutdown.is_cancelled(), "the service cancelled its own work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_stops_the_service_not_serving_with_an_error() {
    dies_after_serving(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_ends_early_stops_the_service_not_serving_with_an_error() {
    dies_after_serving(false).await;
}
