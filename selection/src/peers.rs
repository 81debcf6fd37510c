//! The routers this router knows, and how it learns and forgets them.
//!
//! A router starts from its `--peer` seeds. Every discovery round it asks each
//! known router `GET /api/v1/routers` (which answers with the responder's own
//! id and URL and the routers it knows), adds the routers it hears of, and
//! announces itself (`POST /api/v1/routers`) to any that does not list it.
//! A router that answers with this router's own id is one of its own
//! addresses (`localhost` vs `127.0.0.1`, another interface): it is never
//! forwarded to. A peer that fails [`MAX_FAILURES`] rounds in a row is dropped,
//! unless it is a seed: seeds are kept (and retried) for ever, so a fleet that
//! lost a router relearns it as soon as it answers again.
//!
//! [`Peers`] is the state; the I/O that feeds it is in `fleet_api`.

use std::collections::BTreeMap;

use router_api::fleet::{RouterInfo, RoutersView};

/// Consecutive failed rounds after which a learned peer is dropped.
pub const MAX_FAILURES: u32 = 3;

#[derive(Debug, Clone, Default)]
struct Peer {
    seed: bool,
    id: Option<String>,
    failures: u32,
    is_self: bool,
    /// It listed this router in its last answer.
    knows_us: bool,
}

/// The peer set.
#[derive(Debug, Clone)]
pub struct Peers {
    me: RouterInfo,
    peers: BTreeMap<String, Peer>,
}

/// What one discovery answer changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Learned {
    /// Routers heard of for the first time.
    pub new: Vec<String>,
    /// The peer does not list this router: announce to it.
    pub announce: bool,
}

/// Normalizes a router URL: no trailing slash.
pub fn normalize(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

impl Peers {
    /// A peer set for router `me`, starting from `seeds`.
    pub fn new(me: RouterInfo, seeds: &[String]) -> Self {
        let mut peers = BTreeMap::new();
        for seed in seeds {
            let url = normalize(seed);
            let is_self = url == normalize(&me.url);
            peers.insert(
                url,
                Peer {
                    seed: true,
                    is_self,
                    ..Peer::default()
                },
            );
        }
        Self {
            me: RouterInfo {
                id: me.id,
                url: normalize(&me.url),
            },
            peers,
        }
    }

    /// This router.
    pub fn me(&self) -> &RouterInfo {
        &self.me
    }

    /// URLs to ask in a discovery round: every known peer that is not us.
    pub fn to_probe(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.is_self)
            .map(|(url, _)| url.clone())
            .collect()
    }

    /// Peers ads are forwarded to: known, not us, not failing.
    pub fn forward_targets(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.is_self && p.failures < MAX_FAILURES)
            .map(|(url, _)| url.clone())
            .collect()
    }

    /// Adds a router that announced itself (or was heard of).
    pub fn add(&mut self, url: &str) -> bool {
        let url = normalize(url);
        if url == self.me.url || self.peers.contains_key(&url) {
            return false;
        }
        self.peers.insert(url, Peer::default());
        true
    }

    /// Records a peer's answer to `GET /api/v1/routers`.
    pub fn answered(&mut self, url: &str, view: &RoutersView) -> Learned {
        let url = normalize(url);
        let mut learned = Learned::default();
        let me = self.me.clone();
        if let Some(peer) = self.peers.get_mut(&url) {
            peer.failures = 0;
            peer.id = Some(view.this.id.clone());
            peer.is_self = view.this.id == me.id;
            peer.knows_us = view.routers.iter().any(|r| r.id == me.id);
            if peer.is_self {
                return learned;
            }
            learned.announce = !peer.knows_us;
        }
        for router in &view.routers {
            if router.id != me.id && self.add(&router.url) {
                learned.new.push(normalize(&router.url));
            }
        }
        learned
    }

    /// Records a failed round for a peer; returns true if it was dropped.
    pub fn failed(&mut self, url: &str) -> bool {
        let url = normalize(url);
        let Some(peer) = self.peers.get_mut(&url) else {
            return false;
        };
        peer.failures = peer.failures.saturating_add(1);
        if peer.failures >= MAX_FAILURES && !peer.seed {
            self.peers.remove(&url);
            return true;
        }
        false
    }

    /// The live routers: this one and every answering peer (by URL; one
    /// entry per router id).
    pub fn view(&self) -> RoutersView {
        let mut routers = vec![self.me.clone()];
        for (url, peer) in &self.peers {
            if peer.is_self || peer.failures >= MAX_FAILURES {
                continue;
            }
            if let Some(id) = &peer.id
                && !routers.iter().any(|r| &r.id == id)
            {
                routers.push(RouterInfo {
                    id: id.clone(),
                    url: url.clone(),
                });
            }
        }
        RoutersView {
            this: self.me.clone(),
            routers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, url: &str) -> RouterInfo {
        RouterInfo {
            id: id.into(),
            url: url.into(),
        }
    }

    #[test]
    fn learns_announces_and_recognizes_itself() {
        let mut peers = Peers::new(info("a", "http://127.0.0.1:1"), &["http://127.0.0.1:2/".into()]);
        assert_eq!(peers.to_probe(), ["http://127.0.0.1:2"]);
        let view = RoutersView {
            this: info("b", "http://127.0.0.1:2"),
            routers: vec![info("b", "http://127.0.0.1:2"), info("c", "http://127.0.0.1:3")],
        };
        let learned = peers.answered("http://127.0.0.1:2", &view);
        assert_eq!(
            learned,
            Learned {
                new: vec!["http://127.0.0.1:3".into()],
                announce: true
            }
        );

        // An alias of ourselves answers with our id: never a target.
        peers.add("http://localhost:1");
        peers.answered(
            "http://localhost:1",
            &RoutersView {
                this: info("a", "x"),
                routers: vec![],
            },
        );
        assert_eq!(
            peers.forward_targets(),
            ["http://127.0.0.1:2", "http://127.0.0.1:3"]
        );
        let ids: Vec<_> = peers.view().routers.into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b"], "c has not answered yet");
    }

    #[test]
    fn failing_peers_are_dropped_but_seeds_are_kept() {
        let mut peers = Peers::new(info("a", "http://127.0.0.1:1"), &["http://127.0.0.1:2".into()]);
        peers.add("http://127.0.0.1:3");
        for _ in 0..MAX_FAILURES - 1 {
            assert!(!peers.failed("http://127.0.0.1:3"));
            peers.failed("http://127.0.0.1:2");
        }
        assert!(peers.failed("http://127.0.0.1:3"), "learned peer dropped");
        assert!(!peers.failed("http://127.0.0.1:2"), "seed kept");
        assert_eq!(peers.to_probe(), ["http://127.0.0.1:2"]);
        assert!(
            peers.forward_targets().is_empty(),
            "a failing seed gets no forwards"
        );
        let view = RoutersView {
            this: info("b", "http://127.0.0.1:2"),
            routers: vec![],
        };
        peers.answered("http://127.0.0.1:2", &view);
        assert_eq!(peers.forward_targets(), ["http://127.0.0.1:2"], "relearned");
    }
}
