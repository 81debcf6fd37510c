//! A raw HTTP/2 client for the hostile-input tests: frames written by hand
//! on a blocking socket (h2c with prior knowledge, RFC 9113 §3.3), so that a
//! test can send what no HTTP/2 library would (streams reset as soon as they
//! are opened, floods of SETTINGS, header lists past the server's limit) and
//! see exactly which frames come back, and when the server closes.
//!
//! Header blocks are HPACK-encoded (RFC 7541) without Huffman coding and
//! without touching the dynamic table: literal fields "without indexing",
//! the name indexed from the static table where it is there, else literal.
//! Of a response, only `:status` is decoded ([`Frame::status`]). Loopback
//! only; nothing here panics on what the server sends.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4), sent before any frame.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest frame payload a peer must accept before SETTINGS say otherwise
/// (`SETTINGS_MAX_FRAME_SIZE`'s initial value); header blocks longer than
/// this go out as HEADERS plus CONTINUATION frames.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;
/// Length of a frame header: 24-bit length, type, flags, 31-bit stream id.
pub const FRAME_HEADER_LEN: usize = 9;

/// `DATA` frame type.
pub const DATA: u8 = 0x0;
/// `HEADERS` frame type.
pub const HEADERS: u8 = 0x1;
/// `RST_STREAM` frame type.
pub const RST_STREAM: u8 = 0x3;
/// `SETTINGS` frame type.
pub const SETTINGS: u8 = 0x4;
/// `PING` frame type.
pub const PING: u8 = 0x6;
/// `GOAWAY` frame type.
pub const GOAWAY: u8 = 0x7;
/// `WINDOW_UPDATE` frame type.
pub const WINDOW_UPDATE: u8 = 0x8;
/// `CONTINUATION` frame type.
pub const CONTINUATION: u8 = 0x9;

/// `END_STREAM` flag (DATA, HEADERS).
pub const END_STREAM: u8 = 0x1;
/// `ACK` flag (SETTINGS, PING).
pub const ACK: u8 = 0x1;
/// `END_HEADERS` flag (HEADERS, CONTINUATION).
pub const END_HEADERS: u8 = 0x4;
/// `PADDED` flag (DATA, HEADERS).
pub const PADDED: u8 = 0x8;
/// `PRIORITY` flag (HEADERS).
pub const PRIORITY: u8 = 0x20;

/// Error code `NO_ERROR` (RST_STREAM, GOAWAY).
pub const NO_ERROR: u32 = 0x0;
/// Error code `PROTOCOL_ERROR`.
pub const PROTOCOL_ERROR: u32 = 0x1;
/// Error code `REFUSED_STREAM`.
pub const REFUSED_STREAM: u32 = 0x7;
/// Error code `CANCEL`.
pub const CANCEL: u32 = 0x8;
/// Error code `COMPRESSION_ERROR`.
pub const COMPRESSION_ERROR: u32 = 0x9;
/// Error code `ENHANCE_YOUR_CALM`.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type ([`HEADERS`], [`GOAWAY`], ...).
    pub kind: u8,
    /// Flags ([`END_STREAM`], [`END_HEADERS`], [`ACK`], ...).
    pub flags: u8,
    /// Stream identifier (0: the connection).
    pub stream: u32,
    /// Payload, padding included.
    pub payload: Vec<u8>,
}

impl Frame {
    /// For a GOAWAY frame: the last stream id the server processed and the
    /// error code; `None` for other frames or a short payload.
    pub fn goaway(&self) -> Option<(u32, u32)> {
        if self.kind != GOAWAY {
            return None;
        }
        Some((
            be_u32(self.payload.get(0..4)?) & 0x7fff_ffff,
            be_u32(self.payload.get(4..8)?),
        ))
    }

    /// For a RST_STREAM frame: its error code.
    pub fn rst_code(&self) -> Option<u32> {
        if self.kind != RST_STREAM {
            return None;
        }
        Some(be_u32(self.payload.get(0..4)?))
    }

    /// For a HEADERS frame: its header block fragment, padding and priority
    /// fields taken off (`None` when they do not fit).
    pub fn header_block(&self) -> Option<&[u8]> {
        if self.kind != HEADERS {
            return None;
        }
        let mut block = self.payload.as_slice();
        let mut pad = 0;
        if self.flags & PADDED != 0 {
            pad = usize::from(*block.first()?);
            block = block.get(1..)?;
        }
        if self.flags & PRIORITY != 0 {
            block = block.get(5..)?;
        }
        block.get(..block.len().checked_sub(pad)?)
    }

    /// For the HEADERS frame of a response: its status, decoded from the
    /// first field of the block, where every server puts `:status`. Handles
    /// the static table's `:status` entries (indexes 8 to 14, e.g. `0x88`
    /// for 200) and a literal value with the `:status` name indexed, plain
    /// or Huffman-coded (digits only). `None` for anything else.
    pub fn status(&self) -> Option<u16> {
        let block = self.header_block()?;
        let first = *block.first()?;
        if first & 0x80 != 0 {
            // Indexed header field (§6.1), 7-bit index.
            return match first & 0x7f {
                8 => Some(200),
                9 => Some(204),
                10 => Some(206),
                11 => Some(304),
                12 => Some(400),
                13 => Some(404),
                14 => Some(500),
                _ => None,
            };
        }
        // Literal with incremental indexing (§6.2.1, 6-bit name index) or
        // without / never indexed (§6.2.2-3, 4-bit): the name must be
        // `:status`, an index from 8 to 14.
        let name = if first & 0x40 != 0 {
            first & 0x3f
        } else {
            first & 0x0f
        };
        // 001xxxxx is a dynamic table size update, not a field.
        if first & 0xe0 == 0x20 || !(8..=14).contains(&name) {
            return None;
        }
        let (huffman, len, rest) = string_head(block.get(1..)?)?;
        let raw = rest.get(..len)?;
        let digits = if huffman {
            huffman_digits(raw)?
        } else {
            String::from_utf8(raw.to_vec()).ok()?
        };
        digits.parse().ok()
    }
}

/// What one read from the server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole frame.
    Frame(Frame),
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing more within the time allowed.
    TimedOut,
}

/// Every frame read for a while, and how the reading ended.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The frames, in order.
    pub frames: Vec<Frame>,
    /// Whether the server closed the connection.
    pub closed: bool,
    /// When the server closed it, after the reading began.
    pub closed_after: Option<Duration>,
    /// When the first GOAWAY came, after the reading began.
    pub goaway_after: Option<Duration>,
}

impl Seen {
    /// The first GOAWAY's last stream id and error code.
    pub fn goaway(&self) -> Option<(u32, u32)> {
        self.frames.iter().find_map(Frame::goaway)
    }

    /// The status of the first HEADERS frame on `stream`.
    pub fn status(&self, stream: u32) -> Option<u16> {
        self.frames
            .iter()
            .find(|f| f.kind == HEADERS && f.stream == stream)
            .and_then(Frame::status)
    }

    /// The first HEADERS frame on `stream`.
    pub fn headers(&self, stream: u32) -> Option<&Frame> {
        self.frames
            .iter()
            .find(|f| f.kind == HEADERS && f.stream == stream)
    }

    /// The error code of the first RST_STREAM on `stream`.
    pub fn reset(&self, stream: u32) -> Option<u32> {
        self.frames
            .iter()
            .filter(|f| f.stream == stream)
            .find_map(Frame::rst_code)
    }

    /// How many frames of type `kind` with all of `flags` came.
    pub fn count(&self, kind: u8, flags: u8) -> usize {
        self.frames
            .iter()
            .filter(|f| f.kind == kind && f.flags & flags == flags)
            .count()
    }
}

/// A raw HTTP/2 connection (h2c, prior knowledge) on a blocking socket.
#[derive(Debug)]
pub struct H2 {
    stream: TcpStream,
    /// Bytes read but not yet returned as a frame.
    buf: Vec<u8>,
    /// Whether EOF (or a reset) was seen.
    eof: bool,
}

impl H2 {
    /// Connects to `addr` and sends the client preface: the magic string
    /// and an empty SETTINGS frame. Writes time out after 5 s.
    pub fn connect(addr: SocketAddr) -> std::io::Result<H2> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut h2 = H2 {
            stream,
            buf: Vec::new(),
            eof: false,
        };
        h2.write(PREFACE)?;
        h2.settings(&[])?;
        Ok(h2)
    }

    /// The underlying socket (to change its timeouts, or shut it down).
    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one frame.
    pub fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> std::io::Result<()> {
        self.write(&encode_frame(kind, flags, stream, payload))
    }

    /// Writes a SETTINGS frame with these (identifier, value) pairs.
    pub fn settings(&mut self, settings: &[(u16, u32)]) -> std::io::Result<()> {
        self.frame(SETTINGS, 0, 0, &settings_payload(settings))
    }

    /// Acknowledges the server's SETTINGS.
    pub fn settings_ack(&mut self) -> std::io::Result<()> {
        self.frame(SETTINGS, ACK, 0, &[])
    }

    /// Writes a request's header block on `stream`: one HEADERS frame, or
    /// HEADERS and CONTINUATION frames of at most
    /// [`DEFAULT_MAX_FRAME_SIZE`] when the block is longer.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> std::io::Result<()> {
        let bytes = headers_frames(stream, &hpack_encode(fields), end_stream);
        self.write(&bytes)
    }

    /// `GET path` on `stream`, with no body.
    pub fn get(&mut self, stream: u32, path: &str) -> std::io::Result<()> {
        self.headers(stream, &request_fields("GET", path), true)
    }

    /// Resets `stream` with error `code`.
    pub fn rst_stream(&mut self, stream: u32, code: u32) -> std::io::Result<()> {
        self.frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// Reads the next frame, waiting at most `within`.
    pub fn next(&mut self, within: Duration) -> Event {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.take_frame() {
                return Event::Frame(frame);
            }
            if self.eof {
                return Event::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::TimedOut;
            }
            // A zero timeout would mean "block for ever".
            if self
                .stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                self.eof = true;
                continue;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Event::TimedOut;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// Reads the next frame, waiting at most 5 s: `None` on EOF or timeout.
    pub fn read_frame(&mut self) -> Option<Frame> {
        match self.next(Duration::from_secs(5)) {
            Event::Frame(frame) => Some(frame),
            Event::Closed | Event::TimedOut => None,
        }
    }

    /// Reads frames for at most `within`, until the server closes, or until
    /// `done` is true of the frames read so far. Pings are answered (the
    /// server's keep-alive must not close a connection a test is watching).
    pub fn read_until(&mut self, within: Duration, mut done: impl FnMut(&Seen) -> bool) -> Seen {
        let started = Instant::now();
        let deadline = started + within;
        let mut seen = Seen::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Event::Frame(frame) => {
                    if frame.kind == PING && frame.flags & ACK == 0 {
                        let _ = self.frame(PING, ACK, 0, &frame.payload);
                    }
                    if frame.kind == GOAWAY && seen.goaway_after.is_none() {
                        seen.goaway_after = Some(started.elapsed());
                    }
                    seen.frames.push(frame);
                    if done(&seen) {
                        return seen;
                    }
                }
                Event::Closed => {
                    seen.closed = true;
                    seen.closed_after = Some(started.elapsed());
                    return seen;
                }
                Event::TimedOut => return seen,
            }
        }
    }

    /// Reads frames until the server closes, for at most `within`.
    pub fn read_until_closed(&mut self, within: Duration) -> Seen {
        self.read_until(within, |_| false)
    }

    /// Reads frames until a HEADERS frame on `stream` (or a RST_STREAM of
    /// it, or a GOAWAY), for at most `within`.
    pub fn read_response(&mut self, stream: u32, within: Duration) -> Seen {
        self.read_until(within, |seen| {
            seen.frames.last().is_some_and(|f| {
                (f.stream == stream && matches!(f.kind, HEADERS | RST_STREAM)) || f.kind == GOAWAY
            })
        })
    }

    /// A whole frame from the bytes read, if there is one.
    fn take_frame(&mut self) -> Option<Frame> {
        let head = self.buf.get(..FRAME_HEADER_LEN)?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let kind = head[3];
        let flags = head[4];
        let stream = be_u32(&head[5..9]) & 0x7fff_ffff;
        let payload = self.buf.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)?.to_vec();
        self.buf.drain(..FRAME_HEADER_LEN + len);
        Some(Frame {
            kind,
            flags,
            stream,
            payload,
        })
    }
}

/// The pseudo-header fields (and nothing else) of a request for `path`
/// over h2c: `:method`, `:scheme http`, `:authority localhost`, `:path`.
pub fn request_fields<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", path),
    ]
}

/// One frame as bytes: the 9-byte header, then `payload`.
pub fn encode_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "a frame payload fits in 24 bits");
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS payload: 6 bytes per (identifier, value).
pub fn settings_payload(settings: &[(u16, u32)]) -> Vec<u8> {
    settings
        .iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect()
}

/// `block` on `stream` as one HEADERS frame, or HEADERS and CONTINUATION
/// frames of at most [`DEFAULT_MAX_FRAME_SIZE`] each; END_HEADERS on the
/// last, END_STREAM on the HEADERS frame when `end_stream`.
pub fn headers_frames(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let mut chunks: Vec<&[u8]> = block.chunks(DEFAULT_MAX_FRAME_SIZE).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    let mut out = Vec::with_capacity(block.len() + FRAME_HEADER_LEN * chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let (kind, mut flags) = if i == 0 {
            (HEADERS, if end_stream { END_STREAM } else { 0 })
        } else {
            (CONTINUATION, 0)
        };
        if i == last {
            flags |= END_HEADERS;
        }
        out.extend(encode_frame(kind, flags, stream, chunk));
    }
    out
}

/// The static table's index of a name (RFC 7541 Appendix A), for the names
/// requests here use.
fn static_name(name: &str) -> Option<u8> {
    Some(match name {
        ":authority" => 1,
        ":method" => 2,
        ":path" => 4,
        ":scheme" => 6,
        "accept" => 19,
        "user-agent" => 58,
        _ => return None,
    })
}

/// An HPACK header block (RFC 7541) for `fields`, every one a "literal
/// header field without indexing" (§6.2.2): with the name indexed from the
/// static table where it is there, else a literal name; strings are not
/// Huffman-coded. The dynamic table is never used.
pub fn hpack_encode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        match static_name(name) {
            Some(index) => encode_int(&mut out, usize::from(index), 4, 0x00),
            None => {
                out.push(0x00);
                encode_string(&mut out, name.as_bytes());
            }
        }
        encode_string(&mut out, value.as_bytes());
    }
    out
}

/// An integer with an `n`-bit prefix (§5.1), the first byte's high bits `high`.
fn encode_int(out: &mut Vec<u8>, value: usize, n: u32, high: u8) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal (§5.2) without Huffman coding: H = 0, 7-bit length, bytes.
fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_int(out, bytes.len(), 7, 0x00);
    out.extend_from_slice(bytes);
}

/// A string literal's head: whether it is Huffman-coded, its length, and
/// the bytes after the head.
fn string_head(src: &[u8]) -> Option<(bool, usize, &[u8])> {
    let first = *src.first()?;
    let huffman = first & 0x80 != 0;
    let mut len = usize::from(first & 0x7f);
    let mut at = 1;
    if len == 0x7f {
        let mut shift = 0;
        loop {
            let byte = *src.get(at)?;
            at += 1;
            len = len.checked_add(usize::from(byte & 0x7f).checked_shl(shift)?)?;
            shift += 7;
            if byte & 0x80 == 0 || shift > 28 {
                break;
            }
        }
    }
    Some((huffman, len, src.get(at..)?))
}

/// Decodes a Huffman-coded string (RFC 7541 Appendix B) made only of the
/// digits `0`-`9`, as status codes are: `0`-`2` are the 5-bit codes
/// `00000`-`00010`, `3`-`9` the 6-bit codes `011001`-`011111`; the end is
/// padded with ones. `None` for anything else.
fn huffman_digits(src: &[u8]) -> Option<String> {
    let bits: Vec<bool> = src
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
        .collect();
    let code = |from: usize, n: usize| -> Option<u8> {
        bits.get(from..from + n)?
            .iter()
            .try_fold(0u8, |acc, &b| Some(acc << 1 | u8::from(b)))
    };
    let mut out = String::new();
    let mut at = 0;
    while at < bits.len() {
        let rest = &bits[at..];
        if rest.len() < 8 && rest.iter().all(|&b| b) {
            break; // padding: the most significant bits of EOS
        }
        if let c @ 0..=2 = code(at, 5)? {
            out.push(char::from(b'0' + c));
            at += 5;
            continue;
        }
        match code(at, 6)? {
            c @ 0x19..=0x1f => out.push(char::from(b'3' + (c - 0x19))),
            _ => return None,
        }
        at += 6;
    }
    Some(out)
}

/// A big-endian u32 from 4 bytes (0 from fewer).
fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_their_prefix_then_seven_bit_groups() {
        // RFC 7541 C.1.1-C.1.3.
        let mut out = Vec::new();
        encode_int(&mut out, 10, 5, 0);
        assert_eq!(out, [0x0a]);
        out.clear();
        encode_int(&mut out, 1337, 5, 0);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
        out.clear();
        encode_int(&mut out, 42, 8, 0);
        assert_eq!(out, [0x2a]);
    }

    #[test]
    fn fields_are_literals_without_indexing() {
        // RFC 7541 C.2.2 (indexed name :path) and a new name.
        assert_eq!(
            hpack_encode(&[(":path", "/sample/path")]),
            b"\x04\x0c/sample/path".to_vec()
        );
        assert_eq!(hpack_encode(&[("x-a", "b")]), b"\x00\x03x-a\x01b".to_vec());
    }

    #[test]
    fn long_blocks_are_split_into_continuations() {
        let block = vec![0u8; DEFAULT_MAX_FRAME_SIZE * 2 + 1];
        let bytes = headers_frames(1, &block, true);
        assert_eq!(bytes.len(), block.len() + 3 * FRAME_HEADER_LEN);
        assert_eq!((bytes[3], bytes[4]), (HEADERS, END_STREAM));
        let second = FRAME_HEADER_LEN + DEFAULT_MAX_FRAME_SIZE;
        assert_eq!((bytes[second + 3], bytes[second + 4]), (CONTINUATION, 0));
        let third = 2 * second;
        assert_eq!((bytes[third + 3], bytes[third + 4]), (CONTINUATION, END_HEADERS));
        assert_eq!(&bytes[third..third + 3], &[0, 0, 1]);
    }

    #[test]
    fn statuses_are_decoded() {
        let headers = |payload: &[u8]| Frame {
            kind: HEADERS,
            flags: END_HEADERS,
            stream: 1,
            payload: payload.to_vec(),
        };
        assert_eq!(headers(&[0x88]).status(), Some(200));
        assert_eq!(headers(&[0x8d]).status(), Some(404));
        assert_eq!(headers(b"\x48\x03431").status(), Some(431));
        // "431" Huffman-coded: 011010 011001 00001, padded with ones.
        assert_eq!(headers(&[0x48, 0x83, 0x69, 0x90, 0xff]).status(), Some(431));
        // RFC 7541 C.6.1: "302" Huffman-coded.
        assert_eq!(headers(&[0x48, 0x82, 0x64, 0x02]).status(), Some(302));
        assert_eq!(headers(&[0x82]).status(), None, ":method GET is no status");
    }
}
