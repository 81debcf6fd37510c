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
//! payload = version (1 byte, = 1)
//!         ‖ issued_unix (8 bytes, big endian)
//!         ‖ viewer_id   (8 bytes, big endian)
//!         ‖ edge_id     (1 to 64 bytes of [A-Za-z0-9._-])
//! tag     = first 16 bytes of HMAC-SHA256(secret, "hlscdn-session\0" ‖ payload)
//! ```
//!
//! A token that is forged, malformed, older than the caller's maximum age or
//! issued in the future (beyond [`MAX_CLOCK_SKEW_SECS`]) decodes to `None`:
//! that is not an error, the viewer simply gets a fresh assignment.

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

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 8;
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"hlscdn-session\0";
/// Longest encoded session: 4 base64 characters per 3 bytes, rounded up.
const MAX_ENCODED_LEN: usize = (HEADER_LEN + MAX_EDGE_ID_LEN + TAG_LEN).div_ceil(3) * 4;

/// What a session token says about a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The edge the viewer was assigned to.
    pub edge_id: String,
    /// When the session was minted, unix seconds.
    pub issued_unix: u64,
    /// A random id for the viewer, drawn by the caller.
    pub viewer_id: u64,
}

/// The fleet's session secret, ready to mint and read sessions. `Debug` hides it.
#[derive(Clone)]
pub struct SessionKey {
    /// HMAC state with the secret and the domain prefix already absorbed.
    mac: HmacSha256,
}

impl SessionKey {
    /// A key from the fleet session secret (at least [`MIN_SECRET_LEN`] bytes
    /// recommended; configuration enforces it).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC takes keys of any length, so the fallback is never used.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        mac.update(DOMAIN);
        SessionKey { mac }
    }

    /// The token for `session`.
    ///
    /// An edge id that is not a valid id (see [`valid_edge_id`]) still encodes,
    /// but never decodes: such a viewer is reassigned on its next request.
    pub fn encode(&self, session: &Session) -> String {
        let mut bytes = Vec::with_capacity(HEADER_LEN + session.edge_id.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&session.issued_unix.to_be_bytes());
        bytes.extend_from_slice(&session.viewer_id.to_be_bytes());
        bytes.extend_from_slice(session.edge_id.as_bytes());
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The session in `token`, if it is genuine, well formed, at most
    /// `max_age_secs` old at `now_unix` and not issued more than
    /// [`MAX_CLOCK_SKEW_SECS`] in the future.
    pub fn decode(&self, token: &str, now_unix: u64, max_age_secs: u64) -> Option<Session> {
        if token.len() > MAX_ENCODED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() <= HEADER_LEN + TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;

        let (header, edge_id) = payload.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return None;
        }
        let issued_unix = u64::from_be_bytes(header[1..9].try_into().ok()?);
        let viewer_id = u64::from_be_bytes(header[9..17].try_into().ok()?);
        let edge_id = std::str::from_utf8(edge_id).ok().filter(|id| valid_edge_id(id))?;
        if issued_unix > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS)
            || now_unix.saturating_sub(issued_unix) > max_age_secs
        {
            return None;
        }
        Some(Session {
            edge_id: edge_id.to_owned(),
            issued_unix,
            viewer_id,
        })
    }
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
        }
    }

    #[test]
    fn compact_and_url_safe() {
        let t = key().encode(&session("edge-1"));
        assert_eq!(t.len(), ((17 + 6 + 16usize) * 4).div_ceil(3), "{t}");
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
        };
        let t = "AQAAAABpVbkAASNFZ4mrze9lZGdlLTECwQ4NmzG_NAqf2ctS5ssg";
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

    proptest! {
        #[test]
        fn roundtrip(edge in "[A-Za-z0-9._-]{1,64}", viewer in any::<u64>(), issued in 0u64..u64::MAX / 2, age in 0u64..DAY) {
            let k = key();
            let s = Session { edge_id: edge, issued_unix: issued, viewer_id: viewer };
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
            let t = k.encode(&Session { edge_id: edge, issued_unix: NOW, viewer_id: viewer });
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
