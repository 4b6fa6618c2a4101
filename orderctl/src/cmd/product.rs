//! `orderctl product`: create or update products and add stock, through inventory-service.

use crate::print;
use clap::Subcommand;
use orderflow_proto::client::Authorized;
use orderflow_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use orderflow_proto::inventory::v1::{RestockRequest, UpsertProductRequest};

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Create a product or update its description.
    Upsert {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        bin: String,
        #[arg(long)]
        weight_grams: u32,
        #[arg(long, default_value_t = 0)]
        low_stock_threshold: i64,
    },
    /// Add stock to a product.
    Restock {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        quantity: i64,
    },
}

pub async fn run(command: ProductCommand, mut inventory: InventoryServiceClient<Authorized>) -> anyhow::Result<()> {
    match command {
        ProductCommand::Upsert { sku, name, bin, weight_grams, low_stock_threshold } => {
            let request = UpsertProductRequest { sku, name, bin_location: bin, weight_grams, low_stock_threshold };
            let product = inventory.upsert_product(request).await?.into_inner().product.unwrap_or_default();
            println!("product {} saved ({}, bin {})", product.sku, product.name, product.bin_location);
        }
        ProductCommand::Restock { sku, quantity } => {
            let stock =
                inventory.restock(RestockRequest { sku, quantity }).await?.into_inner().stock.unwrap_or_default();
            print::stock_header();
            print::stock(&stock);
        }
    }
    Ok(())
}
