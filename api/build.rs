//! Compiles the gRPC API. `protoc` is the one `PROTOC` names, else the one bundled with
//! `protoc-bin-vendored`, so a build needs nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    let protoc = match std::env::var_os("PROTOC") {
        Some(protoc) => protoc.into(),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/vigil/v1/event_log.proto"],
        &["proto/vigil/v1"],
    )?;
    Ok(())
}
