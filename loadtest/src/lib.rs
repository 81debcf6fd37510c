//! hls-cdn load tester: simulated HLS players against a real cluster, and a
//! routing-policy simulator at internet scale that runs the router's own
//! selection code.
//!
//! `hlscdn-loadtest players` starts viewers that behave like HLS players
//! (multivariant playlist from a router, a rendition, media playlist reloads,
//! segments from the edges, a playback buffer drained in real time) and
//! reports latency, errors, startup, stalls, per-edge load and what the edge
//! caches saved the origin. `hlscdn-loadtest simulate` compares round robin,
//! least-loaded, weighted random, consistent hashing and `router::select` on
//! one simulated world of edges, streams and viewers. `docs/LOADTEST.md`
//! describes both for operators.
//!
//! # Layout
//!
//! - [`player`]: the model of one player, events in, fetches out, with an injected clock. Pure.
//! - [`hls`]: playlists read as a player reads them (`m3u8-rs`). Pure.
//! - [`steering`]: Content Steering as hls.js plays it: pathways, manifests, clones, penalties. Pure.
//! - [`invariants`]: stream invariants every received media playlist must keep. Pure.
//! - [`zipf`]: Zipf popularity with the random source as an argument. Pure.
//! - [`stats`]: HDR latency histograms, request, edge and session tallies. Pure.
//! - [`report`]: the `players` report: figures, cache deltas, the final table. Pure.
//! - [`driver`]: the I/O of `players`: tokio, one pooled `reqwest` client, viewer tasks, router
//!   failover, segment probes, scrapes, progress line.
//! - [`sim`]: `simulate`: the world, the policies, the engine, the comparison. Pure, seeded.
//! - [`svg`], [`html`]: self-contained HTML reports with inline SVG charts. Pure.
//! - [`cli`]: the command line and what each subcommand does.
//! - [`error`]: the error type.

#![forbid(unsafe_code)]

pub mod cli;
pub mod driver;
pub mod error;
pub mod hls;
pub mod html;
pub mod invariants;
pub mod player;
pub mod report;
pub mod sim;
pub mod stats;
pub mod steering;
pub mod svg;
pub mod zipf;

pub use error::{Error, Result};
