//! Running `hlscdn demo` from tests: a free base port, the banner parsed, a
//! stop that checks nothing is left listening.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use test_kit as common;

/// Offsets of the ports a demo binds from its base port (origin, routers,
/// dashboard, three edges, two autoscaled edges).
const OFFSETS: &[u16] = &[0, 80, 81, 90, 1001, 1002, 1003, 1004, 1005];

fn free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A base port whose whole layout is free; differs between test processes.
pub fn free_base_port() -> u16 {
    let seed = std::process::id() as u16;
    for attempt in 0..40u16 {
        let base = 20_000 + ((seed.wrapping_add(attempt * 7)) % 40) * 500 + attempt % 5;
        if OFFSETS.iter().all(|o| free(base + o)) {
            return base;
        }
    }
    panic!("no free base port for a demo");
}

/// Where screenshots and other test artifacts go: `target/test-artifacts/ops/`.
pub fn artifacts_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp
        .parent()
        .expect("target dir")
        .join("test-artifacts")
        .join("ops");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// The `hlscdn` binary under test.
pub fn hlscdn() -> &'static str {
    env!("CARGO_BIN_EXE_hlscdn")
}

/// Makes sure the binaries the demo runs are built (once per test process).
pub fn build_siblings() {
    for (package, bin) in [
        ("origin-store", "hlscdn-origin"),
        ("router", "hlscdn-router"),
        ("edge-agent", "hlscdn-edge"),
    ] {
        common::bin_path(package, bin);
    }
}

/// A running `hlscdn demo`, stopped with SIGTERM when dropped.
pub struct Demo {
    child: Option<Child>,
    /// The base port.
    pub base: u16,
    /// The player page.
    pub player: String,
    /// The dashboard.
    pub dashboard: String,
    /// The first router.
    pub router: String,
    /// Both routers.
    pub routers: Vec<String>,
    /// The fleet token of this run.
    pub token: String,
    /// From spawning the demo to its banner.
    pub startup: Duration,
    /// Everything it printed.
    pub output: Arc<Mutex<Vec<String>>>,
}

fn field(lines: &[String], label: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("no {label:?} line in the demo's banner:\n{}", lines.join("\n")))
}

impl Demo {
    /// Starts `hlscdn demo --base-port <free> <extra>` and waits (at most
    /// 180 s: it may build binaries) for its banner.
    pub fn start(extra: &[&str]) -> Demo {
        build_siblings();
        let base = free_base_port();
        let started = Instant::now();
        let mut child = Command::new(hlscdn())
            .arg("demo")
            .arg("--base-port")
            .arg(base.to_string())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting hlscdn demo");
        let stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("demo| {line}");
                let done = line.starts_with("Ctrl-C stops everything");
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                if done {
                    let _ = tx.send(());
                }
            }
        });
        let mut demo = Demo {
            child: Some(child),
            base,
            player: String::new(),
            dashboard: String::new(),
            router: String::new(),
            routers: Vec::new(),
            token: String::new(),
            startup: Duration::ZERO,
            output,
        };
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            panic!("hlscdn demo printed no banner within 180 s:\n{}", demo.text());
        }
        demo.startup = started.elapsed();
        let lines = demo.lines();
        demo.player = field(&lines, "player:");
        demo.dashboard = field(&lines, "dashboard:");
        demo.token = field(&lines, "fleet token:");
        let routers = lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("routers:"))
            .expect("routers line");
        demo.routers = routers.split_whitespace().map(str::to_owned).collect();
        demo.router = demo.routers[0].clone();
        demo
    }

    /// What it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What it printed so far, as text.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Every port of its layout.
    pub fn ports(&self) -> Vec<u16> {
        OFFSETS.iter().map(|o| self.base + o).collect()
    }

    /// SIGTERM, and waits (at most `within`) for it to exit.
    pub fn stop(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops the demo with SIGTERM and asserts it exited cleanly within 45 s
    /// and left no port listening; returns its output.
    pub fn stop_cleanly(&mut self) -> String {
        let status = self.stop(Duration::from_secs(45));
        let text = self.text();
        assert!(
            status.is_some_and(|s| s.success()),
            "hlscdn demo did not stop cleanly on SIGTERM ({status:?}):\n{text}"
        );
        let left = self.listening();
        assert!(
            left.is_empty(),
            "still listening after the demo stopped: {left:?}"
        );
        text
    }

    /// Ports of its layout something still listens on.
    pub fn listening(&self) -> Vec<u16> {
        self.ports()
            .into_iter()
            .filter(|&p| {
                TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, p)),
                    Duration::from_millis(200),
                )
                .is_ok()
            })
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(45));
    }
}

/// Runs `hlscdn` with `args`; returns its exit code and stdout.
pub fn run_hlscdn(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(hlscdn())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running hlscdn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` every 200 ms until it returns `Some`, at most `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Debian's Chromium (or `HLSCDN_CHROMIUM`), for the browser tests.
pub fn chromium() -> String {
    let path = std::env::var("HLSCDN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/deps.sh (installs Debian's chromium), or set HLSCDN_CHROMIUM"
    );
    path
}

/// What a node script did: its exit status (`None`: killed after its time
/// ran out), stdout and stderr.
pub struct NodeRun {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `node <script>` in `ops/` with `envs`, killed after `within`.
pub fn run_node(script: &str, envs: &[(&str, String)], within: Duration) -> NodeRun {
    use std::io::Read;
    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        ops.join("node_modules/playwright-core").exists(),
        "ops/node_modules/playwright-core is missing: run scripts/deps.sh (npm ci in ops/)"
    );
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(ops)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node could not be started: run scripts/deps.sh");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    // Echoed as it comes, so a slow run shows where it is.
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(&mut stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("node| {line}");
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    NodeRun {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}
