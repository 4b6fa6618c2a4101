//! `orderctl warehouse`: the warehouse's work (pick list, pick, sort, pack) when
//! fulfillment-service runs with FULFILLMENT_MODE=manual.

use clap::Subcommand;
use orderflow_proto::client::Authorized;
use orderflow_proto::fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient;
use orderflow_proto::fulfillment::v1::{
    ConfirmPackRequest, ConfirmPickRequest, ConfirmSortRequest, FulfillmentStatus, ListPickTasksRequest,
};

#[derive(Debug, Subcommand)]
pub enum WarehouseCommand {
    /// The pick list, in bin order.
    Picks,
    /// Confirm an order's lines were picked.
    Pick { order_id: String },
    /// Confirm an order's picked lines were consolidated.
    Sort { order_id: String },
    /// Confirm an order was packed; give all four measurements, or none for the standard box.
    Pack {
        order_id: String,
        #[arg(long, default_value_t = 0)]
        weight_grams: u32,
        #[arg(long, default_value_t = 0)]
        length_mm: u32,
        #[arg(long, default_value_t = 0)]
        width_mm: u32,
        #[arg(long, default_value_t = 0)]
        height_mm: u32,
    },
}

pub async fn run(
    command: WarehouseCommand,
    mut fulfillment: FulfillmentServiceClient<Authorized>,
) -> anyhow::Result<()> {
    let confirmed = match command {
        WarehouseCommand::Picks => {
            let tasks = fulfillment.list_pick_tasks(ListPickTasksRequest { page_size: 200 }).await?.into_inner().tasks;
            for task in tasks {
                println!("{:<10} {:>4} x {:<16} order {}", task.bin_location, task.quantity, task.sku, task.order_id);
            }
            return Ok(());
        }
        WarehouseCommand::Pick { order_id } => fulfillment.confirm_pick(ConfirmPickRequest { order_id }).await?,
        WarehouseCommand::Sort { order_id } => fulfillment.confirm_sort(ConfirmSortRequest { order_id }).await?,
        WarehouseCommand::Pack { order_id, weight_grams, length_mm, width_mm, height_mm } => {
            let request = ConfirmPackRequest { order_id, weight_grams, length_mm, width_mm, height_mm };
            fulfillment.confirm_pack(request).await?
        }
    };
    let state = confirmed.into_inner().fulfillment.unwrap_or_default();
    let status = FulfillmentStatus::try_from(state.status).map_or("UNKNOWN", |s| s.as_str_name());
    println!("order {} {status}", state.order_id);
    Ok(())
}
