//! Signed segment URLs, in the shape of Akamai's EdgeAuth token.
//!
//! A router signs one token per stream and appends it to every media URI it
//! writes as the query parameter [`TOKEN_PARAM`] (`hdnts`); an edge verifies
//! it before serving and strips it from its cache key and from the origin
//! request ([`split_token`]).
//!
//! ```text
//! hdnts=exp=1767225600~acl=/live/demo-1/*~kid=k2024~hmac=<64 lowercase hex digits>
//! ```
//!
//! - `exp`: unix seconds; the token is valid while `now < exp`.
//! - `acl`: the path the token covers, percent-encoded: an exact path, or a
//!   prefix ending in `*` (`/live/demo-1/*` covers everything under the stream).
//!   The path is the *decoded* object path (`/vod/a b/*`, written
//!   `acl=/vod/a%20b/*`), and the edge compares it with the request path it
//!   decoded: one canonical form on both sides, however a URL spells it.
//! - `kid`: the id of the [`SigningKey`] that signed it, so keys rotate without
//!   downtime: a [`KeyRing`] signs with its first key and verifies with any.
//! - `hmac`: HMAC-SHA256 with that key's secret over every byte before `~hmac=`,
//!   compared in constant time.
//!
//! Verification order is part of the contract: shape, key id, signature, path,
//! expiry. A forged or tampered token is therefore [`TokenError::BadSignature`]
//! even when it is also expired, and only a genuine token earns the 410 of
//! [`TokenError::Expired`] that tells a player to reload its playlist.
//! `docs/TOKENS.md` describes the format for operators.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Query parameter that carries the token on segment URLs.
pub const TOKEN_PARAM: &str = "hdnts";

/// Shortest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Longest accepted key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Longest token [`KeyRing::verify`] looks at; anything longer is malformed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Bytes of the acl that stay as they are; everything else is percent-encoded,
/// in particular the field separators `~` and `=`.
const ACL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'/')
    .remove(b'*');

const HMAC_FIELD: &str = "~hmac=";
const HMAC_HEX_LEN: usize = 64;

/// Why a `KID:SECRET` key or a key ring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text has no `:` between key id and secret.
    #[error("signing key must look like KID:SECRET")]
    MissingSeparator,
    /// The key id is empty.
    #[error("signing key id must not be empty")]
    EmptyId,
    /// The key id is longer than [`MAX_KEY_ID_LEN`].
    #[error("signing key id must be at most {MAX_KEY_ID_LEN} bytes")]
    IdTooLong,
    /// The key id holds a byte outside `[A-Za-z0-9._-]`.
    #[error("signing key id may only contain A-Z a-z 0-9 . _ - (found {0:?})")]
    BadIdChar(char),
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("signing key secret must be at least {MIN_SECRET_LEN} bytes (got {0})")]
    SecretTooShort(usize),
    /// A key ring needs at least one key.
    #[error("at least one signing key is needed")]
    NoKeys,
    /// Two keys of a ring share an id, so a token could not name its key.
    #[error("signing key id {0:?} appears twice")]
    DuplicateId(String),
}

/// Why a token was refused. [`TokenError::http_status`] gives the edge's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The request carries no token.
    #[error("missing token")]
    Missing,
    /// The token does not have the `exp=…~acl=…~kid=…~hmac=…` shape.
    #[error("malformed token")]
    Malformed,
    /// The token names a key id this ring does not hold (unknown or retired).
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// The HMAC does not match: forged or tampered.
    #[error("bad token signature")]
    BadSignature,
    /// The token is genuine but its acl does not cover the requested path.
    #[error("token does not cover this path")]
    PathNotCovered,
    /// The token is genuine but its expiry time has passed.
    #[error("token expired")]
    Expired,
}

impl TokenError {
    /// HTTP status an edge answers with: 410 Gone for [`TokenError::Expired`]
    /// (the player should reload its playlist for a fresh token), 403 Forbidden
    /// for everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::Expired => 410,
            _ => 403,
        }
    }
}

/// One HMAC key: an id that travels in tokens and a secret that never does.
///
/// Parsed from `KID:SECRET` (the `--signing-key` flag): the id is 1 to 64 bytes
/// of `[A-Za-z0-9._-]`, the secret is every byte after the first `:` and is at
/// least [`MIN_SECRET_LEN`] bytes long. `Debug` shows the id only.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    /// HMAC state with the secret already absorbed; cloned per use.
    mac: HmacSha256,
}

impl SigningKey {
    /// A key from its id and secret.
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        validate_key_id(id)?;
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::SecretTooShort(secret.len()))?;
        Ok(SigningKey {
            id: id.to_owned(),
            mac,
        })
    }

    /// The key id, as written in the `kid` field of tokens.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac_of(&self, signed: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac
    }
}

impl FromStr for SigningKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, secret) = s.split_once(':').ok_or(KeyError::MissingSeparator)?;
        SigningKey::new(id, secret.as_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn validate_key_id(id: &str) -> Result<(), KeyError> {
    if id.is_empty() {
        return Err(KeyError::EmptyId);
    }
    if id.len() > MAX_KEY_ID_LEN {
        return Err(KeyError::IdTooLong);
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(KeyError::BadIdChar(c)),
        None => Ok(()),
    }
}

/// One or more signing keys: signs with the first (the current key), verifies
/// with any of them.
///
/// Rotation without downtime: add the new key second on every edge, then
/// first on every router, and drop the old key once the tokens it signed have
/// expired. `Debug` lists key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring of `keys`; the first signs. Refuses an empty list and repeated ids.
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id == key.id) {
                return Err(KeyError::DuplicateId(key.id.clone()));
            }
        }
        Ok(KeyRing { keys })
    }

    /// A ring of one key.
    pub fn single(key: SigningKey) -> Self {
        KeyRing { keys: vec![key] }
    }

    /// The key that signs.
    pub fn current(&self) -> &SigningKey {
        // `new` and `single` never build an empty ring.
        &self.keys[0]
    }

    /// Every key, the signing one first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// A token that covers `acl` (an exact path, or a prefix ending in `*`,
    /// see [`acl_for_stream`]; percent-decoded, as an object key: `/vod/a b/*`,
    /// never `/vod/a%20b/*`) until `expires_unix` (exclusive), signed with the
    /// current key. The result is the value of the [`TOKEN_PARAM`] query
    /// parameter and needs no further escaping.
    pub fn sign(&self, acl: &str, expires_unix: u64) -> String {
        let key = self.current();
        let mut token = String::with_capacity(acl.len() + key.id.len() + 100);
        token.push_str("exp=");
        token.push_str(&expires_unix.to_string());
        token.push_str("~acl=");
        token.extend(utf8_percent_encode(acl, ACL_ENCODE));
        token.push_str("~kid=");
        token.push_str(&key.id);
        let tag = key.mac_of(token.as_bytes()).finalize().into_bytes();
        token.push_str(HMAC_FIELD);
        token.push_str(&hex::encode(tag));
        token
    }

    /// Checks `token` for a request of `request_path` at `now_unix`.
    ///
    /// `request_path` is the path after the edge has normalized it (no `.` or
    /// `..` segments, no percent-encoded traversal); a path that still holds a
    /// dot segment, or does not start with `/`, is never covered.
    pub fn verify(&self, token: &str, request_path: &str, now_unix: u64) -> Result<(), TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let parsed = parse(token)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parsed.kid)
            .ok_or(TokenError::UnknownKey)?;
        key.mac_of(parsed.signed.as_bytes())
            .verify_slice(&parsed.tag)
            .map_err(|_| TokenError::BadSignature)?;
        if !acl_covers(&parsed.acl, request_path) {
            return Err(TokenError::PathNotCovered);
        }
        if now_unix >= parsed.exp {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// [`KeyRing::verify`] on the token found in a raw query string
    /// ([`TokenError::Missing`] when there is none).
    pub fn verify_query(&self, query: &str, request_path: &str, now_unix: u64) -> Result<(), TokenError> {
        let (token, _) = split_token(query);
        self.verify(token.unwrap_or(""), request_path, now_unix)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// The acl that covers every object of a stream: `live/demo-1` or
/// `/live/demo-1/` → `/live/demo-1/*`. The empty prefix covers every path (`/*`).
pub fn acl_for_stream(stream_prefix: &str) -> String {
    let trimmed = stream_prefix.trim_matches('/');
    let mut acl = String::with_capacity(trimmed.len() + 3);
    acl.push('/');
    if !trimmed.is_empty() {
        acl.push_str(trimmed);
        acl.push('/');
    }
    acl.push('*');
    acl
}

/// Finds the [`TOKEN_PARAM`] parameter in a raw query string (without the
/// leading `?`) and returns its raw value and the query without it.
///
/// Every other parameter is kept byte for byte and in order, so the rest is
/// what an edge uses in its cache key and sends to the origin. When the token
/// appears more than once, the first one is returned and all are removed.
/// Allocates only when the token sits between two other parameters.
///
/// ```
/// use router_api::token::split_token;
/// assert_eq!(split_token("a=1&hdnts=exp=9~x&b=2"), (Some("exp=9~x"), "a=1&b=2".into()));
/// assert_eq!(split_token("_HLS_msn=5"), (None, "_HLS_msn=5".into()));
/// ```
pub fn split_token(query: &str) -> (Option<&str>, Cow<'_, str>) {
    let mut token = None;
    // Byte ranges of the kept parameters, coalesced while they are contiguous.
    let mut rest: Option<Cow<'_, str>> = None;
    let mut run_start: Option<usize> = None;
    let mut pos = 0;
    let mut found = false;
    for pair in query.split('&') {
        let start = pos;
        let end = start + pair.len();
        pos = end + 1;
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if name == TOKEN_PARAM {
            found = true;
            if token.is_none() {
                token = Some(pair.get(TOKEN_PARAM.len() + 1..).unwrap_or(""));
            }
            if let Some(s) = run_start.take() {
                push_run(&mut rest, &query[s..start - 1]);
            }
        } else if run_start.is_none() {
            run_start = Some(start);
        }
    }
    if !found {
        return (None, Cow::Borrowed(query));
    }
    if let Some(s) = run_start {
        push_run(&mut rest, &query[s..]);
    }
    (token, rest.unwrap_or(Cow::Borrowed("")))
}

fn push_run<'a>(rest: &mut Option<Cow<'a, str>>, run: &'a str) {
    match rest {
        None => *rest = Some(Cow::Borrowed(run)),
        Some(acc) => {
            let acc = acc.to_mut();
            acc.push('&');
            acc.push_str(run);
        }
    }
}

struct Parsed<'a> {
    /// Everything before `~hmac=`: the bytes the HMAC covers.
    signed: &'a str,
    exp: u64,
    acl: String,
    kid: &'a str,
    tag: [u8; 32],
}

fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let at = token.rfind(HMAC_FIELD).ok_or(TokenError::Malformed)?;
    let signed = &token[..at];
    let tag = decode_lower_hex(&token[at + HMAC_FIELD.len()..]).ok_or(TokenError::Malformed)?;

    let (mut exp, mut acl, mut kid) = (None, None, None);
    for field in signed.split('~') {
        let (name, value) = field.split_once('=').ok_or(TokenError::Malformed)?;
        // Unknown fields are refused rather than ignored: a field this version
        // does not know could be a restriction (an IP, a start time) it would
        // otherwise fail to enforce.
        let slot = match name {
            "exp" => &mut exp,
            "acl" => &mut acl,
            "kid" => &mut kid,
            _ => return Err(TokenError::Malformed),
        };
        if slot.replace(value).is_some() {
            return Err(TokenError::Malformed);
        }
    }
    let exp = exp.filter(|e| !e.is_empty() && e.len() <= 20 && e.bytes().all(|b| b.is_ascii_digit()));
    let exp = exp
        .and_then(|e| e.parse::<u64>().ok())
        .ok_or(TokenError::Malformed)?;
    let acl = acl.ok_or(TokenError::Malformed)?;
    let acl = percent_decode_str(acl)
        .decode_utf8()
        .map_err(|_| TokenError::Malformed)?
        .into_owned();
    if acl.is_empty() {
        return Err(TokenError::Malformed);
    }
    let kid = kid
        .filter(|k| validate_key_id(k).is_ok())
        .ok_or(TokenError::Malformed)?;
    Ok(Parsed {
        signed,
        exp,
        acl,
        kid,
        tag,
    })
}

/// Decodes exactly 64 lowercase hex digits. Uppercase is refused so that a
/// token has a single spelling and any changed byte is detected.
fn decode_lower_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != HMAC_HEX_LEN {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn acl_covers(acl: &str, path: &str) -> bool {
    if !path.starts_with('/') || path.split('/').any(|seg| seg == "." || seg == "..") {
        return false;
    }
    match acl.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == acl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_767_225_600;

    fn key(id: &str, secret: &str) -> SigningKey {
        SigningKey::new(id, secret.as_bytes()).expect("valid test key")
    }

    fn ring() -> KeyRing {
        KeyRing::single(key("k1", "0123456789abcdef-secret"))
    }

    #[test]
    fn parses_keys_with_clear_errors() {
        let k: SigningKey = "k-2024.1:0123456789abcdef:with:colons".parse().expect("valid");
        assert_eq!(k.id(), "k-2024.1");
        assert_eq!(
            "nocolon".parse::<SigningKey>().err(),
            Some(KeyError::MissingSeparator)
        );
        assert_eq!(
            ":0123456789abcdef".parse::<SigningKey>().err(),
            Some(KeyError::EmptyId)
        );
        assert_eq!(
            "k~1:0123456789abcdef".parse::<SigningKey>().err(),
            Some(KeyError::BadIdChar('~'))
        );
        assert_eq!(
            "k1:short".parse::<SigningKey>().err(),
            Some(KeyError::SecretTooShort(5))
        );
        let long = format!("{}:0123456789abcdef", "k".repeat(65));
        assert_eq!(long.parse::<SigningKey>().err(), Some(KeyError::IdTooLong));
        assert!(
            KeyError::SecretTooShort(5)
                .to_string()
                .contains("at least 16 bytes")
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secret = "super-secret-value-123";
        let k = key("k1", secret);
        let ring = KeyRing::new(vec![k.clone(), key("k2", "another-secret-value")]).expect("ring");
        for text in [format!("{k:?}"), format!("{ring:?}")] {
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains("another-secret"), "{text}");
            assert!(text.contains("k1"), "{text}");
        }
    }

    #[test]
    fn ring_refuses_empty_and_duplicates() {
        assert_eq!(KeyRing::new(vec![]).err(), Some(KeyError::NoKeys));
        let dup = KeyRing::new(vec![key("a", "0123456789abcdef"), key("a", "fedcba9876543210")]);
        assert_eq!(dup.err(), Some(KeyError::DuplicateId("a".into())));
    }

    #[test]
    fn token_shape() {
        let t = ring().sign("/live/demo 1/~x=*", NOW);
        let (signed, tag) = t.split_once("~hmac=").expect("hmac field");
        assert_eq!(signed, format!("exp={NOW}~acl=/live/demo%201/%7Ex%3D*~kid=k1"));
        assert_eq!(tag.len(), 64);
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(ring().verify(&t, "/live/demo 1/~x=/seg.ts", NOW - 1), Ok(()));
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256("0123456789abcdef-secret", "exp=1767225600~acl=/live/demo-1/*~kid=k1"),
        // frozen so that a change of format or encoding is noticed.
        let t = ring().sign("/live/demo-1/*", NOW);
        let expected = format!("exp={NOW}~acl=/live/demo-1/*~kid=k1");
        assert!(t.starts_with(&expected));
        let mut mac = HmacSha256::new_from_slice(b"0123456789abcdef-secret").expect("key");
        mac.update(expected.as_bytes());
        assert_eq!(&t[expected.len() + 6..], hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn the_acl_is_the_decoded_path() {
        // Issue 13 item 9: the ACL is signed over the decoded path, encoded
        // once in the token, and compared with the decoded request path.
        let stream = "vod/r \"q\" 100% \u{e9}";
        let t = ring().sign(&acl_for_stream(stream), NOW);
        assert!(t.contains("~acl=/vod/r%20%22q%22%20100%25%20%C3%A9/*~"), "{t}");
        assert_eq!(ring().verify(&t, &format!("/{stream}/seg 1.ts"), NOW - 1), Ok(()));
        // An ACL signed over the encoded form is another path: it never
        // covers the decoded one (the double encoding of the issue).
        let encoded = ring().sign("/vod/a%20b/*", NOW);
        assert!(encoded.contains("~acl=/vod/a%2520b/*~"), "{encoded}");
        assert_eq!(
            ring().verify(&encoded, "/vod/a b/seg.ts", NOW - 1),
            Err(TokenError::PathNotCovered)
        );
    }

    #[test]
    fn statuses() {
        let r = ring();
        let acl = acl_for_stream("live/demo-1");
        let t = r.sign(&acl, NOW);
        assert_eq!(
            r.verify("", "/live/demo-1/a.ts", NOW - 5),
            Err(TokenError::Missing)
        );
        assert_eq!(
            r.verify("garbage", "/live/demo-1/a.ts", NOW - 5),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            r.verify(&t, "/live/demo-2/a.ts", NOW - 5),
            Err(TokenError::PathNotCovered)
        );
        assert_eq!(r.verify(&t, "/live/demo-1/a.ts", NOW), Err(TokenError::Expired));
        assert_eq!(TokenError::Expired.http_status(), 410);
        for e in [
            TokenError::Missing,
            TokenError::Malformed,
            TokenError::UnknownKey,
            TokenError::BadSignature,
            TokenError::PathNotCovered,
        ] {
            assert_eq!(e.http_status(), 403);
        }
    }

    #[test]
    fn forged_expired_token_is_bad_signature() {
        let other = KeyRing::single(key("k1", "a-different-secret-value"));
        let forged = other.sign("/*", NOW - 100);
        assert_eq!(
            ring().verify(&forged, "/live/x.ts", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn acl_matching() {
        assert_eq!(acl_for_stream("live/demo-1"), "/live/demo-1/*");
        assert_eq!(acl_for_stream("/live/demo-1/"), "/live/demo-1/*");
        assert_eq!(acl_for_stream(""), "/*");
        assert!(acl_covers("/live/demo-1/*", "/live/demo-1/720p/seg1.ts"));
        assert!(!acl_covers("/live/demo-1/*", "/live/demo-10/seg1.ts"));
        assert!(!acl_covers("/live/demo-1/*", "/live/demo-1/../demo-2/seg1.ts"));
        assert!(!acl_covers("/live/demo-1/*", "/live/demo-1/./seg1.ts"));
        assert!(!acl_covers("/*", "relative/seg1.ts"));
        assert!(acl_covers("/vod/a.ts", "/vod/a.ts"));
        assert!(!acl_covers("/vod/a.ts", "/vod/a.tsx"));
        assert!(
            !acl_covers("/vod/*/a.ts", "/vod/x/a.ts"),
            "only a trailing * is a wildcard"
        );
    }

    #[test]
    fn malformed_shapes() {
        let r = ring();
        let good = r.sign("/a/*", NOW);
        let (signed, tag) = good.split_once("~hmac=").expect("hmac");
        for bad in [
            format!("{signed}~hmac={}", tag.to_uppercase()),
            format!("{signed}~hmac={}", &tag[..62]),
            format!("{signed}~ip=1.2.3.4~hmac={tag}"),
            format!("{signed}~kid=k1~hmac={tag}"),
            format!("exp=+5~acl=/a/*~kid=k1~hmac={tag}"),
            format!("exp=5~acl=~kid=k1~hmac={tag}"),
            format!("exp=5~acl=/a/%FF~kid=k1~hmac={tag}"),
            format!("exp=5~acl=/a/*~hmac={tag}"),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                r.verify(&bad, "/a/b", NOW - 1),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn split_token_cases() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("", None, ""),
            ("a=1", None, "a=1"),
            ("hdnts=T", Some("T"), ""),
            ("hdnts", Some(""), ""),
            ("hdnts=T&a=1", Some("T"), "a=1"),
            ("a=1&hdnts=T", Some("T"), "a=1"),
            ("a=1&hdnts=T&b=2", Some("T"), "a=1&b=2"),
            ("a=1&hdnts=T&b=2&hdnts=U&c", Some("T"), "a=1&b=2&c"),
            (
                "hdntsx=1&xhdnts=2&hdnts=exp=1~acl=/a/*",
                Some("exp=1~acl=/a/*"),
                "hdntsx=1&xhdnts=2",
            ),
            ("_HLS_msn=4&&hdnts=T", Some("T"), "_HLS_msn=4&"),
        ];
        for &(query, token, rest) in cases {
            let (t, r) = split_token(query);
            assert_eq!((t, r.as_ref()), (token, rest), "{query}");
        }
        assert!(matches!(split_token("a=1&hdnts=T").1, Cow::Borrowed(_)));
        assert!(matches!(split_token("hdnts=T&a=1&b=2").1, Cow::Borrowed(_)));
    }

    #[test]
    fn verify_query_finds_the_token() {
        let r = ring();
        let t = r.sign("/a/*", NOW);
        assert_eq!(
            r.verify_query(&format!("x=1&{TOKEN_PARAM}={t}"), "/a/b.ts", NOW - 1),
            Ok(())
        );
        assert_eq!(
            r.verify_query("x=1", "/a/b.ts", NOW - 1),
            Err(TokenError::Missing)
        );
    }

    #[test]
    fn rotation() {
        let old = key("old", "old-secret-0123456789");
        let new = key("new", "new-secret-0123456789");
        let before = KeyRing::single(old.clone());
        let during = KeyRing::new(vec![new.clone(), old.clone()]).expect("ring");
        let after = KeyRing::single(new);
        let t_old = before.sign("/s/*", NOW);
        let t_new = during.sign("/s/*", NOW);
        assert!(t_new.contains("~kid=new~"));
        assert_eq!(during.verify(&t_old, "/s/a", NOW - 1), Ok(()));
        assert_eq!(during.verify(&t_new, "/s/a", NOW - 1), Ok(()));
        assert_eq!(after.verify(&t_new, "/s/a", NOW - 1), Ok(()));
        assert_eq!(after.verify(&t_old, "/s/a", NOW - 1), Err(TokenError::UnknownKey));
    }

    fn path_segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_~=%*!. -]{1,12}".prop_filter("no dot segments", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn accepts_what_it_signed(
            segs in proptest::collection::vec(path_segment(), 1..4),
            tail in proptest::collection::vec(path_segment(), 0..3),
            exp in 1u64..u64::MAX,
            age in 1u64..1_000_000,
        ) {
            let prefix = format!("/{}", segs.join("/"));
            let r = ring();
            let now = exp.saturating_sub(age);
            prop_assume!(now < exp);
            let t = r.sign(&acl_for_stream(&prefix), exp);
            let path = format!("{prefix}/{}", tail.join("/"));
            prop_assert_eq!(r.verify(&t, &path, now), Ok(()));
            // The exact acl covers its own path only (a trailing `*` would make it a prefix).
            prop_assume!(!prefix.ends_with('*'));
            let exact = r.sign(&prefix, exp);
            prop_assert_eq!(r.verify(&exact, &prefix, now), Ok(()));
            prop_assert_eq!(r.verify(&exact, &format!("{prefix}x"), now), Err(TokenError::PathNotCovered));
        }

        /// The other half of "accepts exactly what it signed": a token of
        /// the right shape that the ring did not sign (any acl, expiry and
        /// 64 hex digits) is never accepted, for any path it could cover.
        #[test]
        fn accepts_nothing_it_did_not_sign(
            exp in NOW..u64::MAX,
            acl in "/[a-z0-9/]{0,12}\\*?",
            kid in prop_oneof![Just("k1".to_owned()), "[a-z0-9]{1,4}"],
            hmac in "[0-9a-f]{64}",
        ) {
            let r = ring();
            let forged = format!("exp={exp}~acl={acl}~kid={kid}~hmac={hmac}");
            prop_assume!(forged != r.sign(&acl, exp));
            let path = acl.strip_suffix('*').map_or(acl.clone(), |p| format!("{p}x"));
            prop_assert!(r.verify(&forged, &path, NOW - 1).is_err());
        }

        #[test]
        fn rejects_after_expiry(exp in 0u64..u64::MAX / 2, late in 0u64..1_000_000) {
            let r = ring();
            let t = r.sign("/s/*", exp);
            let err = r.verify(&t, "/s/a.ts", exp + late);
            prop_assert_eq!(err, Err(TokenError::Expired));
            prop_assert_eq!(TokenError::Expired.http_status(), 410);
        }

        #[test]
        fn rejects_any_single_byte_tamper(
            stream in "[a-z0-9-]{1,10}",
            exp in NOW..NOW + 100_000,
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let r = ring();
            let t = r.sign(&acl_for_stream(&format!("live/{stream}")), exp);
            let mut bytes = t.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let tampered = String::from_utf8_lossy(&bytes);
            let result = r.verify(&tampered, &format!("/live/{stream}/a.ts"), NOW - 1);
            prop_assert!(result.is_err(), "tampered token accepted: {tampered}");
        }

        #[test]
        fn rejects_paths_outside_the_acl(
            stream in "[a-z0-9]{1,10}",
            other in "[a-z0-9]{1,10}",
            file in "[a-z0-9.]{1,10}",
        ) {
            prop_assume!(stream != other);
            let r = ring();
            let t = r.sign(&acl_for_stream(&format!("live/{stream}")), NOW);
            let outside = format!("/live/{other}/{file}");
            prop_assert_eq!(r.verify(&t, &outside, NOW - 1), Err(TokenError::PathNotCovered));
            let sibling = format!("/live/{stream}{other}/{file}");
            prop_assert_eq!(r.verify(&t, &sibling, NOW - 1), Err(TokenError::PathNotCovered));
        }

        #[test]
        fn rejects_unknown_kid(id in "[A-Za-z0-9._-]{1,16}", secret in "[ -~]{16,40}") {
            prop_assume!(id != "k1");
            let stranger = KeyRing::single(SigningKey::new(&id, secret.as_bytes()).expect("valid"));
            let t = stranger.sign("/s/*", NOW);
            prop_assert_eq!(ring().verify(&t, "/s/a", NOW - 1), Err(TokenError::UnknownKey));
        }

        #[test]
        fn rotated_ring_accepts_both_live_keys(exp in NOW..NOW + 10_000, retired_secret in "[a-z]{16,24}") {
            let a = key("a", "secret-of-key-a-123");
            let b = key("b", "secret-of-key-b-456");
            let retired = SigningKey::new("c", retired_secret.as_bytes()).expect("valid");
            let ring = KeyRing::new(vec![b.clone(), a.clone()]).expect("ring");
            for signer in [a, b] {
                let t = KeyRing::single(signer).sign("/s/*", exp);
                prop_assert_eq!(ring.verify(&t, "/s/x", NOW - 1), Ok(()));
            }
            let t = KeyRing::single(retired).sign("/s/*", exp);
            prop_assert_eq!(ring.verify(&t, "/s/x", NOW - 1), Err(TokenError::UnknownKey));
        }
    }
}
