//! The operator's commands: they read the topics and the services' databases directly, as
//! kcat and a lag exporter would, and never disturb the services (no consumer group, no
//! commits, read-only queries). `events tail`, `order trace` and `lag`.

use anyhow::Context;
use clap::Args;
use orderflow_kit::events::{self, Read, Reader};
use orderflow_kit::lag::Probe;
use orderflow_kit::topics::{Topic, Topics};
use orderflow_kit::{dlq, envelope};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// Where the broker is and which stack's topics to read.
#[derive(Debug, Args)]
pub struct Broker {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092", global = true)]
    pub brokers: String,
    /// The stack's topic namespace.
    #[arg(long, env = "TOPIC_NAMESPACE", default_value = "orderflow", global = true)]
    pub namespace: String,
}

impl Broker {
    pub fn topics(&self) -> Topics {
        Topics::new(&self.namespace)
    }

    fn all_topics(&self) -> Vec<String> {
        self.topics().all()
    }

    /// A topic given by stem (orders, inventory, fulfillment, shipping) or by full name.
    pub fn topic_name(&self, topic: &str) -> String {
        Topic::ALL.into_iter().find(|t| t.stem() == topic).map_or_else(|| topic.to_owned(), |t| self.topics().name(t))
    }
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Topics to follow by stem (orders, inventory, fulfillment, shipping) or full name; all
    /// four event topics when none is given.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Only this order's events.
    #[arg(long)]
    order_id: Option<String>,
    /// Only events of this type (repeatable), e.g. --type Shipped.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Start from the beginning of the topics instead of now.
    #[arg(long)]
    from_beginning: bool,
}

/// Renders envelopes as JSON through the descriptors, so every payload field shows.
struct Render {
    envelope: MessageDescriptor,
    options: SerializeOptions,
}

impl Render {
    fn new() -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(orderflow_proto::FILE_DESCRIPTOR_SET)?;
        let envelope = pool
            .get_message_by_name("orderflow.events.v1.EventEnvelope")
            .context("EventEnvelope is missing from the descriptors")?;
        Ok(Self { envelope, options: SerializeOptions::new().use_proto_field_name(true) })
    }

    /// One event as a JSON object: what it is first, where it was read last.
    fn json(&self, read: &Read) -> Value {
        let place = json!({ "topic": read.topic, "partition": read.partition, "offset": read.offset });
        let envelope = match &read.envelope {
            Ok(envelope) => envelope,
            Err(error) => return merge(json!({ "error": error }), place),
        };
        let payload = DynamicMessage::decode(self.envelope.clone(), read.payload.as_slice())
            .ok()
            .and_then(|message| {
                let oneof = self.envelope.oneofs().next()?;
                let field = oneof.fields().find(|f| message.has_field(f))?;
                let value = message.get_field(&field);
                let payload = value.as_message()?;
                payload.serialize_with_options(serde_json::value::Serializer, &self.options).ok()
            })
            .unwrap_or(Value::Null);
        let event = json!({
            "event_type": envelope.event_type,
            "order_id": envelope.order_id,
            "occurred_at": envelope::occurred_at(envelope).to_rfc3339(),
            "producer": envelope.producer,
            "payload": payload,
            "event_id": envelope.event_id,
            "correlation_id": envelope.correlation_id,
            "causation_id": envelope.causation_id,
            "traceparent": envelope.traceparent,
        });
        merge(event, place)
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// `orderctl events tail`: one JSON line per event until Ctrl-C.
pub async fn tail(broker: &Broker, args: &TailArgs) -> anyhow::Result<()> {
    let topics = if args.topics.is_empty() {
        broker.all_topics()
    } else {
        args.topics.iter().map(|t| broker.topic_name(t)).collect()
    };
    let render = Render::new()?;
    let mut out = std::io::stdout();
    let reader = Reader::new(&broker.brokers, &topics, args.from_beginning)
        .with_context(|| format!("cannot read {} from {}", topics.join(", "), broker.brokers))?;
    loop {
        let read = reader.next().await?;
        if let Ok(envelope) = &read.envelope {
            let wrong_order = args.order_id.as_ref().is_some_and(|id| *id != envelope.order_id);
            let wrong_type = !args.types.is_empty() && !args.types.contains(&envelope.event_type);
            if wrong_order || wrong_type {
                continue;
            }
        }
        if writeln!(out, "{}", render.json(&read)).and_then(|()| out.flush()).is_err() {
            return Ok(()); // the reader went away (a closed pipe)
        }
    }
}

/// `orderctl order trace`: the order's journey across every topic, with the time each hop took
/// (from the event that caused it).
pub async fn trace(broker: &Broker, order_id: &str) -> anyhow::Result<()> {
    let read = events::read_to_end(&broker.brokers, &broker.all_topics())
        .await
        .with_context(|| format!("cannot read the topics from {}", broker.brokers))?;
    let mut journey: Vec<(Read, envelope::EventEnvelope)> = read
        .into_iter()
        .filter_map(|r| {
            let envelope = r.envelope.clone().ok()?;
            (envelope.order_id == order_id).then_some((r, envelope))
        })
        .collect();
    anyhow::ensure!(!journey.is_empty(), "no event of order {order_id} in {}", broker.all_topics().join(", "));
    journey.sort_by_key(|(_, e)| (envelope::occurred_at(e), e.event_id.clone()));
    let at: HashMap<String, _> = journey.iter().map(|(_, e)| (e.event_id.clone(), envelope::occurred_at(e))).collect();
    let start = envelope::occurred_at(&journey[0].1);
    println!("{:<12}  {:>10}  {:>10}  {:<17}  {:<19}  topic", "time", "since start", "hop", "event", "producer");
    for (read, event) in &journey {
        let when = envelope::occurred_at(event);
        let millis = |d: chrono::TimeDelta| format!("{:.1} ms", d.num_microseconds().unwrap_or(0) as f64 / 1000.0);
        let hop = at.get(&event.causation_id).map_or_else(|| "-".to_owned(), |cause| millis(when - *cause));
        println!(
            "{:<12}  {:>10}  {:>10}  {:<17}  {:<19}  {}[{}]@{}",
            when.format("%H:%M:%S%.3f"),
            millis(when - start),
            hop,
            event.event_type,
            event.producer,
            read.topic,
            read.partition,
            read.offset
        );
    }
    Ok(())
}

/// The services' databases, for the operator commands that read them.
#[derive(Debug, Clone, Args)]
pub struct Databases {
    /// order-service's database.
    #[arg(long, env = "ORDER_DATABASE_URL")]
    order_db: Option<String>,
    /// inventory-service's database.
    #[arg(long, env = "INVENTORY_DATABASE_URL")]
    inventory_db: Option<String>,
    /// fulfillment-service's database.
    #[arg(long, env = "FULFILLMENT_DATABASE_URL")]
    fulfillment_db: Option<String>,
    /// shipping-service's database.
    #[arg(long, env = "SHIPPING_DATABASE_URL")]
    shipping_db: Option<String>,
}

impl Databases {
    /// (service, database URL) of every database given.
    pub fn given(&self) -> Vec<(&'static str, String)> {
        [
            ("order-service", &self.order_db),
            ("inventory-service", &self.inventory_db),
            ("fulfillment-service", &self.fulfillment_db),
            ("shipping-service", &self.shipping_db),
        ]
        .into_iter()
        .filter_map(|(name, url)| Some((name, url.clone()?)))
        .collect()
    }
}

pub const DATABASES_MISSING: &str = "set ORDER_DATABASE_URL, INVENTORY_DATABASE_URL, FULFILLMENT_DATABASE_URL and/or \
     SHIPPING_DATABASE_URL (scripts/up.sh prints them)";

#[derive(Debug, Args)]
pub struct LagArgs {
    #[command(flatten)]
    databases: Databases,
    /// Refresh every this many seconds until Ctrl-C.
    #[arg(long)]
    watch: Option<u64>,
}

/// `orderctl lag`: per service, consumer lag per partition, outbox depth and age, dead letters.
pub async fn lag(broker: &Broker, args: &LagArgs) -> anyhow::Result<()> {
    let services = args.databases.given();
    anyhow::ensure!(!services.is_empty(), "no service database given: {DATABASES_MISSING}");
    let pools = services
        .iter()
        .map(|(name, url)| Ok((*name, orderflow_kit::db::pool(url, 1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let probe = Probe::new(&broker.brokers)?;
    loop {
        if args.watch.is_some() {
            print!("\x1b[2J\x1b[H");
        }
        println!("{:<20} {:<36} {:>4} {:>10} {:>10} {:>8}", "service", "topic", "part", "next", "end", "lag");
        let mut summaries = Vec::new();
        for (service, pool) in &pools {
            let group = broker.topics().consumer_group(service);
            let report = probe
                .report(pool, &group, &broker.topics().dead_letter(service))
                .await
                .with_context(|| format!("measuring {service}"))?;
            for p in &report.partitions {
                println!(
                    "{service:<20} {:<36} {:>4} {:>10} {:>10} {:>8}",
                    p.topic,
                    p.partition,
                    p.next_offset,
                    p.end,
                    p.lag()
                );
            }
            summaries.push((service, report));
        }
        println!();
        println!(
            "{:<20} {:>10} {:>12} {:>13} {:>15} {:>10}",
            "service", "outbox", "oldest (s)", "dead letters", "unknown types", "total lag"
        );
        for (service, report) in summaries {
            println!(
                "{service:<20} {:>10} {:>12.1} {:>13} {:>15} {:>10}",
                report.outbox_depth,
                report.outbox_oldest_seconds,
                report.dead_letters,
                report.skipped_unknown,
                report.total_lag()
            );
        }
        match args.watch {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds.max(1))).await,
            None => return Ok(()),
        }
    }
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The service whose projection to rebuild: order-service.
    service: String,
    /// The service's database.
    #[arg(long, env = "ORDER_DATABASE_URL")]
    database_url: Option<String>,
}

/// `orderctl rebuild`: replays the topics into fresh tables, catches up, checks and swaps.
pub async fn rebuild(broker: &Broker, args: &RebuildArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.service == order_service::SERVICE,
        "{} holds no projection to rebuild: its tables are its source of truth (changed by its own commands, \
         not only by events). Rebuildable: {}",
        args.service,
        order_service::SERVICE
    );
    let url = args.database_url.as_deref().context("set ORDER_DATABASE_URL (or --database-url)")?;
    let pool = orderflow_kit::db::pool(url, 2)?;
    let rebuilt = order_service::rebuild::rebuild(&pool, &broker.brokers, &broker.namespace).await?;
    println!(
        "rebuilt {}: {} orders, {} events replayed ({} skipped) in {:.2} s = {:.0} events/s",
        args.service,
        rebuilt.orders,
        rebuilt.events,
        rebuilt.skipped,
        rebuilt.elapsed.as_secs_f64(),
        rebuilt.rate()
    );
    println!(
        "checksum {} equal for the old and the rebuilt tables; old tables kept in schema order_retired",
        rebuilt.checksum
    );
    Ok(())
}

/// The services, as their dead-letter topics name them.
const SERVICES: [&str; 4] = ["order-service", "inventory-service", "fulfillment-service", "shipping-service"];

/// `orderctl dlq list`: every dead letter of every service (or one), as JSON lines: the
/// service, where it came from, why, and the event where it decodes.
pub async fn dlq_list(broker: &Broker, service: Option<&str>) -> anyhow::Result<()> {
    let services: Vec<&str> = SERVICES.iter().copied().filter(|s| service.is_none_or(|wanted| wanted == *s)).collect();
    anyhow::ensure!(
        !services.is_empty(),
        "unknown service {:?}; one of {}",
        service.unwrap_or_default(),
        SERVICES.join(", ")
    );
    let topics: Vec<String> = services.iter().map(|s| broker.topics().dead_letter(s)).collect();
    let render = Render::new()?;
    let mut out = std::io::stdout();
    for read in events::read_to_end(&broker.brokers, &topics).await? {
        let service =
            services.iter().find(|s| broker.topics().dead_letter(s) == read.topic).copied().unwrap_or_default();
        let dead: serde_json::Map<String, Value> = read
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("dlq.")?.replace('.', "_"), Value::from(v.clone()))))
            .collect();
        let line = merge(json!({ "service": service, "dead_letter": dead }), render.json(&read));
        if writeln!(out, "{line}").is_err() {
            return Ok(());
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DeadLetterArgs {
    /// The service whose dead letter it is, e.g. inventory-service.
    #[arg(long)]
    service: String,
    /// Its offset in the service's dead-letter topic (`dlq list` shows it).
    #[arg(long)]
    offset: i64,
    /// Its partition in the dead-letter topic.
    #[arg(long, default_value_t = 0)]
    partition: i32,
}

/// `orderctl dlq redrive | discard`: sends the answer through the dead letter's source topic;
/// the service carries it out when its consumer reaches it (see docs/adr/0005).
pub async fn dlq_answer(broker: &Broker, args: &DeadLetterArgs, action: dlq::Action) -> anyhow::Result<()> {
    anyhow::ensure!(
        SERVICES.contains(&args.service.as_str()),
        "unknown service {:?}; one of {}",
        args.service,
        SERVICES.join(", ")
    );
    let topic = broker.topics().dead_letter(&args.service);
    let dead = events::read_to_end(&broker.brokers, std::slice::from_ref(&topic))
        .await?
        .into_iter()
        .find(|read| read.partition == args.partition && read.offset == args.offset)
        .with_context(|| {
            format!("{topic} holds no dead letter at partition {} offset {}", args.partition, args.offset)
        })?;
    let (partition, offset) = dlq::answer(&broker.brokers, &dead, action).await?;
    println!(
        "{} of {}'s dead letter {}:{} sent as {}[{partition}]@{offset}; {} carries it out when its consumer gets there",
        action.as_str(),
        args.service,
        args.partition,
        args.offset,
        dead.headers.get(dlq::SOURCE_TOPIC).map_or("?", String::as_str),
        args.service,
    );
    Ok(())
}
