//! `hlscdn-router`: parses its configuration and runs [`router::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    origin_store::init_tracing();
    let config = match router::config::Config::load(router::config::Cli::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("hlscdn-router: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match router::run(config, origin_store::server::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hlscdn-router: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
