//! `orderctl dlq`: the dead-letter topics: list them, and answer a dead letter (redrive or
//! discard) through the log; no token needed (see `ops`).

use crate::ops::{self, Broker};
use clap::Subcommand;
use orderflow_kit::dlq;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Every dead letter (or one service's): why, where from, and the event.
    List {
        /// Only this service's dead letters, e.g. inventory-service.
        #[arg(long)]
        service: Option<String>,
    },
    /// Apply a dead letter again once its cause is fixed; the events of its order that waited
    /// behind it follow in order. Redriving it twice applies it once.
    Redrive(ops::DeadLetterArgs),
    /// Drop a dead letter for good; the events of its order that waited behind it are applied.
    Discard(ops::DeadLetterArgs),
}

pub async fn run(broker: &Broker, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { service } => ops::dlq_list(broker, service.as_deref()).await,
        DlqCommand::Redrive(args) => ops::dlq_answer(broker, &args, dlq::Action::Redrive).await,
        DlqCommand::Discard(args) => ops::dlq_answer(broker, &args, dlq::Action::Discard).await,
    }
}
