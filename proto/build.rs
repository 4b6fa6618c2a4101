//! Compiles the `.proto` files with protox (no system `protoc` needed) and writes the
//! descriptor set that reflection serves.

use prost::Message;

const PROTOS: &[&str] = &[
    "orderflow/common/v1/common.proto",
    "orderflow/events/v1/events.proto",
    "orderflow/order/v1/order.proto",
    "orderflow/inventory/v1/inventory.proto",
    "orderflow/fulfillment/v1/fulfillment.proto",
    "orderflow/shipping/v1/shipping.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let compiled = protox::compile(PROTOS, ["proto"])?;
    // Re-decode through this crate's prost-types so protox's own prost version never matters.
    let bytes = compiled.encode_to_vec();
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("orderflow_descriptor.bin"), &bytes)?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
