//! `hlscdn-origin`: parses its configuration and runs [`origin_store::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    origin_store::init_tracing();
    let config = match origin_store::config::Config::load(origin_store::config::Cli::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("hlscdn-origin: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match origin_store::run(config, origin_store::server::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hlscdn-origin: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
