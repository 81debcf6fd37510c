//! hls-cdn operations: the one-command local cluster (`hlscdn demo`), the
//! fleet CLI (`hlscdn status`, `hlscdn drain`), the dashboard and player page
//! (`hlscdn dashboard`), and the autoscaler (`hlscdn autoscale`).
//!
//! Everything here is a client of the other parts: it reads the routers'
//! fleet API (`/api/v1/edges`, `/api/v1/routers`, `/api/v1/events`,
//! `/api/v1/explain`, `/api/v1/scale`), the origin's catalog
//! (`/api/v1/streams`), and drives the `hlscdn-origin`, `hlscdn-router` and
//! `hlscdn-edge` binaries as child processes. What it decides (fleet health,
//! scaling steps, port layout) is pure code over plain values, unit-tested
//! beside it; the I/O sits around it.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap) and the dispatch to the commands below.
//! - [`api`]: the JSON the routers and the origin serve, and the HTTP calls that read it.
//! - [`health`]: merging several routers' views into one report: edge severity, fleet problems,
//!   whether routers agree. Pure; shared by `status` and the dashboard.
//! - [`status`]: `hlscdn status`: the report as a table or JSON, and its exit code.
//! - [`drain`]: `hlscdn drain`: finds an edge's URL through a router and asks it to drain.
//! - [`sse`]: a server-sent events parser (pure) and a reconnecting reader of a router's events.
//! - [`history`]: the egress samples behind the dashboard's chart. Pure.
//! - [`dashboard`]: the dashboard server: fleet watcher, HTTP API, embedded pages and hls.js.
//! - [`supervisor`]: child processes kept running, in one process group, stopped in order.
//! - [`autoscale`]: the scaling decision (pure), and its exec and local modes.
//! - [`demo`]: `hlscdn demo`: the port layout, finding or building the binaries, the whole cluster.

#![forbid(unsafe_code)]

pub mod api;
pub mod autoscale;
pub mod cli;
pub mod dashboard;
pub mod demo;
pub mod drain;
pub mod health;
pub mod history;
pub mod sse;
pub mod status;
pub mod supervisor;

/// Exit code of a command that could not do its work (bad usage, unreachable router).
pub const EXIT_ERROR: u8 = 2;
/// Exit code of `hlscdn status` for an unhealthy fleet.
pub const EXIT_UNHEALTHY: u8 = 1;

/// A random secret of 16 bytes as 32 hex digits (fleet tokens, signing keys of the demo).
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
