//! `hlscdn drain EDGE`: looks the edge's URL up in a router's
//! `/api/v1/edges` and posts its `/admin/drain` with the fleet token. The edge
//! sends a `draining` ad at once (routers stop giving it viewers and move the
//! ones it has at their next playlist reload), keeps serving, and exits after
//! a quiet period. `--wait` follows it until routers stop hearing from it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use router_api::fleet::{EdgeState, EdgeView};

use crate::api;

/// `hlscdn drain` flags.
#[derive(Debug, clap::Args)]
#[command(mut_arg("routers", |a| a.required(true)), mut_arg("fleet_token", |a| a.required(true)))]
pub struct Args {
    /// Id of the edge to drain (as `hlscdn status` lists it).
    pub edge: String,
    /// The routers asked for the edge (the first that knows it is used).
    #[command(flatten)]
    pub routers: runtime::config::RoutersArg,
    #[command(flatten)]
    pub trust: api::TrustArg,
    /// The fleet token; the edge refuses a drain without it.
    #[command(flatten)]
    pub fleet: runtime::config::FleetTokenArg,
    /// Wait until the edge has drained and stopped sending ads.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait with `--wait`.
    #[arg(long, default_value = "2m", value_parser = runtime::config::parse_duration)]
    pub timeout: Duration,
}

/// Runs `hlscdn drain`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.trust.apply()?;
    let client = api::client();
    let (router, edge) = find_edge(&client, &args.routers.routers, &args.edge).await?;
    // The edge's own credential: an edge given only its credential accepts
    // nothing else, and one given the fleet token derives the same.
    let fleet_token = args
        .fleet
        .fleet_token
        .as_ref()
        .context("--fleet-token is required")?;
    let credential = router_api::fleet::edge_credential(fleet_token.expose(), &edge.id);
    api::drain_edge(&client, &edge.url, &credential).await?;
    println!(
        "{} ({}) is draining: it takes no new viewers and exits once its viewers have moved",
        edge.id, edge.url
    );
    if args.wait {
        let deadline = Instant::now() + args.timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let view = api::edges(&client, &router).await?;
            let done = view
                .edges
                .iter()
                .find(|e| e.id == edge.id)
                .is_none_or(|e| !e.fresh && e.state == EdgeState::Draining);
            if done {
                println!("{} has drained and stopped", edge.id);
                break;
            }
            if Instant::now() >= deadline {
                bail!("{} is still sending ads after {:?}", edge.id, args.timeout);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first router that knows `id`, and the edge as it sees it.
async fn find_edge(
    client: &reqwest::Client,
    routers: &[String],
    id: &str,
) -> anyhow::Result<(String, EdgeView)> {
    let mut known = Vec::new();
    let mut last_error = None;
    for router in routers {
        api::check_base_url(router)?;
        match api::edges(client, router).await {
            Ok(view) => {
                if let Some(edge) = view.edges.into_iter().find(|e| e.id == id) {
                    return Ok((router.clone(), edge));
                }
                known.push(router.clone());
            }
            Err(error) => last_error = Some(error),
        }
    }
    match (known.is_empty(), last_error) {
        (true, Some(error)) => Err(error).context("no router answers"),
        _ => bail!("no router knows an edge {id:?} (asked {})", known.join(", ")),
    }
}
