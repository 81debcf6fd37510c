//! `hlscdn-router`: parses its configuration and runs [`router::run`].

use clap::Parser;
use router::config::{Cli, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    origin_store::run_binary("hlscdn-router", Config::load(Cli::parse()), |config| {
        router::run(config, origin_store::server::shutdown_signal())
    })
    .await
}
