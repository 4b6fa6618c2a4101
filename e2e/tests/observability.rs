//! What operators see: Prometheus metrics that move as orders flow, and one trace from the
//! PlaceOrder call through every event of the order, as it went over the wire.

use orderflow_e2e::{SHIPPED_AND_CAPTURED, Stack, order_request};
use orderflow_kit::events;
use orderflow_kit::testing;
use orderflow_kit::topics::Topics;
use orderflow_kit::trace::TraceParent;
use orderflow_proto::order::v1::{OrderStatus, PaymentStatus};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// Every sample line is `name{labels} value` with a number for a value.
fn parses_as_prometheus_text(body: &str) -> bool {
    body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).all(|line| {
        let (series, value) = line.rsplit_once(' ').unwrap_or_default();
        !series.is_empty() && value.parse::<f64>().is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_orders_flow() {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut stack = Stack::start_with_metrics(addr).await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let order = stack.orders.place_order(order_request("c-metrics", &[("MUG", 1)])).await.unwrap();
    stack.wait_for_status(&order.into_inner().order.unwrap().order_id, OrderStatus::Shipped).await;

    let expected = [
        "orderflow_grpc_requests_total{",
        "method=\"OrderService/PlaceOrder\"",
        "orderflow_grpc_request_duration_seconds_bucket{",
        "orderflow_events_consumed_total{",
        "event_type=\"Shipped\"",
        "orderflow_events_published_total{",
        "orderflow_consumer_batch_size_bucket",
        "orderflow_consumer_lag{",
        "orderflow_outbox_depth{",
        "orderflow_dead_letters{",
        "orderflow_db_pool_connections{",
    ];
    let body = testing::wait_until("every metric is exported", Duration::from_secs(30), || async {
        let body = scrape(addr).await?;
        expected.iter().all(|name| body.contains(name)).then_some(body)
    })
    .await;
    assert!(parses_as_prometheus_text(&body), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_place_order_through_every_event() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 10).await;
    let (order_id, caller) = stack.place_traced("c-trace").await;
    stack.wait_for_status(&order_id, OrderStatus::Shipped).await;

    let topics = Topics::new(&stack.namespace);
    let names = topics.all();
    let read = events::read_to_end(&testing::brokers(), &names).await.unwrap();
    let envelopes: Vec<_> =
        read.into_iter().filter_map(|r| r.envelope.ok()).filter(|e| e.order_id == order_id).collect();
    let types: Vec<_> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
    // All but the capture, which may still be on its way to the topic.
    for expected in &SHIPPED_AND_CAPTURED[..9] {
        assert!(types.contains(expected), "{expected} missing from {types:?}");
    }
    for envelope in &envelopes {
        let trace = TraceParent::parse(&envelope.traceparent).unwrap();
        assert_eq!(trace.trace_id, caller.trace_id, "{} continues the caller's trace", envelope.event_type);
        assert_ne!(trace.span_id, caller.span_id, "{} has its own span", envelope.event_type);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_rebuilt_under_load_equals_the_old_one_and_keeps_flowing() {
    let mut stack = Stack::start().await;
    stack.stock_product("MUG", "A-01", 350, 1_000).await;
    let place = |stack: &Stack| {
        let mut orders = stack.orders.clone();
        async move {
            let order = orders.place_order(order_request("c-rebuild", &[("MUG", 1)])).await.unwrap();
            order.into_inner().order.unwrap().order_id
        }
    };
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(place(&stack).await);
    }
    stack.wait_for_status(ids.last().unwrap(), OrderStatus::Shipped).await;

    // Orders keep coming while the projection is rebuilt.
    let load = {
        let stack_orders = stack.orders.clone();
        tokio::spawn(async move {
            let mut placed = Vec::new();
            for _ in 0..30 {
                let mut orders = stack_orders.clone();
                let order = orders.place_order(order_request("c-rebuild", &[("MUG", 1)])).await.unwrap();
                placed.push(order.into_inner().order.unwrap().order_id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            placed
        })
    };
    let pool = orderflow_kit::db::pool(&stack.order_database, 2).unwrap();
    let rebuilt = order_service::rebuild::rebuild(&pool, &testing::brokers(), &stack.namespace).await.unwrap();
    assert!(rebuilt.orders >= 20 && rebuilt.events > 0, "{rebuilt:?}");
    eprintln!("rebuilt: {rebuilt:?}, {:.0} events/s", rebuilt.rate());
    let retired: i64 = sqlx::query_scalar("SELECT count(*) FROM order_retired.orders").fetch_one(&pool).await.unwrap();
    assert_eq!(retired, rebuilt.orders, "the old tables were swapped out");
    ids.extend(load.await.unwrap());
    for id in &ids {
        stack.wait_for_status(id, OrderStatus::Shipped).await;
        let order = stack.wait_for_payment(id, PaymentStatus::Captured).await;
        assert_eq!(order.timeline.len(), 10, "{id}: every event once, none lost in the swap");
    }
}
