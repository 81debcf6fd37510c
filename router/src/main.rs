//! `hlscdn-router`: parses its configuration and runs [`router::run`].

use clap::Parser;
use router::config::{Cli, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run_binary("hlscdn-router", Config::load(Cli::parse()), |config| {
        router::run(config, runtime::server::shutdown_signal())
    })
    .await
}
