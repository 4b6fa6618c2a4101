//! `orderctl chaos place`: the careful client of a chaos run. It places orders at a steady
//! rate, each with its own idempotency key, retries a failed call with the same key until it is
//! acknowledged, cancels some orders right after, restocks half-way, and writes what was
//! acknowledged for `chaos check`.

use super::{Placed, mix};
use crate::load::{parse_duration, scripted_order};
use anyhow::Context;
use clap::Args;
use orderflow_proto::client::Authorized;
use orderflow_proto::common::v1::{Money, OrderLine};
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};
use orderflow_proto::order::v1::order_service_client::OrderServiceClient;
use orderflow_proto::order::v1::{CancelOrderRequest, PlaceOrderRequest};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tonic::Code;

#[derive(Debug, Args)]
pub struct PlaceArgs {
    /// How many orders to place.
    #[arg(long, default_value_t = 5000)]
    count: u64,
    /// Orders per second.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// Cancel every Nth order right after it is acknowledged (0: none).
    #[arg(long, default_value_t = 20)]
    cancel_every: u64,
    /// How long one order (or cancel) is retried before the client gives up on it.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    give_up: Duration,
    /// Where the outcome goes (read by `chaos check`).
    #[arg(long, default_value = "chaos-placed.json")]
    out: PathBuf,
}

/// The products every chaos order draws from.
const SKUS: [&str; 4] = ["CHAOS-A", "CHAOS-B", "CHAOS-C", "CHAOS-D"];

/// Order `n`: one or two priced lines of 1–3 units, a key that makes retries safe; every tenth
/// allows a backorder (held when stock is short: the half-way restock serves some, the rest
/// expire); one in 25 is paid with a declined test reference and one in 25 with a flaky one.
fn order(run: &str, n: u64) -> PlaceOrderRequest {
    let r = mix(n);
    #[allow(clippy::cast_possible_truncation)]
    let sku = |shift: u32| SKUS[((r >> shift) % SKUS.len() as u64) as usize];
    #[allow(clippy::cast_possible_truncation)]
    let quantity = |shift: u32| ((r >> shift) % 3) as i32 + 1;
    let price = |shift: u32| {
        let amount_minor = 100 + i64::try_from((r >> shift) % 5_000).unwrap_or(0);
        Some(Money { currency_code: "EUR".into(), amount_minor })
    };
    let mut lines = vec![OrderLine { sku: sku(0).into(), quantity: quantity(8), unit_price: price(32) }];
    if r >> 16 & 1 == 1 && sku(20) != sku(0) {
        lines.push(OrderLine { sku: sku(20).into(), quantity: quantity(28), unit_price: price(44) });
    }
    let reference = match n % 25 {
        7 => "pay_decline",
        11 => "pay_flaky",
        _ => "pay_chaos",
    };
    PlaceOrderRequest {
        idempotency_key: format!("{run}-{n}"),
        payment_reference: format!("{reference}-{n}"),
        allow_backorder: n % 10 == 3,
        ..scripted_order(format!("chaos-{}", n % 100), "Chaos Monkey", lines)
    }
}

/// Codes that say "this request is wrong", where retrying cannot help.
fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    )
}

/// Calls `call` until it succeeds, fails for good, or `give_up` passes; each try may take 5 s.
async fn retried<T, F, Fut>(give_up: Duration, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + give_up;
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = match tokio::time::timeout(Duration::from_secs(5), call()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(tonic::Status::deadline_exceeded("no answer within 5 s")),
        };
        match outcome {
            Err(status) if !permanent(status.code()) && Instant::now() + backoff < deadline => {
                tracing::debug!(code = ?status.code(), message = status.message(), "retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            outcome => return outcome,
        }
    }
}

/// Stock per SKU before the run (about half of what the run asks for: some orders are
/// rejected) and what the half-way restock adds.
fn stock_plan(count: u64) -> (i64, i64) {
    let count = i64::try_from(count).unwrap_or(i64::MAX / 4);
    (count / 2, count / 8)
}

/// `orderctl chaos place`.
pub async fn place(
    args: &PlaceArgs,
    orders: OrderServiceClient<Authorized>,
    inventory: InventoryServiceClient<Authorized>,
) -> anyhow::Result<()> {
    let (initial, restock) = stock_plan(args.count);
    for sku in SKUS {
        let product = UpsertProductRequest {
            sku: sku.into(),
            name: format!("Chaos item {sku}"),
            bin_location: "C-01".into(),
            weight_grams: 250,
            low_stock_threshold: 5,
        };
        retried(args.give_up, || {
            let (mut inventory, product) = (inventory.clone(), product.clone());
            async move { inventory.upsert_product(product).await }
        })
        .await
        .context("creating the products")?;
        retried(args.give_up, || {
            let mut inventory = inventory.clone();
            async move { inventory.restock(RestockRequest { sku: sku.into(), quantity: initial }).await }
        })
        .await
        .context("stocking the products")?;
    }
    let run = uuid::Uuid::now_v7().simple().to_string();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counters: Arc<[AtomicU64; 3]> = Arc::new(Default::default()); // gave up, cancels accepted, refused
    let in_flight = Arc::new(Semaphore::new(5_000));
    let started = Instant::now();
    let rate = args.rate.max(0.1);
    for n in 0..args.count {
        tokio::time::sleep_until((started + Duration::from_secs_f64(n as f64 / rate)).into()).await;
        if n == args.count / 2 {
            let inventory = inventory.clone();
            let give_up = args.give_up;
            let permit = Arc::clone(&in_flight).acquire_owned().await?;
            tokio::spawn(async move {
                for sku in SKUS {
                    let request = RestockRequest { sku: sku.into(), quantity: restock };
                    if let Err(status) = retried(give_up, || {
                        let (mut inventory, request) = (inventory.clone(), request.clone());
                        async move { inventory.restock(request).await }
                    })
                    .await
                    {
                        eprintln!("restocking {sku} failed: {status}");
                    }
                }
                drop(permit);
            });
        }
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let (orders, request) = (orders.clone(), order(&run, n));
        let (acknowledged, counters, give_up) = (Arc::clone(&acknowledged), Arc::clone(&counters), args.give_up);
        let cancel = args.cancel_every > 0 && n % args.cancel_every == args.cancel_every / 2;
        tokio::spawn(async move {
            let placed = retried(give_up, || {
                let (mut orders, request) = (orders.clone(), request.clone());
                async move { orders.place_order(request).await }
            })
            .await;
            match placed.map(|answer| answer.into_inner().order.unwrap_or_default().order_id) {
                Ok(order_id) => {
                    acknowledged.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(order_id.clone());
                    if cancel {
                        tokio::time::sleep(Duration::from_millis(mix(n) % 400)).await;
                        let request = CancelOrderRequest { order_id, reason: "chaos: changed my mind".into() };
                        let counter = match retried(give_up, || {
                            let (mut orders, request) = (orders.clone(), request.clone());
                            async move { orders.cancel_order(request).await }
                        })
                        .await
                        {
                            Ok(_) => 1,
                            Err(_) => 2,
                        };
                        counters[counter].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(status) => {
                    eprintln!("order {n} not acknowledged: {:?} {}", status.code(), status.message());
                    counters[0].fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }
    let _all = in_flight.acquire_many(5_000).await?;
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let placed = Placed {
        placed: args.count,
        acknowledged,
        gave_up: counters[0].load(Ordering::Relaxed),
        cancels_accepted: counters[1].load(Ordering::Relaxed),
        cancels_refused: counters[2].load(Ordering::Relaxed),
    };
    std::fs::write(&args.out, serde_json::to_vec(&placed)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "placed {} orders in {:.0} s: {} acknowledged, {} given up, cancels {} accepted / {} refused",
        placed.placed,
        started.elapsed().as_secs_f64(),
        placed.acknowledged.len(),
        placed.gave_up,
        placed.cancels_accepted,
        placed.cancels_refused
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_n_is_the_same_every_run_and_retries_safely() {
        let (a, b) = (order("run1", 42), order("run1", 42));
        assert_eq!(a, b);
        assert_eq!(a.idempotency_key, "run1-42");
        assert_eq!(a.payment_reference, "pay_chaos-42");
        assert_eq!(order("run", 7).payment_reference, "pay_decline-7");
        assert_eq!(order("run", 36).payment_reference, "pay_flaky-36");
        assert_eq!(a.customer.unwrap().id, "chaos-42");
        assert_eq!(order("run1", 142).customer.unwrap().id, "chaos-42", "a hundred customers");
    }

    #[test]
    fn orders_have_one_or_two_lines_of_distinct_chaos_skus() {
        let (mut one, mut two) = (0, 0);
        for n in 0..500 {
            let lines = order("r", n).lines;
            match lines.as_slice() {
                [_] => one += 1,
                [a, b] => {
                    two += 1;
                    assert_ne!(a.sku, b.sku, "order {n}");
                }
                other => panic!("order {n} has {} lines", other.len()),
            }
            for line in &lines {
                assert!(SKUS.contains(&line.sku.as_str()), "{}", line.sku);
                assert!((1..=3).contains(&line.quantity), "{}", line.quantity);
            }
        }
        assert!(one > 0 && two > 0, "{one} single, {two} double");
    }

    #[test]
    fn only_transient_codes_are_retried() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Internal, Code::ResourceExhausted, Code::Aborted]
        {
            assert!(!permanent(code), "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::AlreadyExists, Code::FailedPrecondition, Code::Unauthenticated] {
            assert!(permanent(code), "{code:?}");
        }
    }

    #[test]
    fn the_stock_covers_about_half_the_run() {
        assert_eq!(stock_plan(5000), (2500, 625));
        assert_eq!(stock_plan(0), (0, 0));
        assert_eq!(stock_plan(u64::MAX), (i64::MAX / 4 / 2, i64::MAX / 4 / 8));
    }

    #[tokio::test]
    async fn a_call_is_retried_until_it_answers_but_not_when_it_is_wrong() {
        let tries = std::cell::Cell::new(0);
        let answer = retried(Duration::from_secs(60), || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move { if n < 3 { Err(tonic::Status::unavailable("down")) } else { Ok(n) } }
        })
        .await;
        assert_eq!(answer.unwrap(), 3);
        tries.set(0);
        let refused = retried(Duration::from_secs(60), || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(tonic::Status::invalid_argument("bad")) }
        })
        .await;
        assert_eq!((refused.unwrap_err().code(), tries.get()), (Code::InvalidArgument, 1));
    }

    #[tokio::test]
    async fn a_call_that_keeps_failing_is_given_up() {
        let given_up =
            retried(Duration::from_millis(250), || async { Err::<(), _>(tonic::Status::unavailable("down")) });
        assert_eq!(given_up.await.unwrap_err().code(), Code::Unavailable);
    }
}
