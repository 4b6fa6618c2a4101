//! `orderctl stock`: stock levels, from inventory-service.

use crate::print;
use clap::Subcommand;
use orderflow_proto::client::Authorized;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{GetStockRequest, ListBackordersRequest, ListLowStockRequest, ListStockRequest};

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// One product's stock.
    Get { sku: String },
    /// Every product's stock.
    List,
    /// Products whose low-stock alert is raised.
    Low,
    /// Held orders per SKU, in the order restocks serve them (of one SKU with --sku).
    Backorders {
        #[arg(long, default_value = "")]
        sku: String,
    },
}

pub async fn run(command: StockCommand, mut inventory: InventoryServiceClient<Authorized>) -> anyhow::Result<()> {
    let items = match command {
        StockCommand::Backorders { sku } => {
            for backorder in inventory.list_backorders(ListBackordersRequest { sku }).await?.into_inner().items {
                println!(
                    "{}  {} unit(s) awaited by {} order(s)",
                    backorder.sku,
                    backorder.units_awaited,
                    backorder.orders.len()
                );
                for held in backorder.orders {
                    println!(
                        "  {}  x{}  held {}  expires {}",
                        held.order_id,
                        held.quantity,
                        print::time(held.held_at.as_ref()),
                        print::time(held.expires_at.as_ref())
                    );
                }
            }
            return Ok(());
        }
        StockCommand::Get { sku } => vec![inventory.get_stock(GetStockRequest { sku }).await?.into_inner()],
        StockCommand::Low => inventory.list_low_stock(ListLowStockRequest {}).await?.into_inner().items,
        StockCommand::List => {
            let (mut items, mut page_token) = (Vec::new(), String::new());
            loop {
                let page = inventory.list_stock(ListStockRequest { page_size: 100, page_token }).await?.into_inner();
                items.extend(page.items);
                if page.next_page_token.is_empty() {
                    break items;
                }
                page_token = page.next_page_token;
            }
        }
    };
    print::stock_header();
    items.iter().for_each(print::stock);
    Ok(())
}
