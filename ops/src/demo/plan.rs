//! The children of the demo, planned before any starts: for each its role,
//! its [`Spec`] (program, flags, environment, log, restart policy, stop
//! timeout) and the URL whose `/readyz` says it is up. One function per kind
//! of child; [`plan`] writes the data directory's `logs/`, `store/` and, with
//! `--autoscale`, the routers' `router.toml`, and draws the secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{AUTOSCALE_CAPACITY_BPS, Args, DRAIN_QUIET_MS, DRAIN_TIMEOUT_MS, EDGE_CACHE_BYTES, Layout, url};
use crate::supervisor::{Restart, Spec};

/// What a child is, for the stop order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Origin,
    Router,
    Edge,
    Dashboard,
    Autoscaler,
}

/// A child: its role, its spec, and the URL to wait on (none for the autoscaler).
pub(super) type Child = (Role, Spec, Option<String>);

/// Every child, in start order, and what the banner needs.
pub(super) struct Plan {
    pub(super) layout: Layout,
    pub(super) specs: Vec<Child>,
    pub(super) fleet_token: String,
    /// With `--tls`: the CA certificate clients must trust.
    pub(super) ca_file: Option<PathBuf>,
}

/// How long an edge gets to finish its drain after SIGTERM, seconds.
const EDGE_STOP_SECS: u64 = DRAIN_TIMEOUT_MS / 1000 + 5;
/// How long the other children get to exit after SIGTERM, seconds.
const STOP_SECS: u64 = 15;

/// What the children's specs are built from.
struct Common<'a> {
    args: &'a Args,
    layout: Layout,
    logs: PathBuf,
    /// The fleet token and signing key, passed in the environment.
    secrets: Vec<(String, String)>,
    /// With `--tls`: every child's certificate, key and CA file, passed in
    /// the environment (`HLSCDN_TLS_*`).
    tls_env: Vec<(String, String)>,
    origin: String,
    routers: Vec<String>,
    capacity: Option<u64>,
}

impl Common<'_> {
    /// A child named `name` logging to `<logs>/<name>.log`.
    fn spec(
        &self,
        name: &str,
        program: &Path,
        args: Vec<String>,
        envs: &[(String, String)],
        restart: Restart,
        stop: u64,
    ) -> Spec {
        Spec {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            envs: envs.iter().chain(&self.tls_env).cloned().collect(),
            log: self.logs.join(format!("{name}.log")),
            restart,
            stop_timeout: Duration::from_secs(stop),
            echo: false,
        }
    }

    /// `--router <url>` for each router.
    fn router_flags(&self) -> impl Iterator<Item = String> + '_ {
        self.routers
            .iter()
            .flat_map(|router| ["--router".to_owned(), router.clone()])
    }
}

/// Plans the whole cluster in `data`, with the binaries at `bins`.
pub(super) fn plan(args: &Args, bins: &BTreeMap<&str, PathBuf>, data: &Path) -> anyhow::Result<Plan> {
    let layout = args.layout()?;
    let logs = data.join("logs");
    let store = data.join("store");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    let store = store.canonicalize()?;
    let fleet_token = crate::random_secret();
    let signing_key = format!("demo:{}", crate::random_secret());
    let hlscdn = std::env::current_exe()?;
    let (ca_file, tls_env) = if args.tls {
        let (ca, env) = local_ca(&data.join("tls"))?;
        (Some(ca), env)
    } else {
        (None, Vec::new())
    };
    let cx = Common {
        args,
        layout,
        logs,
        secrets: vec![
            ("HLSCDN_FLEET_TOKEN".to_owned(), fleet_token.clone()),
            ("HLSCDN_SIGNING_KEYS".to_owned(), signing_key),
        ],
        tls_env,
        origin: url(args.tls, layout.origin()),
        routers: layout.routers().iter().map(|&p| url(args.tls, p)).collect(),
        capacity: args
            .capacity_bps
            .or(args.autoscale.then_some(AUTOSCALE_CAPACITY_BPS)),
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

    let mut specs = vec![origin(&cx, &origin_bin, &store)];
    let router_config = if args.autoscale {
        Some(write_router_config(args, data)?)
    } else {
        None
    };
    specs.extend(routers(&cx, &router_bin, router_config.as_deref()));
    specs.extend(edges(&cx, &edge_bin));
    specs.push(dashboard(&cx, &hlscdn));
    if args.autoscale {
        specs.push(autoscaler(&cx, &hlscdn, &edge_bin));
    }
    Ok(Plan {
        layout,
        specs,
        fleet_token,
        ca_file,
    })
}

/// Makes a CA for this run in `dir` and one certificate of it for every
/// server (loopback's names): the CA file, and the `HLSCDN_TLS_*`
/// variables that make a child serve with the certificate and trust the CA.
fn local_ca(dir: &Path) -> anyhow::Result<(PathBuf, Vec<(String, String)>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = runtime::tls::LocalCa::new("hlscdn demo CA").map_err(anyhow::Error::msg)?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).with_context(|| format!("writing {}", ca_file.display()))?;
    let (cert, key) = ca
        .write(dir, "server", &["localhost", "127.0.0.1", "::1"])
        .with_context(|| format!("writing the server certificate in {}", dir.display()))?;
    let env = [
        ("HLSCDN_TLS_CERT", &cert),
        ("HLSCDN_TLS_KEY", &key),
        ("HLSCDN_TLS_CA_FILE", &ca_file),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.display().to_string()))
    .collect();
    Ok((ca_file, env))
}

/// Owned copies of `v`, for flags spelled out as literals.
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The origin, publishing the demo streams into `store`.
fn origin(cx: &Common, program: &Path, store: &Path) -> Child {
    let args = vec![
        "--listen".into(),
        format!("127.0.0.1:{}", cx.layout.origin()),
        "--store".into(),
        format!("file://{}", store.display()),
        "--publish-demo".into(),
    ];
    let spec = cx.spec("origin", program, args, &[], Restart::Always, STOP_SECS);
    (Role::Origin, spec, Some(cx.origin.clone()))
}

/// Writes the routers' `router.toml` for `--autoscale` into `data`.
fn write_router_config(args: &Args, data: &Path) -> anyhow::Result<PathBuf> {
    let path = data.join("router.toml");
    std::fs::write(
        &path,
        format!(
            "# Written by `hlscdn demo --autoscale`.\n[autoscale]\ntarget_utilization = 0.6\n\
             min_edges = {}\nmax_edges = {}\ncooldown = \"5s\"\n",
            args.edges,
            args.edges + args.extra_edges()
        ),
    )?;
    Ok(path)
}

/// The routers, each a peer of the others, reading `config` when given.
fn routers(cx: &Common, program: &Path, config: Option<&Path>) -> Vec<Child> {
    let ports = cx.layout.routers();
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut router_args = vec![
                "--listen".to_owned(),
                format!("127.0.0.1:{port}"),
                "--public-url".into(),
                url(cx.args.tls, *port),
                "--origin".into(),
                cx.origin.clone(),
            ];
            for (j, peer) in cx.routers.iter().enumerate() {
                if i != j {
                    router_args.extend(["--peer".to_owned(), peer.clone()]);
                }
            }
            if let Some(config) = config {
                router_args.extend(["--config".to_owned(), config.display().to_string()]);
            }
            let name = format!("router-{}", i + 1);
            let spec = cx.spec(
                &name,
                program,
                router_args,
                &cx.secrets,
                Restart::Always,
                STOP_SECS,
            );
            (Role::Router, spec, Some(url(cx.args.tls, *port)))
        })
        .collect()
}

/// The flags every demo edge gets, the ones the autoscaler starts included.
fn edge_flags() -> Vec<String> {
    vec![
        format!("--drain-quiet={DRAIN_QUIET_MS}ms"),
        format!("--drain-timeout={DRAIN_TIMEOUT_MS}ms"),
        format!("--cache-bytes={EDGE_CACHE_BYTES}"),
    ]
}

/// The base edges, `edge-1` …, seeded with every router.
fn edges(cx: &Common, program: &Path) -> Vec<Child> {
    (0..cx.args.edges)
        .map(|i| {
            let id = format!("edge-{}", i + 1);
            let port = cx.layout.edge(i);
            let mut edge_args = vec![
                "--listen".to_owned(),
                format!("127.0.0.1:{port}"),
                "--id".into(),
                id.clone(),
                "--public-url".into(),
                url(cx.args.tls, port),
                "--origin".into(),
                cx.origin.clone(),
            ];
            edge_args.extend(cx.router_flags());
            if let Some(capacity) = cx.capacity {
                edge_args.push(format!("--capacity-bps={capacity}"));
            }
            edge_args.extend(edge_flags());
            let spec = cx.spec(
                &id,
                program,
                edge_args,
                &cx.secrets,
                Restart::UnlessClean,
                EDGE_STOP_SECS,
            );
            (Role::Edge, spec, Some(url(cx.args.tls, port)))
        })
        .collect()
}

/// `hlscdn dashboard`, watching every router.
fn dashboard(cx: &Common, hlscdn: &Path) -> Child {
    let mut dashboard_args = strings(&["dashboard", "--listen"]);
    dashboard_args.push(format!("127.0.0.1:{}", cx.layout.dashboard()));
    dashboard_args.extend(["--origin".to_owned(), cx.origin.clone()]);
    dashboard_args.extend(cx.router_flags());
    let spec = cx.spec(
        "dashboard",
        hlscdn,
        dashboard_args,
        &[],
        Restart::Always,
        STOP_SECS,
    );
    (
        Role::Dashboard,
        spec,
        Some(url(cx.args.tls, cx.layout.dashboard())),
    )
}

/// `hlscdn autoscale --local`, starting edges like the base ones after them.
fn autoscaler(cx: &Common, hlscdn: &Path, edge_bin: &Path) -> Child {
    let args = cx.args;
    let mut scaler = strings(&["autoscale", "--local", "--interval", "1s", "--origin"]);
    scaler.push(cx.origin.clone());
    scaler.extend(cx.router_flags());
    scaler.extend([
        "--edge-binary".to_owned(),
        edge_bin.display().to_string(),
        "--first-port".into(),
        cx.layout.first_extra_edge().to_string(),
        "--id-prefix".into(),
        "edge-".into(),
        "--first-index".into(),
        (args.edges + 1).to_string(),
        "--log-dir".into(),
        cx.logs.display().to_string(),
        "--stop-timeout".into(),
        format!("{EDGE_STOP_SECS}s"),
        "--min-edges".into(),
        args.edges.to_string(),
        "--max-edges".into(),
        (args.edges + args.extra_edges()).to_string(),
        "--cooldown".into(),
        "5s".into(),
        // Started once the cluster is up: the base edges are fresh already.
        "--warmup".into(),
        "1s".into(),
    ]);
    if let Some(capacity) = cx.capacity {
        scaler.push(format!("--capacity-bps={capacity}"));
    }
    for flag in edge_flags() {
        scaler.push(format!("--edge-arg={flag}"));
    }
    // The edges it starts serve HTTPS like the base ones (their URLs follow).
    for (key, flag) in [("HLSCDN_TLS_CERT", "--tls-cert"), ("HLSCDN_TLS_KEY", "--tls-key")] {
        if let Some((_, file)) = cx.tls_env.iter().find(|(k, _)| k == key) {
            scaler.push(format!("--edge-arg={flag}={file}"));
        }
    }
    let mut autoscaler = cx.spec(
        "autoscaler",
        hlscdn,
        scaler,
        &cx.secrets,
        Restart::Always,
        EDGE_STOP_SECS + 10,
    );
    autoscaler.echo = true;
    (Role::Autoscaler, autoscaler, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::BINARIES;

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
            tls: true,
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
        assert!(joined.contains("--peer https://127.0.0.1:18081"), "{joined}");
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
            edge.contains("--id edge-2 --public-url https://127.0.0.1:19002")
                && edge.contains("--router https://127.0.0.1:18080 --router https://127.0.0.1:18081")
                && edge.contains("--capacity-bps=2000000"),
            "{edge}"
        );
        let scaler = plan.specs[7].1.args.join(" ");
        assert!(
            scaler.contains("--first-port 19004 --id-prefix edge- --first-index 4"),
            "{scaler}"
        );
        // --tls: every child serves and trusts the run's CA; added edges too.
        let tls = dir.path().join("tls");
        assert!(
            scaler.contains(&format!(
                "--edge-arg=--tls-cert={}",
                tls.join("server.pem").display()
            )),
            "{scaler}"
        );
        for (_, spec, ready) in &plan.specs {
            let has = |key: &str| spec.envs.iter().any(|(k, _)| k == key);
            assert!(
                has("HLSCDN_TLS_CERT") && has("HLSCDN_TLS_CA_FILE"),
                "{}",
                spec.name
            );
            assert!(
                ready.as_deref().is_none_or(|u| u.starts_with("https://")),
                "{ready:?}"
            );
        }
        assert_eq!(plan.ca_file.as_deref(), Some(tls.join("ca.pem").as_path()));
    }
}
