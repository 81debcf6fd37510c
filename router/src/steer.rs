//! Content Steering (RFC 8216bis §4.4.6.6, §7.1): which of a viewer's
//! pathways it should use now. Pure: a function of the selector snapshot,
//! the pathways its multivariant playlist offered (from its steering
//! ticket) and the pathway the player says it is on.
//!
//! - Priority: the player's current pathway first while its edge can serve
//!   (fresh, ready, out of hold-down, under the sticky cap), so a viewer
//!   never moves back to an edge it left, even after that edge recovers;
//!   then the offered pathways that can serve, in offered order; then the
//!   clones. Pathways whose edge is dead, draining or held down are left
//!   out; those over the cap go last.
//! - Clones: while fewer than `want` offered pathways can serve, the next
//!   competing edges in rendezvous order are cloned from the first serving
//!   offered pathway (or the first offered one when none serves), each
//!   with the session token naming its edge (`URI-REPLACEMENT.PARAMS.s`).
//!   A current pathway that is itself a clone keeps being cloned.
//! - Nothing can serve: the offered pathways, in order: better a dead edge
//!   the player may retry than an empty list.

use std::time::Instant;

use crate::select::{Request, Selector, Unavailable};

/// What the steering manifest says, as edge ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// `PATHWAY-PRIORITY`.
    pub priority: Vec<&'a str>,
    /// The `ID`s of `PATHWAY-CLONES`, each cloned from [`Plan::base`].
    pub clones: Vec<&'a str>,
    /// The `BASE-ID` of every clone.
    pub base: &'a str,
    /// Why the player's current pathway is not first, when it is not.
    pub moved: Option<Unavailable>,
}

/// The plan for a viewer offered `offered` (non-empty; pathway ids are edge
/// ids) and now on `current` (the `_HLS_pathway` it sent, if any), at
/// `now`, keeping `want` pathways that can serve. `req` is the placement
/// request of the stream (its key, group and bandwidth), for clones.
pub fn plan<'a>(
    selector: &'a Selector,
    now: Instant,
    assigned_bps: &[u64],
    req: &Request<'_>,
    offered: &'a [String],
    current: Option<&'a str>,
    want: usize,
) -> Plan<'a> {
    let status = |id: &str| match selector.index_of(id) {
        Some(i) => selector.unavailable(i, now, assigned_bps, req.https),
        None => Some(Unavailable::Stale),
    };
    let serving = |id: &str| status(id).is_none();
    let offered_ids: Vec<&'a str> = offered.iter().map(String::as_str).collect();
    let base = offered_ids
        .iter()
        .copied()
        .find(|id| serving(id))
        .or(offered_ids.first().copied())
        .unwrap_or("");

    let mut priority: Vec<&'a str> = Vec::new();
    let mut clones: Vec<&'a str> = Vec::new();
    let current_status = current.map(status);
    if let (Some(id), Some(None)) = (current, current_status) {
        priority.push(id);
        if !offered_ids.contains(&id) {
            clones.push(id);
        }
    }
    for &id in &offered_ids {
        if !priority.contains(&id) && serving(id) {
            priority.push(id);
        }
    }
    let serving_offered = offered_ids.iter().filter(|id| serving(id)).count();
    if serving_offered < want {
        let mut ranked = Vec::new();
        selector.ranked(req, now, &mut ranked);
        let fresh = ranked
            .into_iter()
            .map(|i| selector.edges()[i].id.as_str())
            .filter(|id| serving(id) && !offered_ids.contains(id) && !clones.contains(id))
            .take(want - serving_offered)
            .collect::<Vec<_>>();
        for id in fresh {
            clones.push(id);
            priority.push(id);
        }
    }
    // Offered pathways over the cap go last (nothing before them is).
    for &id in &offered_ids {
        if !priority.contains(&id) && status(id) == Some(Unavailable::OverCap) {
            priority.push(id);
        }
    }
    if priority.is_empty() {
        priority = offered_ids.clone();
    }
    let moved = match (current, current_status) {
        (Some(id), Some(status)) if priority.first() != Some(&id) => status.or(Some(Unavailable::OverCap)),
        _ => None,
    };
    Plan {
        priority,
        clones,
        base,
        moved,
    }
}

#[cfg(test)]
mod tests;
