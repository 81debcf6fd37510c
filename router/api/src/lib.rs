//! hls-cdn wire contract: ad and fleet-view types, URL token format, the
//! `/metrics` text format. No I/O:
//! every crate that talks to a router (edges, routers, ops, the load tester)
//! uses these types, and edges verify tokens with the same code routers sign them with.
//!
//! # Layout
//!
//! - [`fleet`]: edge ads and the fleet snapshot that edge selection reads.
//! - [`token`]: signed segment URLs in the shape of Akamai EdgeAuth (HMAC-SHA256, key ids).
//! - [`session`]: the viewer session token routers put on playlist URIs.
//! - [`prometheus`]: the text format of every `/metrics`, read back into samples.

#![forbid(unsafe_code)]

pub mod fleet;
pub mod prometheus;
pub mod session;
pub mod token;
