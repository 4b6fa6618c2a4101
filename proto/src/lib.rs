//! Generated protobuf and gRPC code for Orderflow: the one crate that runs codegen.

/// Types shared by the APIs and the events.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("orderflow.common.v1");
    }
}

/// The event envelope and every event payload.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("orderflow.events.v1");
    }
}

/// `orderflow.order.v1.OrderService`.
pub mod order {
    pub mod v1 {
        tonic::include_proto!("orderflow.order.v1");
    }
}

/// `orderflow.inventory.v1.InventoryService`.
pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("orderflow.inventory.v1");
    }
}

/// `orderflow.fulfillment.v1.FulfillmentService`.
pub mod fulfillment {
    pub mod v1 {
        tonic::include_proto!("orderflow.fulfillment.v1");
    }
}

/// `orderflow.shipping.v1.ShippingService`.
pub mod shipping {
    pub mod v1 {
        tonic::include_proto!("orderflow.shipping.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Orderflow proto, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/orderflow_descriptor.bin"));
