//! `hlscdn autoscale`: keeps the number of edges at what the routers ask for.
//!
//! Routers own the policy: `GET /api/v1/scale` answers `desired_edges` from
//! the fleet's utilization, its target, bounds and a cooldown (router TOML
//! `[autoscale]`). The autoscaler acts on it:
//!
//! - `--exec 'CMD {replicas}'` runs the command (through `sh -c`) whenever
//!   the desired count changes, e.g. `kubectl scale deployment/hlscdn-edge
//!   --replicas={replicas}`; a failed command is retried at the next poll.
//! - `--local` starts `hlscdn-edge` processes on this machine (ids
//!   `<prefix><n>`, consecutive ports) and drains them again (SIGTERM: the
//!   edge sends a `draining` ad, keeps serving until its viewers moved, then
//!   exits). It manages only the edges it started: edges it did not start
//!   count towards the desired number but are never drained by it.
//!
//! A router without `/api/v1/scale` (an older version) gets the same
//! decision computed here from `/api/v1/edges` ([`desired_from_edges`]) with
//! the `--target-utilization`, `--min-edges`, `--max-edges` and `--cooldown`
//! flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use router_api::fleet::{EdgeState, EdgesView};
use tokio::sync::mpsc;

use crate::api;
use crate::supervisor::{self, Group, Restart, Spec, Supervised};
use router_api::fleet::Scale;
use runtime::config::parse_duration;

/// `hlscdn autoscale` flags, each also read from its `HLSCDN_*` variable.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("mode").required(true).args(["exec", "local"])),
    mut_arg("routers", |a| a.required(true))
)]
pub struct Args {
    /// The routers asked for the desired number (the first that answers).
    #[command(flatten)]
    pub routers: runtime::config::RoutersArg,
    #[command(flatten)]
    pub trust: api::TrustArg,
    /// Shell command run when the desired number of edges changes; `{replicas}` is replaced by it.
    #[arg(long, value_name = "CMD", env = "HLSCDN_EXEC")]
    pub exec: Option<String>,
    /// Start and drain local `hlscdn-edge` processes.
    #[arg(long, env = "HLSCDN_LOCAL")]
    pub local: bool,
    /// How often to ask the router.
    #[arg(long, default_value = "5s", env = "HLSCDN_INTERVAL", value_parser = parse_duration)]
    pub interval: Duration,
    /// Without `/api/v1/scale`: the utilization to scale towards.
    #[arg(long, default_value_t = 0.6, env = "HLSCDN_TARGET_UTILIZATION")]
    pub target_utilization: f64,
    /// Without `/api/v1/scale`: fewest edges.
    #[arg(long, default_value_t = 1, env = "HLSCDN_MIN_EDGES")]
    pub min_edges: u32,
    /// Without `/api/v1/scale`: most edges.
    #[arg(long, default_value_t = 20, env = "HLSCDN_MAX_EDGES")]
    pub max_edges: u32,
    /// Without `/api/v1/scale`: how long a lower count must hold before scaling down.
    #[arg(long, default_value = "60s", env = "HLSCDN_COOLDOWN", value_parser = parse_duration)]
    pub cooldown: Duration,
    /// After starting, only watch for this long (edges started at the same
    /// time need a heartbeat or two before routers count them).
    #[arg(long, default_value = "5s", env = "HLSCDN_WARMUP", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Settings of the edges `--local` starts.
    #[command(flatten)]
    pub edges: LocalArgs,
}

/// How `--local` starts edges.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// The `hlscdn-edge` binary (default: the one next to `hlscdn`).
    #[arg(long, value_name = "PATH", env = "HLSCDN_EDGE_BINARY")]
    pub edge_binary: Option<PathBuf>,
    /// Origin the edges fetch from.
    #[arg(long, value_name = "URL", env = "HLSCDN_ORIGIN")]
    pub origin: Option<String>,
    /// The fleet token (passed to the edges in their environment).
    #[command(flatten)]
    pub fleet: runtime::config::FleetTokenArg,
    /// Segment URL signing key KID:SECRET for the edges; repeatable.
    #[arg(
        long = "signing-key",
        value_name = "KID:SECRET",
        env = "HLSCDN_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub signing_keys: Vec<String>,
    /// Address the edges listen on and are reached at.
    #[arg(long, default_value = "127.0.0.1", env = "HLSCDN_HOST")]
    pub host: String,
    /// Port of the first edge; the next ones count up.
    #[arg(long, default_value_t = 9101, env = "HLSCDN_FIRST_PORT")]
    pub first_port: u16,
    /// Edge ids are this prefix and a number.
    #[arg(long, default_value = "auto-edge-", env = "HLSCDN_ID_PREFIX")]
    pub id_prefix: String,
    /// Number of the first edge.
    #[arg(long, default_value_t = 1, env = "HLSCDN_FIRST_INDEX")]
    pub first_index: u32,
    /// Egress capacity each edge advertises, bits/s.
    #[arg(long, env = "HLSCDN_CAPACITY_BPS")]
    pub capacity_bps: Option<u64>,
    /// Extra flag for every edge (e.g. `--edge-arg=--drain-quiet=2s`); repeatable. With
    /// `--edge-arg=--tls-cert=FILE` among them the edges serve HTTPS and their URLs are https.
    #[arg(
        long = "edge-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        env = "HLSCDN_EDGE_ARGS"
    )]
    pub edge_args: Vec<String>,
    /// How long a draining edge gets before SIGKILL.
    #[arg(long, default_value = "75s", env = "HLSCDN_STOP_TIMEOUT", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Where the edges' logs go (default: a temporary directory).
    #[arg(long, value_name = "DIR", env = "HLSCDN_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

/// The policy used when a router has no `/api/v1/scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Utilization to scale towards.
    pub target_utilization: f64,
    /// Fewest edges.
    pub min_edges: u32,
    /// Most edges.
    pub max_edges: u32,
}

/// The desired number of edges, computed from a router's edges as
/// `ceil(fresh ready edges × utilization / target)` within the bounds, where
/// utilization is the fleet's (reported + assigned egress over capacity).
pub fn desired_from_edges(view: &EdgesView, policy: Policy) -> Scale {
    let serving: Vec<_> = view
        .edges
        .iter()
        .filter(|e| e.fresh && e.state == EdgeState::Ready)
        .collect();
    let capacity: f64 = serving.iter().map(|e| e.capacity.egress_bps as f64).sum();
    let load: f64 = serving
        .iter()
        .map(|e| e.load.egress_bps.saturating_add(e.assigned_bps) as f64)
        .sum();
    let utilization = if capacity > 0.0 { load / capacity } else { 0.0 };
    let edges = u32::try_from(serving.len()).unwrap_or(u32::MAX);
    let target = if policy.target_utilization > 0.0 {
        policy.target_utilization
    } else {
        1.0
    };
    let wanted = (f64::from(edges) * utilization / target).ceil();
    let wanted = if wanted.is_finite() {
        wanted as u32
    } else {
        policy.max_edges
    };
    let max = policy.max_edges.max(policy.min_edges);
    Scale {
        utilization,
        target_utilization: target,
        edges,
        desired_edges: wanted.clamp(policy.min_edges, max),
        min_edges: policy.min_edges,
        max_edges: max,
    }
}

/// Holds scale-downs back until a lower count has held for the cooldown;
/// scale-ups pass at once.
#[derive(Debug, Clone)]
pub struct Cooldown {
    cooldown: Duration,
    current: Option<u32>,
    lower_since: Option<Instant>,
}

impl Cooldown {
    /// A damper with this cooldown.
    pub fn new(cooldown: Duration) -> Self {
        Cooldown {
            cooldown,
            current: None,
            lower_since: None,
        }
    }

    /// The count to act on, given the raw desired count at `now`.
    pub fn apply(&mut self, desired: u32, now: Instant) -> u32 {
        let current = match self.current {
            Some(current) if desired < current => {
                let since = *self.lower_since.get_or_insert(now);
                if now.duration_since(since) >= self.cooldown {
                    self.lower_since = None;
                    desired
                } else {
                    current
                }
            }
            _ => {
                self.lower_since = None;
                desired
            }
        };
        self.current = Some(current);
        current
    }
}

/// What local mode does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start this many edges.
    Start(u32),
    /// Drain this many of the edges it started.
    Drain(u32),
    /// Nothing.
    Hold,
}

/// The step that brings the edges local mode runs (`managed`) to what is
/// desired, given the fresh, ready edges it does not manage.
pub fn local_step(desired: u32, unmanaged_serving: u32, managed: u32) -> Step {
    let target = desired.saturating_sub(unmanaged_serving);
    match target.cmp(&managed) {
        std::cmp::Ordering::Greater => Step::Start(target - managed),
        std::cmp::Ordering::Less => Step::Drain(managed - target),
        std::cmp::Ordering::Equal => Step::Hold,
    }
}

/// Where the desired count comes from.
struct Source {
    client: reqwest::Client,
    routers: Vec<String>,
    policy: Policy,
    cooldown: Cooldown,
    said_fallback: bool,
}

impl Source {
    /// The scaling answer and the fleet view of the first router that answers.
    async fn read(&mut self) -> anyhow::Result<(Scale, EdgesView)> {
        let mut last = None;
        for router in &self.routers {
            let view = match api::edges(&self.client, router).await {
                Ok(view) => view,
                Err(error) => {
                    last = Some(error);
                    continue;
                }
            };
            match api::scale(&self.client, router).await {
                Ok(Some(scale)) => return Ok((scale, view)),
                Ok(None) => {
                    if !self.said_fallback {
                        println!("autoscale: {router} has no /api/v1/scale; deciding from /api/v1/edges");
                        self.said_fallback = true;
                    }
                    let mut scale = desired_from_edges(&view, self.policy);
                    scale.desired_edges = self.cooldown.apply(scale.desired_edges, Instant::now());
                    return Ok((scale, view));
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no router given")))
    }
}

/// Runs `hlscdn autoscale` until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.trust.apply()?;
    for router in &args.routers.routers {
        api::check_base_url(router)?;
    }
    if !(args.target_utilization > 0.0 && args.target_utilization <= 1.0) {
        bail!("`target_utilization` must be within (0, 1]");
    }
    let source = Source {
        client: api::client(),
        routers: args
            .routers
            .routers
            .iter()
            .map(|r| api::base(r).to_owned())
            .collect(),
        policy: Policy {
            target_utilization: args.target_utilization,
            min_edges: args.min_edges,
            max_edges: args.max_edges,
        },
        cooldown: Cooldown::new(args.cooldown),
        said_fallback: false,
    };
    let interval = args.interval.max(Duration::from_millis(100));
    let act_after = Instant::now() + args.warmup;
    let shutdown = runtime::server::shutdown_signal();
    match (&args.exec, args.local) {
        (Some(command), false) => run_exec(source, command, interval, act_after, shutdown).await,
        (None, true) => run_local(source, args.edges, interval, act_after, shutdown).await,
        _ => bail!("give either --exec CMD or --local"),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn describe(scale: &Scale) -> String {
    format!(
        "utilization {:.0}% (target {:.0}%), {} serving edge{}",
        scale.utilization * 100.0,
        scale.target_utilization * 100.0,
        scale.edges,
        if scale.edges == 1 { "" } else { "s" }
    )
}

async fn run_exec(
    mut source: Source,
    command: &str,
    interval: Duration,
    act_after: Instant,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut applied: Option<u32> = None;
    loop {
        match source.read().await {
            Ok((scale, _)) if applied != Some(scale.desired_edges) && Instant::now() >= act_after => {
                let replicas = scale.desired_edges;
                let line = command.replace("{replicas}", &replicas.to_string());
                println!(
                    "autoscale: desired edges {replicas} ({}): running `{line}`",
                    describe(&scale)
                );
                let status = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(&line)
                    .status()
                    .await;
                match status {
                    Ok(status) if status.success() => applied = Some(replicas),
                    Ok(status) => {
                        eprintln!("autoscale: `{line}` failed ({status}); retrying at the next poll")
                    }
                    Err(error) => eprintln!("autoscale: cannot run `{line}`: {error}"),
                }
            }
            Ok(_) => {}
            Err(error) => eprintln!("autoscale: {error:#}"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// One edge local mode started.
struct Managed {
    slot: u32,
    id: String,
    child: Supervised,
}

async fn run_local(
    mut source: Source,
    local: LocalArgs,
    interval: Duration,
    act_after: Instant,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let origin = local.origin.clone().context("--local needs --origin URL")?;
    api::check_base_url(&origin)?;
    let fleet_token = local
        .fleet
        .fleet_token
        .as_ref()
        .map(|token| token.expose().to_owned())
        .context("--local needs --fleet-token (or HLSCDN_FLEET_TOKEN)")?;
    let binary = match &local.edge_binary {
        Some(path) => path.clone(),
        None => crate::demo::sibling("hlscdn-edge")?,
    };
    if !binary.exists() {
        bail!(
            "{} does not exist (build it with `cargo build --release -p edge-agent`)",
            binary.display()
        );
    }
    let temp_logs;
    let log_dir = match &local.log_dir {
        Some(dir) => dir.clone(),
        None => {
            temp_logs = tempfile::Builder::new().prefix("hlscdn-autoscale-").tempdir()?;
            temp_logs.path().to_owned()
        }
    };
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;

    let group = Group::new();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut managed: Vec<Managed> = Vec::new();
    let mut draining = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_desired = None;
    loop {
        while let Ok(event) = events.try_recv() {
            print_event(&event);
        }
        // An edge that was drained by someone else and exited is not ours to restart.
        managed.retain(|m| !m.child.is_finished());
        match source.read().await {
            Ok((scale, view)) => {
                let unmanaged = view
                    .edges
                    .iter()
                    .filter(|e| e.fresh && e.state == EdgeState::Ready)
                    .filter(|e| !managed.iter().any(|m| m.id == e.id))
                    .count();
                let unmanaged = u32::try_from(unmanaged).unwrap_or(u32::MAX);
                let count = u32::try_from(managed.len()).unwrap_or(u32::MAX);
                if last_desired != Some(scale.desired_edges) {
                    println!(
                        "autoscale: desired edges {} ({})",
                        scale.desired_edges,
                        describe(&scale)
                    );
                    last_desired = Some(scale.desired_edges);
                }
                let step = if Instant::now() < act_after {
                    Step::Hold
                } else {
                    local_step(scale.desired_edges, unmanaged, count)
                };
                match step {
                    Step::Start(n) => {
                        for _ in 0..n {
                            let slot = (0..).find(|s| !managed.iter().any(|m| m.slot == *s)).unwrap_or(0);
                            let spec = edge_spec(
                                &local,
                                &binary,
                                &origin,
                                &fleet_token,
                                &source.routers,
                                &log_dir,
                                slot,
                            )?;
                            println!(
                                "autoscale: starting {} on {} (log {})",
                                spec.name,
                                edge_url(&local, slot),
                                spec.log.display()
                            );
                            let id = spec.name.clone();
                            let child = Supervised::start(spec, group.clone(), events_tx.clone());
                            managed.push(Managed { slot, id, child });
                        }
                    }
                    Step::Drain(n) => {
                        for _ in 0..n {
                            // The newest edge goes first.
                            let Some(newest) = managed
                                .iter()
                                .enumerate()
                                .max_by_key(|(_, m)| m.slot)
                                .map(|(i, _)| i)
                            else {
                                break;
                            };
                            let edge = managed.remove(newest);
                            println!("autoscale: draining {}", edge.id);
                            draining.spawn(edge.child.stop());
                        }
                    }
                    Step::Hold => {}
                }
            }
            Err(error) => eprintln!("autoscale: {error:#}"),
        }
        while draining.try_join_next().is_some() {}
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => break,
        }
    }
    println!("autoscale: stopping; draining {} edge(s)", managed.len());
    for edge in managed {
        draining.spawn(edge.child.stop());
    }
    while draining.join_next().await.is_some() {}
    while let Ok(event) = events.try_recv() {
        print_event(&event);
    }
    group.kill_all();
    Ok(())
}

fn edge_url(local: &LocalArgs, slot: u32) -> String {
    let port = u32::from(local.first_port) + slot;
    let tls = local
        .edge_args
        .iter()
        .any(|a| a == "--tls-cert" || a.starts_with("--tls-cert="));
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}:{port}", local.host)
}

fn edge_spec(
    local: &LocalArgs,
    binary: &std::path::Path,
    origin: &str,
    fleet_token: &str,
    routers: &[String],
    log_dir: &std::path::Path,
    slot: u32,
) -> anyhow::Result<Spec> {
    let port = u32::from(local.first_port) + slot;
    if port > u32::from(u16::MAX) {
        bail!("no port left for another edge (first port {})", local.first_port);
    }
    let id = format!("{}{}", local.id_prefix, local.first_index + slot);
    let mut args = vec![
        "--listen".to_owned(),
        format!("{}:{port}", local.host),
        "--id".into(),
        id.clone(),
        "--public-url".into(),
        edge_url(local, slot),
        "--origin".into(),
        origin.to_owned(),
    ];
    for router in routers {
        args.push("--router".into());
        args.push(router.clone());
    }
    if let Some(capacity) = local.capacity_bps {
        args.push("--capacity-bps".into());
        args.push(capacity.to_string());
    }
    args.extend(local.edge_args.iter().cloned());
    let mut envs = vec![("HLSCDN_FLEET_TOKEN".to_owned(), fleet_token.to_owned())];
    if !local.signing_keys.is_empty() {
        envs.push(("HLSCDN_SIGNING_KEYS".into(), local.signing_keys.join(",")));
    }
    Ok(Spec {
        log: log_dir.join(format!("{id}.log")),
        name: id,
        program: binary.to_owned(),
        args,
        envs,
        restart: Restart::UnlessClean,
        stop_timeout: local.stop_timeout,
        echo: false,
    })
}

fn print_event(event: &supervisor::Event) {
    use supervisor::Event;
    match event {
        Event::Started { name, pid, restarts } if *restarts > 0 => {
            println!("autoscale: {name} restarted (pid {pid})");
        }
        Event::Started { .. } => {}
        Event::Exited {
            name,
            status,
            restart_in: Some(delay),
            ..
        } => println!("autoscale: {name} exited ({status}); restarting in {delay:?}"),
        Event::Exited { name, status, .. } => println!("autoscale: {name} exited ({status})"),
        Event::SpawnFailed {
            name,
            error,
            retry_in,
        } => {
            println!("autoscale: cannot start {name}: {error}; retrying in {retry_in:?}");
        }
        Event::Stopped { name, status } => println!("autoscale: {name} drained and stopped ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use router_api::fleet::{Capacity, EdgeView, Load};

    use super::*;

    fn view(loads: &[(u64, bool, EdgeState)]) -> EdgesView {
        EdgesView {
            router: "r".into(),
            edges: loads
                .iter()
                .enumerate()
                .map(|(i, &(load, fresh, state))| EdgeView {
                    id: format!("edge-{i}"),
                    url: format!("http://127.0.0.1:{}", 9001 + i),
                    group: None,
                    state,
                    fresh,
                    eligible: true,
                    ad_age_ms: 0,
                    capacity: Capacity {
                        egress_bps: 1000,
                        connections: 10,
                    },
                    load: Load {
                        egress_bps: load,
                        ..Load::default()
                    },
                    hot_streams: Vec::new(),
                    utilization: load as f64 / 1000.0,
                    assigned_bps: 0,
                    viewers_assigned: 0,
                    configured: false,
                    ad: None,
                })
                .collect(),
        }
    }

    const POLICY: Policy = Policy {
        target_utilization: 0.6,
        min_edges: 1,
        max_edges: 5,
    };

    #[test]
    fn desired_follows_utilization() {
        use EdgeState::{Draining, Ready};
        let idle = desired_from_edges(&view(&[(0, true, Ready), (0, true, Ready)]), POLICY);
        assert_eq!((idle.edges, idle.desired_edges), (2, 1));
        let at_target = desired_from_edges(&view(&[(600, true, Ready), (600, true, Ready)]), POLICY);
        assert_eq!(at_target.desired_edges, 2);
        let hot = desired_from_edges(
            &view(&[(900, true, Ready), (900, true, Ready), (900, true, Ready)]),
            POLICY,
        );
        assert_eq!(hot.desired_edges, 5, "ceil(3 × 0.9 / 0.6) = 5");
        let capped = desired_from_edges(&view(&[(5000, true, Ready); 3]), POLICY);
        assert_eq!(capped.desired_edges, 5);
        let ignored = desired_from_edges(
            &view(&[(900, false, Ready), (900, true, Draining), (0, true, Ready)]),
            POLICY,
        );
        assert_eq!(
            (ignored.edges, ignored.desired_edges),
            (1, 1),
            "stale and draining edges do not count"
        );
        let none = desired_from_edges(&view(&[]), POLICY);
        assert_eq!(none.desired_edges, 1);
    }

    #[test]
    fn cooldown_delays_scale_down_only() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Cooldown::new(Duration::from_secs(10));
        assert_eq!(c.apply(3, t0), 3);
        assert_eq!(c.apply(5, t0 + s), 5, "up at once");
        assert_eq!(c.apply(2, t0 + 2 * s), 5);
        assert_eq!(c.apply(2, t0 + 11 * s), 5);
        assert_eq!(c.apply(6, t0 + 11 * s), 6, "a rise resets the wait");
        assert_eq!(c.apply(2, t0 + 12 * s), 6);
        assert_eq!(c.apply(2, t0 + 22 * s), 2);
    }

    #[test]
    fn local_steps() {
        assert_eq!(local_step(4, 3, 0), Step::Start(1));
        assert_eq!(local_step(4, 3, 1), Step::Hold);
        assert_eq!(local_step(3, 3, 1), Step::Drain(1));
        assert_eq!(local_step(1, 3, 2), Step::Drain(2), "never below zero managed");
        assert_eq!(
            local_step(1, 3, 0),
            Step::Hold,
            "unmanaged edges are not ours to drain"
        );
        assert_eq!(local_step(5, 0, 2), Step::Start(3));
    }
}
