//! Bearer tokens, checked one way by every server: the token of an
//! `Authorization: Bearer …` header, compared in constant time.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The token a caller presented (`Authorization: Bearer <token>`). As an
/// extractor it refuses a request without one with [`Unauthorized`]; take
/// `Option<Bearer>` to decide yourself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer(String);

impl Bearer {
    /// The token of `headers`' `Authorization: Bearer` header, trimmed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Bearer> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(|token| Bearer(token.to_owned()))
    }

    /// The presented token, for callers that derive identities from it.
    pub fn token(&self) -> &str {
        &self.0
    }

    /// Whether the presented token is `expected`, in time that depends only
    /// on the lengths.
    pub fn is(&self, expected: &Secret) -> bool {
        self.0.as_bytes().ct_eq(expected.expose().as_bytes()).into()
    }

    /// Whether the presented token is any of `expected`.
    pub fn is_any<'s>(&self, expected: impl IntoIterator<Item = &'s Secret>) -> bool {
        expected
            .into_iter()
            .fold(false, |found, secret| found | self.is(secret))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Bearer::from_headers(&parts.headers).ok_or(Unauthorized)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Bearer::from_headers(&parts.headers))
    }
}

/// 401 with `WWW-Authenticate: Bearer`, the answer to a missing or wrong token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::UNAUTHORIZED, "missing or invalid bearer token\n").into_response();
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn tokens_compare_exactly() {
        let secret = Secret::from("secret".to_owned());
        let bearer = |v: &str| Bearer::from_headers(&headers(v));
        assert!(bearer("Bearer secret").is_some_and(|b| b.is(&secret)));
        assert!(bearer("Bearer  secret ").is_some_and(|b| b.is(&secret)));
        assert!(bearer("Bearer secreT").is_some_and(|b| !b.is(&secret)));
        assert!(bearer("Bearer secret2").is_some_and(|b| !b.is(&secret)));
        assert!(bearer("Bearer ").is_none());
        assert!(bearer("Basic c2VjcmV0").is_none());
        assert!(Bearer::from_headers(&HeaderMap::new()).is_none());
        let other = Secret::from("other".to_owned());
        assert!(bearer("Bearer secret").is_some_and(|b| b.is_any([&other, &secret])));
        assert!(bearer("Bearer nope").is_some_and(|b| !b.is_any([&other, &secret])));
    }

    #[test]
    fn refusals_ask_for_a_bearer_token() {
        let response = Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
