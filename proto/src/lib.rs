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

        /// The port this API is served on unless configured otherwise (../shared/API.md).
        pub const DEFAULT_PORT: u16 = 50051;
    }
}

/// `orderflow.inventory.v1.InventoryService`.
pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("orderflow.inventory.v1");

        /// The port this API is served on unless configured otherwise (../shared/API.md).
        pub const DEFAULT_PORT: u16 = 50052;
    }
}

/// `orderflow.fulfillment.v1.FulfillmentService`.
pub mod fulfillment {
    pub mod v1 {
        tonic::include_proto!("orderflow.fulfillment.v1");

        /// The port this API is served on unless configured otherwise (../shared/API.md).
        pub const DEFAULT_PORT: u16 = 50053;
    }
}

/// `orderflow.shipping.v1.ShippingService`.
pub mod shipping {
    pub mod v1 {
        tonic::include_proto!("orderflow.shipping.v1");

        /// The port this API is served on unless configured otherwise (../shared/API.md).
        pub const DEFAULT_PORT: u16 = 50054;
    }
}

/// Each service and the port its API is served on by default: the one place the ports are
/// written (the services, orderctl's defaults and `orderctl ports`, which scripts/lib.sh reads).
pub const DEFAULT_PORTS: [(&str, u16); 4] = [
    ("order", order::v1::DEFAULT_PORT),
    ("inventory", inventory::v1::DEFAULT_PORT),
    ("fulfillment", fulfillment::v1::DEFAULT_PORT),
    ("shipping", shipping::v1::DEFAULT_PORT),
];

/// The encoded `FileDescriptorSet` of every Orderflow proto, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/orderflow_descriptor.bin"));

/// What a client needs beside the generated stubs: its bearer token on every call.
pub mod client {
    use tonic::metadata::{Ascii, MetadataValue};
    use tonic::service::Interceptor;
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::Channel;
    use tonic::{Request, Status};

    /// Adds `authorization: Bearer <token>` to every request.
    #[derive(Debug, Clone)]
    pub struct Bearer(MetadataValue<Ascii>);

    impl Bearer {
        /// `None` if the token cannot be sent as metadata (not printable ASCII).
        pub fn new(token: &str) -> Option<Self> {
            format!("Bearer {}", token.trim()).parse().ok().map(Self)
        }
    }

    impl Interceptor for Bearer {
        fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
            request.metadata_mut().insert("authorization", self.0.clone());
            Ok(request)
        }
    }

    /// A channel that sends the token with every call: `XServiceClient<Authorized>`.
    pub type Authorized = InterceptedService<Channel, Bearer>;
}
