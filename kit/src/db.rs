//! The service's own PostgreSQL database: pool and migrations (the kit's shared tables first,
//! then the service's own).

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use std::time::Duration;

static KIT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Waits until this process holds the session advisory lock `name` (trying each second), on
/// a connection of its own that holds it for as long as it lives: one holder per database and
/// name (the outbox relay's leader; a service's consumer).
pub async fn hold_lock(pool: &PgPool, name: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    let mut waiting = false;
    loop {
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if held {
            tracing::info!(lock = name, "lock taken");
            return Ok(conn);
        }
        if !waiting {
            tracing::info!(lock = name, "lock held by another instance; standing by");
            waiting = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

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
