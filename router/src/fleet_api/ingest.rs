//! Ads in: `POST /api/v1/ads` from an edge (its credential) or a router
//! (the fleet token). The token is checked before the body is read, so a
//! caller without it cannot make the router wait for (or buffer) a body;
//! then the ad is parsed, validated, checked against the caller's
//! credential and applied. A stored ad is forwarded to the other routers
//! (`gossip`); one this router already had is not, which ends forwarding
//! after one round.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use router_api::fleet::Ad;

use super::{ADS_PATH, FORWARDED_BY, Fleet, MAX_AD_BYTES};
use crate::error::Error;
use crate::fleet::Applied;
use crate::metrics;

/// Reads the body of an authorized fleet call: at most [`MAX_AD_BYTES`],
/// refused with 413 at once when `Content-Length` announces more.
pub(super) async fn read_body(request: Request) -> Result<Bytes, Error> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_AD_BYTES as u64) {
        return Err(Error::TooLarge { limit: MAX_AD_BYTES });
    }
    Ok(Bytes::from_request(request, &()).await?)
}

/// A validated ad from `body`.
fn parse_ad(body: &[u8]) -> Result<Ad, Error> {
    let ad: Ad = serde_json::from_slice(body)?;
    ad.validate()?;
    Ok(ad)
}

pub(super) async fn receive_ad(State(fleet): State<Arc<Fleet>>, request: Request) -> Result<Response, Error> {
    let Some(caller) = fleet.caller(request.headers()) else {
        metrics::ad_received("unauthorized");
        return Err(Error::Unauthorized);
    };
    fleet
        .certified(&caller, request.extensions())
        .inspect_err(|_| metrics::ad_received("unauthorized"))?;
    let from = request
        .headers()
        .get(FORWARDED_BY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(request).await?;
    let ad = parse_ad(&body).inspect_err(|_| metrics::ad_received("rejected"))?;
    if !caller.speaks_for(&ad.edge_id) {
        metrics::ad_received("unauthorized");
        return Err(Error::Forbidden("an edge's credential covers its own ads only"));
    }
    match fleet.apply(ad, Duration::ZERO) {
        Applied::Stored => {
            metrics::ad_received("stored");
            fleet.forward(ADS_PATH, body, from);
            Ok(axum::Json(serde_json::json!({ "stored": true })).into_response())
        }
        Applied::NotNewer => {
            metrics::ad_received("not_newer");
            Ok(axum::Json(serde_json::json!({ "stored": false })).into_response())
        }
        Applied::Contested => {
            metrics::ad_received("contested");
            tracing::warn!("an ad claimed the id of an edge whose live instance holds a link: refused");
            Err(Error::Conflict(
                "another instance of this edge id is linked and fresh",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use super::*;
    use crate::fleet_api::tests::{FLEET_TOKEN, ad, answer, fleet, post};

    #[tokio::test]
    async fn a_declared_oversized_body_is_refused_unread() {
        let request = Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_LENGTH, MAX_AD_BYTES + 1)
            .body(axum::body::Body::empty())
            .expect("request");
        assert!(matches!(read_body(request).await, Err(Error::TooLarge { .. })));
    }

    #[test]
    fn ads_are_parsed_then_validated() {
        assert!(matches!(parse_ad(b"{"), Err(Error::MalformedAd(_))));
        let mut bad = ad("edge-1", 1);
        bad.ttl_ms = 1;
        let json = serde_json::to_vec(&bad).expect("json");
        assert!(matches!(parse_ad(&json), Err(Error::InvalidAd(_))));
        let json = serde_json::to_vec(&ad("edge-1", 1)).expect("json");
        assert_eq!(parse_ad(&json).ok(), Some(ad("edge-1", 1)));
    }

    #[tokio::test]
    async fn ads_are_stored_once_and_only_for_their_own_edge() {
        let fleet = fleet(&[]);
        let body = serde_json::to_vec(&ad("edge-1", 1)).expect("json");
        let (status, text) = answer(&fleet, post(ADS_PATH, None, body.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        let (status, text) = answer(&fleet, post(ADS_PATH, Some(FLEET_TOKEN), body.clone())).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"stored":true}"#));
        let (_, text) = answer(&fleet, post(ADS_PATH, Some(FLEET_TOKEN), body)).await;
        assert_eq!(text, r#"{"stored":false}"#, "not newer: not stored again");

        let credential = router_api::fleet::edge_credential(FLEET_TOKEN, "edge-2");
        let other = serde_json::to_vec(&ad("edge-1", 2)).expect("json");
        let (status, _) = answer(&fleet, post(ADS_PATH, Some(&credential), other)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let own = serde_json::to_vec(&ad("edge-2", 1)).expect("json");
        let (status, _) = answer(&fleet, post(ADS_PATH, Some(&credential), own)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, text) = answer(&fleet, post(ADS_PATH, Some(FLEET_TOKEN), b"{}".to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.starts_with("malformed ad: "), "{text}");
        assert_eq!(fleet.edges_view().edges.len(), 2);
    }
}
