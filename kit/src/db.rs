//! The service's own PostgreSQL database: pool and migrations (the kit's shared tables first,
//! then the service's own).

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

static KIT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Opens a pool on `url`. Connections are made lazily; start-up needs the database (it
/// migrates first), and later outages show as NOT_SERVING and UNAVAILABLE until it is back.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(5)).connect_lazy(url)
}

/// Applies the kit's migrations (outbox, inbox, consumer offsets) and then `service`'s.
/// Both sets share `_sqlx_migrations`, so each ignores the other's rows.
pub async fn migrate(pool: &PgPool, service: &Migrator) -> Result<(), MigrateError> {
    for source in [&KIT_MIGRATIONS, service] {
        let migrator = Migrator { migrations: source.migrations.clone(), ignore_missing: true, ..Migrator::DEFAULT };
        migrator.run(pool).await?;
    }
    Ok(())
}

/// Whether `error` says the database cannot be reached now (connection refused or lost, pool
/// exhausted, server shutting down): worth retrying later, and never the caller's fault.
pub fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}
