//! Hostile HTTP/2 against a real `hlscdn-origin` process on loopback, over
//! h2c with prior knowledge and frames written by hand ([`test_kit::h2`]):
//! rapid reset (CVE-2023-44487), a SETTINGS flood, header lists past the
//! 64 KiB limit, crowds of idle connections and a silent preface; and a
//! busy connection, which no timeout may close. Each gets what
//! `runtime::server` promises (GOAWAY, 431, a close within its timeout), and
//! the origin stays healthy. Every test is bounded: a fixed
//! number of frames and short read timeouts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_kit::Server;
use test_kit::h2::{self, H2};

const HEALTHZ_H1: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

/// An origin on a file store in a new temporary directory (kept as long as
/// the returned guard), with `envs`.
fn origin(envs: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("file://{}", dir.path().display());
    (Server::origin(&["--store", &store], envs), dir)
}

/// `GET /healthz` on a new h2c connection: the status of the answer.
fn h2_healthz(addr: SocketAddr) -> Option<u16> {
    let mut conn = H2::connect(addr).expect("connect");
    conn.get(1, "/healthz").expect("request");
    conn.read_response(1, Duration::from_secs(5)).status(1)
}

fn assert_healthy(server: &mut Server) {
    assert!(server.running(), "the process is alive");
    assert_eq!(
        test_kit::raw_status(server.addr, HEALTHZ_H1),
        200,
        "/healthz over HTTP/1.1"
    );
    assert_eq!(h2_healthz(server.addr), Some(200), "/healthz over h2c");
}

#[test]
fn a_normal_h2c_request_is_answered() {
    let (mut origin, _dir) = origin(&[]);
    let mut conn = H2::connect(origin.addr).expect("connect");
    conn.get(1, "/healthz").expect("request");
    let seen = conn.read_response(1, Duration::from_secs(5));
    let response = seen.headers(1).expect("a HEADERS frame on stream 1");
    // h2's HPACK encoder sends `:status: 200` as the static table's entry 8,
    // an indexed field: the single byte 0x80 | 8.
    let block = response.header_block().expect("header block");
    assert_eq!(
        block.first(),
        Some(&0x88),
        "`:status: 200`, indexed: {block:02x?}"
    );
    assert_eq!(seen.status(1), Some(200));
    assert!(seen.goaway().is_none(), "no GOAWAY: {:?}", seen.frames);
    // The server's SETTINGS came first, as the protocol requires.
    assert_eq!(seen.frames.first().map(|f| f.kind), Some(h2::SETTINGS));
    assert_healthy(&mut origin);
}

#[test]
fn rapid_reset_gets_goaway() {
    let (mut origin, _dir) = origin(&[]);
    let mut conn = H2::connect(origin.addr).expect("connect");
    // 500 streams, each opened and cancelled at once, written without
    // reading anything back (the attack never waits for answers).
    let mut attack = Vec::new();
    for i in 0..500u32 {
        let stream = 2 * i + 1;
        attack.extend(h2::headers_frames(
            stream,
            &h2::hpack_encode(&h2::request_fields("GET", "/healthz")),
            true,
        ));
        attack.extend(h2::encode_frame(
            h2::RST_STREAM,
            0,
            stream,
            &h2::CANCEL.to_be_bytes(),
        ));
    }
    let started = Instant::now();
    // The server may close before it has read it all.
    let _ = conn.write(&attack);
    let seen = conn.read_until_closed(Duration::from_secs(5));
    let took = started.elapsed();
    let (last, code) = seen.goaway().unwrap_or_else(|| {
        panic!(
            "no GOAWAY within {took:?}; closed: {}; {} frames",
            seen.closed,
            seen.frames.len()
        )
    });
    assert_eq!(code, h2::ENHANCE_YOUR_CALM, "GOAWAY code (last stream {last})");
    assert!(seen.closed, "closed after the GOAWAY, within 5 s");
    eprintln!(
        "rapid reset: GOAWAY(ENHANCE_YOUR_CALM, last stream {last}) after {:?}, closed after {:?}",
        seen.goaway_after, seen.closed_after
    );
    assert_healthy(&mut origin);
}

#[test]
fn settings_flood_is_bounded() {
    let (mut origin, _dir) = origin(&[("HLSCDN_HEADER_TIMEOUT_MS", "2000")]);
    let addr = origin.addr;
    let mut conn = H2::connect(addr).expect("connect");
    conn.socket()
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("write timeout");
    // A second client keeps asking for /healthz while the flood goes on.
    let checker = std::thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let started = Instant::now();
            assert_eq!(
                test_kit::raw_status(addr, HEALTHZ_H1),
                200,
                "/healthz during the flood"
            );
            slowest = slowest.max(started.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        slowest
    });
    // 20 000 empty SETTINGS, each of which h2 must ACK, and no ACK read.
    let flood = h2::encode_frame(h2::SETTINGS, 0, 0, &[]).repeat(1000);
    let started = Instant::now();
    let mut written = 0;
    let mut write_error = None;
    for _ in 0..20 {
        match conn.write(&flood) {
            Ok(()) => written += 1000,
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
    }
    let wrote_for = started.elapsed();
    let slowest = checker.join().expect("healthz checker");
    assert!(
        slowest < Duration::from_secs(2),
        "slowest /healthz during the flood: {slowest:?}"
    );
    // What came back: the server's own SETTINGS, then one ACK per SETTINGS
    // read. h2 0.4 has no cap on them: it answers each (it holds one
    // unacknowledged remote SETTINGS at most, and writes its ACK before it
    // reads the next frame), so a client that does not read stalls only its
    // own connection, by TCP flow control; and with no request on it, the
    // connection is closed at the header timeout.
    let seen = conn.read_until_closed(Duration::from_secs(10));
    let acks = seen.count(h2::SETTINGS, h2::ACK);
    eprintln!(
        "settings flood: {written} written in {wrote_for:?} ({write_error:?}); {acks} ACKs read; \
         closed: {} after {:?} more; GOAWAY {:?}; slowest /healthz {slowest:?}",
        seen.closed,
        seen.closed_after,
        seen.goaway()
    );
    assert_eq!(write_error.map(|e| e.kind()), None, "every SETTINGS written");
    // One more: the SETTINGS of the client preface.
    assert_eq!(acks, written + 1, "one ACK per SETTINGS");
    assert!(seen.closed, "closed at the header timeout: no request came");
    assert_healthy(&mut origin);
}

#[test]
fn oversized_header_lists_are_refused() {
    let (mut origin, _dir) = origin(&[]);
    let mut conn = H2::connect(origin.addr).expect("connect");
    // One 80 KiB header: a header list past the 64 KiB limit (and below 4
    // times it, where h2 would drop the whole connection), as HEADERS and
    // four CONTINUATION frames of 16 KiB and a last short one (h2 allows 5
    // CONTINUATION frames for a 64 KiB list of 16 KiB frames, plus the last).
    let big = "a".repeat(80 * 1024);
    let mut fields = h2::request_fields("GET", "/healthz");
    fields.push(("x-big", &big));
    conn.headers(1, &fields, true).expect("oversized request");
    let mut seen = conn.read_response(1, Duration::from_secs(5));
    // Whatever follows at once (a RST_STREAM, a GOAWAY) too.
    let after = conn.read_until(Duration::from_millis(500), |_| false);
    seen.frames.extend(after.frames);
    seen.closed = after.closed;
    eprintln!(
        "oversized header list: (type, flags, stream) {:?}",
        seen.frames
            .iter()
            .map(|f| (f.kind, f.flags, f.stream))
            .collect::<Vec<_>>()
    );
    // h2 answers an over-size request itself (the service never sees it):
    // 431 with END_STREAM and END_HEADERS. It also schedules a reset of the
    // stream, but the stream is closed both ways by then (the request had
    // END_STREAM), so no RST_STREAM goes out. The connection lives on.
    let response = seen.headers(1).expect("a response on stream 1");
    assert_eq!(seen.status(1), Some(431), "{response:?}");
    assert_eq!(
        response.flags & h2::END_STREAM,
        h2::END_STREAM,
        "431 ends the stream"
    );
    assert_eq!(seen.reset(1), None, "no RST_STREAM after the 431");
    assert!(seen.goaway().is_none(), "no GOAWAY: {:?}", seen.goaway());
    assert!(!seen.closed, "the connection stays open");
    // And serves the next request.
    conn.get(3, "/healthz").expect("next request");
    assert_eq!(conn.read_response(3, Duration::from_secs(5)).status(3), Some(200));
    assert_healthy(&mut origin);
}

#[test]
fn idle_h2_connections_are_closed() {
    const CONNECTIONS: usize = 50;
    let (mut origin, _dir) = origin(&[("HLSCDN_IDLE_TIMEOUT_MS", "1000")]);
    let addr = origin.addr;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = H2::connect(addr).expect("connect");
                let requested = Instant::now();
                conn.get(1, "/healthz").expect("request");
                let answer = conn.read_response(1, Duration::from_secs(5));
                assert_eq!(answer.status(1), Some(200), "{:?}", answer.frames);
                // Then idle: only read, until the server closes (or 8 s).
                let idle_from = requested.elapsed();
                let seen = conn.read_until_closed(Duration::from_secs(8));
                let goaway_at = seen.goaway_after.map(|d| idle_from + d);
                let closed_at = seen.closed_after.map(|d| idle_from + d);
                let kinds: Vec<u8> = seen.frames.iter().map(|f| f.kind).collect();
                (seen.goaway(), goaway_at, closed_at, kinds)
            })
        })
        .collect();
    let mut closes = Vec::new();
    for client in clients {
        let (goaway, goaway_at, closed_at, kinds) = client.join().expect("client");
        assert_eq!(
            goaway.map(|(_, code)| code),
            Some(h2::NO_ERROR),
            "a graceful GOAWAY within 8 s of the request: {goaway:?}; frame types after the \
             response: {kinds:?}; closed {closed_at:?} after the request"
        );
        let goaway_at = goaway_at.expect("GOAWAY time");
        let closed_at = closed_at.unwrap_or_else(|| {
            panic!("closed by the server within 8 s of going idle; frame types: {kinds:?}")
        });
        assert!(
            goaway_at >= Duration::from_millis(900),
            "GOAWAY too soon: {goaway_at:?}"
        );
        assert!(
            closed_at <= Duration::from_secs(6),
            "closed too late: {closed_at:?}"
        );
        closes.push((goaway_at, closed_at));
    }
    assert_eq!(closes.len(), CONNECTIONS);
    let first = closes.iter().map(|c| c.0).min();
    let last = closes.iter().map(|c| c.1).max();
    eprintln!("idle h2: {CONNECTIONS} GOAWAYs from {first:?}, last close at {last:?} after the request");
    assert_healthy(&mut origin);
}

#[test]
fn a_silent_h2_preface_is_closed_after_the_header_timeout() {
    let (mut origin, _dir) = origin(&[("HLSCDN_HEADER_TIMEOUT_MS", "500")]);
    let started = Instant::now();
    let mut conn = H2::connect(origin.addr).expect("connect");
    let seen = conn.read_until_closed(Duration::from_secs(5));
    let closed = started.elapsed();
    eprintln!(
        "silent preface: closed: {} after {closed:?}; frames {:?}",
        seen.closed,
        seen.frames.iter().map(|f| f.kind).collect::<Vec<_>>()
    );
    assert!(seen.closed, "closed within 5 s");
    assert!(
        closed >= Duration::from_millis(400),
        "closed too soon: {closed:?}"
    );
    assert!(closed <= Duration::from_secs(3), "closed too late: {closed:?}");
    assert_healthy(&mut origin);
}

#[test]
fn an_active_h2_connection_outlives_the_header_timeout() {
    // The header timeout bounds the wait for the first request only: a
    // connection that keeps making requests is not idle, and must not get
    // GOAWAY at the header timeout (1 s here; the idle timeout is 60 s).
    let (mut origin, _dir) = origin(&[("HLSCDN_HEADER_TIMEOUT_MS", "1000")]);
    let mut conn = H2::connect(origin.addr).expect("connect");
    let started = Instant::now();
    let mut stream = 1;
    while started.elapsed() < Duration::from_millis(2500) {
        conn.get(stream, "/healthz").expect("request");
        let seen = conn.read_response(stream, Duration::from_secs(5));
        assert!(
            seen.goaway().is_none() && !seen.closed,
            "GOAWAY {:?} (closed: {}) {:?} after the connection opened, stream {stream}",
            seen.goaway(),
            seen.closed,
            started.elapsed()
        );
        assert_eq!(seen.status(stream), Some(200), "stream {stream}");
        stream += 2;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_healthy(&mut origin);
}
