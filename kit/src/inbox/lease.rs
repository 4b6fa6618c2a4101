//! Which instance of a service consumes which partitions (docs/adr/0010): a PostgreSQL advisory
//! lock per partition *number* in the service's own database, held on one connection per
//! instance (its lease connection), and one lock per instance that says it is there. The
//! holder of number n consumes partition n of every topic of the group: an order's events are
//! keyed by its id, so with the same partition count they sit at the same number in every
//! topic, and one instance sees all of them (its dead letters and what waits behind them
//! included, docs/adr/0005). Every tick an instance
//! counts the instances present, gives back what it holds above its fair share and tries to
//! take free partitions up to it. A killed instance's connection closes with it, so its
//! partitions are free at once and taken at the others' next tick; a joining instance gets its
//! share as the others give theirs back. The offsets stored with every batch stay the fence:
//! two instances that ever overlap on a partition cannot both commit a batch of it.

use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::BTreeSet;

/// A partition number: the unit an instance leases.
pub type Slot = i32;

/// What one tick decided: partition numbers to give back and to try to take, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub release: Vec<Slot>,
    pub take: Vec<Slot>,
}

/// The share of `all` one of `members` instances holds: as even as it gets (some hold one more).
pub fn fair_share(all: usize, members: usize) -> usize {
    all.div_ceil(members.max(1))
}

/// Gives back the partitions held above the fair share (the last ones) and tries free ones up
/// to it, starting at `start` (each instance starts elsewhere, so they rarely contend). Pure.
pub fn plan(all: &[Slot], owned: &BTreeSet<Slot>, members: usize, start: usize) -> Plan {
    let share = fair_share(all.len(), members);
    // Partitions that no longer exist (a topic recreated) are given back too.
    let mut release: Vec<Slot> = owned.iter().filter(|p| !all.contains(p)).copied().collect();
    let kept: Vec<&Slot> = owned.iter().filter(|p| all.contains(p)).collect();
    release.extend(kept.iter().skip(share).map(|p| **p));
    let holding = kept.len().min(share);
    let take = if holding < share && !all.is_empty() {
        let offset = start % all.len();
        all[offset..].iter().chain(&all[..offset]).filter(|p| !owned.contains(*p)).copied().collect()
    } else {
        Vec::new()
    };
    Plan { release, take }
}

/// This instance's leases on its group's partitions.
pub struct Leases {
    pool: PgPool,
    group: String,
    /// The lease connection: every lock of this instance lives on it. `None`: to be opened.
    conn: Option<PgConnection>,
    /// This instance's key among the group's members.
    member: i32,
    owned: BTreeSet<Slot>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("group", &self.group).field("owned", &self.owned).finish_non_exhaustive()
    }
}

/// The two-key advisory lock space of a group's members or partitions: `hashtext` of the
/// group and the space's name.
const MEMBERS: &str = "members";
const PARTITIONS: &str = "partitions";

impl Leases {
    pub fn new(pool: PgPool, group: String) -> Self {
        Self { pool, group, conn: None, member: 0, owned: BTreeSet::new() }
    }

    /// The partition numbers this instance holds.
    pub fn owned(&self) -> &BTreeSet<Slot> {
        &self.owned
    }

    /// Forgets every lease (the lease connection is gone, and its locks with it).
    pub fn drop_all(&mut self) {
        self.conn = None;
        self.owned.clear();
    }

    /// One tick over `all` partition numbers of the group's topics; returns whether what this instance
    /// holds changed. An error means the lease connection is gone: every lease is dropped and
    /// the caller must stop consuming until the next tick succeeds.
    pub async fn tick(&mut self, all: &[Slot]) -> Result<bool, sqlx::Error> {
        let result = self.try_tick(all).await;
        if result.is_err() {
            self.drop_all();
        }
        result
    }

    async fn try_tick(&mut self, all: &[Slot]) -> Result<bool, sqlx::Error> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => {
                let mut conn = self.pool.acquire().await?.detach();
                self.member = join(&mut conn, &self.group).await?;
                self.owned.clear();
                self.conn.insert(conn)
            }
        };
        let members = members(conn, &self.group).await?;
        let start = usize::try_from(self.member.unsigned_abs()).unwrap_or(0);
        let plan = plan(all, &self.owned, members, start);
        let share = fair_share(all.len(), members);
        let mut changed = false;
        for partition in plan.release {
            unlock(conn, &self.group, &partition).await?;
            self.owned.remove(&partition);
            changed = true;
        }
        for partition in plan.take {
            if self.owned.len() >= share {
                break;
            }
            if try_lock(conn, &self.group, &partition).await? {
                self.owned.insert(partition);
                changed = true;
            }
        }
        if changed {
            tracing::info!(group = %self.group, members, partitions = self.owned.len(), of = all.len(), "partition leases changed");
        }
        Ok(changed)
    }

    /// Gives back every lease (shutdown), so the others take the partitions at once.
    pub async fn release_all(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
        self.owned.clear();
    }
}

/// Takes a free member key for this instance; returns it.
async fn join(conn: &mut PgConnection, group: &str) -> Result<i32, sqlx::Error> {
    loop {
        let member: i32 = rand_key();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1 || ' ' || $2), $3)")
            .bind(group)
            .bind(MEMBERS)
            .bind(member)
            .fetch_one(&mut *conn)
            .await?;
        if taken {
            return Ok(member);
        }
    }
}

/// How many instances of the group are present: the member locks granted in this database.
async fn members(conn: &mut PgConnection, group: &str) -> Result<usize, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = (hashtext($1 || ' ' || $2)::int8 & 4294967295)::oid",
    )
    .bind(group)
    .bind(MEMBERS)
    .fetch_one(conn)
    .await?;
    Ok(usize::try_from(count).unwrap_or(1).max(1))
}

async fn try_lock(conn: &mut PgConnection, group: &str, slot: &Slot) -> Result<bool, sqlx::Error> {
    partition_lock(conn, "pg_try_advisory_lock", group, *slot).await
}

async fn unlock(conn: &mut PgConnection, group: &str, slot: &Slot) -> Result<(), sqlx::Error> {
    partition_lock(conn, "pg_advisory_unlock", group, *slot).await.map(drop)
}

/// Calls the two-key advisory lock function `function` on partition number `slot`'s lock.
async fn partition_lock(conn: &mut PgConnection, function: &str, group: &str, slot: Slot) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT {function}(hashtext($1 || ' ' || $2), $3)"))
        .bind(group)
        .bind(PARTITIONS)
        .bind(slot)
        .fetch_one(conn)
        .await
}

/// A member key: any i32, from a fresh UUID's randomness.
fn rand_key() -> i32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(n: i32) -> Vec<Slot> {
        (0..n).collect()
    }

    fn owned(all: &[Slot], which: &[usize]) -> BTreeSet<Slot> {
        which.iter().map(|i| all[*i]).collect()
    }

    #[test]
    fn a_lone_instance_takes_everything() {
        let all = partitions(6);
        let plan = plan(&all, &BTreeSet::new(), 1, 0);
        assert_eq!((plan.release.len(), plan.take.len()), (0, 6));
    }

    #[test]
    fn a_holder_gives_back_what_is_above_its_share_when_another_joins() {
        let all = partitions(6);
        let plan = plan(&all, &owned(&all, &[0, 1, 2, 3, 4, 5]), 2, 0);
        assert_eq!(plan.release, all[3..].to_vec());
        assert!(plan.take.is_empty());
    }

    #[test]
    fn a_joiner_tries_the_free_partitions_from_its_own_start() {
        let all = partitions(6);
        let plan = plan(&all, &BTreeSet::new(), 2, 4);
        assert_eq!(plan.take[0], all[4], "starts at its own place");
        assert_eq!(plan.take.len(), 6, "tries all; the locks decide which are free");
    }

    #[test]
    fn shares_cover_every_partition_whatever_the_counts() {
        for all in 0..13 {
            for members in 1..6 {
                assert!(fair_share(all, members) * members >= all, "{all} partitions, {members} members");
            }
        }
        assert_eq!(fair_share(6, 4), 2);
        assert_eq!(fair_share(0, 3), 0);
    }

    #[test]
    fn vanished_partitions_are_given_back() {
        let all = partitions(2);
        let gone = 7;
        let held: BTreeSet<Slot> = [all[0], gone].into();
        let plan = plan(&all, &held, 1, 0);
        assert_eq!(plan.release, vec![gone]);
        assert_eq!(plan.take, vec![all[1]]);
    }
}
