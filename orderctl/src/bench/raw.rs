//! The raw limits a benchmark compares the pipeline with, on the same machine and with the same
//! client settings: (a) the broker's produce → consume hop, (b) PostgreSQL one-row commits,
//! (c) a bare tonic unary call; and the GetOrder rate, measured the same closed-loop way.

use crate::load;
use crate::ops::Broker;
use anyhow::Context;
use futures::future::join_all;
use hdrhistogram::Histogram;
use orderflow_kit::outbox;
use orderflow_proto::client::Authorized;
use orderflow_proto::order::v1::GetOrderRequest;
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(0.001)
}

/// (a) Messages of `size` bytes through produce → consume, as fast as they go; and the hop
/// latency of lone messages.
pub async fn broker(
    broker: &Broker,
    count: u64,
    size: usize,
    fetch_wait: Duration,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let topic = format!("{}.bench.{}", broker.namespace, uuid::Uuid::new_v4().simple());
    orderflow_kit::topics::ensure(&broker.brokers, std::slice::from_ref(&topic), 6, 1).await?;
    let producer: FutureProducer = outbox::producer_config(&broker.brokers, Duration::from_millis(1))?.create()?;
    let consumer: StreamConsumer =
        orderflow_kit::inbox::consumer_config(&broker.brokers, &format!("{topic}.reader"), fetch_wait)?.create()?;
    consumer.subscribe(&[&topic])?;
    let payload = vec![b'x'; size];
    // Let the consumer join before timing.
    let warm = producer.send(FutureRecord::to(&topic).key("warm").payload(&payload), Duration::from_secs(5));
    warm.await.map_err(|(e, _)| e)?;
    tokio::time::timeout(Duration::from_secs(30), consumer.stream().next()).await?.context("no warm-up message")??;

    let mut hop = load::histogram();
    for i in 0..200 {
        let started = Instant::now();
        let key = format!("k{i}");
        producer
            .send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)?;
        tokio::time::timeout(Duration::from_secs(10), consumer.stream().next()).await?.context("lost a message")??;
        let _ = hop.record(load::micros(started.elapsed()).max(1));
    }

    let started = Instant::now();
    let receiving = async {
        let mut stream = consumer.stream();
        let mut received = 0;
        while received < count {
            let message =
                tokio::time::timeout(Duration::from_secs(30), stream.next()).await?.context("stream ended")??;
            received += u64::from(message.payload().is_some());
        }
        anyhow::Ok(())
    };
    let sending = async {
        let mut deliveries = Vec::new();
        for i in 0..count {
            let key = format!("order-{}", i % 997);
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in deliveries {
            delivery.await?.map_err(|(e, _)| e)?;
        }
        anyhow::Ok(())
    };
    let (sent, received) = tokio::join!(sending, receiving);
    sent?;
    received?;
    Ok((per_second(count, started.elapsed()), hop))
}

/// (b) One-row commits on `connections` connections for `seconds`.
pub async fn database(url: &str, connections: u32, seconds: u64) -> anyhow::Result<f64> {
    let pool = orderflow_kit::db::pool(url, connections)?;
    sqlx::query("DROP TABLE IF EXISTS bench").execute(&pool).await?;
    sqlx::query("CREATE TABLE bench (id bigserial PRIMARY KEY, payload bytea NOT NULL)").execute(&pool).await?;
    let payload = vec![0u8; 400];
    let rate = closed_loop(usize::try_from(connections)?, seconds, || {
        let (pool, payload) = (pool.clone(), payload.clone());
        async move {
            sqlx::query("INSERT INTO bench (payload) VALUES ($1)").bind(payload).execute(&pool).await?;
            Ok(())
        }
    })
    .await?;
    sqlx::query("DROP TABLE bench").execute(&pool).await?;
    Ok(rate)
}

/// (c) A bare tonic unary call: health Check on an in-process server, 32 calls in flight.
pub async fn bare_grpc(seconds: u64) -> anyhow::Result<f64> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let client = tonic_health::pb::health_client::HealthClient::new(channel);
    let rate = closed_loop(32, seconds, || {
        let mut client = client.clone();
        async move {
            client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await?;
            Ok(())
        }
    })
    .await;
    server.abort();
    rate
}

/// GetOrder, 32 calls in flight, for `seconds`.
pub async fn get_order_rate(
    orders: &OrderServiceClient<Authorized>,
    order_id: &str,
    seconds: u64,
) -> anyhow::Result<f64> {
    closed_loop(32, seconds, || {
        let mut orders = orders.clone();
        async move {
            orders.get_order(GetOrderRequest { order_id: order_id.to_owned() }).await?;
            Ok(())
        }
    })
    .await
}

/// Calls per second that `workers` loops make for `seconds`, each awaiting its call before
/// making the next.
async fn closed_loop<F, Fut>(workers: usize, seconds: u64, call: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let call = &call;
    let loops = (0..workers).map(|_| async move {
        let mut calls = 0u64;
        while Instant::now() < end {
            call().await?;
            calls += 1;
        }
        anyhow::Ok(calls)
    });
    let calls = join_all(loops).await.into_iter().sum::<anyhow::Result<u64>>()?;
    Ok(per_second(calls, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_per_second_and_never_divides_by_zero() {
        assert!((per_second(500, Duration::from_secs(2)) - 250.0).abs() < 1e-9);
        assert!(per_second(1, Duration::ZERO).is_finite());
    }

    #[tokio::test]
    async fn a_closed_loop_counts_every_worker_s_calls() {
        let calls = std::sync::atomic::AtomicU64::new(0);
        let rate = closed_loop(4, 1, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
        let made = calls.load(std::sync::atomic::Ordering::Relaxed) as f64;
        assert!(rate > 0.0 && (rate - made).abs() / made < 0.2, "{rate} calls/s for {made} calls in ~1 s");
        let failed = closed_loop(2, 1, || async { anyhow::bail!("down") }).await;
        assert!(failed.is_err());
    }

    #[tokio::test]
    async fn a_bare_grpc_call_is_measured_in_process() {
        assert!(bare_grpc(1).await.unwrap() > 0.0);
    }
}
