fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::compile_protos("proto/vigil/v1/event_log.proto")?;
    Ok(())
}
