//! Heap allocations per viewer request, the whole server counted: hyper, the
//! axum app and the router's handler, as `hlscdn-router` runs them, on a real
//! loopback connection. Viewers' sessions are minted by real master requests;
//! then each of `SESSIONS` sessions reloads its media playlist in turn, so
//! every request reads a session, chooses the edge, and answers a signed,
//! rendered playlist (kept renderings included, as in production).
//!
//! Counted with `dhat` over the whole process. The client is a plain
//! blocking socket on its own thread that reuses its buffers, so it allocates
//! nothing per request once warm: the count is the server's.
//!
//! `cargo bench -p router --bench allocations`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const SESSIONS: usize = 1_000;
const ROUNDS: usize = 10;
const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\n\
360p/index.m3u8\n";
const MEDIA: &[u8] = include_bytes!("../tests/playlists/ffmpeg_ts_live_window.m3u8");

/// One HTTP/1.1 keep-alive connection; answers are read by `Content-Length`.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    body: Vec<u8>,
    line: String,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the router");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            reader: BufReader::new(stream.try_clone().expect("clone the socket")),
            writer: stream,
            body: Vec::with_capacity(16 * 1024),
            line: String::with_capacity(256),
        }
    }

    /// Sends `request` (a whole request head) and reads the answer's body.
    fn get(&mut self, request: &[u8]) -> &[u8] {
        self.writer.write_all(request).expect("send");
        let mut length = 0;
        let mut status = 0;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).expect("read a head line");
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().expect("status code");
            } else if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content length");
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).expect("read the body");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&self.body));
        &self.body
    }
}

fn head(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

fn main() {
    let _profiler = if std::env::var_os("DHAT_PROFILE").is_some() {
        dhat::Profiler::new_heap()
    } else {
        dhat::Profiler::builder().testing().build()
    };
    let store = tempfile::tempdir().expect("temp dir");
    let dir = store.path().join("live/bench");
    std::fs::create_dir_all(dir.join("360p")).expect("mkdir");
    std::fs::write(dir.join("master.m3u8"), MASTER).expect("write master");
    std::fs::write(dir.join("360p/index.m3u8"), MEDIA).expect("write media");

    let config = router::config::Config {
        origin: format!("file://{}", store.path().display()),
        fleet_token: "bench-fleet-token-0123456789".to_owned().into(),
        signing_keys: vec!["k1:bench-signing-secret-0123456789".parse().expect("signing key")],
        edges: (1..=3)
            .map(|i| router::config::EdgeConfig {
                id: format!("edge-{i}"),
                url: format!("http://127.0.0.1:1900{i}"),
                capacity_bps: 10_000_000_000,
                group: None,
            })
            .collect(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(runtime::server::bind("127.0.0.1:0".parse().expect("addr")))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let state = router::state(&config, &format!("http://{addr}")).expect("router state");
    let app = router::http::service(std::sync::Arc::new(state));
    runtime.spawn(runtime::server::serve(
        listener,
        None,
        app,
        runtime::server::Connections::default(),
        std::future::pending(),
    ));

    let client = std::thread::spawn(move || {
        let mut client = Client::connect(addr);
        let master = head("/live/bench/master.m3u8");
        let media: Vec<Vec<u8>> = (0..SESSIONS)
            .map(|_| {
                let body = std::str::from_utf8(client.get(&master)).expect("utf-8 master");
                let uri = body
                    .lines()
                    .find(|l| !l.starts_with('#') && !l.is_empty())
                    .expect("a variant");
                let path = match uri.split_once("://") {
                    Some((_, rest)) => &rest[rest.find('/').expect("a path")..],
                    None => &format!("/live/bench/{uri}"),
                };
                head(path)
            })
            .collect();
        // Warm: every session once (first requests count the viewer).
        for request in &media {
            client.get(request);
        }
        let bytes = client.get(&media[0]).len();
        let before = dhat::HeapStats::get();
        for _ in 0..ROUNDS {
            for request in &media {
                client.get(request);
            }
        }
        let after = dhat::HeapStats::get();
        let n = (ROUNDS * SESSIONS) as f64;
        println!(
            "media playlist reloads: {n} requests over {SESSIONS} sessions, {bytes} bytes each; \
             server allocations per request: {:.2} ({:.0} bytes)",
            (after.total_blocks - before.total_blocks) as f64 / n,
            (after.total_bytes - before.total_bytes) as f64 / n,
        );
    });
    client.join().expect("client thread");
}
