//! `hlscdn demo`: a whole cluster on loopback, as real child processes: the
//! origin publishing the demo streams into a `file://` store, two routers
//! (peers of each other), three edges (seeded with both routers), the
//! dashboard, and with `--autoscale` the local autoscaler.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::api;
use crate::supervisor::{Event, Group, Restart, Spec, Supervised};

/// The binaries the demo runs: (package, binary).
pub const BINARIES: &[(&str, &str)] = &[
    ("origin-store", "hlscdn-origin"),
    ("router", "hlscdn-router"),
    ("edge-agent", "hlscdn-edge"),
];

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
}

/// Where everything listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    base: u16,
    edges: u16,
    extra: u16,
}

impl Layout {
    /// The layout for a base port, `edges` edges and `extra` autoscaled ones.
    pub fn new(base: u16, edges: u16, extra: u16) -> anyhow::Result<Layout> {
        let last = u32::from(base) + 1000 + u32::from(edges) + u32::from(extra);
        if base < 1024 || last > u32::from(u16::MAX) {
            bail!("--base-port {base} leaves no room: ports {base}..={last} must lie within 1024..=65535");
        }
        Ok(Layout { base, edges, extra })
    }

    /// The origin's port.
    pub fn origin(&self) -> u16 {
        self.base
    }

    /// The routers' ports.
    pub fn routers(&self) -> [u16; 2] {
        [self.base + 80, self.base + 81]
    }

    /// The dashboard's port.
    pub fn dashboard(&self) -> u16 {
        self.base + 90
    }

    /// Port of edge `i` (0-based; its id is `edge-<i+1>`).
    pub fn edge(&self, i: u16) -> u16 {
        self.base + 1001 + i
    }

    /// Port of the first edge the autoscaler adds.
    pub fn first_extra_edge(&self) -> u16 {
        self.edge(self.edges)
    }

    /// Every port the demo binds.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.origin()];
        ports.extend(self.routers());
        ports.push(self.dashboard());
        ports.extend((0..self.edges + self.extra).map(|i| self.edge(i)));
        ports
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The path of binary `name` next to the running `hlscdn`.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the hlscdn executable")?;
    let dir = exe.parent().context("the hlscdn executable has no directory")?;
    Ok(dir.join(name))
}

/// Finds the binaries next to `hlscdn`; builds the missing ones (all of them
/// with `rebuild`) with cargo in the workspace this `hlscdn` was built from.
pub fn ensure_binaries(rebuild: bool) -> anyhow::Result<BTreeMap<&'static str, PathBuf>> {
    let mut paths = BTreeMap::new();
    let mut missing = Vec::new();
    for (package, bin) in BINARIES {
        let path = sibling(bin)?;
        if rebuild || !path.exists() {
            missing.push((*package, *bin));
        }
        paths.insert(*bin, path);
    }
    if missing.is_empty() {
        return Ok(paths);
    }
    let exe_dir = sibling("")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|w| w.join("Cargo.toml").exists())
        .with_context(|| {
            format!(
                "{} missing next to hlscdn ({}), and the workspace hlscdn was built from is not here to build them",
                missing.iter().map(|(_, b)| *b).collect::<Vec<_>>().join(", "),
                exe_dir.display()
            )
        })?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = build_args(&exe_dir, &missing);
    println!(
        "hlscdn demo: building {} in {}: {cargo} {}",
        missing.iter().map(|(_, b)| *b).collect::<Vec<_>>().join(", "),
        workspace.display(),
        args.join(" ")
    );
    let mut command = std::process::Command::new(&cargo);
    command.current_dir(workspace).args(&args);
    let status = command.status().with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("building the binaries failed ({status})");
    }
    for (_, bin) in &missing {
        if !paths.get(bin).is_some_and(|p| p.exists()) {
            bail!("cargo built {bin} somewhere else than {}", exe_dir.display());
        }
    }
    Ok(paths)
}

/// The `cargo` arguments that build `missing` (package, binary) into `exe_dir`
/// (`<target dir>/<profile>`).
fn build_args(exe_dir: &Path, missing: &[(&str, &str)]) -> Vec<String> {
    let mut args = vec!["build".to_owned()];
    match exe_dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug") {
        "release" => args.push("--release".into()),
        "debug" => {}
        other => args.extend(["--profile".into(), other.to_owned()]),
    }
    if let Some(target) = exe_dir.parent() {
        args.extend(["--target-dir".into(), target.display().to_string()]);
    }
    for (package, bin) in missing {
        args.extend([
            "-p".into(),
            (*package).to_owned(),
            "--bin".into(),
            (*bin).to_owned(),
        ]);
    }
    args
}

/// Checks that every port is free on loopback.
fn check_ports(layout: &Layout) -> anyhow::Result<()> {
    for port in layout.ports() {
        if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            bail!(
                "port {port} is not free ({error}); is another demo running? Try --base-port {}",
                u32::from(layout.base) + 100
            );
        }
    }
    Ok(())
}

/// What a child is, for the stop order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Origin,
    Router,
    Edge,
    Dashboard,
    Autoscaler,
}

struct Plan {
    layout: Layout,
    specs: Vec<(Role, Spec, Option<String>)>,
    fleet_token: String,
}

fn plan(args: &Args, bins: &BTreeMap<&str, PathBuf>, data: &Path) -> anyhow::Result<Plan> {
    let extra = if args.autoscale { AUTOSCALE_EXTRA_EDGES } else { 0 };
    let layout = Layout::new(args.base_port, args.edges, extra)?;
    let logs = data.join("logs");
    let store = data.join("store");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    let store = store.canonicalize()?;
    let fleet_token = crate::random_secret();
    let signing_key = format!("demo:{}", crate::random_secret());
    let secrets = vec![
        ("HLSCDN_FLEET_TOKEN".to_owned(), fleet_token.clone()),
        ("HLSCDN_SIGNING_KEYS".to_owned(), signing_key),
    ];
    let hlscdn = std::env::current_exe()?;
    let origin = url(layout.origin());
    let routers: Vec<String> = layout.routers().iter().map(|&p| url(p)).collect();
    let capacity = args
        .capacity_bps
        .or(args.autoscale.then_some(AUTOSCALE_CAPACITY_BPS));
    let spec =
        |name: &str, program: &Path, args: Vec<String>, envs: &[(String, String)], restart, stop| Spec {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            envs: envs.to_vec(),
            log: logs.join(format!("{name}.log")),
            restart,
            stop_timeout: Duration::from_secs(stop),
            echo: false,
        };
    let binary = |name: &str| {
        bins.get(name)
            .cloned()
            .with_context(|| format!("no path for {name}"))
    };
    let (origin_bin, router_bin, edge_bin) = (
        binary("hlscdn-origin")?,
        binary("hlscdn-router")?,
        binary("hlscdn-edge")?,
    );
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let mut specs = Vec::new();

    specs.push((
        Role::Origin,
        spec(
            "origin",
            &origin_bin,
            vec![
                "--listen".into(),
                format!("127.0.0.1:{}", layout.origin()),
                "--store".into(),
                format!("file://{}", store.display()),
                "--publish-demo".into(),
            ],
            &[],
            Restart::Always,
            15,
        ),
        Some(origin.clone()),
    ));

    let router_config = if args.autoscale {
        let path = data.join("router.toml");
        std::fs::write(
            &path,
            format!(
                "# Written by `hlscdn demo --autoscale`.\n[autoscale]\ntarget_utilization = 0.6\n\
                 min_edges = {}\nmax_edges = {}\ncooldown_secs = 5\n",
                args.edges,
                args.edges + extra
            ),
        )?;
        Some(path)
    } else {
        None
    };
    for (i, port) in layout.routers().iter().enumerate() {
        let mut router_args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--public-url".into(),
            url(*port),
            "--origin".into(),
            origin.clone(),
        ];
        for (j, peer) in routers.iter().enumerate() {
            if i != j {
                router_args.extend(["--peer".to_owned(), peer.clone()]);
            }
        }
        if let Some(config) = &router_config {
            router_args.extend(["--config".to_owned(), config.display().to_string()]);
        }
        specs.push((
            Role::Router,
            spec(
                &format!("router-{}", i + 1),
                &router_bin,
                router_args,
                &secrets,
                Restart::Always,
                15,
            ),
            Some(url(*port)),
        ));
    }

    let edge_flags = vec![
        format!("--drain-quiet-ms={DRAIN_QUIET_MS}"),
        format!("--drain-timeout-ms={DRAIN_TIMEOUT_MS}"),
        format!("--cache-bytes={EDGE_CACHE_BYTES}"),
    ];
    let edge_stop = DRAIN_TIMEOUT_MS / 1000 + 5;
    for i in 0..args.edges {
        let id = format!("edge-{}", i + 1);
        let port = layout.edge(i);
        let mut edge_args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--id".into(),
            id.clone(),
            "--public-url".into(),
            url(port),
            "--origin".into(),
            origin.clone(),
        ];
        for router in &routers {
            edge_args.extend(["--router".to_owned(), router.clone()]);
        }
        if let Some(capacity) = capacity {
            edge_args.push(format!("--capacity-bps={capacity}"));
        }
        edge_args.extend(edge_flags.iter().cloned());
        specs.push((
            Role::Edge,
            spec(
                &id,
                &edge_bin,
                edge_args,
                &secrets,
                Restart::UnlessClean,
                edge_stop,
            ),
            Some(url(port)),
        ));
    }

    let mut dashboard_args = strings(&["dashboard", "--listen"]);
    dashboard_args.push(format!("127.0.0.1:{}", layout.dashboard()));
    dashboard_args.extend(["--origin".to_owned(), origin.clone()]);
    for router in &routers {
        dashboard_args.extend(["--router".to_owned(), router.clone()]);
    }
    specs.push((
        Role::Dashboard,
        spec("dashboard", &hlscdn, dashboard_args, &[], Restart::Always, 15),
        Some(url(layout.dashboard())),
    ));

    if args.autoscale {
        let mut scaler = strings(&["autoscale", "--local", "--interval-ms", "1000", "--origin"]);
        scaler.push(origin.clone());
        for router in &routers {
            scaler.extend(["--router".to_owned(), router.clone()]);
        }
        scaler.extend([
            "--edge-binary".to_owned(),
            edge_bin.display().to_string(),
            "--first-port".into(),
            layout.first_extra_edge().to_string(),
            "--id-prefix".into(),
            "edge-".into(),
            "--first-index".into(),
            (args.edges + 1).to_string(),
            "--log-dir".into(),
            logs.display().to_string(),
            "--stop-timeout-secs".into(),
            edge_stop.to_string(),
            "--min-edges".into(),
            args.edges.to_string(),
            "--max-edges".into(),
            (args.edges + extra).to_string(),
            "--cooldown-secs".into(),
            "5".into(),
            // Started once the cluster is up: the base edges are fresh already.
            "--warmup-secs".into(),
            "1".into(),
        ]);
        if let Some(capacity) = capacity {
            scaler.push(format!("--capacity-bps={capacity}"));
        }
        for flag in &edge_flags {
            scaler.push(format!("--edge-arg={flag}"));
        }
        let mut autoscaler = spec(
            "autoscaler",
            &hlscdn,
            scaler,
            &secrets,
            Restart::Always,
            edge_stop + 10,
        );
        autoscaler.echo = true;
        specs.push((Role::Autoscaler, autoscaler, None));
    }
    Ok(Plan {
        layout,
        specs,
        fleet_token,
    })
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until every URL answers `/readyz` and a router holds `edges` fresh
/// edges; fails as soon as a child exits.
async fn wait_ready(
    ready_urls: &[(String, String)],
    router: &str,
    edges: usize,
    events: &mut mpsc::UnboundedReceiver<Event>,
    logs: &Path,
) -> anyhow::Result<()> {
    let client = api::client();
    let all_ready = async {
        let each = ready_urls.iter().map(|(_, url)| {
            let client = client.clone();
            async move {
                while !api::is_ready(&client, url).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        join_all(each).await;
        loop {
            if let Ok(view) = api::edges(&client, router).await
                && view.edges.iter().filter(|e| e.fresh).count() >= edges
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let failed = async {
        loop {
            match events.recv().await {
                Some(Event::Exited { name, status, .. }) => {
                    let reason = format!("{name} exited during startup ({status})");
                    return (name, reason);
                }
                Some(Event::SpawnFailed { name, error, .. }) => {
                    let reason = format!("cannot start {name}: {error}");
                    return (name, reason);
                }
                Some(_) => {}
                None => return (String::new(), "the supervisor stopped".to_owned()),
            }
        }
    };
    tokio::select! {
        () = all_ready => Ok(()),
        (name, reason) = failed => {
            let log = logs.join(format!("{name}.log"));
            bail!("{reason}; last lines of {}:\n{}", log.display(), tail(&log, 15))
        }
        () = tokio::time::sleep(STARTUP_TIMEOUT) => {
            let waiting: Vec<String> = join_all(ready_urls.iter().map(|(name, url)| {
                let client = client.clone();
                async move { (!api::is_ready(&client, url).await).then(|| name.clone()) }
            }))
            .await
            .into_iter()
            .flatten()
            .collect();
            bail!(
                "the cluster was not ready within {STARTUP_TIMEOUT:?} (not ready: {}); logs in {}",
                if waiting.is_empty() { "edges not fresh on the routers".to_owned() } else { waiting.join(", ") },
                logs.display()
            )
        }
    }
}

fn print_event(event: &Event, logs: &Path) {
    match event {
        Event::Started { name, pid, restarts } if *restarts > 0 => {
            println!("demo: {name} restarted (pid {pid})");
        }
        Event::Started { .. } => {}
        Event::Exited {
            name,
            status,
            restart_in: Some(delay),
            ..
        } => println!(
            "demo: {name} died ({status}); restarting in {delay:?} (log {})",
            logs.join(format!("{name}.log")).display()
        ),
        Event::Exited { name, status, .. } => {
            println!("demo: {name} drained and exited ({status}); not restarted");
        }
        Event::SpawnFailed {
            name,
            error,
            retry_in,
        } => {
            println!("demo: cannot start {name}: {error}; retrying in {retry_in:?}");
        }
        Event::Stopped { name, status } => println!("demo: stopped {name} ({status})"),
    }
}

/// Runs `hlscdn demo` until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let extra = if args.autoscale { AUTOSCALE_EXTRA_EDGES } else { 0 };
    let layout = Layout::new(args.base_port, args.edges, extra)?;
    check_ports(&layout)?;
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
    let plan = plan(&args, &bins, &data)?;
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

    let first_router = url(plan.layout.routers()[0]);
    let mut shutdown = std::pin::pin!(runtime::server::shutdown_signal());
    let startup = tokio::select! {
        ready = wait_ready(&ready_urls, &first_router, usize::from(args.edges), &mut events, &logs) => ready,
        () = &mut shutdown => Err(anyhow::anyhow!("interrupted during startup")),
    };
    let code = match startup {
        Ok(()) => {
            for (role, spec, _) in later {
                children.push((role, Supervised::start(spec, group.clone(), events_tx.clone())));
            }
            drop(events_tx);
            print_banner(
                &plan.layout,
                args.edges,
                &plan.fleet_token,
                &data,
                started.elapsed(),
                args.autoscale,
            );
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => print_event(&event, &logs),
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
        print_event(&event, &logs);
    }
    group.kill_all();
    println!("demo: stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    Ok(code)
}

fn print_banner(layout: &Layout, edges: u16, token: &str, data: &Path, took: Duration, autoscale: bool) {
    let dashboard = url(layout.dashboard());
    let routers: Vec<String> = layout.routers().iter().map(|&p| url(p)).collect();
    println!("hlscdn demo is up in {:.1} s", took.as_secs_f64());
    println!("  player:      {dashboard}/player");
    println!("  dashboard:   {dashboard}/");
    println!("  routers:     {}", routers.join("  "));
    println!(
        "  play:        {}/live/demo-1/master.m3u8 (any HLS player)",
        routers[0]
    );
    let edge_list: Vec<String> = (0..edges)
        .map(|i| format!("edge-{} {}", i + 1, url(layout.edge(i))))
        .collect();
    println!("  edges:       {}", edge_list.join(", "));
    println!(
        "  origin:      {} (data in {})",
        url(layout.origin()),
        data.display()
    );
    if autoscale {
        println!(
            "  autoscale:   on; added edges start at {}",
            url(layout.first_extra_edge())
        );
    }
    println!("  fleet token: {token}");
    println!("  try:         hlscdn status --router {}", routers[0]);
    println!(
        "               hlscdn drain edge-2 --router {} --fleet-token {token}",
        routers[0]
    );
    println!("Ctrl-C stops everything (edges drain first).");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_layout() {
        let layout = Layout::new(8000, 3, 0).expect("layout");
        assert_eq!(layout.origin(), 8000);
        assert_eq!(layout.routers(), [8080, 8081]);
        assert_eq!(layout.dashboard(), 8090);
        assert_eq!((layout.edge(0), layout.edge(2)), (9001, 9003));
        assert_eq!(layout.ports(), vec![8000, 8080, 8081, 8090, 9001, 9002, 9003]);
        let moved = Layout::new(18000, 3, 2).expect("layout");
        assert_eq!(moved.first_extra_edge(), 19004);
        assert_eq!(moved.ports().len(), 9);
        assert!(Layout::new(65000, 3, 0).is_err());
        assert!(Layout::new(80, 3, 0).is_err());
    }

    #[test]
    fn missing_binaries_are_built_into_the_same_target_dir() {
        let args = build_args(Path::new("/w/target/release/"), &BINARIES[..2]);
        assert_eq!(
            args.join(" "),
            "build --release --target-dir /w/target -p origin-store --bin hlscdn-origin -p router --bin hlscdn-router"
        );
        let args = build_args(Path::new("/w/target/debug"), &BINARIES[2..]);
        assert_eq!(
            args.join(" "),
            "build --target-dir /w/target -p edge-agent --bin hlscdn-edge"
        );
        let args = build_args(Path::new("/w/target/profiling"), &[]);
        assert_eq!(args.join(" "), "build --profile profiling --target-dir /w/target");
    }

    #[test]
    fn the_plan_wires_everything_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bins: BTreeMap<&str, PathBuf> = BINARIES.iter().map(|(_, b)| (*b, PathBuf::from(b))).collect();
        let args = Args {
            base_port: 18000,
            edges: 3,
            autoscale: true,
            capacity_bps: None,
            data_dir: None,
            build: false,
        };
        let plan = plan(&args, &bins, dir.path()).expect("plan");
        let names: Vec<&str> = plan.specs.iter().map(|(_, s, _)| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "origin",
                "router-1",
                "router-2",
                "edge-1",
                "edge-2",
                "edge-3",
                "dashboard",
                "autoscaler"
            ]
        );
        let router = &plan.specs[1].1;
        let joined = router.args.join(" ");
        assert!(joined.contains("--peer http://127.0.0.1:18081"), "{joined}");
        assert!(
            !joined.contains(&plan.fleet_token),
            "secrets travel in the environment"
        );
        assert!(
            router
                .envs
                .iter()
                .any(|(k, v)| k == "HLSCDN_FLEET_TOKEN" && *v == plan.fleet_token)
        );
        assert!(
            router
                .envs
                .iter()
                .any(|(k, v)| k == "HLSCDN_SIGNING_KEYS" && v.starts_with("demo:"))
        );
        let config = std::fs::read_to_string(dir.path().join("router.toml")).expect("router config");
        assert!(
            config.contains("[autoscale]") && config.contains("max_edges = 5"),
            "{config}"
        );
        let edge = plan.specs[4].1.args.join(" ");
        assert!(
            edge.contains("--id edge-2 --public-url http://127.0.0.1:19002")
                && edge.contains("--router http://127.0.0.1:18080 --router http://127.0.0.1:18081")
                && edge.contains("--capacity-bps=2000000"),
            "{edge}"
        );
        let scaler = plan.specs[7].1.args.join(" ");
        assert!(
            scaler.contains("--first-port 19004 --id-prefix edge- --first-index 4"),
            "{scaler}"
        );
    }
}
