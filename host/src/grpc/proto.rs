//! The generated stubs of `host/proto/nacos_grpc_service.proto` (see
//! `host/build.rs`): the `Payload` envelope and the `Request` and
//! `BiRequestStream` services, servers for the node and clients for tests
//! and the bench.

#![allow(clippy::all, clippy::pedantic, missing_docs, non_camel_case_types)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));
