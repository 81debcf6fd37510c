//! `hlscdn-router`: parses its configuration and runs [`router::run`].

use clap::Parser;
use router::config::{Cli, Config};

/// mimalloc: every request allocates a few small buffers (request head,
/// headers, futures), which it serves from per-thread pages for less CPU
/// than the system allocator (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run_binary("hlscdn-router", Config::load(Cli::parse()), |config| {
        router::run(config, runtime::server::shutdown_signal())
    })
    .await
}
