//! The service's own PostgreSQL database: pool and migrations (the kit's shared tables first,
//! then the service's own).

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use std::str::FromStr;
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

/// The longest one statement may run, and wait for a lock, on a pool's connections: a stuck
/// query or a held row lock fails (transiently, [`transient`]) instead of holding a
/// connection for good.
pub const STATEMENT_TIMEOUT: &str = "30s";
pub const LOCK_TIMEOUT: &str = "10s";

/// Opens a pool on `url`. Connections are made lazily; start-up needs the database (it
/// migrates first), and later outages show as NOT_SERVING and UNAVAILABLE until it is back.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .options([("statement_timeout", STATEMENT_TIMEOUT), ("lock_timeout", LOCK_TIMEOUT)]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
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

/// Whether a database error says "try again later" rather than "this cannot be done": the
/// database unreachable, a serialisation failure or deadlock (40), out of resources (53), a
/// lock or statement timeout (55P03, 57014), a system error (58). Anything else fails the same
/// way however often it is tried.
pub fn transient(error: &sqlx::Error) -> bool {
    unreachable(error)
        || matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
            c.starts_with("40") || c.starts_with("53") || c.starts_with("58") || c == "55P03" || c == "57014"
        }))
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
