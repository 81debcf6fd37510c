//! Which edge serves a viewer, and what a router believes about its fleet.
//! Pure: no sockets, no clocks of its own (every function takes `now`), no
//! randomness; routers run it bit-exact, and the load tester's simulator runs
//! the very same code.
//!
//! # Layout
//!
//! - [`snapshot`]: the fleet at one moment, as selection reads it.
//! - [`select`]: edge choice over a snapshot (weighted rendezvous, bounded load, stickiness).
//! - [`fleet`]: the newest ad of every edge, freshness, hold-down, flips.
//! - [`peers`]: the routers a router knows; discovery and forgetting.
//! - [`scale`]: the desired edge count for autoscaling.

#![forbid(unsafe_code)]

pub mod fleet;
pub mod peers;
pub mod scale;
pub mod select;
pub mod snapshot;
