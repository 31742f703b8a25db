//! The `capdesk` binary: parses the command line and reports errors for a person.

use clap::Parser as _;

/// Runs allocate many small, short-lived buffers (WIT strings and lists, journal
/// entries); mimalloc serves them markedly faster than the system allocator (see
/// BENCHMARKS.md). The benchmarks use the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAPDESK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Test builds stop at the crash points the FAILPOINTS variable names.
    #[cfg(feature = "failpoints")]
    let _failpoints = capdesk::failpoints::setup();
    let cli = capdesk::cli::Cli::parse();
    match capdesk::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
