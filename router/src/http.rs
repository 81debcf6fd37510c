//! The router's HTTP interface.
//!
//! | route | what |
//! |---|---|
//! | `GET`/`HEAD /<path>.m3u8` | the origin playlist, rewritten for this viewer |
//! | `GET /r/<path>` | 302 to the chosen edge's URL of the object (signed) |
//! | `GET /healthz`, `/readyz`, `/metrics` | liveness, readiness, Prometheus |

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use origin_store::path::ObjectKey;
use router_api::session::{self, Session, SessionKey};
use router_api::token::{self, KeyRing};

use crate::config::NoEdge;
use crate::error::Error;
use crate::fleet_api::{Current, ExplainQuery, Fleet};
use crate::groups::Groups;
use crate::metrics;
use crate::playlists::{Playlist, Playlists};
use crate::rewrite::{PlaylistKind, RenderContext};
use crate::select::{Choice, Request as Pick};

/// Signed URLs expire on a grid of this step (plus the token lifetime), so
/// every response within one step names the same URLs: a preload hint and
/// the later `EXT-X-PART` match, and LL-HLS delta updates merge.
pub const TOKEN_EXPIRY_STEP: u64 = 300;

/// What the router's handlers share.
#[derive(Debug)]
pub struct RouterState {
    /// Origin playlists as templates.
    pub playlists: Playlists,
    /// The fleet: the current selector, ads, peers.
    pub fleet: Arc<Fleet>,
    /// How viewers are put in groups.
    pub groups: Groups,
    /// Keys for signed segment URLs; `None`: URLs are not signed.
    pub signing: Option<KeyRing>,
    /// Key of viewer sessions (shared by the fleet).
    pub sessions: SessionKey,
    /// Lifetime of signed URLs.
    pub token_ttl: Duration,
    /// Lifetime of a viewer session.
    pub session_max_age: Duration,
    /// What to do when no edge can take a viewer.
    pub no_edge: NoEdge,
    /// Public base URL of the origin (no trailing slash), for the fallback.
    pub origin_public_url: Option<String>,
}

/// The router's HTTP app.
pub fn app(state: Arc<RouterState>) -> Router {
    origin_store::metrics::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async { origin_store::metrics::handle().render() }),
        )
        .route("/r/{*path}", get(redirect))
        .route("/api/v1/explain", get(explain))
        .fallback(playlist)
        .with_state(state.clone())
        .merge(crate::fleet_api::routes(state.fleet.clone()))
        .layer(middleware::from_fn(common))
}

/// Answers preflights, adds CORS, counts answers by route and status
/// (absolute-form targets are refused by `origin_store::server::serve`).
async fn common(request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let mut response = if request.method() == Method::OPTIONS {
        origin_store::http::preflight()
    } else {
        next.run(request).await
    };
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    ::metrics::counter!(metrics::REQUESTS, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/r/") => "redirect",
        "/api/v1/ads" => "ads",
        "/api/v1/edges" => "edges",
        "/api/v1/routers" => "routers",
        "/api/v1/explain" => "explain",
        "/api/v1/events" => "events",
        "/api/v1/scale" => "scale",
        p if p.ends_with(".m3u8") => "playlist",
        _ => "other",
    }
}

/// Splits a request query into the session token and the query passed on to
/// the origin (every other parameter, in order, as sent).
fn split_query(query: Option<&str>) -> (Option<&str>, String) {
    let mut session = None;
    let mut rest = String::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair
            .strip_prefix(session::SESSION_PARAM)
            .and_then(|v| v.strip_prefix('='))
        {
            Some(value) => session = Some(value),
            None => {
                if !rest.is_empty() {
                    rest.push('&');
                }
                rest.push_str(pair);
            }
        }
    }
    (session, rest)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The client's address, as the server recorded it.
fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The directory of a key: the stream of a multivariant playlist.
fn dir_of(key: &ObjectKey) -> &str {
    key.as_str().rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Where the viewer's media goes, with the session that records it.
struct Placement<'a> {
    /// Base URL of the edge (or the origin, in the fallback), no trailing slash.
    base: &'a str,
    /// The edge id recorded in the session (`None` in the fallback).
    edge: Option<&'a str>,
}

impl RouterState {
    /// Chooses where `stream_key`'s media goes for a viewer stuck to `sticky`.
    fn place<'s>(&'s self, current: &'s Current, pick: &Pick<'_>) -> Result<Placement<'s>, Error> {
        match current.pick(pick, Instant::now()) {
            Choice::Edge { index, .. } => {
                let edge = &current.selector.edges()[index];
                metrics::choice(Some(&edge.id));
                Ok(Placement {
                    base: edge.base_url.trim_end_matches('/'),
                    edge: Some(&edge.id),
                })
            }
            Choice::NoEdge => {
                metrics::choice(None);
                match (self.no_edge, self.origin_public_url.as_deref()) {
                    (NoEdge::Origin, Some(origin)) => Ok(Placement {
                        base: origin,
                        edge: None,
                    }),
                    _ => Err(Error::NoEdge),
                }
            }
        }
    }

    /// The signed-URL query pair for media under `acl`, if signing is on.
    fn media_query(&self, acl: &str, now_unix: u64) -> Option<String> {
        let ring = self.signing.as_ref()?;
        let expires = (now_unix / TOKEN_EXPIRY_STEP + 1) * TOKEN_EXPIRY_STEP + self.token_ttl.as_secs();
        Some(format!("{}={}", token::TOKEN_PARAM, ring.sign(acl, expires)))
    }
}

async fn playlist(State(state): State<Arc<RouterState>>, request: Request) -> Result<Response, Error> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, OPTIONS")],
            "method not allowed\n",
        )
            .into_response());
    }
    let uri = request.uri();
    let key = ObjectKey::from_request_path(uri.path()).map_err(|e| Error::BadInput(e.to_string()))?;
    if !key.extension().is_some_and(|e| e.eq_ignore_ascii_case("m3u8")) {
        return Err(Error::BadInput(
            "the router serves playlists (.m3u8); segments come from edges, or through /r/<path>".into(),
        ));
    }
    let (session_token, origin_query) = split_query(uri.query());
    let playlist = state.playlists.get(&key, &origin_query).await?;
    let now_unix = unix_now();
    let session = session_token.and_then(|t| {
        state
            .sessions
            .decode(t, now_unix, state.session_max_age.as_secs())
    });

    let current = state.fleet.current();
    let is_master = playlist.template.kind() == PlaylistKind::Multivariant;
    // A multivariant playlist places the viewer for the whole stream, counted
    // at its first variant's bandwidth; a media playlist keeps the session's
    // edge while it can, else places the rendition on its own, counted at the
    // bandwidth its variant declared.
    let (stream_key, bandwidth_bps) = if is_master {
        (
            dir_of(&key),
            playlist
                .template
                .variants()
                .first()
                .and_then(|v| v.bandwidth)
                .unwrap_or(0),
        )
    } else {
        (key.as_str(), state.playlists.bandwidth_of(&key))
    };
    let pick = Pick {
        stream_key,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: state.groups.group_of(request.headers(), client_ip(&request)),
        bandwidth_bps,
    };
    let placement = state.place(&current, &pick)?;

    // Keep the viewer's token when nothing changed, so reloads are byte-identical.
    let minted;
    let session_value = match (session_token, &session, placement.edge) {
        (Some(token), Some(s), Some(edge)) if !is_master && s.edge_id == edge => token,
        _ => {
            let viewer_id = session.as_ref().map_or_else(rand::random::<u64>, |s| s.viewer_id);
            minted = state.sessions.encode(&Session {
                edge_id: placement.edge.unwrap_or_default().to_owned(),
                issued_unix: now_unix,
                viewer_id,
            });
            &minted
        }
    };
    render(
        &state,
        &playlist,
        &placement,
        session_value,
        now_unix,
        request.method() == Method::HEAD,
    )
}

async fn readyz(State(state): State<Arc<RouterState>>) -> Response {
    if state.fleet.is_ready() {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the fleet view of a peer\n",
        )
            .into_response()
    }
}

/// `GET /api/v1/explain?path=…&session=…&group=…&bandwidth=…`: the choice a
/// playlist request would get now, with every edge's inputs.
async fn explain(
    State(state): State<Arc<RouterState>>,
    Query(query): Query<ExplainQuery>,
) -> Result<Response, Error> {
    let key = ObjectKey::from_request_path(&query.path).map_err(|e| Error::BadInput(e.to_string()))?;
    let session = query.session.as_deref().and_then(|t| {
        state
            .sessions
            .decode(t, unix_now(), state.session_max_age.as_secs())
    });
    // Without the playlist at hand, a path of a multivariant playlist is
    // recognised by its name; anything else is placed per rendition.
    let is_master = key.file_name().eq_ignore_ascii_case("master.m3u8");
    let stream_key = if is_master { dir_of(&key) } else { key.as_str() };
    let pick = Pick {
        stream_key,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: query.group.as_deref(),
        bandwidth_bps: query
            .bandwidth
            .unwrap_or_else(|| state.playlists.bandwidth_of(&key)),
    };
    let current = state.fleet.current();
    let assigned: Vec<u64> = current
        .assigned_bps
        .iter()
        .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let explanation = current.selector.explain(&pick, Instant::now(), &assigned);
    let chosen = match current.selector.pick(&pick, Instant::now(), &assigned) {
        Choice::Edge { index, .. } => current.selector.edges().get(index).map(|e| e.id.clone()),
        Choice::NoEdge => None,
    };
    Ok(axum::Json(serde_json::json!({
        "path": query.path,
        "session_valid": session.is_some(),
        "chosen": chosen,
        "explanation": explanation,
    }))
    .into_response())
}

fn render(
    state: &RouterState,
    playlist: &Playlist,
    placement: &Placement<'_>,
    session_value: &str,
    now_unix: u64,
    head: bool,
) -> Result<Response, Error> {
    let started = Instant::now();
    let media_query = state.media_query(&playlist.media_acl, now_unix);
    let playlist_query = format!("{}={session_value}", session::SESSION_PARAM);
    let ctx = RenderContext {
        edge_base: placement.base,
        media_query: media_query.as_deref(),
        playlist_query: &playlist_query,
    };
    let mut body = Vec::with_capacity(playlist.template.rendered_len_hint(&ctx));
    playlist.template.render(&ctx, &mut body);
    metrics::rewrite(started.elapsed());

    let cache_control = match playlist.template.kind() {
        PlaylistKind::Multivariant => "private, no-cache",
        PlaylistKind::Media if playlist.template.is_ended() => "private, max-age=3600",
        PlaylistKind::Media => "private, max-age=1",
    };
    let length = body.len();
    let mut response = if head {
        ().into_response()
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(origin_store::media::PLAYLIST_CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

async fn redirect(State(state): State<Arc<RouterState>>, request: Request) -> Result<Response, Error> {
    let path = request.uri().path().strip_prefix("/r").unwrap_or("/");
    let key = ObjectKey::from_request_path(path).map_err(|e| Error::BadInput(e.to_string()))?;
    let (session_token, _) = split_query(request.uri().query());
    let session = session_token.and_then(|t| {
        state
            .sessions
            .decode(t, unix_now(), state.session_max_age.as_secs())
    });
    let current = state.fleet.current();
    let stream = dir_of(&key);
    let pick = Pick {
        stream_key: stream,
        sticky: session.as_ref().map(|s| s.edge_id.as_str()),
        group: state.groups.group_of(request.headers(), client_ip(&request)),
        bandwidth_bps: 0,
    };
    let placement = state.place(&current, &pick)?;
    let acl = if stream.is_empty() {
        "/*".to_owned()
    } else {
        format!("/{stream}/*")
    };
    let mut location = format!("{}/{}", placement.base, encode_key(&key));
    if let Some(query) = state.media_query(&acl, unix_now()) {
        location.push('?');
        location.push_str(&query);
    }
    let location = HeaderValue::from_str(&location).map_err(|e| Error::BadInput(format!("location: {e}")))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
    )
        .into_response())
}

/// A key as a URL path: each segment percent-encoded.
fn encode_key(key: &ObjectKey) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    key.as_str()
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_taken_out_of_the_origin_query() {
        assert_eq!(split_query(None), (None, String::new()));
        assert_eq!(split_query(Some("s=abc")), (Some("abc"), String::new()));
        assert_eq!(
            split_query(Some("_HLS_msn=5&s=abc&_HLS_part=1&token=x")),
            (Some("abc"), "_HLS_msn=5&_HLS_part=1&token=x".to_owned())
        );
        assert_eq!(split_query(Some("ss=1&s2=3")), (None, "ss=1&s2=3".to_owned()));
    }

    #[test]
    fn keys_are_encoded_for_locations() {
        let key = ObjectKey::from_request_path("/live/a%20b/seg-1.ts").expect("key");
        assert_eq!(encode_key(&key), "live/a%20b/seg-1.ts");
    }
}
