//! hls-cdn wire contract: ad and fleet-view types, URL token format (no I/O).
//!
//! This crate is a placeholder in the workspace layout of `DESIGN.md`; it
//! gains its types in a later release.

#![forbid(unsafe_code)]
