//! The `tracking_scans` table: every carrier scan of a parcel, once per scan id.

use orderflow_kit::envelope;
use orderflow_proto::common::v1::TrackingScan;
use sqlx::postgres::PgConnection;

/// Records `scan` (`current` if it is now the parcel's state); false if its scan id was
/// recorded before for this parcel (nothing is written then).
pub async fn insert_scan(conn: &mut PgConnection, scan: &TrackingScan, current: bool) -> Result<bool, sqlx::Error> {
    let occurred_at = scan.occurred_at.and_then(envelope::datetime).unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO tracking_scans (tracking_number, scan_id, status, location, note, occurred_at, current) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&scan.tracking_number)
    .bind(&scan.scan_id)
    .bind(&scan.status)
    .bind(&scan.location)
    .bind(&scan.note)
    .bind(occurred_at)
    .bind(current)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A parcel's scans in the order the carrier made them, each with whether it was current.
pub async fn scans(conn: &mut PgConnection, tracking_number: &str) -> Result<Vec<(TrackingScan, bool)>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, chrono::DateTime<chrono::Utc>, bool)> = sqlx::query_as(
        "SELECT scan_id, status, location, note, occurred_at, current FROM tracking_scans \
         WHERE tracking_number = $1 ORDER BY occurred_at, recorded_at",
    )
    .bind(tracking_number)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(scan_id, status, location, note, at, current)| {
            let scan = TrackingScan {
                tracking_number: tracking_number.to_owned(),
                scan_id,
                status,
                location,
                note,
                occurred_at: Some(envelope::timestamp(at)),
            };
            (scan, current)
        })
        .collect())
}
