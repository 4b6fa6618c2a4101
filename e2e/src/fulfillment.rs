//! Waiting on fulfillment-service's own view: it learns of an order from StockReserved on its
//! own, so an order RESERVED in order-service's view may not be on the pick list yet.

use crate::Stack;
use orderflow_kit::testing;
use orderflow_proto::fulfillment::v1::{FulfillmentStatus, GetFulfillmentRequest};
use std::time::Duration;

impl Stack {
    /// Polls GetFulfillment until the order's fulfillment is `status`.
    pub async fn wait_for_fulfillment(&self, order_id: &str, status: FulfillmentStatus) {
        let fulfillment = self.fulfillment.clone();
        testing::wait_until(&format!("fulfillment of {order_id} is {status:?}"), Duration::from_secs(30), || {
            let mut fulfillment = fulfillment.clone();
            async move {
                let found =
                    fulfillment.get_fulfillment(GetFulfillmentRequest { order_id: order_id.into() }).await.ok()?;
                (found.into_inner().fulfillment?.status == status as i32).then_some(())
            }
        })
        .await;
    }
}
