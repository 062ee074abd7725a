//! The upload path: from the queue to a committed upload.
//!
//! [`Pipeline`] takes files from the queue (`queue`: cursor, window, settle
//! gate), has them hashed by the workers ([`crate::transfer`]), asks the
//! planner (`plan`, a pure function) what each needs, records that in the
//! store through the ledger (`ledger`) and hands the work to the workers;
//! `execute` carries out plans and records what the workers report. Names
//! come from `naming`.
//!
//! The thread that owns the pipeline owns the store and makes every
//! decision, in queue order, so that names and duplicates come out the same
//! however the workers race. Every state change is committed before it is
//! acted on. Files are taken only once they have settled (see `settle`).
//! Both `sync` (one pass) and `daemon` (live) drive it. See
//! docs/ARCHITECTURE.md.

mod execute;
mod ledger;
mod naming;
mod plan;
mod queue;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;
use serde::Serialize;

use crate::dest::Destination;
use crate::error::{FileError, Result};
use crate::events::Event;
use crate::report::SyncReport;
use crate::settle::SettleRule;
use crate::store::{EntryRow, Hash, QueuedFile, Store, WatchRow, now_secs};
use crate::transfer::{Claim, Content, DestinationSet, Done, DoneKind, Job, Meters, Workers};

/// A queued file with what the pipeline knows about it.
struct Slot {
    file: QueuedFile,
    path: PathBuf,
    dest_id: i64,
    album: String,
    /// The file name as stored in the album.
    base: String,
    /// What reading the file found, once it was read (or known before).
    hashed: Option<Result<Content, FileError>>,
}

/// The reservation of `name` in the slot's album for its file.
fn reservation<'a>(slot: &'a Slot, name: &'a str, hash: &'a Hash) -> crate::store::Reservation<'a> {
    crate::store::Reservation {
        dest_id: slot.dest_id,
        album: &slot.album,
        name,
        base: &slot.base,
        hash,
        size: slot.file.fp.size,
        file_id: slot.file.id,
    }
}

/// An operation in flight on a destination, and how to record its end.
struct InFlight {
    slot: Slot,
    hash: Hash,
    entry: EntryRow,
    kind: OpKind,
    progress: Arc<AtomicU64>,
}

enum OpKind {
    /// A new entry was reserved for this upload or copy; a copy is reported
    /// as `copied` (moved: the file's own content; linked: the same content
    /// under another name).
    New {
        copied: Option<crate::events::Outcome>,
    },
    /// The file's own entry is being overwritten with new content.
    Replace {
        old_hash: Option<Hash>,
        old_size: u64,
    },
    /// The file's own entry is being moved to a new album or name.
    Move,
}

/// The job that uploads a slot's file to `album/name`, and its progress.
/// With `overwrite` it replaces this engine's own earlier version there;
/// without, the name must still be free when the upload commits.
fn upload_job(
    token: u64,
    dest: Arc<dyn Destination>,
    slot: &Slot,
    hash: Hash,
    (album, name): (&str, &str),
    overwrite: bool,
    claim: Option<Claim>,
) -> (Job, Arc<AtomicU64>) {
    let progress = Arc::new(AtomicU64::new(0));
    let job = Job::Upload {
        token,
        dest,
        path: slot.path.clone(),
        fp: slot.file.fp,
        hash,
        album: album.to_string(),
        name: name.to_string(),
        overwrite,
        taken: slot.file.captured.map(|c| c.at),
        claim,
        progress: progress.clone(),
    };
    (job, progress)
}

/// An upload in progress, for status displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Uploading {
    pub path: String,
    pub album: String,
    pub size: u64,
    pub done: u64,
}

/// What conditions hold back file by file (a condition that holds every
/// upload pauses the pipeline instead). Held files stay queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Withheld {
    /// Videos wait (on battery, "photos only").
    pub videos: bool,
    /// Uploads to servers wait; a local or external disk goes on (a
    /// metered network).
    pub servers: bool,
}

impl Withheld {
    /// True when `self` holds back something `other` does not.
    pub(crate) fn exceeds(self, other: Withheld) -> bool {
        (self.videos && !other.videos) || (self.servers && !other.servers)
    }
}

/// Only this many files are between "read from the queue" and "decided".
const WINDOW_PER_WORKER: usize = 4;
/// Only this many decided jobs wait for or run on each worker. Files whose
/// hash is known (moves, unchanged files) are decided without a worker, so
/// without this bound a renamed folder of 100,000 files would be decided
/// whole before the first move's result was recorded.
const IN_FLIGHT_PER_WORKER: usize = 8;
/// A file that keeps changing while it is read is tried this often before
/// it is reported.
const MAX_REREADS: u32 = 3;

/// The upload pipeline and its worker pool. Dropping it stops the workers
/// after their current job.
pub struct Pipeline<'a> {
    store: &'a Store,
    emit: &'a dyn Fn(&Event),
    dests: DestinationSet,
    watches: HashMap<i64, WatchRow>,
    workers: usize,
    settle: SettleRule,
    paused: bool,
    pub(crate) report: SyncReport,
    pub(crate) meters: Arc<Meters>,
    cursor: (i64, Vec<u8>, Vec<u8>),
    exhausted: bool,
    /// Files read from the queue, decided strictly in this order.
    window: VecDeque<u64>,
    slots: HashMap<u64, Slot>,
    next_slot: u64,
    /// Files to look at again soon (they changed while being read).
    again: VecDeque<QueuedFile>,
    /// Files waiting to settle, with the time to look again (unix ms).
    settling: HashMap<i64, (i64, QueuedFile)>,
    /// The files in `window`.
    window_files: std::collections::HashSet<i64>,
    /// Failed files are retried when their time has come (`i64::MAX`:
    /// every failed file, once per pass).
    retry_failed_before: i64,
    /// When each waiting file first waited (unix ms), for the settle cap.
    waiting_since: HashMap<i64, i64>,
    /// Whether each device's file system keeps change times the settle
    /// rule trusts (`platform::keeps_change_times`).
    change_times: HashMap<u64, bool>,
    rereads: HashMap<i64, u32>,
    in_flight: HashMap<u64, InFlight>,
    /// Files whose content is being uploaded by an earlier file: they wait
    /// for that entry, then link to it.
    parked: HashMap<i64, Vec<Slot>>,
    /// Names (as [`name_key`]s) found taken on each destination by a
    /// worker's claim: skipped when a name is picked.
    taken: HashMap<i64, std::collections::HashSet<String>>,
    /// Files whose server-side copy the server refused though it holds the
    /// source (it misreads the name): they are uploaded instead.
    no_copy: std::collections::HashSet<i64>,
    withheld: Withheld,
    /// The files held back by `withheld` in this pass over the queue.
    held: std::collections::HashSet<i64>,
    /// The turn under way, if any (see [`Pipeline::turn`]).
    turn: Option<Turn>,
    pool: Workers,
}

/// What a turn of the decision thread holds back until its transaction is
/// committed: the jobs it hands out and the events it tells.
#[derive(Default)]
struct Turn {
    jobs: Vec<Job>,
    events: Vec<Event>,
}

/// Worker reports recorded in one turn at most: a bound on how long the
/// store's write lock is held.
const REPORTS_PER_TURN: usize = 256;
/// How long a turn waits for more reports while uploads are in flight: a
/// few milliseconds, well within the work each worker holds (up to
/// [`IN_FLIGHT_PER_WORKER`] jobs).
const GATHER: std::time::Duration = std::time::Duration::from_millis(3);

impl std::fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("in_flight", &self.in_flight.len())
            .field("window", &self.window.len())
            .field("settling", &self.settling.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Pipeline<'a> {
    pub fn new(
        store: &'a Store,
        emit: &'a dyn Fn(&Event),
        workers: usize,
        settle: SettleRule,
    ) -> Pipeline<'a> {
        let workers = workers.max(1);
        // Uploads a pipeline before this one cancelled may go again.
        crate::transfer::rate::UPLOADS.set_cancelled(false);
        let pool = Workers::start(workers);
        let meters = pool.meters.clone();
        Pipeline {
            store,
            emit,
            dests: DestinationSet::new(meters.tripped.clone()),
            watches: HashMap::new(),
            workers,
            settle,
            paused: false,
            report: SyncReport::default(),
            meters,
            cursor: (0, Vec::new(), Vec::new()),
            exhausted: false,
            window: VecDeque::new(),
            slots: HashMap::new(),
            next_slot: 0,
            again: VecDeque::new(),
            settling: HashMap::new(),
            window_files: Default::default(),
            retry_failed_before: i64::MAX,
            waiting_since: HashMap::new(),
            change_times: HashMap::new(),
            rereads: HashMap::new(),
            in_flight: HashMap::new(),
            parked: HashMap::new(),
            taken: HashMap::new(),
            no_copy: Default::default(),
            withheld: Withheld::default(),
            held: Default::default(),
            turn: None,
            pool,
        }
    }

    /// Which watches the pipeline serves, once their destinations are in
    /// [`Self::destinations`]. Files of a watch not listed, or whose
    /// destination is not open, stay queued.
    pub fn configure(&mut self, watches: impl IntoIterator<Item = WatchRow>) {
        self.watches = watches.into_iter().map(|w| (w.id, w)).collect();
        self.taken.clear();
        self.rescan_queue();
    }

    /// The destinations the pipeline uploads to, and their health. One
    /// that an operation finds unusable (down, refusing, full) is dropped
    /// from it, and its files stay queued.
    pub fn destinations(&self) -> &DestinationSet {
        &self.dests
    }

    pub fn destinations_mut(&mut self) -> &mut DestinationSet {
        &mut self.dests
    }

    /// Live mode: failed files wait for their backoff instead of being
    /// retried once per pass.
    pub fn retry_failed_on_schedule(&mut self) {
        self.retry_failed_before = 0;
    }

    /// New work may have been queued: read the queue from the start again.
    pub fn rescan_queue(&mut self) {
        if self.retry_failed_before != i64::MAX {
            self.retry_failed_before = now_secs();
        }
        self.cursor = (0, Vec::new(), Vec::new());
        self.exhausted = false;
        self.held.clear();
    }

    /// While paused, nothing new is started and what was waiting is let
    /// go (it stays queued); work in flight finishes.
    pub fn set_paused(&mut self, paused: bool) {
        if paused == self.paused {
            return;
        }
        self.paused = paused;
        if paused {
            self.let_go_of_waiting();
        } else {
            self.rescan_queue();
        }
    }

    /// Lets go of the files read but not started (they stay queued).
    fn let_go_of_waiting(&mut self) {
        for id in self.window.drain(..) {
            self.slots.remove(&id);
        }
        self.window_files.clear();
        self.again.clear();
        self.settling.clear();
        self.waiting_since.clear();
        self.parked.clear();
    }

    /// Holds back videos, or uploads to servers, from now on; what was
    /// read and not started is let go and read again under the new rule.
    /// Uploads in flight go on (the caller cancels them if they must stop).
    pub(crate) fn withhold(&mut self, withheld: Withheld) {
        if withheld == self.withheld {
            return;
        }
        self.withheld = withheld;
        self.let_go_of_waiting();
        self.rescan_queue();
    }

    /// How many queued files the conditions held back when the queue was
    /// last read through (`None` while a reading is under way).
    pub(crate) fn held(&self) -> Option<u64> {
        self.exhausted.then_some(self.held.len() as u64)
    }

    /// True when the conditions hold this file back.
    fn is_withheld(&self, name: &[u8], dest_id: i64) -> bool {
        let w = self.withheld;
        if w.servers
            && self
                .dests
                .get(dest_id)
                .is_some_and(|d| d.local_root().is_none())
        {
            return true;
        }
        w.videos
            && crate::filter::media_kind(&crate::platform::bytes_to_os(name).to_string_lossy())
                == crate::filter::MediaKind::Video
    }

    /// Aborts reads in progress; their files go back to the queue.
    pub fn cancel(&self) {
        self.meters.cancel.store(true, Ordering::Relaxed);
        crate::transfer::rate::UPLOADS.set_cancelled(true);
    }

    pub fn is_cancelled(&self) -> bool {
        self.meters.cancel.load(Ordering::Relaxed)
    }

    /// Lets reads run again after [`Self::cancel`].
    pub fn uncancel(&self) {
        self.meters.cancel.store(false, Ordering::Relaxed);
        crate::transfer::rate::UPLOADS.set_cancelled(false);
    }

    pub fn settling_count(&self) -> usize {
        self.settling.len()
    }

    /// The channel on which workers report; feed what arrives to [`Self::handle`].
    pub fn done_channel(&self) -> Receiver<Done> {
        self.pool.done_channel()
    }

    /// The album entries that operations in flight reserved or move.
    pub fn entries_in_flight(&self) -> std::collections::HashSet<i64> {
        self.in_flight.values().map(|f| f.entry.id).collect()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + self.window.len()
    }

    /// True when nothing is queued, waiting, or in flight.
    pub fn is_drained(&self) -> bool {
        self.window.is_empty()
            && self.in_flight.is_empty()
            && self.exhausted
            && self.again.is_empty()
            && self.settling.is_empty()
            && self.parked.is_empty()
    }

    /// When a waiting file should be looked at again.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.settling.values().map(|(t, _)| *t).min()
    }

    pub fn uploads(&self) -> Vec<Uploading> {
        let mut v: Vec<Uploading> = self
            .in_flight
            .values()
            .map(|f| Uploading {
                path: f.slot.path.display().to_string(),
                album: f.entry.album.clone(),
                size: f.slot.file.fp.size,
                done: f.progress.load(Ordering::Relaxed),
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// Starts whatever can start now.
    pub fn pump(&mut self) -> Result<()> {
        if self.paused || self.in_flight_full() || !self.anything_to_decide() {
            return Ok(()); // no need for the write lock
        }
        self.turn(Self::pump_now)
    }

    /// False when [`Self::pump_now`] would find nothing to do: nothing to
    /// read into the window, no decision ready at its front, no parked
    /// file to let go. The engine ticks after every report and hint, most
    /// often with nothing new, and this spares those ticks a transaction.
    fn anything_to_decide(&self) -> bool {
        let now = crate::store::now_ms();
        let room = self.window.len() < self.workers * WINDOW_PER_WORKER;
        let to_read = !self.again.is_empty()
            || !self.exhausted
            || self.settling.values().any(|(t, _)| *t <= now);
        let ready = self
            .window
            .front()
            .and_then(|id| self.slots.get(id))
            .is_some_and(|s| s.hashed.is_some());
        (room && to_read) || ready || self.parked_to_let_go()
    }

    /// True when as many jobs are in flight as the workers may hold.
    fn in_flight_full(&self) -> bool {
        self.in_flight.len() >= self.workers * IN_FLIGHT_PER_WORKER
    }

    /// True when files wait on entries that nobody is uploading any more:
    /// the queue is read through and nothing is read, waiting or in flight.
    fn parked_to_let_go(&self) -> bool {
        !self.parked.is_empty()
            && self.exhausted
            && self.window.is_empty()
            && self.in_flight.is_empty()
            && self.again.is_empty()
    }

    fn pump_now(&mut self) -> Result<()> {
        loop {
            if self.paused {
                return Ok(());
            }
            if self.in_flight_full() {
                return Ok(()); // the next worker report makes room
            }
            self.wake_settled()?;
            self.refill()?;
            if self.decide_ready()? > 0 {
                // Decisions that needed no worker (linked, unchanged) freed
                // room in the window: read on, or nothing would wake us.
                continue;
            }
            if !self.parked_to_let_go() {
                return Ok(());
            }
            // Whatever still waits on an entry that nobody is uploading
            // now uploads for itself.
            for (_, slots) in std::mem::take(&mut self.parked) {
                for slot in slots {
                    self.plan(slot, false)?;
                }
            }
        }
    }

    /// Waits for the next worker report, no longer than until the first
    /// settling file is due or `until`, and records it (with any others
    /// already in, see [`Self::handle`]). False when nothing came in time.
    pub fn handle_next(&mut self, until: Option<std::time::Instant>) -> Result<bool> {
        let now = crate::clock::now();
        let settle = self.next_deadline_ms().map(|t| {
            now + std::time::Duration::from_millis(
                (t - crate::store::now_ms()).clamp(1, 60_000) as u64
            )
        });
        let deadline = match (settle, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let done = self.pool.done_channel();
        let msg = match deadline {
            Some(t) => done.recv_deadline(t).ok(),
            None => done.recv().ok(),
        };
        match msg {
            Some(d) => self.handle(d).map(|()| true),
            None => Ok(false),
        }
    }

    /// Records what a worker reported, with the reports that follow it
    /// within [`GATHER`] while work is under way, and decides the work that
    /// makes room for, in one turn: a busy pipeline commits a batch of
    /// files at once, while the workers go on with the jobs they hold.
    pub fn handle(&mut self, done: Done) -> Result<()> {
        let more = self.pool.done_channel();
        let mut reports = vec![done];
        let until = crate::clock::now() + GATHER;
        while reports.len() < REPORTS_PER_TURN && reports.len() < self.in_flight.len() {
            match more.recv_deadline(until) {
                Ok(d) => reports.push(d),
                Err(_) => break,
            }
        }
        self.turn(|p| {
            for d in reports {
                p.handle_one(d)?;
            }
            p.pump_now()
        })
    }

    fn handle_one(&mut self, done: Done) -> Result<()> {
        match done.0 {
            DoneKind::Hashed { slot, result } => {
                if let Some(s) = self.slots.get_mut(&slot) {
                    s.hashed = Some(result);
                }
                Ok(())
            }
            DoneKind::Finished { token, result } => self.finished(token, result),
        }
    }

    /// Runs `f` as one turn of the decision thread: what it records is one
    /// store transaction (each ledger transition a savepoint inside it),
    /// and the jobs it hands out and the events it tells wait for the
    /// commit. So a transition is still committed before its work starts,
    /// and a host never hears of a change it cannot read yet; a batch of
    /// files costs one commit instead of one or two each.
    fn turn<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.turn.is_some() {
            return f(self);
        }
        self.store.begin()?;
        self.turn = Some(Turn::default());
        let result = f(self).and_then(|v| self.store.commit().map(|()| v));
        let turn = self.turn.take().unwrap_or_default();
        if result.is_err() {
            // The store is as it was before the turn, and its jobs and
            // events go too; the driver starts afresh from the store (the
            // daemon's restart, or the end of a sync).
            self.store.rollback();
            return result;
        }
        for job in turn.jobs {
            self.pool.send(job);
        }
        for event in &turn.events {
            (self.emit)(event);
        }
        result
    }

    /// Tells the host `event`, once the turn under way is committed.
    fn emit(&mut self, event: Event) {
        match &mut self.turn {
            Some(turn) => turn.events.push(event),
            None => (self.emit)(&event),
        }
    }
}

#[cfg(test)]
mod tests;
