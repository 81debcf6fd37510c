//! hls-cdn edge agent: caching segment server, load meter, heartbeats, drain.
//!
//! This crate is a placeholder in the workspace layout of `DESIGN.md`; it
//! gains its code in a later release.

#![forbid(unsafe_code)]

/// What the binary says when run before the crate has its code.
pub const STATUS: &str = "not implemented in this release";
