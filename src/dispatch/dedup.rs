//! The duplicate window: suppresses events the server delivers again.
//!
//! After a reconnect the server redelivers what it did not see acknowledged; with
//! acknowledge-after-handling that includes events already handled. Remembering the last few
//! thousand message keys is enough to handle each of them once.

use std::collections::{HashSet, VecDeque};

/// Bounded memory of recently seen event keys.
pub(super) struct Dedup {
    cap: usize,
    set: HashSet<u64, BuildNoHash>,
    order: VecDeque<u64>,
}

/// The keys are SipHash fingerprints already: hashing them again would only cost time.
#[derive(Default, Clone, Copy)]
struct BuildNoHash;

#[derive(Default)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::hash::BuildHasher for BuildNoHash {
    type Hasher = NoHash;
    fn build_hasher(&self) -> NoHash {
        NoHash::default()
    }
}

impl Dedup {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    /// Records `key`; false when it was seen already.
    pub(super) fn first_time(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return true;
        }
        if !self.set.insert(key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_window_is_bounded() {
        let mut d = Dedup::new(2);
        assert!(d.first_time(1));
        assert!(!d.first_time(1));
        assert!(d.first_time(2));
        assert!(d.first_time(3));
        assert!(d.first_time(1), "forgotten after the window");
        assert_eq!(d.set.len(), 2);
    }
}
