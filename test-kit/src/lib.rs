//! Helpers for tests that run real hls-cdn processes on loopback: a
//! dev-dependency of every crate's integration tests, so it finds binaries
//! of other packages itself, building them if needed.
//!
//! Servers listen on port 0 and print the address they got. Servers that
//! must know each other's addresses before they start (routers that are
//! each other's peers), or that restart on the address they had, run on a
//! [`Port`] the test holds: the test binds the listening socket and hands it
//! to the server (systemd socket activation), so no port is ever freed and
//! guessed to be free.

pub mod h2;
pub mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use router_api::prometheus;

/// A child server process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it printed in its `listening on http(s)://ADDR` line.
    pub addr: SocketAddr,
    /// `http` or `https`, as that line said.
    pub scheme: &'static str,
}

impl Server {
    /// Starts `program` with `args` and `envs`, and waits (at most 20 s) for
    /// its `listening on http(s)://ADDR` line.
    pub fn start(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(program, args, envs, Stdio::inherit(), None)
    }

    /// Like [`Server::start`], serving on `port`: a new listening socket on
    /// it is handed to the process as file descriptor 3 with `LISTEN_FDS=1`
    /// (systemd socket activation), which the process serves instead of its
    /// `--listen` address.
    pub fn start_on(port: &Port, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let server = Server::spawn(program, args, envs, Stdio::inherit(), Some(port.listener()));
        assert_eq!(server.addr, port.addr, "{program} serves the socket handed to it");
        server
    }

    /// Like [`Server::start`], with the process's stderr (its log) written to
    /// the file `log` instead of the test's, so that the test can read it.
    pub fn start_logged(program: &str, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        Server::spawn(program, args, envs, Stdio::from(file), None)
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

    fn spawn(
        program: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: Stdio,
        listener: Option<std::net::TcpListener>,
    ) -> Server {
        use command_fds::{CommandFdExt, FdMapping};
        let mut command = Command::new(program);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("RUST_LOG", "warn");
        for (k, v) in envs {
            command.env(k, v);
        }
        if let Some(listener) = listener {
            let mapping = FdMapping {
                parent_fd: OwnedFd::from(listener),
                child_fd: 3,
            };
            command
                .fd_mappings(vec![mapping])
                .expect("file descriptor 3 mapped once")
                .env("LISTEN_FDS", "1");
        }
        // The command, and with it this process's copy of the listener, is
        // dropped on return: once the server exits, its port refuses
        // connections, as a dead server's does.
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                    sent = true;
                }
            }
        });
        let (scheme, addr) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => match url.split_once("://") {
                Some(("http", addr)) => ("http", addr.parse().expect("listen address")),
                Some(("https", addr)) => ("https", addr.parse().expect("listen address")),
                _ => panic!("{program} printed an odd listening line: {url}"),
            },
            Err(_) => {
                let _ = child.kill();
                panic!("{program} did not print its listening line within 20 s");
            }
        };
        Server { child, addr, scheme }
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

    /// `http(s)://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
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

/// A loopback port the test holds until it is dropped, for servers started
/// with [`Server::start_on`], one after another (a restart keeps the
/// address).
///
/// It holds a bound socket that does not listen, so connections to the port
/// are refused while no server runs on it, as they are by a dead server,
/// and no other socket can be given the port meanwhile (the kernel skips
/// bound ports when it picks one for an outgoing connection).
/// `SO_REUSEPORT`, set on it and on the listening socket bound for each
/// server, lets both be bound at once, by this user only.
#[derive(Debug)]
pub struct Port {
    _reserved: socket2::Socket,
    addr: SocketAddr,
}

impl Port {
    /// Binds a new loopback port.
    pub fn reserve() -> Port {
        let reserved = reuse_port_socket(SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = reserved
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("bound address");
        Port {
            _reserved: reserved,
            addr,
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new socket listening on the port.
    fn listener(&self) -> std::net::TcpListener {
        let socket = reuse_port_socket(self.addr);
        socket.listen(1024).expect("listen");
        socket.into()
    }
}

/// A TCP socket with `SO_REUSEPORT`, bound to `addr`.
fn reuse_port_socket(addr: SocketAddr) -> socket2::Socket {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
        .expect("socket");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket
        .bind(&addr.into())
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    socket
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

/// The value of one Prometheus series (e.g. `name{label="v"}`, every label
/// given, in any order) on a server's `/metrics`; 0 when absent.
pub async fn metric(server: &Server, series: &str) -> f64 {
    let series: prometheus::Series = series.parse().expect("a Prometheus series");
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    prometheus::value(&prometheus::parse(&text), &series).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_refuses_connections_while_no_listener_is_on_it() {
        let port = Port::reserve();
        let refused = || TcpStream::connect(port.addr()).is_err();
        assert!(refused(), "held, not listening");
        for _ in 0..2 {
            let listener = port.listener();
            let client = TcpStream::connect(port.addr()).expect("connect");
            let (served, _) = listener.accept().expect("accept");
            assert_eq!(served.peer_addr().ok(), client.local_addr().ok());
            drop((listener, served, client));
            assert!(refused(), "the listener gone, the port refuses again");
        }
    }
}
