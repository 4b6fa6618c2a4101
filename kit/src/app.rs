//! The shape every service binary shares: config → telemetry → `App::build` →
//! `run_until_stopped`. A service supplies only its [`Wiring`]; [`Service`] holds what
//! `build` prepares (database, topics, listener) and runs the parts every service has (gRPC
//! server, outbox relay, health) next to the service's own workers.

use crate::auth::Policy;
use crate::config::Config;
use crate::inbox::{ConsumerSettings, EventHandler, InboxConsumer};
use crate::lag::Probe;
use crate::outbox::Relay;
use crate::tls::server::ReloadingAcceptor;
use crate::topics::{self, Topic, Topics};
use crate::{db, grpc, metrics, telemetry};
use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::Instrument;

/// What makes a service itself: its name, port, migrations, own settings and what it runs.
/// Everything else (building, serving, `main`) is [`App`]'s, written once.
pub trait Wiring: Sized + Send + 'static {
    /// The producer name on its events and part of its consumer group.
    const SERVICE: &'static str;
    /// The default gRPC port.
    const PORT: u16;
    /// The default database name (`DATABASE_URL` on 127.0.0.1:5432).
    const DATABASE: &'static str;

    fn migrations() -> &'static Migrator;

    /// Reads the service's own settings from the environment.
    fn from_env() -> anyhow::Result<Self>;

    /// Runs the service's consumers and API on `service` until `shutdown`
    /// (usually ending in [`Service::serve`]).
    fn run(self, service: Service, shutdown: CancellationToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A service application: built from its configuration, run until a shutdown signal.
#[derive(Debug)]
pub struct App<W> {
    service: Service,
    wiring: W,
}

impl<W: Wiring> App<W> {
    /// Prepares the database, the topics and the listener ([`Service::start`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, W::from_env()?).await
    }

    /// The same with the service's own settings given, not read from the environment.
    pub async fn build_with(config: Config, wiring: W) -> anyhow::Result<Self> {
        Ok(Self { service: Service::start(config, W::migrations()).await?, wiring })
    }

    /// The bound gRPC address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.wiring.run(self.service, shutdown).await
    }
}

/// The whole `main` of a service binary: config → telemetry → build → run until a signal.
pub async fn run_main<W: Wiring>() -> anyhow::Result<()> {
    let config = Config::from_env(W::SERVICE, W::PORT, W::DATABASE)?;
    telemetry::init(W::SERVICE);
    let span = tracing::info_span!("service", name = W::SERVICE);
    let app = App::<W>::build(config).instrument(span.clone()).await?;
    let stopped = app.run_until_stopped(shutdown_on_signal()).instrument(span).await;
    telemetry::flush();
    stopped
}

/// A token cancelled on SIGINT (Ctrl-C) or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

/// What every service has once built: its database (one pool for API calls, another for the
/// consumers, the relay and other background work, so neither can starve the other), its
/// topics and its gRPC listener.
#[derive(Debug)]
pub struct Service {
    pub config: Config,
    /// For gRPC handlers.
    pub pool: PgPool,
    /// For consumers, the outbox relay and background workers.
    pub consumer_pool: PgPool,
    pub topics: Topics,
    listener: TcpListener,
}

impl Service {
    /// Migrates the database, creates every topic of the flow and binds the gRPC address.
    pub async fn start(config: Config, migrations: &Migrator) -> anyhow::Result<Self> {
        let pool = db::pool(&config.database_url, config.database_max_connections)?;
        let consumer_pool = db::pool(&config.database_url, config.database_consumer_connections)?;
        db::migrate(&consumer_pool, migrations).await.context("migrating the database")?;
        let topics = Topics::new(&config.topic_namespace);
        let mut names = topics.all();
        names.push(topics.dead_letter(config.service));
        topics::ensure(&config.kafka_brokers, &names, config.topic_partitions, config.topic_replication)
            .await
            .context("creating topics")?;
        let listener =
            TcpListener::bind(config.grpc_addr).await.with_context(|| format!("binding {}", config.grpc_addr))?;
        Ok(Self { config, pool, consumer_pool, topics, listener })
    }

    /// The bound gRPC address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The service's consumer group ([`Topics::consumer_group`]).
    pub fn group(&self) -> String {
        self.topics.consumer_group(self.config.service)
    }

    /// An inbox consumer of `topics`, in this service's consumer group `<namespace>.<service>`
    /// (stacks that share a broker under different namespaces never share a group).
    pub fn consumer<H: EventHandler>(&self, topics: &[Topic], handler: H) -> anyhow::Result<InboxConsumer<H>> {
        let settings = ConsumerSettings {
            brokers: self.config.kafka_brokers.clone(),
            group: self.group(),
            topics: topics.iter().map(|t| self.topics.name(*t)).collect(),
            dead_letter_topic: self.topics.dead_letter(self.config.service),
            batch_size: self.config.consumer_batch_size,
            fetch_wait: self.config.kafka_fetch_wait,
        };
        Ok(InboxConsumer::new(settings, self.consumer_pool.clone(), handler)?)
    }

    /// Serves gRPC (health, reflection and the API `add_api` adds, `policy.api`, behind the
    /// token check of `policy`),
    /// runs the outbox relay, the health monitor and `workers`, until `shutdown`. Every one of
    /// those runs until `shutdown`: if one ends or panics before, the service reports
    /// NOT_SERVING, stops and returns an error (its supervisor restarts it).
    pub async fn serve(
        self,
        policy: Policy,
        add_api: impl FnOnce(grpc::ApiRouter) -> grpc::ApiRouter,
        workers: Vec<BoxFuture<'static, ()>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let api = policy.api;
        let (router, health) = grpc::router(self.config.service, self.config.credentials.clone(), policy)?;
        let relay = Relay::new(
            self.consumer_pool.clone(),
            &self.config.kafka_brokers,
            self.config.outbox_batch_size,
            self.config.kafka_linger,
        )?;
        let probe = Probe::new(&self.config.kafka_brokers)?;
        let mut tasks = JoinSet::new();
        tasks.spawn(relay.run(shutdown.clone()).in_current_span());
        let credentials = &self.config.credentials;
        tasks.spawn(Arc::clone(&credentials.tokens).reload_on_hangup(shutdown.clone()).in_current_span());
        if let Some(jwt) = &credentials.jwt {
            tasks.spawn(Arc::clone(jwt).refresh_periodically(shutdown.clone()).in_current_span());
        }
        let pools = [self.pool.clone(), self.consumer_pool.clone()];
        tasks.spawn(monitor_health(pools, probe.clone(), health.clone(), api, shutdown.clone()).in_current_span());
        if let Some(addr) = self.config.metrics_addr {
            metrics::install(self.config.service, addr)?;
            let (group, dead_letters) = (self.group(), self.topics.dead_letter(self.config.service));
            tasks.spawn(
                observe_backlog(self.consumer_pool.clone(), probe, group, dead_letters, shutdown.clone())
                    .in_current_span(),
            );
        }
        for worker in workers {
            tasks.spawn(worker.in_current_span());
        }
        tracing::info!(addr = %self.local_addr(), "serving gRPC");
        let tls = self.config.tls.clone().map(ReloadingAcceptor::new).transpose()?;
        if let Some(tls) = &tls {
            tasks.spawn(Arc::clone(tls).reload_on_change(shutdown.clone()).in_current_span());
        }
        let server = grpc::serve(add_api(router), self.listener, tls, shutdown.clone());
        tokio::pin!(server);
        // Open streams (WatchOrder, health watches) would hold a graceful stop up for good.
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::pin!(grace);
        let mut died = None;
        let served = loop {
            tokio::select! {
                served = &mut server => break served,
                () = &mut grace => {
                    tracing::warn!("calls still open {SHUTDOWN_GRACE:?} after the stop; closing them");
                    break Ok(());
                }
                Some(ended) = tasks.join_next(), if died.is_none() && !shutdown.is_cancelled() => {
                    let why = match ended {
                        Ok(()) => "a background task ended".to_owned(),
                        Err(error) if error.is_panic() => "a background task panicked".to_owned(),
                        Err(error) => format!("a background task failed: {error}"),
                    };
                    tracing::error!(%why, "stopping the service");
                    set_health(&health, api, ServingStatus::NotServing).await;
                    shutdown.cancel();
                    died = Some(why);
                }
            }
        };
        shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("workers did not stop within 5 s");
        }
        tracing::info!("stopped");
        served?;
        match died {
            Some(why) => Err(anyhow::anyhow!("{why}; the service stopped")),
            None => Ok(()),
        }
    }
}

/// How long calls still open when the service stops may go on before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Refreshes the backlog gauges (lag, outbox, dead letters, pool) every few seconds.
async fn observe_backlog(pool: PgPool, probe: Probe, group: String, dead_letters: String, shutdown: CancellationToken) {
    loop {
        match probe.report(&pool, &group, &dead_letters).await {
            Ok(report) => metrics::backlog(&report, &pool),
            Err(error) => tracing::debug!(%error, "backlog not measured"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Reports SERVING while the database (both pools) and the broker answer, NOT_SERVING
/// otherwise.
async fn monitor_health(
    pools: [PgPool; 2],
    probe: Probe,
    health: HealthReporter,
    api: &'static str,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let mut database = true;
        for pool in &pools {
            database &= tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(pool))
                .await
                .is_ok_and(|r| r.is_ok());
        }
        let broker = probe.reachable().await;
        let status = if database && broker { ServingStatus::Serving } else { ServingStatus::NotServing };
        if last != Some(status) {
            tracing::info!(database, broker, ?status, "health changed");
            set_health(&health, api, status).await;
            last = Some(status);
        }
        tokio::select! {
            () = shutdown.cancelled() => {
                // Whatever the last check found, a stopping service is not serving.
                set_health(&health, api, ServingStatus::NotServing).await;
                return;
            }
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn set_health(health: &HealthReporter, api: &str, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(api, status).await;
}
