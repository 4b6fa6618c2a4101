//! `orderctl shipment`: follow parcels and record the carrier's delivery scans, through
//! shipping-service.

use crate::print;
use clap::Subcommand;
use orderflow_proto::client::Authorized;
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use orderflow_proto::shipping::v1::{ConfirmDeliveryRequest, TrackShipmentRequest};

#[derive(Debug, Subcommand)]
pub enum ShipmentCommand {
    /// A parcel's tracking history.
    Track { tracking_number: String },
    /// Record the carrier's delivery scan: the order ends DELIVERED.
    Deliver { tracking_number: String },
}

pub async fn run(command: ShipmentCommand, mut shipping: ShippingServiceClient<Authorized>) -> anyhow::Result<()> {
    match command {
        ShipmentCommand::Track { tracking_number } => {
            let tracked = shipping.track_shipment(TrackShipmentRequest { tracking_number }).await?.into_inner();
            print::tracking(&tracked);
        }
        ShipmentCommand::Deliver { tracking_number } => {
            let request = ConfirmDeliveryRequest { tracking_number };
            let shipment = shipping.confirm_delivery(request).await?.into_inner().shipment.unwrap_or_default();
            println!("order {} delivered ({} {})", shipment.order_id, shipment.carrier, shipment.tracking_number);
        }
    }
    Ok(())
}
