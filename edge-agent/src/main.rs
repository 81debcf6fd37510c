//! `hlscdn-edge`: parses its configuration and runs [`edge_agent::run`].
//! Exits 0 after a drain, 1 when a second signal cut the drain short or
//! running failed, 2 on a bad configuration.

use clap::Parser;
use edge_agent::Outcome;
use edge_agent::config::{Cli, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run_binary("hlscdn-edge", Config::load(Cli::parse()), |config| async move {
        match edge_agent::run(config).await? {
            Outcome::Drained => Ok(()),
            Outcome::Forced => Err(anyhow::anyhow!("a second signal cut the drain short")),
        }
    })
    .await
}
