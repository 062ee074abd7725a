//! The destinations in use and their health, in one place: which are open,
//! which are being opened, which are down and why, and when to try them
//! again. Opening and preparing one (with the clean-up of what a crash
//! left) is here too, for one pass and the live engine alike.
//!
//! The upload path plans only for open destinations and drops one that an
//! operation found unusable ([`DestinationSet::lose`]); the workers share
//! the [`Tripped`] list, so that jobs still queued for a destination found
//! unusable fail at once instead of one by one; the live engine opens
//! destinations and probes those that are down on the set's schedule. See
//! docs/ARCHITECTURE.md.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock;
use crate::deletion::forget_unconfirmed;
use crate::dest::{self, Destination, PassEnd};
use crate::error::{DestDown, Result};
use crate::events::Event;
use crate::home::Home;
use crate::retry::Backoff;
use crate::store::{DestRow, Store, WatchRow};

/// Destinations by id.
pub(crate) type Destinations = HashMap<i64, Arc<dyn Destination>>;

/// Destinations (by name) that an operation found unusable, shared with
/// the workers: jobs for them are not sent until the destination is
/// opened again.
#[derive(Debug, Default)]
pub(crate) struct Tripped(Mutex<HashMap<String, String>>);

impl Tripped {
    /// Why the destination was found unusable, if it was.
    pub fn why(&self, dest: &str) -> Option<String> {
        self.0.lock().expect("lock").get(dest).cloned()
    }

    pub fn trip(&self, dest: &str, why: String) {
        self.0.lock().expect("lock").insert(dest.to_string(), why);
    }

    fn reset(&self, dest: &str) {
        self.0.lock().expect("lock").remove(dest);
    }

    fn reset_all(&self) {
        self.0.lock().expect("lock").clear();
    }
}

/// The destinations in use and their health.
pub(crate) struct DestinationSet {
    open: Destinations,
    opening: HashSet<i64>,
    /// Destinations reported unavailable and not opened since, with why.
    down: HashMap<i64, DestDown>,
    tripped: Arc<Tripped>,
    probe: Backoff,
    /// Probes in a row that found a destination still down.
    probes: u32,
    probe_at: Option<Instant>,
}

/// The first wait before probing a destination that became unavailable.
const FIRST_PROBE: Duration = Duration::from_secs(2);

impl DestinationSet {
    /// An empty set whose workers share `tripped`. Destinations that are
    /// down are probed after 2 s, then after twice as long each time they
    /// are still down, up to a minute (see [`Self::probe_at_most_every`]).
    pub fn new(tripped: Arc<Tripped>) -> DestinationSet {
        DestinationSet {
            open: HashMap::new(),
            opening: HashSet::new(),
            down: HashMap::new(),
            tripped,
            probe: Backoff {
                first: FIRST_PROBE,
                max: Duration::from_secs(60),
                retries: usize::MAX,
            },
            probes: 0,
            probe_at: None,
        }
    }

    /// The longest wait between two probes of destinations that are down.
    pub fn probe_at_most_every(&mut self, max: Duration) {
        self.probe.max = max.max(FIRST_PROBE);
    }

    pub fn get(&self, id: i64) -> Option<&Arc<dyn Destination>> {
        self.open.get(&id)
    }

    pub fn is_open(&self, id: i64) -> bool {
        self.open.contains_key(&id)
    }

    /// The open destinations, to hand to another thread.
    pub fn snapshot(&self) -> Destinations {
        self.open.clone()
    }

    /// Marks `id` as being opened; false when it is open or being opened
    /// already.
    pub fn begin_opening(&mut self, id: i64) -> bool {
        !self.open.contains_key(&id) && self.opening.insert(id)
    }

    /// An opening that came to nothing worth recording (its settings
    /// changed meanwhile, or its thread could not start).
    pub fn abandon_opening(&mut self, id: i64) {
        self.opening.remove(&id);
    }

    /// Takes in an opened destination. Once nothing is down or being
    /// opened, the probe schedule starts again from its first wait.
    pub fn opened(&mut self, id: i64, dest: Arc<dyn Destination>) {
        self.opening.remove(&id);
        self.down.remove(&id);
        self.tripped.reset(dest.name());
        self.open.insert(id, dest);
        if self.down.is_empty() && self.opening.is_empty() {
            self.probe_at = None;
            self.probes = 0;
        }
    }

    /// Records that `id` could not be opened, and schedules a probe. True
    /// when this is news: it was not known to be down, or for another
    /// reason.
    pub fn unavailable(&mut self, id: i64, why: DestDown) -> bool {
        self.opening.remove(&id);
        let news = self.down.get(&id) != Some(&why);
        self.down.insert(id, why);
        self.schedule_probe();
        news
    }

    /// Drops an open destination that an operation found unusable, and
    /// schedules a probe. Returns it if it was open.
    pub fn lose(&mut self, id: i64, why: DestDown) -> Option<Arc<dyn Destination>> {
        let dest = self.open.remove(&id)?;
        self.down.insert(id, why);
        self.schedule_probe();
        Some(dest)
    }

    /// The destinations that cannot be used now, by name.
    pub fn down(&self) -> Vec<DestDown> {
        let mut v: Vec<DestDown> = self.down.values().cloned().collect();
        v.sort_by(|a, b| a.dest.cmp(&b.dest));
        v
    }

    /// Forgets every open destination (their settings changed): they are
    /// opened afresh.
    pub fn close_all(&mut self) {
        self.open.clear();
        self.tripped.reset_all();
    }

    /// Keeps only the destinations in `wanted`.
    pub fn retain(&mut self, wanted: &HashSet<i64>) {
        self.open.retain(|id, _| wanted.contains(id));
        self.down.retain(|id, _| wanted.contains(id));
    }

    /// Schedules the next probe, unless one is scheduled already.
    pub fn schedule_probe(&mut self) {
        if self.probe_at.is_none() {
            self.probe_at = Some(clock::now() + self.probe.delay(self.probes));
            self.probes = self.probes.saturating_add(1);
        }
    }

    /// True (once) when the destinations that are down should be tried
    /// again.
    pub fn probe_due(&mut self, now: Instant) -> bool {
        let due = self.probe_at.is_some_and(|t| now >= t);
        if due {
            self.probe_at = None;
        }
        due
    }

    pub fn next_probe(&self) -> Option<Instant> {
        self.probe_at
    }
}

/// Opens and prepares one destination (with a store connection of its own,
/// so that it can run on a thread), and forgets the reservations a crash
/// left on it, except `in_flight` ones.
pub(crate) fn open_destination(
    home: &Home,
    row: &DestRow,
    in_flight: &HashSet<i64>,
) -> std::result::Result<Arc<dyn Destination>, DestDown> {
    let not_opened = |e: crate::Error| DestDown::unreachable(&row.name, e.to_string());
    let store = Store::open(&home.db_path()).map_err(not_opened)?;
    let d = dest::open(home, row).map_err(not_opened)?;
    dest::prepare_checked(&store, row, d.as_ref())
        .and_then(|()| forget_unconfirmed(&store, d.as_ref(), row.id, in_flight))
        .map_err(|e| DestDown::from_error(&row.name, &e))?;
    Ok(d)
}

/// Opens and prepares the destinations the watches use, all at once (a
/// slow or stalled server delays no other destination), into `set`.
/// Returns a message for each that cannot be used now.
pub(crate) fn open_all(
    set: &mut DestinationSet,
    store: &Store,
    home: &Home,
    watches: &[WatchRow],
    emit: &dyn Fn(&Event),
) -> Result<Vec<String>> {
    let mut ids: Vec<i64> = watches.iter().map(|w| w.dest_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = ids
        .iter()
        .map(|id| store.destination(*id))
        .collect::<Result<Vec<_>>>()?;
    let opened: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = rows
            .iter()
            .map(|row| s.spawn(move || open_destination(home, row, &HashSet::new())))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("opening a destination does not panic"))
            .collect()
    });
    let mut unavailable = Vec::new();
    for (row, result) in rows.iter().zip(opened) {
        match result {
            Ok(d) => set.opened(row.id, d),
            Err(down) => {
                emit(&Event::DestinationUnavailable {
                    dest: row.name.clone(),
                    error: down.message.clone(),
                });
                unavailable.push(down.message.clone());
                set.unavailable(row.id, down);
            }
        }
    }
    Ok(unavailable)
}

/// Asks each destination which new names it lost to another writer, and
/// queues their files again. Returns how many files.
pub(crate) fn give_up_lost_names(store: &Store, dests: &Destinations) -> Result<u64> {
    let mut requeued = 0;
    for (id, d) in dests {
        match d.names_lost() {
            Ok(lost) => {
                for (album, name) in lost {
                    tracing::warn!(
                        "{album}/{name} on {} was replaced by another writer; its file is backed up again under a free name",
                        d.name()
                    );
                    requeued += store.give_up_entry(*id, &album, &name)?;
                }
            }
            Err(e) => tracing::warn!("cannot check what was written to {}: {e}", d.name()),
        }
    }
    Ok(requeued)
}

/// Lets a destination finish what it keeps about a whole pass (the
/// manifest of hidden names). A failure is logged; the next pass tries
/// again.
pub(crate) fn finish_pass(dest: &dyn Destination, when: PassEnd) {
    if let Err(e) = dest.after_pass(when) {
        tracing::warn!("could not finish the pass on {}: {e}", dest.name());
    }
}

/// How many entries one query of [`date_old_copies`] reads.
const DATING_PAGE: usize = 1000;

/// Gives the copies a destination held before Shoebox kept dates (they
/// carry the time they were made) their source's modification time, once:
/// only destinations the upgrade to store v10 marked. Nothing is sent
/// again. A destination that cannot change a date is left as it is; either
/// way it is not looked at again. Returns how many copies were dated.
pub(crate) fn date_old_copies(store: &Store, dest: &dyn Destination, dest_id: i64) -> Result<u64> {
    let pending_key = format!("dates_pending.{dest_id}");
    if !store.flag(&pending_key)? {
        return Ok(0);
    }
    let mut dated = 0;
    let mut after = 0;
    loop {
        let page = store.entries_with_dates(dest_id, after, DATING_PAGE)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.id;
        for (entry, mtime_ns) in &page {
            let Ok(ns) = u64::try_from(*mtime_ns) else {
                continue;
            };
            let t = std::time::UNIX_EPOCH + Duration::from_nanos(ns);
            match dest.set_modified(&entry.album, &entry.name, t) {
                Ok(true) => dated += 1,
                Ok(false) => {
                    store.set_flag(&pending_key, false)?;
                    return Ok(dated);
                }
                Err(e) => {
                    // Tried again at the next pass.
                    tracing::warn!("cannot date the copies on {} now: {e}", dest.name());
                    return Ok(dated);
                }
            }
        }
    }
    store.set_flag(&pending_key, false)?;
    if dated > 0 {
        tracing::info!(
            "{dated} copies on {} now carry their photo's date",
            dest.name()
        );
    }
    Ok(dated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::LocalFolder;

    fn folder(name: &str) -> Arc<dyn Destination> {
        Arc::new(LocalFolder::new(
            name,
            std::env::temp_dir().join("unused"),
            false,
            "test",
        ))
    }

    #[test]
    fn a_destination_found_down_is_probed_on_a_doubling_schedule_until_it_opens() {
        let tripped = Arc::new(Tripped::default());
        let mut set = DestinationSet::new(tripped.clone());
        set.probe_at_most_every(Duration::from_secs(5));
        assert!(set.begin_opening(1));
        assert!(!set.begin_opening(1), "one opening at a time");
        set.opened(1, folder("nas"));
        assert!(set.is_open(1) && set.next_probe().is_none());

        let full = DestDown {
            dest: "nas".into(),
            code: crate::DestProblem::Full,
            message: "the disk is full".into(),
        };
        tripped.trip("nas", "the disk is full".into());
        assert!(set.lose(1, full.clone()).is_some());
        assert!(set.lose(1, full.clone()).is_none(), "lost once");
        assert_eq!(set.down(), vec![full.clone()], "the window can say why");
        let first = set.next_probe().expect("a probe is scheduled");
        let now = clock::now();
        assert!(first <= now + FIRST_PROBE && first > now);
        assert!(!set.probe_due(now), "not before its time");
        assert!(set.probe_due(first) && set.next_probe().is_none());

        assert!(set.begin_opening(1));
        assert!(!set.unavailable(1, full), "already reported");
        let second = set.next_probe().expect("probed again");
        assert!(second >= clock::now() + FIRST_PROBE, "the wait doubles");
        assert!(set.probe_due(second));
        assert!(set.begin_opening(1));
        let gone = DestDown::unreachable("nas", "no such host".into());
        assert!(set.unavailable(1, gone), "a new reason is news");
        let third = set.next_probe().expect("probed again");
        assert!(third <= clock::now() + Duration::from_secs(5), "capped");

        set.opened(1, folder("nas"));
        assert!(set.next_probe().is_none(), "nothing left to probe");
        assert!(set.down().is_empty());
        assert_eq!(tripped.why("nas"), None, "workers may use it again");
    }

    #[test]
    fn destinations_no_watch_uses_are_dropped() {
        let mut set = DestinationSet::new(Arc::default());
        set.opened(1, folder("a"));
        set.opened(2, folder("b"));
        set.retain(&HashSet::from([2]));
        assert!(!set.is_open(1) && set.is_open(2));
        set.close_all();
        assert!(set.snapshot().is_empty());
    }
}
