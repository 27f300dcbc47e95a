// Vigil allocates many small, short-lived values across threads (decoded commits, rows, JSON);
// mimalloc handles that markedly better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vigil_api::cli::main()
}
