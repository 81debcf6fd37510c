//! What every hls-cdn server answers the same way: CORS, and the probes
//! `/healthz`, `/readyz` and `/metrics`.
//!
//! A server builds its routes, merges [`probe_routes`] of its state, and
//! (if browsers read it across hosts) adds [`cors`] as a layer:
//!
//! ```ignore
//! Router::new()
//!     .route("/api/v1/x", get(x))
//!     .with_state(state.clone())
//!     .merge(runtime::http::probe_routes(state))
//!     .layer(runtime::http::cors())
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// How long browsers may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The CORS of a read-only HLS server: every hls-cdn server lets browser
/// players read across hosts, so every answer (errors too) carries
/// `Access-Control-Allow-Origin: *`, and every `OPTIONS` request is answered
/// as a preflight for `GET`/`HEAD` with the conditional and range request
/// headers players send. Players may read the headers of byte ranges,
/// validators, cache age and cache status.
///
/// Every answer also carries `Timing-Allow-Origin: *`, so that a page's
/// Resource Timing shows the real figures of playlists and segments
/// (durations, sizes, `nextHopProtocol`) and not the zeros browsers give
/// cross-origin resources without it.
///
/// No `Vary`: the answer is the same whatever the request's `Origin`.
pub fn cors() -> Cors {
    let cors = CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_RANGE,
        ])
        .expose_headers(tower_http::cors::ExposeHeaders::list(
            EXPOSED.split(',').map(HeaderName::from_static),
        ))
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([]);
    tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(TIMING_ALLOW_ORIGIN),
            HeaderValue::from_static("*"),
        ))
        .layer(cors)
}

/// The response headers players may read across origins ([`cors`]), as
/// `Access-Control-Expose-Headers` says them.
const EXPOSED: &str = "content-length,content-range,etag,last-modified,age,x-cache";
/// `Timing-Allow-Origin` ([`cors`]).
const TIMING_ALLOW_ORIGIN: &str = "timing-allow-origin";

/// Adds to `headers` what [`cors`] adds to the answer to a request that is
/// not a preflight (a `GET` or `HEAD`), for a service that answers such
/// requests itself, ahead of the layer; a test holds the two the same.
pub fn add_cors_headers(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    if !headers.contains_key(TIMING_ALLOW_ORIGIN) {
        headers.insert(
            HeaderName::from_static(TIMING_ALLOW_ORIGIN),
            HeaderValue::from_static("*"),
        );
    }
}

/// The layers of [`cors`].
pub type Cors = tower::ServiceBuilder<
    tower::layer::util::Stack<
        CorsLayer,
        tower::layer::util::Stack<SetResponseHeaderLayer<HeaderValue>, tower::layer::util::Identity>,
    >,
>;

/// What a server's probes ask of its state.
pub trait Probe: Send + Sync + 'static {
    /// `Ok` when the server can take traffic, else why not (one line, for
    /// whoever reads `/readyz`).
    fn ready(&self) -> impl Future<Output = Result<(), Cow<'static, str>>> + Send;

    /// Brings gauges read from the state up to date; called before each
    /// `/metrics` render. Nothing by default.
    fn refresh(&self) {}
}

/// `GET /healthz` (200 `ok`), `GET /readyz` (200 `ready`, or 503 with the
/// reason of [`Probe::ready`]) and `GET /metrics` (the process's Prometheus
/// recorder, installed here so that no count is lost), for merging into a
/// server's router.
pub fn probe_routes<P: Probe, S>(probe: Arc<P>) -> Router<S> {
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<P>))
        .route("/metrics", get(metrics::<P>))
        .with_state(probe)
}

async fn readyz<P: Probe>(State(probe): State<Arc<P>>) -> Response {
    match probe.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics<P: Probe>(State(probe): State<Arc<P>>) -> String {
    probe.refresh();
    crate::metrics::handle().render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tower::ServiceExt;

    #[derive(Debug, Default)]
    struct Fake {
        ready: AtomicBool,
        refreshed: AtomicUsize,
    }

    impl Probe for Fake {
        async fn ready(&self) -> Result<(), Cow<'static, str>> {
            if self.ready.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("warming up".into())
            }
        }

        fn refresh(&self) {
            self.refreshed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn app(probe: Arc<Fake>) -> Router {
        Router::new()
            .route("/x", get(|| async { (StatusCode::NOT_FOUND, "nope\n") }))
            .merge(probe_routes(probe))
            .layer(cors())
    }

    async fn call(app: Router, method: Method, path: &str, headers: &[(&str, &str)]) -> (Response, String) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.expect("body");
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn probes_answer_liveness_readiness_and_metrics() {
        let probe = Arc::new(Fake::default());
        let (r, body) = call(app(probe.clone()), Method::GET, "/healthz", &[]).await;
        assert_eq!((r.status(), body.as_str()), (StatusCode::OK, "ok\n"));
        let (r, body) = call(app(probe.clone()), Method::GET, "/readyz", &[]).await;
        assert_eq!(
            (r.status(), body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "warming up\n")
        );
        probe.ready.store(true, Ordering::Relaxed);
        let (r, body) = call(app(probe.clone()), Method::GET, "/readyz", &[]).await;
        assert_eq!((r.status(), body.as_str()), (StatusCode::OK, "ready\n"));
        let (r, _) = call(app(probe.clone()), Method::GET, "/metrics", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(probe.refreshed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn every_answer_allows_any_origin_and_preflights_are_answered() {
        let probe = Arc::new(Fake::default());
        for (path, status) in [
            ("/x", StatusCode::NOT_FOUND),
            ("/readyz", StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let (r, _) = call(
                app(probe.clone()),
                Method::GET,
                path,
                &[("origin", "https://a.example")],
            )
            .await;
            assert_eq!(r.status(), status);
            let h = r.headers();
            assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
            assert_eq!(
                h["timing-allow-origin"], "*",
                "resource timing readable across origins"
            );
            assert!(
                h[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                    .to_str()
                    .is_ok_and(|v| v.contains("content-range") && v.contains("x-cache")),
                "{h:?}"
            );
            assert!(!h.contains_key(header::VARY), "{h:?}");
        }
        let (r, _) = call(
            app(probe),
            Method::OPTIONS,
            "/x",
            &[
                ("origin", "https://a.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range"),
            ],
        )
        .await;
        assert!(r.status().is_success(), "{}", r.status());
        let h = r.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,HEAD,OPTIONS");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "range,if-none-match,if-modified-since,if-range"
        );
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "86400");
    }

    #[tokio::test]
    async fn added_cors_headers_are_the_layers() {
        for method in [Method::GET, Method::HEAD] {
            for origin in [&[("origin", "https://a.example")][..], &[]] {
                let (r, _) = call(app(Arc::new(Fake::default())), method.clone(), "/x", origin).await;
                let sorted = |h: &HeaderMap| {
                    let mut v: Vec<(String, HeaderValue)> = h
                        .iter()
                        .filter(|(name, _)| !matches!(*name, &header::CONTENT_TYPE | &header::CONTENT_LENGTH))
                        .map(|(name, value)| (name.to_string(), value.clone()))
                        .collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                };
                let mut added = HeaderMap::new();
                add_cors_headers(&mut added);
                assert_eq!(sorted(r.headers()), sorted(&added), "{method} {origin:?}");
            }
        }
    }
}
