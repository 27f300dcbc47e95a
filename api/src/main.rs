fn main() -> std::process::ExitCode {
    vigil_api::cli::main()
}
