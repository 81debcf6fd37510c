//! Raw-socket clients for the hostile-input tests: requests no HTTP client
//! library would send, clients that send their head one byte at a time or
//! never, and crowds of idle connections. Shared by the `hostile.rs` tests of
//! every server crate. Loopback only.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on one connection.
#[derive(Debug, Default)]
pub struct Answer {
    /// Every status code seen, in order (more than one when a server
    /// answered pipelined or smuggled requests).
    pub statuses: Vec<u16>,
    /// Everything read, lossily as text.
    pub text: String,
    /// Whether the server closed the connection before `read_for` ran out.
    pub closed: bool,
}

impl Answer {
    /// The first status, or 0 when the server sent nothing.
    pub fn status(&self) -> u16 {
        self.statuses.first().copied().unwrap_or(0)
    }
}

/// Sends `request` as raw bytes and reads whatever comes back for at most
/// `read_for` (or until the server closes). A write the server cut short
/// (it refused the request before reading all of it) is not an error: what
/// it answered is still read.
pub async fn exchange(addr: SocketAddr, request: &[u8], read_for: Duration) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    read_answer(&mut stream, read_for).await
}

/// Reads until EOF, an error or `read_for`.
pub async fn read_answer(stream: &mut TcpStream, read_for: Duration) -> Answer {
    let deadline = tokio::time::Instant::now() + read_for;
    let mut raw = Vec::new();
    let mut closed = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let statuses = text
        .match_indices("HTTP/1.")
        .filter(|(at, _)| *at == 0 || text[..*at].ends_with('\n'))
        .filter_map(|(at, _)| text[at..].split_whitespace().nth(1)?.parse().ok())
        .collect();
    Answer {
        statuses,
        text,
        closed,
    }
}

/// The status of a one-shot raw request (`Connection: close` is up to the caller).
pub async fn status(addr: SocketAddr, request: &str) -> u16 {
    exchange(addr, request.as_bytes(), Duration::from_secs(10))
        .await
        .status()
}

/// `GET path` on a new connection: status and how long the answer took.
pub async fn timed_get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let answer = exchange(addr, request.as_bytes(), Duration::from_secs(10)).await;
    (answer.status(), started.elapsed())
}

/// Whether `GET /healthz` answers 200 on a new connection.
pub async fn healthy(addr: SocketAddr) -> bool {
    timed_get(addr, "/healthz").await.0 == 200
}

/// A slowloris client: connects, then sends `head` one byte every `every`
/// (never finishing it if `head` has no blank line), and returns how long
/// after connecting the server closed the connection, or `None` if it was
/// still open after `give_up`. With an empty `head` the client connects and
/// sends nothing at all.
pub async fn slow_client(
    addr: SocketAddr,
    head: &'static [u8],
    every: Duration,
    give_up: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = async move {
        for byte in head {
            if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        // Keep the write half open: closing it would be a complete (if
        // truncated) request rather than a slow one.
        std::future::pending::<()>().await;
    };
    let closed = async move {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // An answer (e.g. 408) is fine; the close that follows counts.
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(give_up, async {
        tokio::select! {
            () = trickle => {},
            () = closed => {},
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// A slowloris crowd: 200 clients trickling `head` a byte every 500 ms and
/// 50 that connect and send nothing, each as in [`slow_client`].
pub fn slow_crowd(
    addr: SocketAddr,
    head: &'static [u8],
    give_up: Duration,
) -> Vec<tokio::task::JoinHandle<Option<Duration>>> {
    let trickling =
        (0..200).map(|_| tokio::spawn(slow_client(addr, head, Duration::from_millis(500), give_up)));
    let silent = (0..50).map(|_| tokio::spawn(slow_client(addr, b"", Duration::from_secs(1), give_up)));
    trickling.chain(silent).collect()
}

/// What a [`slow_crowd`] run measured.
#[derive(Debug)]
pub struct CrowdFigures {
    /// Earliest and latest close of a slow client, after it connected.
    pub closed: (Duration, Duration),
    /// The slowest normal request meanwhile.
    pub slowest: Duration,
}

/// Lets a [`slow_crowd`] trickle `head` at `addr` while each of `paths` is
/// fetched on a new connection, 250 ms apart, and checks what a server with
/// header timeout `timeout` owes: every fetch answers 200 within 1.5 s, and
/// the server closes every slow client no sooner than `timeout` − 300 ms and
/// no later than `timeout` + 2 s.
pub async fn outlast_slow_crowd(
    addr: SocketAddr,
    head: &'static [u8],
    timeout: Duration,
    paths: &[String],
) -> CrowdFigures {
    let clients = slow_crowd(addr, head, timeout + Duration::from_secs(5));
    let mut slowest = Duration::ZERO;
    for path in paths {
        let (status, took) = timed_get(addr, path).await;
        assert_eq!(status, 200, "{path}");
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "slowest request {slowest:?}"
    );
    let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
    for client in clients {
        let closed = client.await.expect("task").expect("closed by the server");
        assert!(closed >= timeout - Duration::from_millis(300), "{closed:?}");
        assert!(closed <= timeout + Duration::from_secs(2), "{closed:?}");
        first = first.min(closed);
        last = last.max(closed);
    }
    CrowdFigures {
        closed: (first, last),
        slowest,
    }
}

/// Opens `n` connections that send nothing and keeps them open while they are held.
pub async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    held
}

/// How many of `streams` the server has closed (a read sees EOF or a reset
/// within a few milliseconds).
pub async fn closed_count(streams: &mut [TcpStream]) -> usize {
    let mut closed = 0;
    let mut buf = [0u8; 256];
    for stream in streams.iter_mut() {
        match tokio::time::timeout(Duration::from_millis(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            _ => {}
        }
    }
    closed
}

/// The resident set size of process `pid` in KiB (`VmRSS` in `/proc`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
