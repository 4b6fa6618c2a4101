//! `orderctl shipment`: follow parcels, the couriers' pick-up manifests and collections, and
//! record carrier scans, through shipping-service.

use crate::print;
use anyhow::Context;
use clap::Subcommand;
use orderflow_proto::client::Authorized;
use orderflow_proto::shipping::v1::shipping_service_client::ShippingServiceClient;
use orderflow_proto::shipping::v1::{
    ConfirmDeliveryRequest, ConfirmPickupRequest, ListPickupsRequest, PickupOutcome, RecordTrackingEventRequest,
    ShipmentStatus, TrackShipmentRequest,
};

#[derive(Debug, Subcommand)]
pub enum ShipmentCommand {
    /// A parcel's tracking history.
    Track { tracking_number: String },
    /// The labelled parcels awaiting a courier's collection (of one carrier with --carrier).
    Pickups {
        #[arg(long, default_value = "")]
        carrier: String,
    },
    /// A courier's collection scan: each parcel becomes SHIPPED; answered per parcel.
    Pickup {
        #[arg(long)]
        carrier: String,
        #[arg(required = true)]
        tracking_numbers: Vec<String>,
    },
    /// Record one carrier scan (idempotent by --scan-id; --at is RFC 3339, default now).
    Scan {
        tracking_number: String,
        /// in-transit, out-for-delivery, delivery-failed, delivered or returned.
        #[arg(long, value_parser = scan_status)]
        status: ShipmentStatus,
        #[arg(long)]
        scan_id: String,
        #[arg(long, default_value = "")]
        location: String,
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record the carrier's delivery scan: the order ends DELIVERED.
    Deliver { tracking_number: String },
}

/// A carrier scan's status as typed: `in-transit` or `IN_TRANSIT` and so on (the server says
/// which it takes).
fn scan_status(typed: &str) -> Result<ShipmentStatus, String> {
    ShipmentStatus::from_str_name(&typed.trim().replace('-', "_").to_ascii_uppercase())
        .ok_or_else(|| format!("{typed:?} is not a shipment status, e.g. in-transit, out-for-delivery, delivered"))
}

pub async fn run(command: ShipmentCommand, mut shipping: ShippingServiceClient<Authorized>) -> anyhow::Result<()> {
    match command {
        ShipmentCommand::Track { tracking_number } => {
            let tracked = shipping.track_shipment(TrackShipmentRequest { tracking_number }).await?.into_inner();
            print::tracking(&tracked);
        }
        ShipmentCommand::Pickups { carrier } => {
            let mut page_token = String::new();
            loop {
                let request = ListPickupsRequest { carrier: carrier.clone(), page_size: 1_000, page_token };
                let page = shipping.list_pickups(request).await?.into_inner();
                page.parcels.iter().for_each(print::pickup);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        ShipmentCommand::Pickup { carrier, tracking_numbers } => {
            let request = ConfirmPickupRequest { carrier, tracking_numbers };
            for result in shipping.confirm_pickup(request).await?.into_inner().results {
                let outcome = PickupOutcome::try_from(result.outcome).unwrap_or_default().as_str_name();
                println!("{}  {outcome}  {}", result.tracking_number, result.detail);
            }
        }
        ShipmentCommand::Scan { tracking_number, status, scan_id, location, at, note } => {
            let occurred_at = at
                .map(|at| {
                    chrono::DateTime::parse_from_rfc3339(&at).with_context(|| format!("--at {at:?} is not RFC 3339"))
                })
                .transpose()?
                .map(|at| orderflow_kit::envelope::timestamp(at.with_timezone(&chrono::Utc)));
            let status = status as i32;
            let request = RecordTrackingEventRequest { tracking_number, scan_id, status, location, occurred_at, note };
            let answer = shipping.record_tracking_event(request).await?.into_inner();
            let shipment = answer.shipment.unwrap_or_default();
            let status = ShipmentStatus::try_from(shipment.status).unwrap_or_default().as_str_name();
            let how = if answer.duplicate {
                "seen before: nothing changed"
            } else if answer.current {
                "recorded"
            } else {
                "recorded in the history (older than the parcel's state)"
            };
            println!("{} {status}: scan {how}", shipment.tracking_number);
        }
        ShipmentCommand::Deliver { tracking_number } => {
            let request = ConfirmDeliveryRequest { tracking_number };
            let shipment = shipping.confirm_delivery(request).await?.into_inner().shipment.unwrap_or_default();
            println!("order {} delivered ({} {})", shipment.order_id, shipment.carrier, shipment.tracking_number);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_status_is_typed_either_way() {
        assert_eq!(scan_status("in-transit"), Ok(ShipmentStatus::InTransit));
        assert_eq!(scan_status("OUT_FOR_DELIVERY"), Ok(ShipmentStatus::OutForDelivery));
        assert!(scan_status("lost").unwrap_err().contains("\"lost\" is not a shipment status"));
    }
}
