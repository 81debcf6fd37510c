//! `hlscdn`: parses the command line and runs [`ops::cli::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ops::cli::run(ops::cli::Cli::parse()).await
}
