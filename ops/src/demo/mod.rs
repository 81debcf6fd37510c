//! `hlscdn demo`: a whole cluster on loopback, as real child processes: the
//! origin publishing the demo streams into a `file://` store, two routers
//! (peers of each other), three edges (seeded with both routers), the
//! dashboard, and with `--autoscale` the local autoscaler. With `--tls`
//! every server speaks HTTPS with certificates of a CA made for the run.
//!
//! Ports (`--base-port B`, default 8000): origin B, routers B+80 and B+81,
//! dashboard B+90, edges B+1001, B+1002, …; edges the autoscaler adds follow
//! the last of them.
//!
//! The binaries are found next to `hlscdn` (`target/release/` after `cargo
//! run --release -p ops -- demo`) and built with cargo when missing. Each run
//! draws a fresh fleet token and signing key, so segment URLs are signed.
//! Children run in their own process group with their output in
//! `<data dir>/logs/`; one that dies is reported and restarted (an edge that
//! exits 0 after a drain is not: draining means taking it out). Ctrl-C or
//! SIGTERM drains the edges first, then stops the routers, the dashboard and
//! the origin, and sweeps the process group.
//!
//! # Layout
//!
//! - this file: the flags, the constants, and [`run`]: start, wait, supervise, stop in order.
//! - `ports.rs`: where everything listens ([`Layout`]) and the check that those ports are free.
//! - `binaries.rs`: finding the binaries next to `hlscdn`, or building them with cargo.
//! - `plan.rs`: the children to start: their flags, environment, logs and restart policies.
//! - `startup.rs`: waiting until the cluster is ready, or failing with the log of a child that died.
//! - `report.rs`: what the demo prints: the banner once it is up, and supervisor events.

mod binaries;
mod plan;
mod ports;
mod report;
mod startup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::supervisor::{Group, Supervised};

pub use binaries::{BINARIES, ensure_binaries, sibling};
pub use ports::Layout;

use plan::Role;

/// Longest wait for the whole cluster to be ready.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Edge capacity in `--autoscale` mode unless given: small, so that a few
/// players push utilization over the target.
pub const AUTOSCALE_CAPACITY_BPS: u64 = 2_000_000;
/// Edges the autoscaler may add on top of the base ones.
pub const AUTOSCALE_EXTRA_EDGES: u16 = 2;
/// Demo edges end a drain after this long without requests, milliseconds.
pub const DRAIN_QUIET_MS: u64 = 3_000;
/// Demo edges end a drain after this long at most, milliseconds.
pub const DRAIN_TIMEOUT_MS: u64 = 20_000;
/// Cache of each demo edge.
pub const EDGE_CACHE_BYTES: u64 = 256 << 20;

/// `hlscdn demo` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Origin port; routers at +80 and +81, dashboard at +90, edges from +1001.
    #[arg(long, default_value_t = 8000)]
    pub base_port: u16,
    /// Number of edges.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub edges: u16,
    /// Run the local autoscaler too; edges get a small capacity (see --capacity-bps).
    #[arg(long)]
    pub autoscale: bool,
    /// Egress capacity each edge advertises, bits/s (default: 1 Gbit/s; 2 Mbit/s with --autoscale).
    #[arg(long)]
    pub capacity_bps: Option<u64>,
    /// Keep the store and logs here (default: a temporary directory removed at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Build the binaries with cargo before starting, even if they exist.
    #[arg(long)]
    pub build: bool,
    /// Serve everything over HTTPS (HTTP/2 and HTTP/1.1) with certificates of a
    /// CA made for this run (in `<data dir>/tls/`); prints how to trust it.
    #[arg(long)]
    pub tls: bool,
}

impl Args {
    /// Edges the autoscaler may add: none without `--autoscale`.
    fn extra_edges(&self) -> u16 {
        if self.autoscale { AUTOSCALE_EXTRA_EDGES } else { 0 }
    }

    /// The port layout these flags ask for.
    fn layout(&self) -> anyhow::Result<Layout> {
        Layout::new(self.base_port, self.edges, self.extra_edges())
    }
}

/// The URL of a demo server on `port`: `https://` with `--tls`.
fn url(tls: bool, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}")
}

/// Runs `hlscdn demo` until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let layout = args.layout()?;
    ports::check_free(&layout)?;
    let bins = ensure_binaries(args.build)?;
    let temp;
    let data = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("hlscdn-demo-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let plan = plan::plan(&args, &bins, &data)?;
    let logs = data.join("logs");
    println!(
        "hlscdn demo: starting {} processes (logs in {})",
        plan.specs.len(),
        logs.display()
    );

    let group = Group::new();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut ready_urls = Vec::new();
    let mut children: Vec<(Role, Supervised)> = Vec::new();
    // The autoscaler starts once the cluster is up: before, the base edges
    // are not fresh yet and it would start edges to make up for them.
    let (later, now): (Vec<_>, Vec<_>) = plan
        .specs
        .into_iter()
        .partition(|(role, _, _)| *role == Role::Autoscaler);
    for (role, spec, ready) in now {
        if let Some(url) = ready {
            ready_urls.push((spec.name.clone(), url));
        }
        children.push((role, Supervised::start(spec, group.clone(), events_tx.clone())));
    }

    let first_router = url(args.tls, plan.layout.routers()[0]);
    if let Some(ca) = &plan.ca_file {
        // This process waits on the servers' `/readyz` over https too.
        crate::api::trust(runtime::tls::ClientTls::load(Some(ca), None, None).map_err(anyhow::Error::msg)?);
    }
    let mut shutdown = std::pin::pin!(runtime::server::shutdown_signal());
    let startup = tokio::select! {
        ready = startup::wait_ready(&ready_urls, &first_router, usize::from(args.edges), &mut events, &logs) => ready,
        () = &mut shutdown => Err(anyhow::anyhow!("interrupted during startup")),
    };
    let code = match startup {
        Ok(()) => {
            for (role, spec, _) in later {
                children.push((role, Supervised::start(spec, group.clone(), events_tx.clone())));
            }
            drop(events_tx);
            report::print_banner(
                &plan.layout,
                &args,
                &plan.fleet_token,
                &data,
                started.elapsed(),
                plan.ca_file.as_deref(),
            );
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => report::print_event(&event, &logs),
                        None => break,
                    },
                    () = &mut shutdown => break,
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hlscdn demo: {error:#}");
            ExitCode::from(crate::EXIT_ERROR)
        }
    };

    println!("demo: stopping: edges drain first");
    let stopping = Instant::now();
    let ordered = async {
        for roles in [
            &[Role::Edge, Role::Autoscaler][..],
            &[Role::Router, Role::Dashboard][..],
            &[Role::Origin][..],
        ] {
            let (now, later): (Vec<_>, Vec<_>) = children.drain(..).partition(|(r, _)| roles.contains(r));
            children = later;
            join_all(now.into_iter().map(|(_, child)| child.stop())).await;
        }
    };
    let second_signal = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::select! {
        () = ordered => {}
        () = second_signal => println!("demo: second interrupt: killing everything"),
    }
    while let Ok(event) = events.try_recv() {
        report::print_event(&event, &logs);
    }
    group.kill_all();
    println!("demo: stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    Ok(code)
}
