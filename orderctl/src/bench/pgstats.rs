//! What the services' databases did over a step, from PostgreSQL's own statistics:
//! commits and rows inserted, updated and deleted (`pg_stat_database`), statements
//! (`pg_stat_statements`, when scripts/bench.sh loaded it), and who holds which partitions
//! (the consumers' leases in `pg_locks`, docs/adr/0010).

use sqlx::PgPool;
use std::collections::BTreeMap;

/// The databases the services own.
const DATABASES: [&str; 4] = ["orders", "inventory", "fulfillment", "shipping"];

/// Cumulative counters of one database.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counters {
    pub commits: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    /// `None` without pg_stat_statements.
    pub statements: Option<i64>,
}

/// The counters of every service database at one moment.
pub type Snapshot = BTreeMap<String, Counters>;

/// Reads the counters (through any database of the cluster: both views are cluster-wide).
pub async fn snapshot(pool: &PgPool) -> anyhow::Result<Snapshot> {
    // Statistics are flushed by each backend now and then; ask for the freshest view.
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(pool).await?;
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT datname::text, xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database \
         WHERE datname = ANY($1)",
    )
    .bind(&DATABASES[..])
    .fetch_all(pool)
    .await?;
    let statements: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT d.datname::text, sum(s.calls)::int8 FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
         WHERE d.datname = ANY($1) GROUP BY 1",
    )
    .bind(&DATABASES[..])
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().collect())
    .unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|(name, commits, inserted, updated, deleted)| {
            let statements = statements.get(&name).copied();
            (name, Counters { commits, inserted, updated, deleted, statements })
        })
        .collect())
}

/// Per order, per database: what happened between `before` and `after` divided by `orders`.
#[allow(clippy::cast_precision_loss)]
pub fn per_order(before: &Snapshot, after: &Snapshot, orders: u64) -> Vec<String> {
    let n = orders.max(1) as f64;
    after
        .iter()
        .map(|(name, a)| {
            let b = before.get(name).copied().unwrap_or_default();
            let per = |x: i64, y: i64| (x - y) as f64 / n;
            let statements = match (a.statements, b.statements) {
                (Some(x), Some(y)) => format!("{:.1} statements, ", per(x, y)),
                _ => String::new(),
            };
            format!(
                "{name}: {statements}{:.1} commits, {:.1} inserted, {:.1} updated, {:.1} deleted rows",
                per(a.commits, b.commits),
                per(a.inserted, b.inserted),
                per(a.updated, b.updated),
                per(a.deleted, b.deleted)
            )
        })
        .collect()
}

/// Partition numbers leased per instance, per database: e.g. `orders: 1+1`.
pub async fn leases(pool: &PgPool) -> anyhow::Result<String> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.datname::text, count(*) - 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND d.datname = ANY($1) \
         GROUP BY d.datname, l.pid ORDER BY 1, 2 DESC",
    )
    .bind(&DATABASES[..])
    .fetch_all(pool)
    .await?;
    let mut per_database: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (database, held) in rows {
        per_database.entry(database).or_default().push(held.to_string());
    }
    Ok(per_database.into_iter().map(|(d, held)| format!("{d}: {}", held.join("+"))).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_order_divides_the_difference() {
        let counters =
            |commits, statements| Counters { commits, inserted: 2 * commits, statements, ..Counters::default() };
        let before = Snapshot::from([("orders".to_owned(), counters(10, Some(100)))]);
        let after = Snapshot::from([("orders".to_owned(), counters(30, Some(300)))]);
        assert_eq!(
            per_order(&before, &after, 10),
            ["orders: 20.0 statements, 2.0 commits, 4.0 inserted, 0.0 updated, 0.0 deleted rows"]
        );
        let without = Snapshot::from([("orders".to_owned(), counters(30, None))]);
        assert!(!per_order(&before, &without, 10)[0].contains("statements"));
    }
}
