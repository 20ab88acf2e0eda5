//! The `sluice` command. Everything lives in the library; see `sluice --help`.

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
