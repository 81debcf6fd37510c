//! A least-recently-used cache of object ids, sized in bytes: an edge's cache
//! in the simulator. Nodes live in a slab with index links; no allocation per
//! operation once warm.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use selection::select::hash::mix64;

/// A fast, deterministic hasher for `u64` keys (the splitmix64 finalizer).
#[derive(Debug, Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(self.0 ^ n.wrapping_add(0x9e37_79b9_7f4a_7c15));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// `HashMap` with [`MixHasher`]: same iteration order in every run.
pub type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    size: u64,
    prev: u32,
    next: u32,
}

/// The cache; see the module docs.
#[derive(Debug, Clone)]
pub struct Lru {
    capacity: u64,
    used: u64,
    map: MixMap<u64, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl Lru {
    /// An empty cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Lru {
            capacity,
            used: 0,
            map: MixMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Looks `key` up: a hit moves it to the front.
    pub fn get(&mut self, key: u64) -> bool {
        match self.map.get(&key) {
            Some(&i) => {
                self.unlink(i);
                self.push_front(i);
                true
            }
            None => false,
        }
    }

    /// Looks `key` up and, on a miss, stores it with `size` bytes (evicting
    /// the least recently used objects to make room). True on a hit.
    pub fn fetch(&mut self, key: u64, size: u64) -> bool {
        if self.get(key) {
            return true;
        }
        self.insert(key, size);
        false
    }

    /// Stores `key` (not present) with `size` bytes; an object larger than
    /// the whole cache is not stored.
    fn insert(&mut self, key: u64, size: u64) {
        if size > self.capacity {
            return;
        }
        while self.used + size > self.capacity && self.tail != NIL {
            let victim = self.tail;
            self.unlink(victim);
            let node = self.nodes[victim as usize];
            self.used -= node.size;
            self.map.remove(&node.key);
            self.free.push(victim);
        }
        let node = Node {
            key,
            size,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.push_front(i);
        self.map.insert(key, i);
        self.used += size;
    }

    /// Empties the cache (a restarted edge).
    pub fn clear(&mut self) {
        self.map.clear();
        self.nodes.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.used = 0;
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.nodes[old as usize].prev = i;
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut c = Lru::new(30);
        assert!(!c.fetch(1, 10));
        assert!(!c.fetch(2, 10));
        assert!(!c.fetch(3, 10));
        assert!(c.fetch(1, 10), "1 is held, and now the most recent");
        assert!(!c.fetch(4, 10), "evicts 2, the least recent");
        assert!(!c.get(2));
        assert!(c.get(3) && c.get(1) && c.get(4));
        assert_eq!((c.len(), c.used()), (3, 30));
        assert!(!c.fetch(5, 31), "larger than the cache: not stored");
        assert_eq!(c.len(), 3);
        assert!(!c.fetch(6, 30), "takes the whole cache");
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty() && c.used() == 0);
        assert!(!c.get(6));
    }

    proptest! {
        /// Against a reference model (a Vec in recency order): the same hits,
        /// and never more bytes than the capacity.
        #[test]
        fn matches_a_reference_model(ops in proptest::collection::vec((0u64..20, 1u64..15), 1..300), cap in 10u64..60) {
            let mut c = Lru::new(cap);
            let mut model: Vec<(u64, u64)> = Vec::new(); // front = most recent
            for (key, size) in ops {
                let hit = c.fetch(key, size);
                let pos = model.iter().position(|&(k, _)| k == key);
                prop_assert_eq!(hit, pos.is_some());
                match pos {
                    Some(p) => {
                        let e = model.remove(p);
                        model.insert(0, e);
                    }
                    None if size <= cap => {
                        while model.iter().map(|e| e.1).sum::<u64>() + size > cap {
                            model.pop();
                        }
                        model.insert(0, (key, size));
                    }
                    None => {}
                }
                prop_assert!(c.used() <= cap);
                prop_assert_eq!(c.used(), model.iter().map(|e| e.1).sum::<u64>());
                prop_assert_eq!(c.len(), model.len());
            }
        }
    }
}
