//! The shipment store against the real PostgreSQL (`TEST_DATABASE_URL`, one fresh database per
//! test): what an insert writes and the loads read back, one shipment per order and per
//! tracking number, the row locks, the pick-up manifest, saving an evolved shipment, scans once
//! per id, and the label sequence.

use super::*;
use orderflow_kit::delivery::promise::Window;
use orderflow_kit::testing;
use sqlx::PgPool;

fn label(serial: u64, carrier: &str) -> Labelled {
    Labelled {
        carrier: carrier.into(),
        carrier_service: "Paket".into(),
        tracking_number: format!("DH{serial:011}0"),
        weight_grams: 1_400,
        cost_cents: 699,
        label: "^XA^XZ".into(),
        delivery_promise: Some(
            Window { earliest: "2026-12-01".parse().unwrap(), latest: "2026-12-03".parse().unwrap() }.to_proto(),
        ),
    }
}

/// Labels a parcel for a new order, in its own transaction.
async fn labelled_parcel(pool: &PgPool, carrier: &str, status: ShipmentStatus) -> (Uuid, Labelled) {
    let mut tx = pool.begin().await.unwrap();
    let serial = next_serials(&mut tx, 1).await.unwrap()[0];
    let order_id = Uuid::now_v7();
    let labelled = label(serial, carrier);
    let new = NewShipment {
        order_id,
        labelled: labelled.clone(),
        country: "FR".into(),
        level: ServiceLevel::Express,
        status,
    };
    insert_all(&mut tx, &[new]).await.unwrap();
    tx.commit().await.unwrap();
    (order_id, labelled)
}

fn sql_state(error: &sqlx::Error) -> Option<String> {
    error.as_database_error().and_then(|e| e.code()).map(|code| code.into_owned())
}

#[tokio::test]
async fn an_inserted_shipment_loads_back_with_every_column() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, labelled) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;

    let shipment = load(&pool, order_id).await.unwrap().expect("the shipment is stored");
    let expected = Shipment {
        order_id: order_id.to_string(),
        status: ShipmentStatus::Labelled as i32,
        carrier: labelled.carrier,
        carrier_service: labelled.carrier_service,
        tracking_number: labelled.tracking_number.clone(),
        weight_grams: labelled.weight_grams,
        cost_cents: labelled.cost_cents,
        destination_country: "FR".into(),
        shipped_at: None,
        delivered_at: None,
        labelled_at: shipment.labelled_at,
        label: "^XA^XZ".into(),
        delivery_promise: labelled.delivery_promise,
        last_tracking_event: None,
        service_level: ServiceLevel::Express as i32,
    };
    assert_eq!(shipment, expected);
    assert!(shipment.labelled_at.is_some_and(|at| at.seconds > 0));
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(by_tracking_number(&mut conn, &labelled.tracking_number, false).await.unwrap(), Some(shipment));

    let (collected, _) = labelled_parcel(&pool, "DHL", ShipmentStatus::Shipped).await;
    let collected = load(&pool, collected).await.unwrap().unwrap();
    assert!(collected.shipped_at.is_some(), "collected at once: shipped when labelled");
}

#[tokio::test]
async fn an_unknown_order_or_tracking_number_has_no_shipment() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    let mut conn = pool.acquire().await.unwrap();
    assert!(labelled(&mut conn, &[Uuid::now_v7()]).await.unwrap().is_empty());
    assert_eq!(load(&pool, Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(by_tracking_number(&mut conn, "DH99999999999", true).await.unwrap(), None);
    assert!(lock_by_tracking_numbers(&mut conn, &["DH99999999999"]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_second_shipment_for_one_order_or_one_tracking_number_is_refused() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, labelled) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    let mut conn = pool.acquire().await.unwrap();
    let new = |order_id, labelled| NewShipment {
        order_id,
        labelled,
        country: "FR".into(),
        level: ServiceLevel::Standard,
        status: ShipmentStatus::Labelled,
    };
    let other_label = Labelled { tracking_number: "DH999999999990".into(), ..labelled.clone() };
    let again = insert_all(&mut conn, &[new(order_id, other_label)]).await.unwrap_err();
    assert_eq!(sql_state(&again).as_deref(), Some("23505"), "unique violation: {again}");
    let reused = insert_all(&mut conn, &[new(Uuid::now_v7(), labelled)]).await.unwrap_err();
    assert_eq!(sql_state(&reused).as_deref(), Some("23505"), "unique violation: {reused}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn locked_shipments_wait_for_their_holder() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, labelled_parcel_) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    let number = labelled_parcel_.tracking_number.as_str();
    let mut holder = pool.begin().await.unwrap();
    assert!(labelled(&mut holder, &[order_id]).await.unwrap().contains(&order_id));

    let mut other = testing::impatient_transaction(&pool).await;
    assert!(by_tracking_number(&mut other, number, false).await.unwrap().is_some(), "a read does not wait");
    let waited = by_tracking_number(&mut other, number, true).await.unwrap_err();
    assert!(testing::lock_not_granted(&waited), "a second locker waits: {waited}");
    other.rollback().await.unwrap();
    let mut courier = pool.begin().await.unwrap();
    assert!(lock_due_pickups(&mut courier, std::time::Duration::ZERO, 10).await.unwrap().is_empty(), "skipped");
    courier.rollback().await.unwrap();

    holder.commit().await.unwrap();
    let mut other = testing::impatient_transaction(&pool).await;
    assert_eq!(lock_by_tracking_numbers(&mut other, &[number]).await.unwrap().len(), 1, "free once committed");
}

#[tokio::test]
async fn the_manifest_lists_labels_awaiting_collection_by_carrier_oldest_first() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (_, first) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    let (_, second) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    labelled_parcel(&pool, "UPS", ShipmentStatus::Labelled).await;
    labelled_parcel(&pool, "DHL", ShipmentStatus::Shipped).await;

    let numbers = |shipments: Vec<Shipment>| shipments.into_iter().map(|s| s.tracking_number).collect::<Vec<_>>();
    let dhl = awaiting_pickup(&pool, Some("dhl"), None, 10).await.unwrap();
    assert_eq!(numbers(dhl.clone()), [first.tracking_number.clone(), second.tracking_number.clone()]);
    assert_eq!(awaiting_pickup(&pool, None, None, 10).await.unwrap().len(), 3);
    let at = envelope::datetime(dhl[0].labelled_at.unwrap()).unwrap();
    let after = awaiting_pickup(&pool, Some("DHL"), Some((at, &first.tracking_number)), 10).await.unwrap();
    assert_eq!(numbers(after), [second.tracking_number]);
    assert!(awaiting_pickup(&pool, Some("FedEx"), None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn saving_an_evolved_shipment_keeps_its_collection_time() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (order_id, labelled) = labelled_parcel(&pool, "DHL", ShipmentStatus::Labelled).await;
    let mut shipment = load(&pool, order_id).await.unwrap().unwrap();
    shipment.status = ShipmentStatus::Shipped as i32;
    let mut conn = pool.acquire().await.unwrap();
    save_all(&mut conn, &[&shipment]).await.unwrap();
    let collected = load(&pool, order_id).await.unwrap().unwrap();
    let shipped_at = collected.shipped_at.expect("collected now");

    let scan = TrackingScan {
        tracking_number: labelled.tracking_number.clone(),
        scan_id: "s1".into(),
        status: "DELIVERED".into(),
        location: "Paris".into(),
        occurred_at: Some(envelope::timestamp(Utc::now())),
        note: String::new(),
    };
    let mut delivered = collected.clone();
    delivered.status = ShipmentStatus::Delivered as i32;
    delivered.delivered_at = scan.occurred_at;
    delivered.last_tracking_event = Some(scan.clone());
    delivered.delivery_promise =
        Some(Window { earliest: "2026-12-02".parse().unwrap(), latest: "2026-12-02".parse().unwrap() }.to_proto());
    save_all(&mut conn, &[&delivered]).await.unwrap();
    let stored = load(&pool, order_id).await.unwrap().unwrap();
    assert_eq!(stored.shipped_at, Some(shipped_at), "collected once");
    assert_eq!(stored.last_tracking_event, Some(scan));
    assert_eq!(stored.delivery_promise, delivered.delivery_promise);
    assert_eq!(stored.status, ShipmentStatus::Delivered as i32);
    assert!(stored.delivered_at.is_some());
}

#[tokio::test]
async fn a_scan_id_is_recorded_once_per_parcel() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let (_, labelled) = labelled_parcel(&pool, "DHL", ShipmentStatus::Shipped).await;
    let scan = |id: &str, seconds| TrackingScan {
        tracking_number: labelled.tracking_number.clone(),
        scan_id: id.into(),
        status: "IN_TRANSIT".into(),
        location: "Hub".into(),
        occurred_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        note: String::new(),
    };
    let mut conn = pool.acquire().await.unwrap();
    assert!(insert_scan(&mut conn, &scan("b", 2_000_000_000), true).await.unwrap());
    assert!(!insert_scan(&mut conn, &scan("b", 2_000_000_500), false).await.unwrap(), "a repeat is not recorded");
    assert!(insert_scan(&mut conn, &scan("a", 1_900_000_000), false).await.unwrap());
    let history = scans(&mut conn, &labelled.tracking_number).await.unwrap();
    assert_eq!(history, [(scan("a", 1_900_000_000), false), (scan("b", 2_000_000_000), true)], "by scan time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn label_serials_are_strictly_increasing_and_unique_across_connections() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                let mut serials = Vec::new();
                for _ in 0..25 {
                    serials.extend(next_serials(&mut conn, 1).await.unwrap());
                }
                serials
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        let serials = task.await.unwrap();
        assert!(serials.windows(2).all(|w| w[0] < w[1]), "increasing on one connection: {serials:?}");
        all.extend(serials);
    }
    assert_eq!(all.len(), 100, "no serial handed out twice");
    assert_eq!(all.iter().min(), Some(&1), "the sequence starts at 1");
    let mut conn = pool.acquire().await.unwrap();
    let batch = next_serials(&mut conn, 3).await.unwrap();
    assert_eq!(batch, [101, 102, 103], "a batch draws in order");
}
