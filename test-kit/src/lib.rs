//! Helpers for tests that run real hls-cdn processes on loopback: a
//! dev-dependency of every crate's integration tests, so it finds binaries
//! of other packages itself, building them if needed.

pub mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child server process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it printed in its `listening on http://ADDR` line.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `program` with `args` and `envs`, and waits (at most 20 s) for
    /// its `listening on http://ADDR` line.
    pub fn start(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(program, args, envs, Stdio::inherit())
    }

    /// Like [`Server::start`], with the process's stderr (its log) written to
    /// the file `log` instead of the test's, so that the test can read it.
    pub fn start_logged(program: &str, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        Server::spawn(program, args, envs, Stdio::from(file))
    }

    /// Like [`Server::binary`], with stderr written to `log` (see [`Server::start_logged`]).
    pub fn binary_logged(
        package: &str,
        bin: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Server {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let path = bin_path(package, bin);
        Server::start_logged(path.to_str().expect("utf-8 path"), &all, envs, log)
    }

    fn spawn(program: &str, args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("RUST_LOG", "warn");
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!("{program} did not print its listening line within 20 s");
            }
        };
        Server { child, addr }
    }

    /// Starts `hlscdn-origin` with these flags plus `--listen 127.0.0.1:0`.
    pub fn origin(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::binary("origin-store", "hlscdn-origin", args, envs)
    }

    /// Starts binary `bin` of workspace package `package` with these flags
    /// plus `--listen 127.0.0.1:0`.
    pub fn binary(package: &str, bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let path = bin_path(package, bin);
        Server::start(path.to_str().expect("utf-8 path"), &all, envs)
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a signal (`TERM`, `KILL`, ...) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }

    /// Waits (at most `within`) for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the process to exit (at most 15 s); returns its status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..150 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("process did not exit within 15 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a workspace binary, built once per test process if missing:
/// `cargo test -p X` builds only X's own binaries.
pub fn bin_path(package: &str, bin: &str) -> std::path::PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<bin>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(bin);
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "-q", "-p", package, "--bin", bin]);
        if dir.ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("cargo build");
        assert!(status.success(), "building {bin} failed");
    }
    path
}

/// Sends `request` as raw bytes (for targets an HTTP client would clean up)
/// and returns the status code of the answer.
pub fn raw_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {line:?}"))
}

/// A blocking HTTP client with a timeout, for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

/// The body of `GET url`, whatever the status.
pub async fn text(url: impl reqwest::IntoUrl) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body")
}

/// `PUT url` with `body`, authorized with the ingest `token`: the status.
pub async fn put(
    url: impl reqwest::IntoUrl,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::StatusCode {
    client()
        .put(url)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("put")
        .status()
}

/// Runs `program` with `args`, panicking with its stderr if it fails.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program} could not be started ({e}); run scripts/deps.sh to install test tools")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback port free at the moment of asking (for processes that must
/// know each other's address before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Polls `check` every 50 ms until it holds, failing the test after
/// `within`; returns how long it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// The value of one Prometheus series (e.g. `name{label="v"}`) on a
/// server's `/metrics`; 0 when absent.
pub async fn metric(server: &Server, series: &str) -> f64 {
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}
