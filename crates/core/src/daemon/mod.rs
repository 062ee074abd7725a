//! The live engine (`shoebox run`, and the tray app in-process): reconcile
//! every watch at start, then watch the folders and upload what settles
//! until told to stop.
//!
//! One thread owns the store and the decisions; it sleeps until a watcher
//! hint, a worker result, a stop request, or the next scheduled moment (a
//! dirty directory going quiet, a file settling, a periodic scan). With
//! nothing pending it wakes only for the hourly rescan (docs/ARCHITECTURE.md
//! invariant 7: idle means idle).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select_biased, unbounded};

use crate::clock;
use crate::coalesce::{DirtySet, Limits, Rescan};
use crate::deletion::{PolicyOutcome, apply_policy, delete_marked};
use crate::dest::{self, PassEnd};
use crate::error::Result;
use crate::events::Event;
use crate::home::Home;
use crate::local_api::Activity;
use crate::scan::{RootCheck, check_root, mark_missing, scan};
use crate::settle::SettleRule;
use crate::store::{Store, WatchRow, WatchState, now_ms, now_secs};
use crate::transfer::finish_pass;
use crate::upload::Pipeline;
mod conditions;
mod destinations;
mod watches;

use crate::store::WatcherMode;
use crate::transfer::rate::UPLOADS;
use crate::waiting::Waiting;
use crate::watcher::{FolderWatcher, Hint, existing_ancestor, watch_dir_shallow, watch_folder};

/// Settings key: "true" while syncing is paused (persisted).
pub const PAUSED_KEY: &str = "paused";
/// Settings key: set (to a timestamp) to ask a running engine for a full rescan.
pub const RESCAN_KEY: &str = "rescan_requested";
/// Changed whenever a destination's connection settings or secret change,
/// so a running engine reopens its destinations.
pub const DEST_EPOCH_KEY: &str = "destinations_edited";
/// Settings key: the conditions "back up now anyway" lifted, until each
/// ends (quiet hours by the time they end, `22:00`; `on-battery`,
/// `metered`), comma-separated; `now` asks the running engine to lift
/// those holding now.
pub const ANYWAY_KEY: &str = "conditions.anyway_until";
pub(crate) use conditions::ANYWAY_NOW;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub workers: usize,
    /// How long a file must hold still before it is read.
    pub settle: Duration,
    /// Full rescan of every watch, even with a working watcher (±25 %).
    pub full_scan_every: Duration,
    /// Rescan interval of watches that cannot be watched live.
    pub poll_every: Duration,
    /// Directory watches the OS allows (None: ask the OS).
    pub watch_limit: Option<u64>,
    /// How often the destinations are checked against the index (presence
    /// and size, as `shoebox verify` does), when the queue is empty.
    pub check_every: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 4,
            settle: Duration::from_secs(2),
            full_scan_every: Duration::from_secs(3600),
            poll_every: Duration::from_secs(60),
            watch_limit: None,
            check_every: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A watch as the running engine holds it.
struct Live {
    row: WatchRow,
    watcher: Option<FolderWatcher>,
    mode: WatcherMode,
    dirty: DirtySet,
    next_full: Instant,
    missing: bool,
    /// Watches the parent of a missing root, to notice its return.
    parent_watcher: Option<FolderWatcher>,
    dirs: u64,
}

struct Daemon<'a> {
    store: &'a Store,
    home: &'a Home,
    opts: &'a RunOptions,
    emit: &'a dyn Fn(&Event),
    hints_tx: Sender<Hint>,
    hints: Receiver<Hint>,
    /// The local API, where it could be served.
    api: Option<&'a crate::local_api::Server>,
    lives: HashMap<i64, Live>,
    pipeline: Pipeline<'a>,
    /// What the user asked for; the pipeline follows once in-flight work
    /// has been cancelled.
    want_paused: bool,
    /// The upload schedule (`shoebox config set schedule`).
    schedule: Option<crate::schedule::Schedule>,
    /// The rules for the battery and a metered network, and the computer's
    /// conditions (`None` where they are not followed).
    rules: conditions::Rules,
    machine: Option<crate::conditions::MachineWatch>,
    /// The conditions as last followed.
    machine_seen: crate::conditions::Machine,
    /// A condition holds every upload; what the others hold file by file.
    hold_all: bool,
    withheld: crate::upload::Withheld,
    /// The conditions holding uploads now, strongest first, and what
    /// waits, as published.
    holding: Vec<Waiting>,
    waiting: Option<Waiting>,
    /// The conditions "back up now anyway" lifted, and whether it was just
    /// asked for.
    anyway: Vec<String>,
    anyway_asked: bool,
    /// `bandwidth`, and `schedule-bandwidth` for a `limit` schedule's hours.
    rates: (Option<u64>, Option<u64>),
    /// The limit last published (`None` before the first publication).
    limit_published: Option<Option<u64>>,
    deletions_due: Option<Instant>,
    /// When the next failed file is due for another attempt (unix
    /// seconds): read when the queue drains, so that a file that failed
    /// is tried again on its schedule without another event.
    retry_due: Option<i64>,
    /// What was last published, when, and when a change made since is
    /// due to be.
    activity: Activity,
    published: Option<Instant>,
    publish_due: Option<Instant>,
    /// The destinations last published as down.
    published_down: Vec<crate::DestDown>,
    was_drained: bool,
    /// The last rescan request seen.
    rescan_seen: Option<String>,
    /// The last destination edit seen.
    dest_epoch: Option<String>,
    /// Destinations are opened on a thread of their own, so that a slow
    /// or stalled server never holds up the others, the watchers or a stop.
    opened_tx: Sender<Opened>,
    opened: Receiver<Opened>,
    /// Deletions from the destinations run on a thread of their own (a
    /// stalled server must not hold up the engine): whether one runs, and
    /// whether another was asked for meanwhile.
    deleting: bool,
    delete_again: bool,
    deleted_tx: Sender<Tidied>,
    deleted: Receiver<Tidied>,
    /// When the destinations are next checked against the index (unix
    /// seconds), and whether a check runs (on a thread of its own).
    check_due: i64,
    checking: bool,
    checked_tx: Sender<crate::check::VerifyReport>,
    checked: Receiver<crate::check::VerifyReport>,
}

/// What a tidying thread did: the events of what it removed, and how many
/// files it queued again because another writer took their names.
struct Tidied {
    events: Vec<Event>,
    requeued: u64,
}

/// A destination opened (or not) by an opener thread.
struct Opened {
    dest_id: i64,
    /// The destination settings' epoch it was opened with.
    epoch: Option<String>,
    result: std::result::Result<Arc<dyn dest::Destination>, crate::DestDown>,
}

/// Watcher hints taken in one go before the engine decides again: a storm
/// of new files sends several hints per file, far faster than a tick each.
const HINTS_PER_TICK: usize = 4096;

/// How long the engine waits before trying again when its store cannot be
/// written (a full disk).
const STORE_RETRY: Duration = Duration::from_secs(10);

/// Runs the live engine until `stop` receives (or is closed). The caller
/// holds the [`crate::EngineLock`].
pub fn run(
    store: &Store,
    home: &Home,
    opts: &RunOptions,
    stop: &Receiver<()>,
    emit: &dyn Fn(&Event),
) -> Result<()> {
    store.requeue_interrupted()?;
    let (hints_tx, hints) = unbounded();
    // Served before the configuration is first read: a change made before
    // then is read with it, one made after reaches the engine.
    let api = crate::local_api::Server::start(home, hints_tx.clone());
    let emit = &|e: &Event| {
        emit(e);
        if let Some(api) = &api {
            api.event(e);
        }
    };
    let pipeline = live_pipeline(store, opts, emit);
    let told = hints_tx.clone();
    let machine = crate::conditions::MachineWatch::start(move || {
        let _ = told.send(Hint::Machine);
    });
    let (opened_tx, opened) = unbounded();
    let (deleted_tx, deleted) = unbounded();
    let (checked_tx, checked) = unbounded();
    // The first check comes one interval after the first start.
    let every = opts.check_every.as_secs() as i64;
    let check_due = crate::check::last_check(store)?.map_or(now_secs() + every, |c| c.at + every);
    let mut d = Daemon {
        store,
        home,
        opts,
        emit,
        hints_tx,
        hints,
        api: api.as_ref(),
        lives: HashMap::new(),
        pipeline,
        want_paused: false,
        schedule: None,
        rules: Default::default(),
        machine: Some(machine),
        machine_seen: Default::default(),
        hold_all: false,
        withheld: Default::default(),
        holding: Vec::new(),
        waiting: None,
        anyway: Vec::new(),
        anyway_asked: false,
        rates: (None, None),
        limit_published: None,
        deletions_due: None,
        retry_due: store.next_failed_attempt(now_secs())?,
        activity: Activity::default(),
        published: None,
        publish_due: None,
        published_down: Vec::new(),
        was_drained: true,
        rescan_seen: store.setting(RESCAN_KEY)?,
        dest_epoch: store.setting(DEST_EPOCH_KEY)?,
        opened_tx,
        opened,
        deleting: false,
        delete_again: false,
        deleted_tx,
        deleted,
        check_due,
        checking: false,
        checked_tx,
        checked,
    };
    d.reload()?;
    let result = d.serve(stop);
    d.shutdown()?;
    result
}

/// The live engine's pipeline: failed files wait for their backoff, and
/// destinations that are down are probed from 2 s, doubling, up to the
/// poll interval.
fn live_pipeline<'a>(
    store: &'a Store,
    opts: &RunOptions,
    emit: &'a dyn Fn(&Event),
) -> Pipeline<'a> {
    let mut pipeline = Pipeline::new(store, emit, opts.workers, SettleRule::new(opts.settle));
    pipeline.retry_failed_on_schedule();
    pipeline
        .destinations_mut()
        .probe_at_most_every(opts.poll_every);
    pipeline
}

/// A random fraction in [0, 1), for jitter.
fn random_unit() -> f64 {
    (RandomState::new().hash_one(now_ms()) >> 11) as f64 / (1u64 << 53) as f64
}

impl Daemon<'_> {
    fn grace_secs(&self) -> i64 {
        (self.opts.settle.as_secs() as i64) + 3
    }

    /// Reads the configuration from the store and applies it: new and
    /// removed watches and destinations, pause, the bandwidth limit.
    fn reload(&mut self) -> Result<()> {
        self.reload_conditions()?;
        let epoch = self.store.setting(DEST_EPOCH_KEY)?;
        if epoch != self.dest_epoch {
            // Edited settings or secrets: open every destination afresh.
            self.dest_epoch = epoch;
            self.pipeline.destinations_mut().close_all();
        }
        let rows = self.store.watches()?;
        self.lives.retain(|id, _| rows.iter().any(|r| r.id == *id));
        let wanted: HashSet<i64> = rows.iter().map(|r| r.dest_id).collect();
        self.pipeline.destinations_mut().retain(&wanted);
        self.open_destinations(&rows)?;
        for row in rows {
            match self.lives.get_mut(&row.id) {
                Some(live) => live.row = row,
                None => self.add(row)?,
            }
        }
        self.configure_pipeline();
        self.want_paused = self.store.flag(PAUSED_KEY)?;
        if self.want_paused {
            self.pipeline.set_paused(true);
            self.pipeline.cancel();
        }
        self.deletions_due = Some(clock::now());
        let rescan = self.store.setting(RESCAN_KEY)?;
        if rescan != self.rescan_seen {
            self.rescan_seen = rescan;
            for live in self.lives.values_mut() {
                live.dirty.mark(Rescan::Watch, clock::now());
            }
        }
        Ok(())
    }

    fn configure_pipeline(&mut self) {
        let rows = self
            .lives
            .values()
            .filter(|l| !l.missing)
            .map(|l| l.row.clone());
        self.pipeline.configure(rows);
    }

    /// Does everything that is due now.
    fn tick(&mut self) -> Result<()> {
        let now = clock::now();
        let ids: Vec<i64> = self.lives.keys().copied().collect();
        for id in ids {
            let live = self.lives.get_mut(&id).expect("present");
            if live.missing {
                if now >= live.next_full {
                    self.full_scan(id)?;
                }
                continue;
            }
            if now >= live.next_full {
                live.dirty
                    .take_due(clock::now() + Duration::from_secs(3600));
                self.full_scan(id)?;
                continue;
            }
            let due = live.dirty.take_due(now);
            if due.contains(&Rescan::Watch) {
                self.full_scan(id)?;
                continue;
            }
            let row = live.row.clone();
            let mut vanished = 0;
            for what in &due {
                match scan(self.store, &row, what, self.emit) {
                    Ok(stats) => vanished += stats.vanished,
                    Err(e) if e.is_transient_store_error() => return Err(e),
                    Err(e) => {
                        tracing::error!("rescanning part of {} failed: {e}", row.root.display())
                    }
                }
            }
            if !due.is_empty() {
                if let RootCheck::Missing(reason) = check_root(&row) {
                    self.go_missing(id, &reason)?;
                }
                self.pipeline.rescan_queue();
            }
            if vanished > 0 {
                self.deletions_due = Some(now + Duration::from_secs(self.grace_secs() as u64 + 1));
            }
        }
        if self.pipeline.destinations_mut().probe_due(now) {
            let rows: Vec<WatchRow> = self.lives.values().map(|l| l.row.clone()).collect();
            self.open_destinations(&rows)?;
        }
        if self.deletions_due.is_some_and(|t| now >= t) {
            self.deletions_due = None;
            self.apply_deletions()?;
        }
        if self.retry_due.is_some_and(|t| now_secs() >= t) {
            self.retry_due = None;
            self.pipeline.rescan_queue();
        }
        self.follow_conditions()?;
        self.follow_pause();
        self.pipeline.pump()?;
        self.publish_waiting()?;
        let drained = self.pipeline.is_drained();
        if drained && !self.was_drained {
            // Old versions replaced by edits can go now.
            self.delete_marked();
            // (Those already due were taken, or wait for their
            // destination: its opening reads the queue again.)
            self.retry_due = self.store.next_failed_attempt(now_secs())?;
        }
        if drained && !self.checking && now_secs() >= self.check_due {
            self.check_backup();
        }
        self.was_drained = drained;
        self.publish(false)
    }

    /// The pipeline pauses at once; it resumes only when nothing cancelled
    /// is still in flight.
    fn follow_pause(&mut self) {
        if self.want_paused || self.hold_all {
            self.pipeline.set_paused(true);
        } else if self.pipeline.in_flight() == 0 || !self.pipeline.is_cancelled() {
            self.pipeline.uncancel();
            self.pipeline.set_paused(false);
        }
    }

    /// Publishes what the engine does when it changed, at most once a
    /// second (a later change is published when that second is up); a
    /// destination going down or coming back, and `force`, at once.
    fn publish(&mut self, force: bool) -> Result<()> {
        let down = self.pipeline.destinations().down();
        let activity = Activity {
            uploading: self.pipeline.uploads(),
            settling: self.pipeline.settling_count() as u64,
            destinations_down: down.clone(),
            waiting: self.waiting.clone(),
            bandwidth_limit: UPLOADS.rate(),
            on_battery: self.machine_seen.on_battery,
            metered: self.machine_seen.metered,
        };
        let news = down != self.published_down;
        if !force && activity == self.activity {
            self.publish_due = None;
            return Ok(());
        }
        let next_allowed = self.published.map(|t| t + Duration::from_secs(1));
        if !force && !news && next_allowed.is_some_and(|t| clock::now() < t) {
            self.publish_due = next_allowed;
            return Ok(());
        }
        if let Some(api) = self.api {
            api.publish(&activity);
        }
        self.activity = activity;
        self.published = Some(clock::now());
        self.publish_due = None;
        if news {
            (self.emit)(&Event::DestinationHealth { down: down.clone() });
            self.published_down = down;
        }
        Ok(())
    }

    /// The next moment something is due, if any.
    fn next_wake(&self) -> Option<Instant> {
        let now = clock::now();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for live in self.lives.values() {
            consider(live.next_full);
            if let Some(t) = live.dirty.next_due() {
                consider(t);
            }
        }
        // The schedule's next change of hours.
        if let Some(s) = self.schedule {
            let now_local = clock::local_time_of_day();
            let secs = crate::schedule::secs_until(now_local, s.at(now_local).until);
            consider(now + Duration::from_secs(secs));
        }
        if let Some(ms) = self.pipeline.next_deadline_ms() {
            consider(now + Duration::from_millis((ms - now_ms()).max(0) as u64));
        }
        if let Some(secs) = self.retry_due {
            consider(now + Duration::from_secs((secs - now_secs()).max(0) as u64));
        }
        if !self.checking {
            consider(now + Duration::from_secs((self.check_due - now_secs()).max(0) as u64));
        }
        for t in [
            self.deletions_due,
            self.pipeline.destinations().next_probe(),
        ]
        .into_iter()
        .flatten()
        {
            consider(t);
        }
        if self.pipeline.in_flight() > 0 {
            consider(now + Duration::from_secs(1)); // progress for status
        }
        if let Some(t) = self.publish_due {
            consider(t);
        }
        next
    }

    /// Serves until stopped. A store that cannot be written for a reason
    /// that passes (its disk is full) does not end the engine: it says so,
    /// waits, and starts again from the store, which is the truth.
    fn serve(&mut self, stop: &Receiver<()>) -> Result<()> {
        let mut result = self.serve_until_error(stop);
        loop {
            match result {
                Err(e) if e.is_transient_store_error() => {
                    tracing::warn!("{e}");
                    (self.emit)(&Event::EngineWaiting {
                        reason: e.to_string(),
                        retry_secs: STORE_RETRY.as_secs(),
                    });
                    match stop.recv_timeout(STORE_RETRY) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        _ => return Ok(()),
                    }
                    result = self.restart().and_then(|()| self.serve_until_error(stop));
                }
                other => return other,
            }
        }
    }

    /// Starts afresh from the store after an error: what was in flight is
    /// queued again, and the configuration is read anew.
    fn restart(&mut self) -> Result<()> {
        let pipeline = live_pipeline(self.store, self.opts, self.emit);
        // The old pipeline's workers stop here (a stalled one is left).
        drop(std::mem::replace(&mut self.pipeline, pipeline));
        self.store.rollback();
        self.store.requeue_interrupted()?;
        self.was_drained = false;
        self.reload()?;
        for live in self.lives.values_mut() {
            live.dirty.mark(Rescan::Watch, clock::now());
        }
        Ok(())
    }

    fn serve_until_error(&mut self, stop: &Receiver<()>) -> Result<()> {
        let done = self.pipeline.done_channel();
        loop {
            self.tick()?;
            let timeout = self.next_wake().map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(clock::now())
            });
            select_biased! {
                recv(stop) -> _ => return Ok(()),
                recv(done) -> msg => if let Ok(d) = msg { self.pipeline.handle(d)? },
                recv(self.opened) -> msg => if let Ok(o) = msg { self.on_opened(o)? },
                recv(self.deleted) -> msg => if let Ok(e) = msg { self.on_deleted(e) },
                recv(self.checked) -> msg => if let Ok(r) = msg { self.on_checked(&r)? },
                recv(self.hints) -> msg => if let Ok(h) = msg { self.on_hints(h)? },
                default(timeout) => {}
            }
        }
    }

    /// Stops taking work, lets uploads in flight finish for a few seconds,
    /// then cancels the rest (they stay queued).
    fn shutdown(&mut self) -> Result<()> {
        self.pipeline.set_paused(true);
        let finish_by = clock::now() + Duration::from_secs(5);
        let cancel_by = finish_by + Duration::from_secs(3);
        while self.pipeline.in_flight() > 0 {
            let now = clock::now();
            if now >= finish_by {
                self.pipeline.cancel();
            }
            if now >= cancel_by {
                break;
            }
            let until = if now < finish_by {
                finish_by
            } else {
                cancel_by
            };
            if self.pipeline.handle_next(Some(until))? {
                self.pipeline.set_paused(true);
            }
        }
        // What a destination keeps about the whole backup (the manifest of
        // hidden names) is brought up to date before the engine stops.
        for (_, d) in self.pipeline.destinations().snapshot() {
            finish_pass(d.as_ref(), PassEnd::Stopping);
        }
        for id in self.lives.keys() {
            self.store.set_watcher(*id, None)?;
        }
        if let Some(api) = self.api {
            api.publish(&Activity::default());
        }
        Ok(())
    }
}
