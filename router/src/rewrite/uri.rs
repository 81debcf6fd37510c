//! Which URIs are the origin's, and the object key each one names.
//!
//! A URI found in a playlist is one of:
//!
//! - relative (`seg1.ts`, `../720p/index.m3u8`): resolved against the
//!   directory of the playlist's object key;
//! - root-relative (`/live/x/seg1.ts`): resolved against the origin root;
//! - absolute `http(s)://` or network-path (`//host/...`) under one of the
//!   origin's base URLs: resolved to the key below that base;
//! - anything else, which is left alone: another host, another scheme
//!   (`data:`, `skd:`, ...), a `{$var}` reference, a path that climbs above
//!   the origin root with `..`, bytes that are not UTF-8, an empty URI.
//!
//! Resolution removes `.` and `..` segments (also written `%2e`), and keeps
//! every other byte as written, except those a URI cannot hold (space, `"`,
//! `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, control bytes, non-ASCII, and a
//! `%` that starts no `%XX` escape), which are percent-encoded as UTF-8
//! `%XX`: escapes already written are never decoded nor encoded again, so
//! the key is the one the packager meant and every URI the router writes is
//! valid. Keys are written into the template's arena as `/` + key, in this
//! URI (percent-encoded) form, with no allocation of their own.

/// Why a URI is not a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Empty, or only a fragment.
    Empty,
    /// Not UTF-8.
    NotUtf8,
    /// Holds an `EXT-X-DEFINE` variable reference (`{$name}`).
    Variable,
    /// A scheme other than `http`/`https` (`data:`, `skd:`, ...).
    Scheme,
    /// An absolute URI to a host (or base path) that is not the origin's.
    Foreign,
    /// Climbs above the origin root with `..`.
    Escapes,
}

/// One origin base URL, split for matching.
#[derive(Debug, Clone)]
struct Base {
    /// Lower-case scheme: `http` or `https`.
    scheme: String,
    /// Lower-case `host[:port]`, without the scheme's default port.
    authority: String,
    /// The base path without its leading `/`, ending with `/` unless empty.
    prefix: String,
}

/// The base URLs under which absolute URIs are the origin's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    bases: Vec<Base>,
}

fn default_port(scheme: &str) -> &'static str {
    if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    }
}

/// `host[:port]` in lower case, without the scheme's default port.
fn normalize_authority(scheme: &str, authority: &str) -> String {
    let mut a = authority.to_ascii_lowercase();
    if let Some(stripped) = a.strip_suffix(default_port(scheme)) {
        a.truncate(stripped.len());
    } else if a.ends_with(':') {
        a.pop();
    }
    a
}

/// The length of the scheme of `s` (RFC 3986 §3.1), if it has one.
fn scheme_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b':' => return Some(i),
            b if b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.' => {}
            _ => return None,
        }
    }
    None
}

fn is_http(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

impl Origins {
    /// Parses the base URLs; a base that is not `http(s)://authority[/path]` is ignored.
    pub(crate) fn new(bases: &[String]) -> Self {
        let bases = bases
            .iter()
            .filter_map(|b| {
                let (scheme, rest) = b.split_once("://")?;
                if !is_http(scheme) {
                    return None;
                }
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
                if authority.is_empty() || authority.contains('@') {
                    return None;
                }
                let mut prefix = path.trim_start_matches('/').to_owned();
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    prefix.push('/');
                }
                Some(Base {
                    scheme: scheme.to_ascii_lowercase(),
                    authority: normalize_authority(scheme, authority),
                    prefix,
                })
            })
            .collect();
        Self { bases }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `b` may stand in a URI as it is (RFC 3986 unreserved and
/// reserved characters, and `%` when it starts an escape).
fn uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

fn push_escape(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Whether `bytes[i..]` starts with a `%XX` escape.
fn is_escape(bytes: &[u8], i: usize) -> bool {
    bytes.get(i) == Some(&b'%')
        && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
}

/// Appends `text` (part of a URI as written in a playlist) with every byte a
/// URI cannot hold percent-encoded; `%XX` escapes are kept as written, a `%`
/// that starts none becomes `%25`.
pub(crate) fn push_uri_text(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    if bytes.iter().all(|&b| b != b'%' && uri_char(b)) {
        out.push_str(text);
        return;
    }
    for (i, &b) in bytes.iter().enumerate() {
        if (b == b'%' && is_escape(bytes, i)) || (b != b'%' && uri_char(b)) {
            out.push(char::from(b));
        } else {
            push_escape(out, b);
        }
    }
}

/// An object key (percent-decoded, as `ObjectKey` holds it) as a URI path:
/// every byte but `/`, letters, digits and `-._~!$&'()*+,;=:@` encoded
/// (`%` included, so a stored `100%.ts` is `100%25.ts`).
pub(crate) fn key_to_uri_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b == b'/' || (uri_char(b) && !b"%?#[]".contains(&b)) {
            out.push(char::from(b));
        } else {
            push_escape(&mut out, b);
        }
    }
    out
}

/// A key in URI form as an object key: percent-decoded (invalid UTF-8
/// replaced), as `ObjectKey::from_request_path` reads it on the edge.
pub(super) fn decode_key(uri_path: &str) -> String {
    percent_encoding::percent_decode_str(uri_path)
        .decode_utf8_lossy()
        .into_owned()
}

/// The directory of an object key, with its trailing `/` (empty at the root).
pub(crate) fn dir_of(key: &str) -> &str {
    let key = key.trim_start_matches('/');
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// A URI that names an object of the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Own<'a> {
    /// Where `/` + key was written in the arena.
    pub(crate) slash_key: std::ops::Range<usize>,
    /// The URI as written, up to its fragment.
    pub(crate) text: &'a str,
    /// The query as written, without `?`.
    pub(crate) query: Option<&'a str>,
    /// The fragment with its `#`, or empty.
    pub(crate) fragment: &'a str,
    /// Written as an absolute (or network-path) URL.
    pub(crate) absolute: bool,
}

fn is_dot(seg: &str) -> bool {
    seg == "." || seg.eq_ignore_ascii_case("%2e")
}

fn is_dot_dot(seg: &str) -> bool {
    seg == ".."
        || seg.eq_ignore_ascii_case(".%2e")
        || seg.eq_ignore_ascii_case("%2e.")
        || seg.eq_ignore_ascii_case("%2e%2e")
}

/// Appends the segments of `path` to the key being built in `arena[root..]`
/// (empty or ending with `/`), applying `.` and `..`.
fn push_segments(arena: &mut String, root: usize, path: &str) -> Result<(), Leave> {
    let mut segments = path.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if is_dot(seg) {
            continue;
        }
        if is_dot_dot(seg) {
            if arena.len() == root {
                return Err(Leave::Escapes);
            }
            // Drop the trailing '/', then the segment before it.
            arena.pop();
            let keep = arena[root..].rfind('/').map_or(root, |i| root + i + 1);
            arena.truncate(keep);
            continue;
        }
        push_uri_text(arena, seg);
        if !last {
            arena.push('/');
        }
    }
    Ok(())
}

/// Resolves `uri` (as written in a playlist at `playlist_key`, whose
/// directory is `dir`, both in URI form: see [`key_to_uri_path`]) and writes
/// `/` + its object key, in URI form, at the end of `arena`.
/// On `Err`, `arena` is left as it was.
pub(crate) fn resolve<'a>(
    uri: &'a [u8],
    playlist_key: &str,
    dir: &str,
    origins: &Origins,
    arena: &mut String,
) -> Result<Own<'a>, Leave> {
    let start = arena.len();
    let result = resolve_into(uri, playlist_key, dir, origins, arena, start);
    if result.is_err() {
        arena.truncate(start);
    }
    result
}

fn resolve_into<'a>(
    uri: &'a [u8],
    playlist_key: &str,
    dir: &str,
    origins: &Origins,
    arena: &mut String,
    start: usize,
) -> Result<Own<'a>, Leave> {
    let uri = std::str::from_utf8(uri).map_err(|_| Leave::NotUtf8)?;
    if uri.contains("{$") {
        return Err(Leave::Variable);
    }
    let (text, fragment) = uri.find('#').map_or((uri, ""), |i| uri.split_at(i));
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    arena.push('/');
    let root = start + 1;
    let mut absolute = false;
    if let Some(len) = scheme_len(path) {
        let scheme = &path[..len];
        if !is_http(scheme) {
            return Err(Leave::Scheme);
        }
        // `http:foo` (no authority) is not a URL a player resolves the same way everywhere.
        let rest = path[len + 1..].strip_prefix("//").ok_or(Leave::Foreign)?;
        absolute_path(Some(scheme), rest, origins, arena, root)?;
        absolute = true;
    } else if let Some(rest) = path.strip_prefix("//") {
        absolute_path(None, rest, origins, arena, root)?;
        absolute = true;
    } else if let Some(rest) = path.strip_prefix('/') {
        push_segments(arena, root, rest)?;
    } else if path.is_empty() {
        // `?query` alone names the playlist itself; a fragment alone names nothing new.
        if query.is_none() {
            return Err(Leave::Empty);
        }
        arena.push_str(playlist_key.trim_start_matches('/'));
    } else {
        arena.push_str(dir);
        push_segments(arena, root, path)?;
    }
    if arena.len() == root {
        return Err(Leave::Empty);
    }
    Ok(Own {
        slash_key: start..arena.len(),
        text,
        query,
        fragment,
        absolute,
    })
}

/// `rest` is what follows `scheme://` (or `//`) up to the query.
fn absolute_path(
    scheme: Option<&str>,
    rest: &str,
    origins: &Origins,
    arena: &mut String,
    root: usize,
) -> Result<(), Leave> {
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err(Leave::Foreign);
    }
    let mut matching = origins
        .bases
        .iter()
        .filter(|b| {
            scheme.is_none_or(|s| s.eq_ignore_ascii_case(&b.scheme))
                && normalize_authority(scheme.unwrap_or(&b.scheme), authority) == b.authority
        })
        .peekable();
    if matching.peek().is_none() {
        return Err(Leave::Foreign);
    }
    push_segments(arena, root, path.trim_start_matches('/'))?;
    let prefix_len = matching
        .find(|b| arena[root..].starts_with(&b.prefix))
        .ok_or(Leave::Foreign)?
        .prefix
        .len();
    arena.replace_range(root..root + prefix_len, "");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "live/demo-1/240p/index.m3u8";

    fn origins() -> Origins {
        Origins::new(&[
            "http://127.0.0.1:8000/".to_owned(),
            "https://Origin.Example:443/hls".to_owned(),
            "not a url".to_owned(),
        ])
    }

    fn key(uri: &str) -> Result<String, Leave> {
        let mut arena = String::from("xx");
        let r = resolve(uri.as_bytes(), PLAYLIST, dir_of(PLAYLIST), &origins(), &mut arena);
        match r {
            Ok(own) => Ok(arena[own.slash_key.start + 1..own.slash_key.end].to_owned()),
            Err(e) => {
                assert_eq!(arena, "xx", "arena restored after {uri}");
                Err(e)
            }
        }
    }

    #[test]
    fn relative_uris_resolve_against_the_playlist_directory() {
        assert_eq!(key("seg1.ts").as_deref(), Ok("live/demo-1/240p/seg1.ts"));
        assert_eq!(key("./a/b.ts?x=1#t=3").as_deref(), Ok("live/demo-1/240p/a/b.ts"));
        assert_eq!(
            key("../720p/index.m3u8").as_deref(),
            Ok("live/demo-1/720p/index.m3u8")
        );
        assert_eq!(key("../../../x.ts").as_deref(), Ok("x.ts"));
        assert_eq!(key("a/%2e%2e/b.ts").as_deref(), Ok("live/demo-1/240p/b.ts"));
        assert_eq!(key("a//b.ts").as_deref(), Ok("live/demo-1/240p/a//b.ts"));
        assert_eq!(key("seg%201.ts").as_deref(), Ok("live/demo-1/240p/seg%201.ts"));
        assert_eq!(key("?x=1").as_deref(), Ok(PLAYLIST));
    }

    #[test]
    fn bytes_a_uri_cannot_hold_are_encoded_and_escapes_kept() {
        assert_eq!(
            key("a b\"c\".ts").as_deref(),
            Ok("live/demo-1/240p/a%20b%22c%22.ts")
        );
        assert_eq!(key("100%.ts").as_deref(), Ok("live/demo-1/240p/100%25.ts"));
        assert_eq!(key("%zz%4.ts").as_deref(), Ok("live/demo-1/240p/%25zz%254.ts"));
        assert_eq!(
            key("caf\u{e9}.ts").as_deref(),
            Ok("live/demo-1/240p/caf%C3%A9.ts")
        );
        assert_eq!(
            key("a%20b%C3%A9.ts").as_deref(),
            Ok("live/demo-1/240p/a%20b%C3%A9.ts")
        );
        assert_eq!(
            key("x<y>{z}|^`\\.ts").as_deref(),
            Ok("live/demo-1/240p/x%3Cy%3E%7Bz%7D%7C%5E%60%5C.ts")
        );
        assert_eq!(
            key("a!$&'()*+,;=:@~.ts").as_deref(),
            Ok("live/demo-1/240p/a!$&'()*+,;=:@~.ts")
        );
    }

    #[test]
    fn object_keys_become_uri_paths() {
        assert_eq!(key_to_uri_path("live/demo-1/a.ts"), "live/demo-1/a.ts");
        assert_eq!(
            key_to_uri_path("vod/a b \"q\" 100% \u{e9}/s?#.ts"),
            "vod/a%20b%20%22q%22%20100%25%20%C3%A9/s%3F%23.ts"
        );
        let mut arena = String::new();
        push_uri_text(&mut arena, &key_to_uri_path("a b/100%/\u{e9}"));
        assert_eq!(arena, "a%20b/100%25/%C3%A9", "a key in URI form is kept as it is");
    }

    #[test]
    fn root_relative_uris_resolve_against_the_origin_root() {
        assert_eq!(key("/vod/a/seg.ts").as_deref(), Ok("vod/a/seg.ts"));
        assert_eq!(key("/vod/../b.ts").as_deref(), Ok("b.ts"));
        assert_eq!(key("/../b.ts"), Err(Leave::Escapes));
    }

    #[test]
    fn escaping_the_root_is_left_alone() {
        assert_eq!(key("../../../../x.ts"), Err(Leave::Escapes));
        assert_eq!(key("../../../%2E%2E/x.ts"), Err(Leave::Escapes));
    }

    #[test]
    fn origin_absolute_urls_resolve_below_their_base() {
        assert_eq!(
            key("http://127.0.0.1:8000/live/x/seg.ts").as_deref(),
            Ok("live/x/seg.ts")
        );
        assert_eq!(
            key("HTTP://127.0.0.1:8000/live/x/seg.ts?a=b").as_deref(),
            Ok("live/x/seg.ts")
        );
        assert_eq!(key("//127.0.0.1:8000/live/seg.ts").as_deref(), Ok("live/seg.ts"));
        assert_eq!(
            key("https://origin.example/hls/live/seg.ts").as_deref(),
            Ok("live/seg.ts")
        );
        assert_eq!(
            key("https://ORIGIN.example:443/hls/a/../b.ts").as_deref(),
            Ok("b.ts")
        );
        assert_eq!(
            key("https://origin.example/hls/../secret.ts"),
            Err(Leave::Foreign)
        );
        assert_eq!(key("https://origin.example/other/seg.ts"), Err(Leave::Foreign));
        assert_eq!(key("http://127.0.0.1:8000/"), Err(Leave::Empty));
    }

    #[test]
    fn other_uris_are_left_alone() {
        assert_eq!(key("http://cdn.example.com/seg.ts"), Err(Leave::Foreign));
        assert_eq!(key("https://127.0.0.1:8000/seg.ts"), Err(Leave::Foreign));
        assert_eq!(key("http://user@127.0.0.1:8000/seg.ts"), Err(Leave::Foreign));
        assert_eq!(key("http:seg.ts"), Err(Leave::Foreign));
        assert_eq!(key("data:text/plain;base64,AAAA"), Err(Leave::Scheme));
        assert_eq!(key("skd://key-id"), Err(Leave::Scheme));
        assert_eq!(key("seg-{$n}.ts"), Err(Leave::Variable));
        assert_eq!(key("{$host}/seg.ts"), Err(Leave::Variable));
        assert_eq!(key(""), Err(Leave::Empty));
        assert_eq!(key("#frag"), Err(Leave::Empty));
        let mut arena = String::new();
        assert_eq!(
            resolve(b"\xff.ts", PLAYLIST, "", &origins(), &mut arena).map(|_| ()),
            Err(Leave::NotUtf8)
        );
    }

    #[test]
    fn parts_of_the_uri_are_kept() {
        let mut arena = String::new();
        let own = resolve(
            b"a.ts?x=1&y#f",
            PLAYLIST,
            dir_of(PLAYLIST),
            &origins(),
            &mut arena,
        );
        assert_eq!(
            own,
            Ok(Own {
                slash_key: 0..arena.len(),
                text: "a.ts?x=1&y",
                query: Some("x=1&y"),
                fragment: "#f",
                absolute: false
            })
        );
    }

    #[test]
    fn dirs() {
        assert_eq!(dir_of("live/a/index.m3u8"), "live/a/");
        assert_eq!(dir_of("/live/index.m3u8"), "live/");
        assert_eq!(dir_of("index.m3u8"), "");
    }
}
