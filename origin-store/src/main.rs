//! `hlscdn-origin`: parses its configuration and runs [`origin_store::run`].

use clap::Parser;
use origin_store::config::{Cli, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run_binary("hlscdn-origin", Config::load(Cli::parse()), |config| {
        origin_store::run(config, runtime::server::shutdown_signal())
    })
    .await
}
