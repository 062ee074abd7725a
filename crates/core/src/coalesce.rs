//! Coalescing watcher hints (events are hints: docs/ARCHITECTURE.md,
//! invariant 1). Each event marks a directory of a watch dirty; a directory
//! is rescanned once events for it have been quiet for a moment (or have
//! gone on too long). Too many dirty directories in one watch collapse into
//! one rescan of the whole watch, so a storm of 100,000 events costs bounded
//! memory. Pure logic over `Instant`s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to rescan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rescan {
    /// The files directly in this directory (key relative to the root),
    /// and any subdirectory that appeared or vanished.
    Dir(Vec<u8>),
    /// This directory and everything below it (a new directory: files may
    /// have been created in it before it was watched).
    Tree(Vec<u8>),
    /// The whole watch (overflow, watcher error, too many dirty paths).
    Watch,
}

#[derive(Debug, Clone, Copy)]
struct Marks {
    first: Instant,
    last: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rescan once a directory has had no events for this long…
    pub quiet: Duration,
    /// …or once it has been dirty this long, whatever happens.
    pub max_delay: Duration,
    /// More dirty directories than this in one watch: rescan the watch.
    pub max_dirty: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            quiet: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_dirty: 512,
        }
    }
}

/// The dirty set of one watch.
#[derive(Debug, Default)]
pub struct DirtySet {
    limits: Limits,
    dirty: HashMap<Rescan, Marks>,
    whole: Option<Marks>,
}

impl DirtySet {
    pub fn new(limits: Limits) -> DirtySet {
        DirtySet {
            limits,
            dirty: HashMap::new(),
            whole: None,
        }
    }

    pub fn mark(&mut self, what: Rescan, now: Instant) {
        if what == Rescan::Watch || self.whole.is_some() {
            self.mark_whole(now);
            return;
        }
        self.dirty
            .entry(what)
            .and_modify(|m| m.last = now)
            .or_insert(Marks {
                first: now,
                last: now,
            });
        if self.dirty.len() > self.limits.max_dirty {
            self.mark_whole(now);
        }
    }

    fn mark_whole(&mut self, now: Instant) {
        let first = self
            .dirty
            .values()
            .map(|m| m.first)
            .chain(self.whole.map(|m| m.first))
            .min()
            .unwrap_or(now);
        self.dirty.clear();
        self.dirty.shrink_to_fit();
        self.whole = Some(Marks { first, last: now });
    }

    fn due_at(&self, m: &Marks) -> Instant {
        (m.last + self.limits.quiet).min(m.first + self.limits.max_delay)
    }

    /// The earliest time something becomes due, if anything is dirty.
    pub fn next_due(&self) -> Option<Instant> {
        self.whole
            .iter()
            .chain(self.dirty.values())
            .map(|m| self.due_at(m))
            .min()
    }

    /// Takes what is due at `now`, in a stable order.
    pub fn take_due(&mut self, now: Instant) -> Vec<Rescan> {
        if let Some(m) = self.whole {
            if self.due_at(&m) <= now {
                self.whole = None;
                return vec![Rescan::Watch];
            }
            return Vec::new();
        }
        let mut due: Vec<Rescan> = self
            .dirty
            .iter()
            .filter(|(_, m)| self.due_at(m) <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for r in &due {
            self.dirty.remove(r);
        }
        due.sort();
        due
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.whole.is_none() && self.dirty.is_empty()
    }

    /// How many entries are held (memory is bounded by `max_dirty`).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.dirty.len() + usize::from(self.whole.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(s: &str) -> Rescan {
        Rescan::Dir(s.as_bytes().to_vec())
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn a_burst_in_one_directory_is_one_rescan_after_it_goes_quiet() {
        let t0 = crate::clock::now();
        let mut d = DirtySet::new(Limits::default());
        for i in 0..100 {
            d.mark(dir("DCIM"), ms(t0, i));
        }
        assert_eq!(d.len(), 1, "a hundred events, one entry");
        assert!(
            d.take_due(ms(t0, 250)).is_empty(),
            "events until 99 ms: quiet only at 299 ms"
        );
        assert_eq!(d.take_due(ms(t0, 299)), vec![dir("DCIM")]);
        assert!(d.is_empty());
    }

    #[test]
    fn continuous_events_are_rescanned_at_the_max_delay() {
        let t0 = crate::clock::now();
        let mut d = DirtySet::new(Limits::default());
        for i in (0..=2000).step_by(50) {
            d.mark(dir("a"), ms(t0, i));
        }
        assert_eq!(
            d.next_due(),
            Some(ms(t0, 2000)),
            "never quiet: due at first + 2 s"
        );
        assert_eq!(d.take_due(ms(t0, 2000)), vec![dir("a")]);
    }

    #[test]
    fn overflow_without_a_path_rescans_the_whole_watch() {
        let t0 = crate::clock::now();
        let mut d = DirtySet::new(Limits::default());
        d.mark(dir("a"), t0);
        d.mark(Rescan::Watch, ms(t0, 10));
        d.mark(dir("b"), ms(t0, 20));
        assert_eq!(d.len(), 1, "a whole-watch rescan absorbs everything");
        assert_eq!(d.take_due(ms(t0, 220)), vec![Rescan::Watch]);
    }

    #[test]
    fn ten_thousand_events_in_many_directories_stay_bounded() {
        let t0 = crate::clock::now();
        let mut d = DirtySet::new(Limits::default());
        for i in 0..10_000u64 {
            d.mark(dir(&format!("d{}", i % 2000)), ms(t0, i / 100));
            assert!(d.len() <= 513, "bounded at {i}");
        }
        assert_eq!(
            d.len(),
            1,
            "more than 512 dirty directories: one whole-watch rescan"
        );
        assert_eq!(d.take_due(ms(t0, 2000)), vec![Rescan::Watch]);
    }

    #[test]
    fn create_then_delete_and_rename_chains_end_in_rescans_of_each_place() {
        // Events only say where to look; the rescan decides what is there.
        let t0 = crate::clock::now();
        let mut d = DirtySet::new(Limits::default());
        d.mark(dir("in"), t0); // create in/a.jpg
        d.mark(dir("in"), ms(t0, 1)); // delete in/a.jpg
        d.mark(dir("in"), ms(t0, 2)); // rename in/b -> out/b
        d.mark(dir("out"), ms(t0, 2));
        d.mark(dir("out"), ms(t0, 3)); // rename out/b -> out/c
        d.mark(Rescan::Tree(b"new".to_vec()), ms(t0, 4)); // mkdir new
        assert_eq!(
            d.take_due(ms(t0, 204)),
            vec![dir("in"), dir("out"), Rescan::Tree(b"new".to_vec())]
        );
    }

    #[test]
    fn next_due_is_none_when_clean() {
        let d = DirtySet::new(Limits::default());
        assert_eq!(d.next_due(), None, "idle: nothing to wake up for");
    }
}
