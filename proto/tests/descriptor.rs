//! The embedded file descriptor set (for gRPC reflection) describes the API.

use prost::Message;
use prost_types::FileDescriptorSet;
use rustorium_proto::FILE_DESCRIPTOR_SET;

#[test]
fn descriptor_set_has_the_store_service() {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "rustorium.v1")
        .expect("a file of package rustorium.v1");
    assert_eq!(file.name(), "rustorium/v1/store.proto");
    assert_eq!(file.syntax(), "proto3");

    let services: Vec<String> = set
        .file
        .iter()
        .flat_map(|f| f.service.iter().map(move |s| format!("{}.{}", f.package(), s.name())))
        .collect();
    assert!(services.iter().any(|s| s == "rustorium.v1.Store"), "{services:?}");

    let store = file.service.iter().find(|s| s.name() == "Store").unwrap();
    let methods: Vec<(&str, bool, bool)> = store
        .method
        .iter()
        .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
        .collect();
    assert_eq!(
        methods,
        [
            ("Put", false, false),
            ("PutBatch", false, false),
            ("Get", false, false),
            ("Delete", false, false),
            ("GetRoot", false, false),
            ("GetProof", false, false),
            ("Scan", false, true),
            ("WatchRoots", false, true),
            ("Stats", false, false),
            ("Replicate", false, true),
            ("GetPages", false, false),
            ("GetEntries", false, false),
            ("AckReplica", false, false),
        ]
    );
    let get = store.method.iter().find(|m| m.name() == "Get").unwrap();
    assert_eq!(get.input_type(), ".rustorium.v1.GetRequest");
    assert_eq!(get.output_type(), ".rustorium.v1.GetResponse");
}

#[test]
fn descriptor_set_keeps_the_documentation() {
    // Reflection clients show the .proto comments: the source info is kept.
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let file = set.file.iter().find(|f| f.package() == "rustorium.v1").unwrap();
    let info = file.source_code_info.as_ref().expect("source info");
    assert!(
        info.location
            .iter()
            .any(|l| l.leading_comments().contains("32 bytes little-endian")),
        "field comments are in the descriptor"
    );
}

#[test]
fn every_message_and_field_is_documented() {
    // Paths in SourceCodeInfo: [4, m] is message m, [4, m, 2, f] its field f,
    // [4, m, 3, n] its nested message n, [4, m, 8, o] its oneof o; [5, e] is
    // enum e, [5, e, 2, v] its value v; [6, s] is service s, [6, s, 2, r] its
    // method r.
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let file = set.file.iter().find(|f| f.package() == "rustorium.v1").unwrap();
    let info = file.source_code_info.as_ref().unwrap();
    let documented = |path: &[i32]| {
        info.location
            .iter()
            .any(|l| l.path == path && !l.leading_comments().trim().is_empty())
    };
    let mut missing = Vec::new();
    for (m, message) in file.message_type.iter().enumerate() {
        let m = m as i32;
        if !documented(&[4, m]) {
            missing.push(message.name().to_owned());
        }
        for (f, field) in message.field.iter().enumerate() {
            if !documented(&[4, m, 2, f as i32]) {
                missing.push(format!("{}.{}", message.name(), field.name()));
            }
        }
        for (n, nested) in message.nested_type.iter().enumerate() {
            // Map entries are synthetic.
            if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                continue;
            }
            if !documented(&[4, m, 3, n as i32]) {
                missing.push(format!("{}.{}", message.name(), nested.name()));
            }
        }
        for (o, oneof) in message.oneof_decl.iter().enumerate() {
            // Proto3 `optional` fields have synthetic oneofs named `_field`.
            if oneof.name().starts_with('_') {
                continue;
            }
            if !documented(&[4, m, 8, o as i32]) {
                missing.push(format!("{}.{}", message.name(), oneof.name()));
            }
        }
    }
    for (e, enumeration) in file.enum_type.iter().enumerate() {
        if !documented(&[5, e as i32]) {
            missing.push(enumeration.name().to_owned());
        }
        for (v, value) in enumeration.value.iter().enumerate() {
            if !documented(&[5, e as i32, 2, v as i32]) {
                missing.push(value.name().to_owned());
            }
        }
    }
    for (s, service) in file.service.iter().enumerate() {
        if !documented(&[6, s as i32]) {
            missing.push(service.name().to_owned());
        }
        for (r, method) in service.method.iter().enumerate() {
            if !documented(&[6, s as i32, 2, r as i32]) {
                missing.push(format!("{}.{}", service.name(), method.name()));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
