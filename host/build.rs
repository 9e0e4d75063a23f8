//! Generates the Nacos 2.x gRPC stubs (`host/proto/nacos_grpc_service.proto`)
//! at build time. `protox` parses the proto in Rust, so building needs no
//! `protoc` on the machine; `tonic-prost-build` turns the descriptors into
//! prost messages and tonic services (servers for the node, clients for the
//! tests and the bench).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/nacos_grpc_service.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // tonic-prost's codec with small starting buffers (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::SmallCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
