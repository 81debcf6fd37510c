//! The `hlscdn` command line and the dispatch to each command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{EXIT_ERROR, autoscale, dashboard, demo, drain, status};

/// `hlscdn`: operate an hls-cdn fleet.
#[derive(Debug, Parser)]
#[command(
    name = "hlscdn",
    version,
    about = "hls-cdn operations: demo cluster, fleet status, dashboard, autoscaler"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole local cluster (origin, two routers, three edges, dashboard) until Ctrl-C.
    Demo(demo::Args),
    /// Serve the dashboard and the player page for a fleet.
    Dashboard(dashboard::Args),
    /// Show the fleet's edges and routers; exit 1 when the fleet is unhealthy.
    Status(status::Args),
    /// Drain an edge: it stops taking new viewers and exits once they have moved.
    Drain(drain::Args),
    /// Keep the number of edges at what the routers ask for (`/api/v1/scale`).
    Autoscale(Box<autoscale::Args>),
}

/// Runs a command; logs go to stderr (`RUST_LOG`, default `info` for servers
/// and `warn` for one-shot commands).
pub async fn run(cli: Cli) -> ExitCode {
    let quiet = matches!(cli.command, Command::Status(_) | Command::Drain(_));
    init_tracing(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Dashboard(args) => dashboard::run_command(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Drain(args) => drain::run(args).await,
        Command::Autoscale(args) => autoscale::run(*args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hlscdn: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from(["hlscdn", "demo", "--base-port", "18000", "--autoscale"]);
        assert!(
            matches!(cli.map(|c| c.command), Ok(Command::Demo(a)) if a.base_port == 18000 && a.autoscale)
        );
        let cli = Cli::try_parse_from(["hlscdn", "status", "--router", "http://127.0.0.1:8080", "--json"]);
        assert!(matches!(cli.map(|c| c.command), Ok(Command::Status(a)) if a.json));
        let cli = Cli::try_parse_from([
            "hlscdn",
            "drain",
            "edge-2",
            "--router",
            "http://127.0.0.1:8080",
            "--fleet-token",
            "t",
        ]);
        assert!(matches!(cli.map(|c| c.command), Ok(Command::Drain(a)) if a.edge == "edge-2"));
        let cli = Cli::try_parse_from([
            "hlscdn",
            "autoscale",
            "--router",
            "http://127.0.0.1:8080",
            "--exec",
            "kubectl scale deploy/hlscdn-edge --replicas={replicas}",
        ]);
        assert!(cli.is_ok());
        let neither = Cli::try_parse_from(["hlscdn", "autoscale", "--router", "http://127.0.0.1:8080"]);
        assert!(neither.is_err(), "--exec or --local is required");
        for args in [
            &["hlscdn", "status"][..],
            &["hlscdn", "autoscale", "--local"],
            &["hlscdn", "drain", "e", "--router", "http://r:1"],
        ] {
            if std::env::var_os("HLSCDN_ROUTERS").is_none()
                && std::env::var_os("HLSCDN_FLEET_TOKEN").is_none()
            {
                assert!(
                    Cli::try_parse_from(args).is_err(),
                    "{args:?}: a required flag is missing"
                );
            }
        }
        let cli = Cli::try_parse_from([
            "hlscdn",
            "drain",
            "e",
            "--router",
            "http://r:1",
            "--fleet-token",
            "t",
            "--timeout",
            "90s",
        ]);
        assert!(matches!(cli.map(|c| c.command), Ok(Command::Drain(a)) if a.timeout.as_secs() == 90));
    }
}
