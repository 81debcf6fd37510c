//! Reading an hls-cdn origin the way routers and edges do: over HTTP, or
//! straight from any `object_store` store, with ranged and conditional reads
//! and bounded timeouts; and the rules the origin shares with its readers.
//!
//! # Layout
//!
//! - [`client`]: reading an origin (HTTP through reqwest, stores through `object_store`).
//! - [`store`]: opening a store from its URL (`file://`, `memory://`, `s3://`, `gs://`, `az://`, `http(s)://`).
//! - [`path`]: request path normalization (traversal, encoded slashes, NUL refused). Pure.
//! - [`query`]: the part of a playlist query that reaches the origin and cache keys (`_HLS_*` directives). Pure.
//! - [`range`]: `Range` header parsing and resolution against an object size. Pure.
//! - [`media`]: `Content-Type` by extension and HLS-fitting `Cache-Control`. Pure.
//! - [`error`]: the error type origin readers and the origin share.

#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod media;
pub mod path;
pub mod query;
pub mod range;
pub mod store;

pub use error::{Error, Result};
