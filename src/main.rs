//! The `sluice` command. Everything lives in the library; see `sluice --help`.

/// mimalloc instead of glibc malloc: the pipeline allocates and frees many small strings per
/// record, and glibc's allocator spent ~23% of the agent path's CPU on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
