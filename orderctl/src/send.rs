//! `orderctl events send`: writes one message with whatever key, headers and bytes to a topic,
//! as any client of the broker could (a drill: what do the consumers do with it?).

use crate::ops::Broker;
use clap::Args;
use std::io::Read;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The topic, by stem (orders, inventory, fulfillment, shipping) or full name.
    #[arg(long)]
    topic: String,
    /// The message key.
    #[arg(long, default_value = "")]
    key: String,
    /// A header, `name=value` (repeatable).
    #[arg(long = "header", value_parser = header)]
    headers: Vec<(String, String)>,
    /// The value; without it, the value is read from stdin (`--no-value` sends none).
    #[arg(long, conflicts_with = "no_value")]
    value: Option<String>,
    /// Send a message without a value (a tombstone).
    #[arg(long)]
    no_value: bool,
}

fn header(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected name=value"))
}

pub async fn send(broker: &Broker, args: &SendArgs) -> anyhow::Result<()> {
    let topic = broker.topic_name(&args.topic);
    let value = match (&args.value, args.no_value) {
        (_, true) => None,
        (Some(value), false) => Some(value.clone().into_bytes()),
        (None, false) => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes)?;
            Some(bytes)
        }
    };
    let headers: Vec<(&str, &[u8])> = args.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let (partition, offset) =
        orderflow_kit::events::send_raw(&broker.brokers, &topic, args.key.as_bytes(), &headers, value.as_deref())
            .await?;
    println!("sent to {topic} partition {partition} offset {offset}");
    Ok(())
}
