//! The webhook tables against the real PostgreSQL: deliveries are queued only for the
//! endpoints subscribed to their type and only when the transaction commits; the sender takes
//! the first pending delivery of each subject only, skips busy endpoints, leases what it takes,
//! and records retries, failures and redeliveries.

use super::domain::{Message, NewWebhook};
use super::store;
use chrono::Utc;
use orderflow_kit::testing;
use orderflow_proto::order::v1::WebhookDeliveryState;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn webhook(pool: &PgPool, types: &[&str]) -> Uuid {
    let new = NewWebhook {
        url: "http://127.0.0.1:1/hooks".into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        description: String::new(),
    };
    store::create(pool, &new, "whsec_AAAA").await.unwrap().webhook_id.parse().unwrap()
}

fn message(event_type: &'static str, subject: &str) -> Message {
    Message { event_type, subject: subject.into(), body: format!("{{\"type\":\"{event_type}\"}}") }
}

async fn queued(pool: &PgPool) -> Vec<(Uuid, String, String)> {
    sqlx::query_as("SELECT webhook_id, event_type, subject FROM webhook_deliveries ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn deliveries_are_queued_for_subscribers_and_only_on_commit() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let shipped = webhook(&pool, &["order.shipped"]).await;
    let both = webhook(&pool, &["order.shipped", "stock.low"]).await;

    let mut tx = pool.begin().await.unwrap();
    store::enqueue(&mut tx, &[message("order.shipped", "o-1")]).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(queued(&pool).await.is_empty(), "a rolled-back change is never announced");

    let mut tx = pool.begin().await.unwrap();
    let messages = [message("order.shipped", "o-1"), message("stock.low", "sku:MUG"), message("order.placed", "o-2")];
    store::enqueue(&mut tx, &messages).await.unwrap();
    tx.commit().await.unwrap();
    let s = String::from;
    assert_eq!(
        queued(&pool).await,
        [
            (shipped.min(both), s("order.shipped"), s("o-1")),
            (shipped.max(both), s("order.shipped"), s("o-1")),
            (both, s("stock.low"), s("sku:MUG"))
        ]
    );
    assert!(store::delete(&pool, both).await.unwrap());
    assert_eq!(queued(&pool).await.len(), 1, "a deleted endpoint's deliveries go with it");
    assert!(!store::delete(&pool, both).await.unwrap());
}

#[tokio::test]
async fn the_sender_takes_each_subject_in_order_and_leases_what_it_takes() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let hook = webhook(&pool, &["order.placed", "order.shipped"]).await;
    let other = webhook(&pool, &["order.placed"]).await;
    let mut conn = pool.acquire().await.unwrap();
    let messages = [message("order.placed", "o-1"), message("order.shipped", "o-1"), message("order.placed", "o-2")];
    store::enqueue(&mut conn, &messages).await.unwrap();

    let lease = Duration::from_secs(60);
    let taken = store::take_due(&mut conn, &[other], 10, 4, lease).await.unwrap();
    let subjects: Vec<_> = taken.iter().map(|d| (d.webhook_id, d.payload.contains("placed"))).collect();
    assert_eq!(
        subjects,
        [(hook, true), (hook, true)],
        "o-1's shipped waits for its placed; the busy endpoint is skipped"
    );
    assert!(taken.iter().all(|d| d.attempts == 1));
    assert!(store::take_due(&mut conn, &[other], 10, 4, lease).await.unwrap().is_empty(), "leased");

    // The first of o-1 is refused and retried later: o-1's next still waits behind it.
    let first = taken.iter().find(|d| d.subject == "o-1").unwrap();
    store::record(&pool, first.delivery_id, false, 503, "answered 503", Some(Utc::now())).await.unwrap();
    let again = store::take_due(&mut conn, &[other], 10, 4, lease).await.unwrap();
    assert_eq!(again.iter().map(|d| d.delivery_id).collect::<Vec<_>>(), [first.delivery_id]);
    assert_eq!(again[0].attempts, 2);
    store::record(&pool, first.delivery_id, true, 204, "", None).await.unwrap();
    let next = store::take_due(&mut conn, &[other], 10, 4, lease).await.unwrap();
    assert!(next.len() == 1 && next[0].payload.contains("shipped"), "then the next of o-1");

    // Given up: failed, listed as such, and sent again on request.
    store::record(&pool, next[0].delivery_id, false, 0, "no answer", None).await.unwrap();
    let failed =
        store::deliveries(&pool, hook, Some(WebhookDeliveryState::WebhookDeliveryFailed), None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].1.last_error.as_str(), failed[0].1.attempts), ("no answer", 1));
    let redelivered = store::redeliver(&pool, next[0].delivery_id).await.unwrap().unwrap();
    assert_eq!((redelivered.state, redelivered.attempts), (WebhookDeliveryState::WebhookDeliveryPending as i32, 0));
    assert_eq!(store::take_due(&mut conn, &[other], 10, 4, lease).await.unwrap().len(), 1);
    assert_eq!(store::redeliver(&pool, Uuid::now_v7()).await.unwrap(), None);

    // Delivered ones are forgotten after the keeping time; pending ones never.
    let delivered = |pool: &PgPool| {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'WEBHOOK_DELIVERY_DELIVERED'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(delivered(&pool).await, 1);
    assert_eq!(store::prune(&pool, Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(store::prune(&pool, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(delivered(&pool).await, 0);
}

#[tokio::test]
async fn one_endpoint_never_takes_more_than_its_share_of_a_round() {
    let pool = testing::migrated_database(&crate::MIGRATIONS).await;
    let dead = webhook(&pool, &["order.placed"]).await;
    let alive = webhook(&pool, &["order.shipped"]).await;
    let mut conn = pool.acquire().await.unwrap();
    let mut messages: Vec<Message> = (0..20).map(|n| message("order.placed", &format!("o-{n}"))).collect();
    messages.push(message("order.shipped", "o-1"));
    store::enqueue(&mut conn, &messages).await.unwrap();
    let taken = store::take_due(&mut conn, &[], 64, 4, Duration::from_secs(60)).await.unwrap();
    let count = |id: Uuid| taken.iter().filter(|d| d.webhook_id == id).count();
    assert_eq!(
        (count(dead), count(alive)),
        (4, 1),
        "twenty due for one endpoint, four taken; the other is not starved"
    );
}
