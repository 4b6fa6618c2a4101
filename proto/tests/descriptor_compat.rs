//! Fails on a breaking schema change: every field of the committed descriptor set must still
//! exist with the same number, name, type and label. Adding fields and messages is fine.
//! After an intended, compatible change run `UPDATE_DESCRIPTOR=1 cargo test -p orderflow-proto`.

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};
use std::collections::HashMap;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/descriptor.bin");

fn messages(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    fn walk(prefix: &str, msg: &DescriptorProto, out: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", msg.name());
        for nested in &msg.nested_type {
            walk(&name, nested, out);
        }
        out.insert(name, msg.clone());
    }
    let mut out = HashMap::new();
    for file in &set.file {
        for msg in &file.message_type {
            walk(file.package(), msg, &mut out);
        }
    }
    out
}

#[test]
fn schema_changes_are_backward_compatible() {
    let current = FileDescriptorSet::decode(orderflow_proto::FILE_DESCRIPTOR_SET).unwrap();
    if std::env::var_os("UPDATE_DESCRIPTOR").is_some() {
        std::fs::write(COMMITTED, orderflow_proto::FILE_DESCRIPTOR_SET).unwrap();
        return;
    }
    let committed = FileDescriptorSet::decode(std::fs::read(COMMITTED).unwrap().as_slice()).unwrap();
    let now = messages(&current);
    let mut broken = Vec::new();
    for (name, old) in messages(&committed) {
        let Some(new) = now.get(&name) else {
            broken.push(format!("message {name} was removed"));
            continue;
        };
        for field in &old.field {
            match new.field.iter().find(|f| f.number == field.number) {
                None => broken.push(format!("{name}: field {} was removed", field.number())),
                Some(f)
                    if f.name != field.name
                        || f.r#type != field.r#type
                        || f.label != field.label
                        || f.type_name != field.type_name =>
                {
                    broken.push(format!("{name}: field {} changed", field.number()));
                }
                Some(_) => {}
            }
        }
    }
    assert!(broken.is_empty(), "breaking proto changes: {broken:#?}");
}
