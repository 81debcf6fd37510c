//! The viewer session token that routers put on playlist URIs.
//!
//! A router mints a [`Session`] when it answers a multivariant playlist and
//! adds it as the query parameter [`SESSION_PARAM`] (`s`) to every variant and
//! rendition URI. On each media playlist reload, whichever router of the fleet
//! answers reads it back to keep the viewer on its edge. All routers share one
//! fleet session secret, so any of them can read what another minted.
//!
//! # Format
//!
//! URL-safe base64 without padding of `payload ‖ tag`:
//!
//! ```text
//! payload = version (1 byte, = 3)
//!         ‖ issued_unix (8 bytes, big endian)
//!         ‖ viewer_id   (8 bytes, big endian)
//!         ‖ stream      (8 bytes: [`stream_id`] of the stream it was minted for)
//!         ‖ edge_id     (1 to 64 bytes of [A-Za-z0-9._-])
//! tag     = first 16 bytes of HMAC-SHA256(secret, "hlscdn-session\0" ‖ payload)
//! ```
//!
//! A token that is forged, malformed, older than the caller's maximum age or
//! issued in the future (beyond [`MAX_CLOCK_SKEW_SECS`]) decodes to `None`:
//! that is not an error, the viewer simply gets a fresh assignment. A
//! session is bound to the stream it was minted for: [`Session::covers`]
//! tells whether a requested object lies under that stream, and a router
//! ignores a session used for another stream.
//!
//! # Steering tickets
//!
//! A [`SteeringTicket`] rides on the Content Steering `SERVER-URI` of a
//! multivariant playlist: it names the viewer and the pathways (edge ids)
//! that playlist offered, so whichever router answers the steering manifest
//! can order them and clone new ones with the same session tokens. Same
//! layout, another version byte and HMAC domain, and the edge field is the
//! pathway ids joined by `,` (1 to [`MAX_PATHWAYS`] of them).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Query parameter that carries the session on playlist URIs.
pub const SESSION_PARAM: &str = "s";

/// How far in the future an issue time may be (clocks of routers differ a little).
pub const MAX_CLOCK_SKEW_SECS: u64 = 30;

/// Longest edge id a session carries (the same limit as ads).
pub const MAX_EDGE_ID_LEN: usize = 64;

/// Shortest session secret a deployment should use; [`SessionKey::new`]
/// accepts any length, configuration checks this.
pub const MIN_SECRET_LEN: usize = 16;

/// Most pathways a steering ticket names.
pub const MAX_PATHWAYS: usize = 4;

const VERSION: u8 = 3;
const TICKET_VERSION: u8 = 4;
const HEADER_LEN: usize = 1 + 8 + 8 + 8;
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"hlscdn-session\0";
const TICKET_DOMAIN: &[u8] = b"hlscdn-steering\0";
/// Longest edge field of a ticket: the ids and the commas between them.
const MAX_TICKET_FIELD_LEN: usize = MAX_PATHWAYS * (MAX_EDGE_ID_LEN + 1) - 1;
/// Longest encoded session: 4 base64 characters per 3 bytes, rounded up.
const MAX_ENCODED_LEN: usize = (HEADER_LEN + MAX_EDGE_ID_LEN + TAG_LEN).div_ceil(3) * 4;
/// Longest encoded steering ticket.
const MAX_TICKET_ENCODED_LEN: usize = (HEADER_LEN + MAX_TICKET_FIELD_LEN + TAG_LEN).div_ceil(3) * 4;

/// What a session token says about a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The edge the viewer was assigned to.
    pub edge_id: String,
    /// When the session was minted, unix seconds.
    pub issued_unix: u64,
    /// A random id for the viewer, drawn by the caller.
    pub viewer_id: u64,
    /// The stream it was minted for, as [`stream_id`].
    pub stream: u64,
}

impl Session {
    /// Whether the object or playlist at `key` (no leading `/`) lies under
    /// the session's stream: the stream is the directory of `key` or one
    /// of its ancestors.
    pub fn covers(&self, key: &str) -> bool {
        self.stream_dir(key).is_some()
    }

    /// The directory of the session's stream among those of `key` (its
    /// directory, then each ancestor up to the root `""`), if any.
    pub fn stream_dir<'k>(&self, key: &'k str) -> Option<&'k str> {
        let mut dir = key.trim_start_matches('/');
        loop {
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
            if stream_id(dir) == self.stream {
                return Some(dir);
            }
            if dir.is_empty() {
                return None;
            }
        }
    }
}

/// The 64-bit id of a stream directory (e.g. `live/demo-1`, no slashes at
/// the ends; `""` for the root): the first 8 bytes of SHA-256 over
/// `"hlscdn-stream\0"` and the path. The same on every router.
pub fn stream_id(stream: &str) -> u64 {
    use sha2::Digest as _;
    let mut hash = Sha256::new();
    hash.update(b"hlscdn-stream\0");
    hash.update(stream.trim_matches('/').as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// What a steering ticket says: the viewer, and the pathways its
/// multivariant playlist offered, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteeringTicket {
    /// When the multivariant playlist was answered, unix seconds; also the
    /// issue time of every session token minted for its pathways and clones.
    pub issued_unix: u64,
    /// The viewer, as in its sessions.
    pub viewer_id: u64,
    /// The stream, as [`stream_id`] of the multivariant playlist's directory.
    pub stream: u64,
    /// Pathway ids (edge ids), the first being the one the viewer started on.
    pub pathways: Vec<String>,
}

impl SteeringTicket {
    /// The session token payload for the pathway (or clone) on `edge_id`.
    pub fn session(&self, edge_id: &str) -> Session {
        Session {
            edge_id: edge_id.to_owned(),
            issued_unix: self.issued_unix,
            viewer_id: self.viewer_id,
            stream: self.stream,
        }
    }
}

/// The fleet's session secret, ready to mint and read sessions and steering
/// tickets. `Debug` hides it.
#[derive(Clone)]
pub struct SessionKey {
    /// HMAC state with the secret and the session domain already absorbed.
    mac: HmacSha256,
    /// The same for steering tickets.
    ticket_mac: HmacSha256,
}

/// The parts of a decoded token, before its edge field is interpreted.
struct Opened<'a> {
    issued_unix: u64,
    viewer_id: u64,
    stream: u64,
    field: &'a str,
}

impl SessionKey {
    /// A key from the fleet session secret (at least [`MIN_SECRET_LEN`] bytes
    /// recommended; configuration enforces it).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC takes keys of any length, so the fallback is never used.
        let base = <HmacSha256 as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        let mut mac = base.clone();
        mac.update(DOMAIN);
        let mut ticket_mac = base;
        ticket_mac.update(TICKET_DOMAIN);
        SessionKey { mac, ticket_mac }
    }

    /// The token for `session`.
    ///
    /// An edge id that is not a valid id (see [`valid_edge_id`]) still encodes,
    /// but never decodes: such a viewer is reassigned on its next request.
    pub fn encode(&self, session: &Session) -> String {
        seal(
            &self.mac,
            VERSION,
            session.issued_unix,
            session.viewer_id,
            session.stream,
            &[session.edge_id.as_str()],
        )
    }

    /// The session in `token`, if it is genuine, well formed, at most
    /// `max_age_secs` old at `now_unix` and not issued more than
    /// [`MAX_CLOCK_SKEW_SECS`] in the future.
    pub fn decode(&self, token: &str, now_unix: u64, max_age_secs: u64) -> Option<Session> {
        let bytes = decode_limited(token, MAX_ENCODED_LEN)?;
        let opened = open(&self.mac, VERSION, &bytes, now_unix, max_age_secs)?;
        let edge_id = Some(opened.field).filter(|id| valid_edge_id(id))?;
        Some(Session {
            edge_id: edge_id.to_owned(),
            issued_unix: opened.issued_unix,
            viewer_id: opened.viewer_id,
            stream: opened.stream,
        })
    }

    /// The steering ticket for `ticket`. Pathway ids that are not valid
    /// edge ids, or more than [`MAX_PATHWAYS`] of them, still encode but never decode.
    pub fn encode_ticket(&self, ticket: &SteeringTicket) -> String {
        let ids: Vec<&str> = ticket.pathways.iter().map(String::as_str).collect();
        seal(
            &self.ticket_mac,
            TICKET_VERSION,
            ticket.issued_unix,
            ticket.viewer_id,
            ticket.stream,
            &ids,
        )
    }

    /// The steering ticket in `token`, on the same terms as [`SessionKey::decode`].
    pub fn decode_ticket(&self, token: &str, now_unix: u64, max_age_secs: u64) -> Option<SteeringTicket> {
        let bytes = decode_limited(token, MAX_TICKET_ENCODED_LEN)?;
        let opened = open(&self.ticket_mac, TICKET_VERSION, &bytes, now_unix, max_age_secs)?;
        let pathways: Vec<String> = opened.field.split(',').map(str::to_owned).collect();
        if pathways.len() > MAX_PATHWAYS || !pathways.iter().all(|id| valid_edge_id(id)) {
            return None;
        }
        Some(SteeringTicket {
            issued_unix: opened.issued_unix,
            viewer_id: opened.viewer_id,
            stream: opened.stream,
            pathways,
        })
    }
}

/// `version ‖ issued ‖ viewer ‖ stream ‖ ids joined by ','` with its tag, base64.
fn seal(
    mac: &HmacSha256,
    version: u8,
    issued_unix: u64,
    viewer_id: u64,
    stream: u64,
    ids: &[&str],
) -> String {
    let field_len = ids.iter().map(|id| id.len() + 1).sum::<usize>();
    let mut bytes = Vec::with_capacity(HEADER_LEN + field_len + TAG_LEN);
    bytes.push(version);
    bytes.extend_from_slice(&issued_unix.to_be_bytes());
    bytes.extend_from_slice(&viewer_id.to_be_bytes());
    bytes.extend_from_slice(&stream.to_be_bytes());
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(id.as_bytes());
    }
    let mut mac = mac.clone();
    mac.update(&bytes);
    let tag = mac.finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_limited(token: &str, max_len: usize) -> Option<Vec<u8>> {
    if token.len() > max_len {
        return None;
    }
    URL_SAFE_NO_PAD.decode(token).ok()
}

/// Checks the tag, version and time window of decoded token bytes.
fn open<'b>(
    mac: &HmacSha256,
    version: u8,
    bytes: &'b [u8],
    now_unix: u64,
    max_age_secs: u64,
) -> Option<Opened<'b>> {
    if bytes.len() <= HEADER_LEN + TAG_LEN {
        return None;
    }
    let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let mut mac = mac.clone();
    mac.update(payload);
    mac.verify_truncated_left(tag).ok()?;

    let (header, field) = payload.split_at(HEADER_LEN);
    if header[0] != version {
        return None;
    }
    let issued_unix = u64::from_be_bytes(header[1..9].try_into().ok()?);
    let viewer_id = u64::from_be_bytes(header[9..17].try_into().ok()?);
    let stream = u64::from_be_bytes(header[17..25].try_into().ok()?);
    if issued_unix > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS)
        || now_unix.saturating_sub(issued_unix) > max_age_secs
    {
        return None;
    }
    Some(Opened {
        issued_unix,
        viewer_id,
        stream,
        field: std::str::from_utf8(field).ok()?,
    })
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Whether `id` is a valid edge id: 1 to 64 bytes of `[A-Za-z0-9._-]`.
/// [`crate::fleet::Ad::validate`] applies the same rule.
pub fn valid_edge_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EDGE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_767_225_600;
    const DAY: u64 = 86_400;

    fn key() -> SessionKey {
        SessionKey::new(b"fleet-session-secret-0123")
    }

    fn session(edge: &str) -> Session {
        Session {
            edge_id: edge.into(),
            issued_unix: NOW,
            viewer_id: 0xdead_beef_f00d,
            stream: stream_id("live/demo-1"),
        }
    }

    #[test]
    fn compact_and_url_safe() {
        let t = key().encode(&session("edge-1"));
        assert_eq!(t.len(), ((25 + 6 + 16usize) * 4).div_ceil(3), "{t}");
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{t}"
        );
        let longest = key().encode(&session(&"e".repeat(64)));
        assert!(longest.len() <= MAX_ENCODED_LEN);
        assert!(key().decode(&longest, NOW, DAY).is_some());
    }

    #[test]
    fn known_answer() {
        // The example in docs/TOKENS.md.
        let k = SessionKey::new(b"example-session-secret");
        let s = Session {
            edge_id: "edge-1".into(),
            issued_unix: NOW,
            viewer_id: 0x0123_4567_89ab_cdef,
            stream: stream_id("live/demo-1"),
        };
        let t = "AwAAAABpVbkAASNFZ4mrze-9AcEyZ79YlWVkZ2UtMbVk0p2WrNj-R84PxLpmukg";
        assert_eq!(k.encode(&s), t);
        assert_eq!(k.decode(t, NOW, DAY), Some(s));
    }

    #[test]
    fn time_window() {
        let k = key();
        let t = k.encode(&session("edge-1"));
        assert!(k.decode(&t, NOW, 0).is_some());
        assert!(k.decode(&t, NOW + DAY, DAY).is_some());
        assert!(k.decode(&t, NOW + DAY + 1, DAY).is_none(), "too old");
        assert!(
            k.decode(&t, NOW - MAX_CLOCK_SKEW_SECS, DAY).is_some(),
            "small skew"
        );
        assert!(
            k.decode(&t, NOW - MAX_CLOCK_SKEW_SECS - 1, DAY).is_none(),
            "from the future"
        );
    }

    #[test]
    fn refuses_other_secrets_and_garbage() {
        let t = key().encode(&session("edge-1"));
        assert!(
            SessionKey::new(b"another-secret-0123456")
                .decode(&t, NOW, DAY)
                .is_none()
        );
        for bad in [
            "",
            "AAAA",
            "!!!!",
            &format!("{t}="),
            &t[..t.len() - 1],
            &"A".repeat(500),
        ] {
            assert!(key().decode(bad, NOW, DAY).is_none(), "{bad}");
        }
    }

    #[test]
    fn invalid_edge_ids_never_decode() {
        for id in ["", "edge/1", "edge 1", &"e".repeat(65)] {
            let t = key().encode(&session(id));
            assert!(key().decode(&t, NOW, DAY).is_none(), "{id:?}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", SessionKey::new(b"visible-secret-123456"));
        assert!(!text.contains("visible"), "{text}");
    }

    #[test]
    fn steering_tickets_roundtrip_and_stay_apart_from_sessions() {
        let k = key();
        let ticket = SteeringTicket {
            issued_unix: NOW,
            viewer_id: 7,
            stream: stream_id("live/demo-1"),
            pathways: vec!["edge-2".into(), "edge-1".into(), "edge-3".into()],
        };
        let t = k.encode_ticket(&ticket);
        assert_eq!(k.decode_ticket(&t, NOW + 10, DAY), Some(ticket.clone()));
        assert!(k.decode(&t, NOW, DAY).is_none(), "a ticket is not a session");
        let s = k.encode(&session("edge-1"));
        assert!(
            k.decode_ticket(&s, NOW, DAY).is_none(),
            "a session is not a ticket"
        );
        assert_eq!(ticket.session("edge-9").viewer_id, 7);
        assert_eq!(ticket.session("edge-9").issued_unix, NOW);

        let longest = SteeringTicket {
            pathways: vec!["e".repeat(64); MAX_PATHWAYS],
            ..ticket.clone()
        };
        assert!(k.decode_ticket(&k.encode_ticket(&longest), NOW, DAY).is_some());
        for bad in [
            vec!["e".to_owned(); MAX_PATHWAYS + 1],
            vec![String::new()],
            vec!["a,b".to_owned(), String::new()],
            vec!["edge/1".to_owned()],
        ] {
            let t = k.encode_ticket(&SteeringTicket {
                pathways: bad.clone(),
                ..ticket.clone()
            });
            assert!(k.decode_ticket(&t, NOW, DAY).is_none(), "{bad:?}");
        }
        assert!(
            k.decode_ticket(&k.encode_ticket(&ticket), NOW + DAY + 1, DAY)
                .is_none()
        );
    }

    #[test]
    fn a_session_covers_its_stream_only() {
        let s = session("edge-1");
        assert!(s.covers("live/demo-1/240p/index.m3u8"));
        assert!(s.covers("/live/demo-1/240p/seg-1.ts"));
        assert!(s.covers("live/demo-1/master.m3u8"));
        assert!(!s.covers("live/demo-2/240p/index.m3u8"));
        assert!(!s.covers("live/demo-10/240p/index.m3u8"));
        assert!(!s.covers("vod/demo/240p/index.m3u8"));
        assert!(!s.covers("live/seg.ts"), "a parent is not the stream");
        let root = Session {
            stream: stream_id(""),
            ..s
        };
        assert!(root.covers("anything/at/all.ts"));
        assert_eq!(stream_id("/live/demo-1/"), stream_id("live/demo-1"));
    }

    proptest! {
        #[test]
        fn roundtrip(edge in "[A-Za-z0-9._-]{1,64}", viewer in any::<u64>(), issued in 0u64..u64::MAX / 2, age in 0u64..DAY) {
            let k = key();
            let s = Session { edge_id: edge, issued_unix: issued, viewer_id: viewer, stream: stream_id("vod/x") };
            let t = k.encode(&s);
            prop_assert_eq!(k.decode(&t, issued + age, DAY), Some(s));
        }

        #[test]
        fn tamper_is_refused(
            edge in "[A-Za-z0-9._-]{1,64}",
            viewer in any::<u64>(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let k = key();
            let t = k.encode(&Session { edge_id: edge, issued_unix: NOW, viewer_id: viewer, stream: 7 });
            // Tamper with the encoded text...
            let mut text = t.clone().into_bytes();
            let i = at.index(text.len());
            prop_assume!(text[i] != byte);
            text[i] = byte;
            let text = String::from_utf8_lossy(&text);
            prop_assert!(k.decode(&text, NOW, DAY).is_none(), "tampered text accepted: {}", text);
            // ...and with the decoded bytes.
            let mut raw = URL_SAFE_NO_PAD.decode(&t).expect("own encoding");
            let j = at.index(raw.len());
            prop_assume!(raw[j] != byte);
            raw[j] = byte;
            prop_assert!(k.decode(&URL_SAFE_NO_PAD.encode(&raw), NOW, DAY).is_none());
        }

        #[test]
        fn expiry(age in 0u64..10 * DAY, max_age in 0u64..10 * DAY) {
            let k = key();
            let t = k.encode(&session("edge-7"));
            prop_assert_eq!(k.decode(&t, NOW + age, max_age).is_some(), age <= max_age);
        }
    }
}
