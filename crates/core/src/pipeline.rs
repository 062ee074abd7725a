//! The upload pipeline: takes files from the queue, hashes them, decides
//! what each needs (nothing, a link to identical content, a move, a
//! replacement, a new upload), and has a bounded pool of workers carry it out.
//!
//! Workers do the slow parts (hashing, uploading, server-side moves); the
//! thread that owns the pipeline owns the store and makes every decision, in
//! queue order, so that names and duplicates come out the same however the
//! workers race. Every state change is committed before it is acted on
//! (DESIGN.md invariant 4). Files are taken only once they have settled
//! (invariant 2, see `settle`). Both `sync` (one pass) and `daemon` (live)
//! drive it.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;

use crate::album::{AlbumMode, name_key, numbered, sanitize_album, sanitize_file_name};
use crate::dest::{Destination, Upload};
use crate::error::{DestError, FileError, Result};
use crate::events::{Event, Outcome};
use crate::hash::{HashingReader, SparseFile, check_unchanged, hash_file, open_version};
use crate::platform::{Fingerprint, bytes_to_os};
use crate::report::SyncReport;
use crate::retry::Backoff;
use crate::scan::rel_path;
use crate::settle::{SettleRule, Verdict};
use crate::store::{
    EntryRow, EntryState, FileState, Hash, QueuedFile, Store, WatchRow, now_ms, now_secs,
};

/// What a worker is asked to do.
enum Job {
    Hash {
        slot: u64,
        path: PathBuf,
        fp: Fingerprint,
    },
    Upload {
        token: u64,
        dest: Arc<dyn Destination>,
        path: PathBuf,
        fp: Fingerprint,
        hash: Hash,
        album: String,
        name: String,
        overwrite: bool,
        claim: Option<Claim>,
        progress: Arc<AtomicU64>,
    },
    Rename {
        token: u64,
        dest: Arc<dyn Destination>,
        from: (String, String),
        to: (String, String),
        claim: Option<Claim>,
    },
    Copy {
        token: u64,
        dest: Arc<dyn Destination>,
        from: (String, String),
        to: (String, String),
        claim: Option<Claim>,
    },
}

/// A name a job is the first to put something under. The worker asks the
/// destination whether it is free before sending anything (so that no
/// network wait ever holds up the thread that decides); with `adopt`, an
/// object already there with exactly this length and content (left by a
/// lost or rebuilt store) is taken over instead.
#[derive(Debug, Clone, Copy)]
struct Claim {
    adopt: Option<(u64, Hash)>,
}

/// What a finished job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// The operation was carried out, sending this many bytes.
    Sent(u64),
    /// The name already held exactly this content: nothing was sent.
    Adopted,
}

/// Checks a claimed name on the destination: `Ok(None)` when it is free,
/// `Ok(Some(Adopted))` when it holds the content to adopt, and
/// [`DestError::NameTaken`] when something else is there.
fn check_claim(
    dest: &dyn Destination,
    (album, name): (&str, &str),
    claim: Option<&Claim>,
) -> Result<Option<Transfer>, FileError> {
    let Some(claim) = claim else {
        return Ok(None);
    };
    if !dest.exists(album, name)? {
        return Ok(None);
    }
    if let Some((len, hash)) = &claim.adopt
        && dest.holds(album, name, *len, hash)?
    {
        return Ok(Some(Transfer::Adopted));
    }
    Err(FileError::Dest(DestError::NameTaken {
        name: dest.name().to_string(),
        album: album.to_string(),
        object: name.to_string(),
    }))
}

/// What a worker reports back.
pub struct Done(DoneKind);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

enum DoneKind {
    Hashed {
        slot: u64,
        result: Result<Hash, FileError>,
    },
    Finished {
        token: u64,
        result: Result<Transfer, FileError>,
    },
}

/// Counters and the cancel switch shared with the workers.
#[derive(Default)]
pub(crate) struct Meters {
    /// Bytes read from watched folders.
    pub read: AtomicU64,
    /// Set to abort reads in progress (shutdown, pause).
    pub cancel: AtomicBool,
    /// Destinations (by name) found unusable since the last configure:
    /// jobs still queued for them are skipped, not sent one by one.
    pub down: std::sync::Mutex<HashMap<String, String>>,
}

/// Runs a destination operation with retries, unless the destination was
/// already found unusable; records it when this operation finds it so.
fn on_dest<T>(
    meters: &Meters,
    dest: &dyn Destination,
    op: impl FnMut() -> Result<T, FileError>,
) -> Result<T, FileError> {
    let name = dest.name().to_string();
    if let Some(why) = meters.down.lock().expect("lock").get(&name) {
        return Err(FileError::Dest(DestError::Unavailable {
            name,
            why: why.clone(),
        }));
    }
    let result = Backoff::OPERATION.retry(op);
    if let Err(FileError::Dest(e)) = &result
        && e.is_destination_wide()
    {
        meters
            .down
            .lock()
            .expect("lock")
            .insert(name, e.to_string());
    }
    result
}

/// Counts the bytes of one upload, for progress.
struct Metered<'a, R> {
    inner: R,
    progress: &'a AtomicU64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct UploadJob<'a> {
    dest: &'a dyn Destination,
    path: &'a Path,
    fp: &'a Fingerprint,
    hash: &'a Hash,
    album: &'a str,
    name: &'a str,
    overwrite: bool,
    claim: Option<&'a Claim>,
    progress: &'a AtomicU64,
}

fn upload(meters: &Meters, job: &UploadJob<'_>) -> Result<Transfer, FileError> {
    if let Some(done) = check_claim(job.dest, (job.album, job.name), job.claim)? {
        return Ok(done);
    }
    job.progress.store(0, Ordering::Relaxed);
    let file = open_version(job.path, job.fp)?;
    let buffered = io::BufReader::with_capacity(256 * 1024, SparseFile::new(&file, job.fp.size));
    let metered = Metered {
        inner: buffered,
        progress: job.progress,
    };
    let mut reader = HashingReader::new(metered, &meters.read, &meters.cancel);
    let upload = Upload {
        album: job.album,
        name: job.name,
        len: job.fp.size,
        hash: job.hash,
        overwrite: job.overwrite,
    };
    let (staged, written) = job.dest.stage(&upload, &mut reader)?;
    // Only the exact version that was hashed may be committed.
    if reader.finish() != *job.hash || written != job.fp.size {
        return Err(FileError::Changed);
    }
    check_unchanged(&file, job.path, job.fp)?;
    match staged.commit() {
        // The name was reserved by an upload whose answer was lost: what
        // holds it now is that upload itself when its content is ours.
        Err(DestError::NameTaken { .. })
            if job.dest.holds(job.album, job.name, job.fp.size, job.hash)? =>
        {
            Ok(Transfer::Sent(written))
        }
        other => other
            .map(|()| Transfer::Sent(written))
            .map_err(FileError::from),
    }
}

/// Moves (`copy == false`) or copies an object inside the destination.
fn relocate(
    dest: &dyn Destination,
    from: &(String, String),
    to: &(String, String),
    claim: Option<&Claim>,
    copy: bool,
) -> Result<Transfer, FileError> {
    if let Some(done) = check_claim(dest, (&to.0, &to.1), claim)? {
        return Ok(done);
    }
    let (from, to) = (
        (from.0.as_str(), from.1.as_str()),
        (to.0.as_str(), to.1.as_str()),
    );
    if copy {
        dest.copy(from, to)?;
    } else {
        dest.rename(from, to)?;
    }
    Ok(Transfer::Sent(0))
}

fn work(jobs: Receiver<Job>, done: Sender<Done>, meters: Arc<Meters>) {
    for job in jobs {
        let msg = match job {
            Job::Hash { slot, path, fp } => DoneKind::Hashed {
                slot,
                result: Backoff::OPERATION
                    .retry(|| hash_file(&path, &fp, &meters.read, &meters.cancel)),
            },
            Job::Upload {
                token,
                dest,
                path,
                fp,
                hash,
                album,
                name,
                overwrite,
                claim,
                progress,
            } => {
                let job = UploadJob {
                    dest: dest.as_ref(),
                    path: &path,
                    fp: &fp,
                    hash: &hash,
                    album: &album,
                    name: &name,
                    overwrite,
                    claim: claim.as_ref(),
                    progress: &progress,
                };
                DoneKind::Finished {
                    token,
                    result: on_dest(&meters, dest.as_ref(), || upload(&meters, &job)),
                }
            }
            Job::Rename {
                token,
                dest,
                from,
                to,
                claim,
            } => DoneKind::Finished {
                token,
                result: on_dest(&meters, dest.as_ref(), || {
                    relocate(dest.as_ref(), &from, &to, claim.as_ref(), false)
                }),
            },
            Job::Copy {
                token,
                dest,
                from,
                to,
                claim,
            } => DoneKind::Finished {
                token,
                result: on_dest(&meters, dest.as_ref(), || {
                    relocate(dest.as_ref(), &from, &to, claim.as_ref(), true)
                }),
            },
        };
        // A cancelled read is not the file's fault.
        let msg = match msg {
            DoneKind::Hashed {
                slot,
                result: Err(_),
            } if meters.cancel.load(Ordering::Relaxed) => DoneKind::Hashed {
                slot,
                result: Err(FileError::Cancelled),
            },
            DoneKind::Finished {
                token,
                result: Err(_),
            } if meters.cancel.load(Ordering::Relaxed) => DoneKind::Finished {
                token,
                result: Err(FileError::Cancelled),
            },
            other => other,
        };
        if done.send(Done(msg)).is_err() {
            return;
        }
    }
}

/// A queued file with what the pipeline knows about it.
struct Slot {
    file: QueuedFile,
    path: PathBuf,
    dest_id: i64,
    album: String,
    /// The file name as stored in the album.
    base: String,
    hashed: Option<Result<Hash, FileError>>,
}

/// An operation in flight on a destination, and how to record its end.
/// Inserts a new (reserved) album entry `name` for the slot's file.
fn reserve_entry(s: &Store, slot: &Slot, name: &str, hash: &Hash) -> Result<i64> {
    s.reserve_entry(&crate::store::Reservation {
        dest_id: slot.dest_id,
        album: &slot.album,
        name,
        base: &slot.base,
        hash,
        size: slot.file.fp.size,
        file_id: slot.file.id,
    })
}

struct InFlight {
    slot: Slot,
    hash: Hash,
    entry: EntryRow,
    kind: OpKind,
    progress: Arc<AtomicU64>,
}

enum OpKind {
    /// A new entry was reserved for this upload or copy.
    New { copy: bool },
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
        claim,
        progress: progress.clone(),
    };
    (job, progress)
}

/// An upload in progress, for status displays.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Uploading {
    pub path: String,
    pub album: String,
    pub size: u64,
    pub done: u64,
}

pub fn album_for(watch: &WatchRow, rel: &[u8]) -> String {
    match watch.mode {
        AlbumMode::Single => watch.album.clone(),
        AlbumMode::PerFolder => match rel.rsplit(|b| *b == b'/').next() {
            Some(last) if !rel.is_empty() => sanitize_album(&bytes_to_os(last).to_string_lossy()),
            _ => watch.album.clone(),
        },
    }
}

/// Only this many files are between "read from the queue" and "decided".
const WINDOW_PER_WORKER: usize = 4;
/// A file that keeps changing while it is read is tried this often before
/// it is reported.
const MAX_REREADS: u32 = 3;

/// The upload pipeline and its worker pool. Dropping it stops the workers
/// after their current job.
pub struct Pipeline<'a> {
    store: &'a Store,
    emit: &'a dyn Fn(&Event),
    dests: HashMap<i64, Arc<dyn Destination>>,
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
    rereads: HashMap<i64, u32>,
    in_flight: HashMap<u64, InFlight>,
    /// Files whose content is being uploaded by an earlier file: they wait
    /// for that entry, then link to it.
    parked: HashMap<i64, Vec<Slot>>,
    /// Destinations dropped as unusable, for the driver to probe again.
    lost: Vec<i64>,
    /// Names (as [`name_key`]s) found taken on each destination by a
    /// worker's claim: skipped when a name is picked.
    taken: HashMap<i64, std::collections::HashSet<String>>,
    jobs: Option<Sender<Job>>,
    done_rx: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("in_flight", &self.in_flight.len())
            .field("window", &self.window.len())
            .field("settling", &self.settling.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Pipeline<'_> {
    /// Stops the workers after their current job. A worker still waiting
    /// on a stalled server after a few seconds is left to end on its own
    /// (its request has a time bound), so that stopping never waits for it.
    fn drop(&mut self) {
        self.jobs = None;
        // The done channel disconnects once every worker has ended.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while let Ok(_late) = self.done_rx.recv_deadline(deadline) {}
        for h in self.handles.drain(..) {
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::info!("a worker is still waiting on a destination; not waiting for it");
            }
        }
    }
}

impl<'a> Pipeline<'a> {
    pub fn new(
        store: &'a Store,
        emit: &'a dyn Fn(&Event),
        workers: usize,
        settle: SettleRule,
    ) -> Pipeline<'a> {
        let (job_tx, job_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<Done>();
        let meters = Arc::new(Meters::default());
        let workers = workers.max(1);
        let handles = (0..workers)
            .map(|i| {
                let (rx, tx, m) = (job_rx.clone(), done_tx.clone(), meters.clone());
                std::thread::Builder::new()
                    .name(format!("shoebox-worker-{i}"))
                    .spawn(move || work(rx, tx, m))
                    .expect("spawn a worker thread")
            })
            .collect();
        Pipeline {
            store,
            emit,
            dests: HashMap::new(),
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
            rereads: HashMap::new(),
            in_flight: HashMap::new(),
            parked: HashMap::new(),
            lost: Vec::new(),
            taken: HashMap::new(),
            jobs: Some(job_tx),
            done_rx,
            handles,
        }
    }

    /// Which watches and destinations the pipeline serves. Files of a
    /// watch or destination not listed stay queued.
    pub fn configure(
        &mut self,
        watches: impl IntoIterator<Item = WatchRow>,
        dests: HashMap<i64, Arc<dyn Destination>>,
    ) {
        self.watches = watches.into_iter().map(|w| (w.id, w)).collect();
        self.dests = dests;
        self.taken.clear();
        self.meters.down.lock().expect("lock").clear();
        self.rescan_queue();
    }

    /// Destinations dropped since the last call because they became
    /// unusable (down, refusing, full); their files stay queued.
    pub fn take_lost_destinations(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.lost)
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
    }

    /// While paused, nothing new is started and what was waiting is let
    /// go (it stays queued); work in flight finishes.
    pub fn set_paused(&mut self, paused: bool) {
        if paused == self.paused {
            return;
        }
        self.paused = paused;
        if paused {
            for id in self.window.drain(..) {
                self.slots.remove(&id);
            }
            self.window_files.clear();
            self.again.clear();
            self.settling.clear();
            self.waiting_since.clear();
            self.parked.clear();
        } else {
            self.rescan_queue();
        }
    }

    /// Aborts reads in progress; their files go back to the queue.
    pub fn cancel(&self) {
        self.meters.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.meters.cancel.load(Ordering::Relaxed)
    }

    /// Lets reads run again after [`Self::cancel`].
    pub fn uncancel(&self) {
        self.meters.cancel.store(false, Ordering::Relaxed);
    }

    pub fn settling_count(&self) -> usize {
        self.settling.len()
    }

    /// The channel on which workers report; feed what arrives to [`Self::handle`].
    pub fn done_channel(&self) -> Receiver<Done> {
        self.done_rx.clone()
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
        loop {
            if self.paused {
                return Ok(());
            }
            self.wake_settled()?;
            self.refill()?;
            if self.decide_ready()? > 0 {
                // Decisions that needed no worker (linked, unchanged) freed
                // room in the window: read on, or nothing would wake us.
                continue;
            }
            let quiet =
                self.window.is_empty() && self.in_flight.is_empty() && self.again.is_empty();
            if !(quiet && self.exhausted && !self.parked.is_empty()) {
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

    /// Records what a worker reported.
    pub fn handle(&mut self, done: Done) -> Result<()> {
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

    /// Moves files whose settle time has come back to the front.
    fn wake_settled(&mut self) -> Result<()> {
        let now = now_ms();
        let due: Vec<i64> = self
            .settling
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut files: Vec<QueuedFile> = due
            .iter()
            .filter_map(|id| self.settling.remove(id))
            .map(|(_, f)| f)
            .collect();
        // Queue order, so names are given out in the same order every time.
        files.sort_by(|a, b| {
            (a.watch_id, &a.dir_rel, &a.name).cmp(&(b.watch_id, &b.dir_rel, &b.name))
        });
        self.again.extend(files);
        Ok(())
    }

    /// True when the pipeline already holds this file (so a fresh read of
    /// the queue does not take it twice).
    fn is_held(&self, file_id: i64) -> bool {
        self.window_files.contains(&file_id)
            || self.settling.contains_key(&file_id)
            || self.in_flight.contains_key(&(file_id as u64))
            || self.parked.values().flatten().any(|s| s.file.id == file_id)
    }

    /// Applies the settle gate to a file about to be taken: `Some` when it
    /// may be read now.
    fn settled(&mut self, mut file: QueuedFile, path: &Path) -> Result<Option<QueuedFile>> {
        if self.settle.window_ms <= 0 {
            return Ok(Some(file));
        }
        let now = now_ms();
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                let fp = Fingerprint::of(&meta);
                if fp != file.fp {
                    self.store.file_requeue(file.id, &fp)?;
                    file.fp = fp;
                    file.fp_since_ms = now;
                    file.hash = None;
                }
            }
            Err(_) => {
                // Gone since it was queued: the watch's delete policy applies.
                self.store.set_gone(file.id, true)?;
                return Ok(None);
            }
        }
        let since = self.waiting_since.get(&file.id).copied();
        match self
            .settle
            .verdict(now, file.fp_since_ms, file.fp.mtime_ns / 1_000_000, since)
        {
            Verdict::Ready => {
                self.waiting_since.remove(&file.id);
                Ok(Some(file))
            }
            Verdict::WaitUntil(t) => {
                self.waiting_since.entry(file.id).or_insert(now);
                self.settling.insert(file.id, (t, file));
                Ok(None)
            }
        }
    }

    /// Hands `job` to the workers and remembers what it is for.
    fn start(&mut self, job: Job, flight: InFlight) {
        let token = flight.slot.file.id as u64;
        self.send(job);
        self.in_flight.insert(token, flight);
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // Workers only stop when the channel closes, so this cannot fail.
            let _ = tx.send(job);
        }
    }

    /// Reads more of the queue while the window has room.
    fn refill(&mut self) -> Result<()> {
        let cap = self.workers * WINDOW_PER_WORKER;
        while self.window.len() < cap {
            let file = match self.again.pop_front() {
                Some(f) => f,
                None if self.exhausted => return Ok(()),
                None => {
                    let batch =
                        self.store
                            .next_queued(&self.cursor, self.retry_failed_before, cap)?;
                    match batch.last() {
                        Some(last) => {
                            self.cursor = (last.watch_id, last.dir_rel.clone(), last.name.clone())
                        }
                        None => {
                            self.exhausted = true;
                            return Ok(());
                        }
                    }
                    self.again.extend(batch);
                    continue;
                }
            };
            if self.is_held(file.id) {
                continue;
            }
            let Some(watch) = self.watches.get(&file.watch_id) else {
                continue;
            };
            if !self.dests.contains_key(&watch.dest_id) {
                continue; // destination unavailable: the file stays queued
            }
            let path = rel_path(&watch.root, &file.dir_rel).join(bytes_to_os(&file.name));
            let (dest_id, album) = (watch.dest_id, album_for(watch, &file.dir_rel));
            let Some(file) = self.settled(file, &path)? else {
                continue;
            };
            let slot = Slot {
                path,
                dest_id,
                album,
                base: sanitize_file_name(&bytes_to_os(&file.name)),
                hashed: file.hash.map(Ok),
                file,
            };
            let id = self.next_slot;
            self.next_slot += 1;
            if slot.hashed.is_none() {
                self.send(Job::Hash {
                    slot: id,
                    path: slot.path.clone(),
                    fp: slot.file.fp,
                });
            }
            self.window_files.insert(slot.file.id);
            self.slots.insert(id, slot);
            self.window.push_back(id);
        }
        Ok(())
    }

    /// Decides the files at the front of the window whose hash is known;
    /// returns how many.
    fn decide_ready(&mut self) -> Result<usize> {
        let mut decided = 0;
        while let Some(&id) = self.window.front() {
            if self.slots.get(&id).is_none_or(|s| s.hashed.is_none()) {
                return Ok(decided);
            }
            decided += 1;
            self.window.pop_front();
            let mut slot = self.slots.remove(&id).expect("slot in window");
            self.window_files.remove(&slot.file.id);
            match slot.hashed.take().expect("checked above") {
                Ok(hash) => {
                    slot.file.hash = Some(hash);
                    self.plan(slot, true)?;
                }
                Err(e) => self.read_failed(slot, e)?,
            }
        }
        Ok(decided)
    }

    fn read_failed(&mut self, slot: Slot, err: FileError) -> Result<()> {
        match err {
            // Gone since the scan: the watch's delete policy applies to it.
            FileError::Vanished => self.store.set_gone(slot.file.id, true),
            FileError::Changed => {
                let n = self.rereads.entry(slot.file.id).or_insert(0);
                *n += 1;
                let Ok(meta) = fs::symlink_metadata(&slot.path) else {
                    return Ok(());
                };
                let fp = Fingerprint::of(&meta);
                if *n >= MAX_REREADS {
                    self.fail(
                        &slot,
                        "the file kept changing while it was read; it will be tried again later",
                    )?;
                    return Ok(());
                }
                self.store.file_requeue(slot.file.id, &fp)?;
                let mut file = slot.file;
                file.fp = fp;
                file.hash = None;
                self.again.push_back(file);
                Ok(())
            }
            FileError::Dest(d) if d.is_destination_wide() => {
                self.destination_down(slot.dest_id, &d)
            }
            // Shutting down or pausing: the file simply stays queued.
            FileError::Cancelled => Ok(()),
            other => self.fail(&slot, &other.to_string()),
        }
    }

    fn fail(&mut self, slot: &Slot, message: &str) -> Result<()> {
        // Retried after 1 min, 2, 4, … up to a day (sooner by a new sync).
        let backoff = Backoff::FILE
            .delay(slot.file.attempts.max(0) as u32)
            .as_secs() as i64;
        self.store
            .file_failed(slot.file.id, message, now_secs() + backoff.min(86_400))?;
        (self.emit)(&Event::FileFailed {
            path: slot.path.display().to_string(),
            error: message.to_string(),
            size: slot.file.fp.size,
        });
        Ok(())
    }

    fn destination_down(&mut self, dest_id: i64, err: &DestError) -> Result<()> {
        if let Some(dest) = self.dests.remove(&dest_id) {
            self.lost.push(dest_id);
            (self.emit)(&Event::DestinationUnavailable {
                dest: dest.name().to_string(),
                error: err.to_string(),
            });
            self.report.unavailable_destinations.push(err.to_string());
        }
        Ok(())
    }

    fn done(&mut self, slot: &Slot, entry: &EntryRow, outcome: Outcome, bytes: u64) {
        let note = std::str::from_utf8(&slot.file.name).is_err().then(|| {
            format!(
                "the file name is not valid UTF-8; it is stored in the album as {:?}",
                entry.name
            )
        });
        match outcome {
            Outcome::Uploaded => self.report.uploaded += 1,
            Outcome::Linked => self.report.linked += 1,
            Outcome::Moved => self.report.moved += 1,
            Outcome::Unchanged => self.report.unchanged += 1,
        }
        self.report.bytes_uploaded += bytes;
        (self.emit)(&Event::FileDone {
            path: slot.path.display().to_string(),
            album: entry.album.clone(),
            name: entry.name.clone(),
            outcome,
            bytes,
            size: slot.file.fp.size,
            note,
        });
    }

    /// Picks the first name in the slot's album that the store does not
    /// use and the destination was not found to hold: `base`, then
    /// `base (2)`, `base (3)`, … The destination itself is asked by the
    /// worker that claims the name (see [`Claim`]): a name found taken there
    /// is remembered and the file planned again. `None` when the
    /// destination says every name is taken (it is then marked down).
    fn free_name(&mut self, slot: &Slot) -> Result<Option<String>> {
        let taken = self.taken.get(&slot.dest_id);
        let mut found_on_dest = 0;
        for n in 1u32.. {
            let name = if n == 1 {
                slot.base.clone()
            } else {
                numbered(&slot.base, n)
            };
            if taken.is_some_and(|t| t.contains(&name_key(&slot.album, &name))) {
                found_on_dest += 1;
                if found_on_dest > MAX_SUFFIX {
                    break;
                }
                continue;
            }
            if !self
                .store
                .entry_name_taken(slot.dest_id, &slot.album, &name)?
            {
                return Ok(Some(name));
            }
        }
        // No real album holds this many unknown files of one name: a
        // server that says every name exists is not storing files.
        let dest = self.dests[&slot.dest_id].name().to_string();
        let e = crate::dest::http::not_behaving(
            &dest,
            "storage",
            format!(
                "it says {} and {MAX_SUFFIX} numbered variants of it all exist in {}",
                slot.base, slot.album
            ),
        );
        self.destination_down(slot.dest_id, &e)?;
        Ok(None)
    }

    /// Decides what to do with a file whose content hash is known.
    fn plan(&mut self, slot: Slot, may_park: bool) -> Result<()> {
        if !self.dests.contains_key(&slot.dest_id) {
            return Ok(()); // destination went down: stays queued
        }
        let hash = slot.file.hash.expect("planned files are hashed");
        let store = self.store;
        let current = match slot.file.entry_id {
            Some(id) => store
                .entry(id)?
                .filter(|e| e.dest_id == slot.dest_id && e.state != EntryState::Deleting),
            None => None,
        };
        let in_place = |e: &EntryRow| e.album == slot.album && e.base_name == slot.base;

        // 1. Already stored as it is.
        if let Some(e) = &current
            && in_place(e)
            && e.hash == Some(hash)
            && e.state == EntryState::Present
        {
            store.file_done(slot.file.id, e.id, &hash)?;
            self.done(&slot, e, Outcome::Unchanged, 0);
            return Ok(());
        }
        let except = current.as_ref().map_or(-1, |e| e.id);
        // A name this file reserved for this content and never confirmed (a
        // crash or a lost answer came between): taken up again below (5),
        // and adopted there if the destination holds the content already.
        let resumed = store
            .reservation_for(slot.file.id, slot.dest_id)?
            .filter(|r| {
                r.id != except
                    && r.album == slot.album
                    && r.base_name == slot.base
                    && r.hash == Some(hash)
            });
        // 2. The same content is already in the album: link, send nothing.
        if resumed.is_none()
            && let Some(x) = store.entry_with_hash(slot.dest_id, &slot.album, &hash, except)?
        {
            // Content on its way there: wait for it. (A reservation left
            // by a failed upload is not on its way; its own file resumes it.)
            if x.state == EntryState::Reserved
                && may_park
                && self.in_flight.values().any(|f| f.entry.id == x.id)
            {
                self.parked.entry(x.id).or_default().push(slot);
                return Ok(());
            }
            if x.state == EntryState::Present {
                store.transaction(|s| {
                    s.file_done(slot.file.id, x.id, &hash)?;
                    release(s, current.as_ref())
                })?;
                let outcome = if current.as_ref().is_some_and(|c| c.hash == Some(hash)) {
                    Outcome::Moved
                } else {
                    Outcome::Linked
                };
                self.done(&slot, &x, outcome, 0);
                return Ok(());
            }
        }
        let dest = self.dests[&slot.dest_id].clone();
        let token = slot.file.id as u64;
        if let Some(e) = current.clone()
            && resumed.is_none()
            && store.entry_refs(e.id)? == 1
        {
            if let Some(from) = e.moving_from.clone() {
                // 3a. A move that a crash interrupted: finish it.
                store.set_file_state(slot.file.id, FileState::Uploading)?;
                self.start(
                    Job::Rename {
                        token,
                        dest,
                        from,
                        to: (e.album.clone(), e.name.clone()),
                        claim: None,
                    },
                    InFlight {
                        slot,
                        hash,
                        entry: e,
                        kind: OpKind::Move,
                        progress: Arc::default(),
                    },
                );
                return Ok(());
            }
            if in_place(&e) {
                // 4. New content for the file's own entry: replace it.
                let old_hash = if e.state == EntryState::Present {
                    e.hash
                } else {
                    None
                };
                store.transaction(|s| {
                    s.update_entry(e.id, Some(&hash), slot.file.fp.size, EntryState::Reserved)?;
                    s.set_file_state(slot.file.id, FileState::Uploading)
                })?;
                let entry = store.entry(e.id)?.expect("just updated");
                // Only a version this engine confirmed may be overwritten;
                // a reservation never confirmed may have lost its name.
                let overwrite = old_hash.is_some();
                let (job, progress) = upload_job(
                    token,
                    dest,
                    &slot,
                    hash,
                    (&e.album, &e.name),
                    overwrite,
                    None,
                );
                let kind = OpKind::Replace {
                    old_hash,
                    old_size: e.size,
                };
                self.start(
                    job,
                    InFlight {
                        slot,
                        hash,
                        entry,
                        kind,
                        progress,
                    },
                );
                return Ok(());
            }
            if e.hash == Some(hash) && e.state == EntryState::Present {
                // 3. Same content, new place: move the entry, send nothing.
                let Some(name) = self.free_name(&slot)? else {
                    return Ok(());
                };
                store.transaction(|s| {
                    s.start_entry_move(e.id, &slot.album, &name, &slot.base)?;
                    s.set_file_state(slot.file.id, FileState::Uploading)
                })?;
                let entry = store.entry(e.id)?.expect("just updated");
                self.start(
                    Job::Rename {
                        token,
                        dest,
                        from: (e.album.clone(), e.name.clone()),
                        to: (slot.album.clone(), name),
                        claim: Some(Claim { adopt: None }),
                    },
                    InFlight {
                        slot,
                        hash,
                        entry,
                        kind: OpKind::Move,
                        progress: Arc::default(),
                    },
                );
                return Ok(());
            }
        }
        // 5. A new entry: copy inside the destination if the content is
        //    already there under the file's old entry, else upload.
        //    The worker claims the name: if the album already holds this
        //    content under it (the store was rebuilt), it is adopted (6).
        let copy_from = current
            .as_ref()
            .filter(|e| e.hash == Some(hash) && e.state == EntryState::Present)
            .cloned();
        let (entry, claim) = match resumed {
            Some(r) => {
                store.set_file_state(slot.file.id, FileState::Uploading)?;
                let adopt = Some((slot.file.fp.size, hash));
                (r, Claim { adopt })
            }
            None => {
                let Some(name) = self.free_name(&slot)? else {
                    return Ok(());
                };
                let entry_id = store.transaction(|s| {
                    s.release_reservations(slot.file.id, slot.dest_id)?;
                    let id = reserve_entry(s, &slot, &name, &hash)?;
                    s.set_file_state(slot.file.id, FileState::Uploading)?;
                    Ok(id)
                })?;
                let adopt = current.is_none().then_some((slot.file.fp.size, hash));
                (
                    store.entry(entry_id)?.expect("just inserted"),
                    Claim { adopt },
                )
            }
        };
        let name = entry.name.clone();
        let (job, progress) = match &copy_from {
            Some(src) => (
                Job::Copy {
                    token,
                    dest,
                    from: (src.album.clone(), src.name.clone()),
                    to: (slot.album.clone(), name),
                    claim: Some(claim),
                },
                Arc::default(),
            ),
            None => upload_job(
                token,
                dest,
                &slot,
                hash,
                (&slot.album, &name),
                false,
                Some(claim),
            ),
        };
        let kind = OpKind::New {
            copy: copy_from.is_some(),
        };
        self.start(
            job,
            InFlight {
                slot,
                hash,
                entry,
                kind,
                progress,
            },
        );
        Ok(())
    }

    /// Records the end of an upload, copy or move.
    fn finished(&mut self, token: u64, result: Result<Transfer, FileError>) -> Result<()> {
        let Some(op) = self.in_flight.remove(&token) else {
            return Ok(());
        };
        let InFlight {
            slot,
            hash,
            entry,
            kind,
            ..
        } = op;
        let store = self.store;
        match result {
            Ok(transfer) => {
                // The file's earlier entry, which it leaves now. When that
                // held other content (a file moved and edited, or a new
                // file that took a freed inode), the earlier content left
                // the folder like a deleted file: the watch's policy keeps
                // it or removes it.
                let keep = self
                    .watches
                    .get(&slot.file.watch_id)
                    .is_none_or(|w| w.on_delete == crate::store::OnDelete::Keep);
                let previous = match slot.file.entry_id {
                    Some(id) if id != entry.id => {
                        store.entry(id)?.filter(|p| !(keep && p.hash != Some(hash)))
                    }
                    _ => None,
                };
                store.transaction(|s| {
                    s.update_entry(
                        entry.id,
                        Some(&hash),
                        slot.file.fp.size,
                        EntryState::Present,
                    )?;
                    s.file_done(slot.file.id, entry.id, &hash)?;
                    release(s, previous.as_ref())
                })?;
                let (outcome, bytes) = match (transfer, kind) {
                    // The album already held this content under this name
                    // (the store was rebuilt): recorded, nothing sent.
                    (Transfer::Adopted, _) => (Outcome::Linked, 0),
                    (Transfer::Sent(n), OpKind::Move | OpKind::New { copy: true }) => {
                        (Outcome::Moved, n)
                    }
                    (Transfer::Sent(n), _) => (Outcome::Uploaded, n),
                };
                self.done(&slot, &entry, outcome, bytes);
                // Files waiting for this content can now link to it.
                for waiting in self.parked.remove(&entry.id).unwrap_or_default() {
                    self.plan(waiting, true)?;
                }
            }
            Err(FileError::Dest(DestError::NameTaken { .. })) => {
                self.name_taken(slot, &entry, &kind)?;
            }
            Err(err) => {
                store.transaction(|s| {
                    match &kind {
                        // The upload may have completed with its answer lost
                        // (a reset, a timeout): a new file keeps the name
                        // reserved, and its retry takes it up again (and
                        // adopts what is there if it is this content) rather
                        // than taking a second name beside a complete copy.
                        OpKind::New { .. } if slot.file.entry_id.is_none() => {}
                        // A file with an earlier entry goes back to it; what
                        // may have reached the reserved name is deleted at
                        // the end of the pass.
                        OpKind::New { .. } => {
                            let old = slot.file.entry_id.expect("checked above");
                            s.set_file_entry(slot.file.id, old)?;
                            s.update_entry(entry.id, None, entry.size, EntryState::Deleting)?;
                        }
                        OpKind::Replace { old_hash, old_size } => s.update_entry(
                            entry.id,
                            old_hash.as_ref(),
                            *old_size,
                            if old_hash.is_some() {
                                EntryState::Present
                            } else {
                                EntryState::Reserved
                            },
                        )?,
                        // The object may be at either place; the file stays
                        // queued and the move is retried (it is idempotent).
                        OpKind::Move => {}
                    }
                    s.set_file_state(slot.file.id, FileState::Pending)
                })?;
                let waiting = self.parked.remove(&entry.id).unwrap_or_default();
                let dest_id = slot.dest_id;
                self.read_failed(slot, err)?;
                for w in waiting {
                    if self.dests.contains_key(&dest_id) {
                        self.plan(w, true)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Pipeline<'_> {
    /// The destination holds something else under the name this file was
    /// to take (put there by hand, by a second computer backing up into
    /// the same destination, or by a store that was lost): nothing was
    /// overwritten. The name is remembered as taken and the file planned
    /// again, which picks the next free name.
    fn name_taken(&mut self, mut slot: Slot, entry: &EntryRow, kind: &OpKind) -> Result<()> {
        let store = self.store;
        self.taken
            .entry(slot.dest_id)
            .or_default()
            .insert(name_key(&entry.album, &entry.name));
        store.transaction(|s| {
            match kind {
                OpKind::Move => s.cancel_entry_move(entry.id)?,
                OpKind::New { .. } | OpKind::Replace { .. } => {
                    if slot.file.entry_id == Some(entry.id) {
                        s.set_file_entry_none(slot.file.id)?;
                    }
                    s.delete_entry(entry.id)?;
                }
            }
            s.set_file_state(slot.file.id, FileState::Pending)
        })?;
        if slot.file.entry_id == Some(entry.id) && !matches!(kind, OpKind::Move) {
            slot.file.entry_id = None;
        }
        tracing::info!(
            "{}/{} was taken by another writer meanwhile; {} takes another name",
            entry.album,
            entry.name,
            slot.path.display()
        );
        let waiting = self.parked.remove(&entry.id).unwrap_or_default();
        self.again.push_back(slot.file);
        for w in waiting {
            self.again.push_back(w.file);
        }
        Ok(())
    }
}

/// How many names (`base`, `base (2)` … ) the destination may be found to
/// hold, beyond those this engine put there, before it is taken for one
/// that does not behave.
const MAX_SUFFIX: u32 = 1000;

/// After a file stopped using `entry`, an entry nobody uses any more was an
/// old version: it is deleted from the destination at the end of the pass.
fn release(store: &Store, entry: Option<&EntryRow>) -> Result<()> {
    if let Some(e) = entry
        && store.entry_refs(e.id)? == 0
    {
        store.update_entry(e.id, e.hash.as_ref(), e.size, EntryState::Deleting)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::album::AlbumMode;
    use crate::store::OnDelete;

    /// An engine in `dir/home` watching `photos` (one album, the library),
    /// with the folder scanned and its files queued.
    fn scanned(dir: &Path, photos: PathBuf, album: Option<&str>) -> (crate::Home, crate::Engine) {
        let home = crate::Home::open(Some(dir.join("home"))).unwrap();
        let engine = crate::Engine::open(home.clone()).unwrap();
        let spec = crate::WatchSpec {
            folder: photos,
            mode: AlbumMode::Single,
            album: album.map(str::to_string),
            dest: "library".into(),
            on_delete: OnDelete::Keep,
            all_files: false,
        };
        engine.add_watch(&spec).unwrap();
        let store = engine.store();
        let watch = store.watches().unwrap().remove(0);
        crate::scan::scan_watch(store, &watch, &|_| {}).unwrap();
        (home, engine)
    }

    /// After `pump()`, the pipeline is either done or waits for something
    /// that will come (a worker's report or a settle deadline); otherwise its
    /// driver would wait forever. Files that need no upload (identical
    /// content, linked) are decided without any worker: a whole window of
    /// them must not leave the pipeline waiting for nothing.
    #[test]
    fn a_window_of_files_needing_no_upload_does_not_stall_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("Photos");
        fs::create_dir(&photos).unwrap();
        for i in 0..100 {
            fs::write(photos.join(format!("IMG_{i:03}.jpg")), b"same content").unwrap();
        }
        let (home, engine) = scanned(dir.path(), photos, None);
        let store = engine.store();
        let watch = store.watches().unwrap().remove(0);
        let row = store.destination(watch.dest_id).unwrap();
        let dest = crate::dest::open(&home, &row).unwrap();
        dest.prepare().unwrap();
        let emit = |_: &Event| {};
        let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
        p.configure([watch], HashMap::from([(row.id, dest)]));
        let done = p.done_channel();
        for _ in 0..10_000 {
            p.pump().unwrap();
            if p.is_drained() {
                break;
            }
            let outstanding =
                p.slots.values().filter(|s| s.hashed.is_none()).count() + p.in_flight.len();
            assert!(
                outstanding > 0 || p.next_deadline_ms().is_some(),
                "the pipeline is not done but waits for nothing: its driver would wait forever"
            );
            // Let every outstanding job report before deciding anything, so
            // a whole window becomes ready at once.
            for _ in 0..outstanding {
                p.handle(done.recv().unwrap()).unwrap();
            }
        }
        assert!(p.is_drained());
        assert_eq!(p.report.uploaded, 1, "one copy of the content");
        assert_eq!(p.report.linked, 99, "the rest are linked to it");
    }

    /// A destination whose first commit succeeds but reports a failure, as
    /// when the server's answer is lost.
    struct LostAnswer {
        inner: Arc<dyn Destination>,
        lose: AtomicBool,
    }

    struct LostAnswerStaged(Box<dyn crate::dest::Staged>, bool);

    impl crate::dest::Staged for LostAnswerStaged {
        fn commit(self: Box<Self>) -> Result<(), DestError> {
            self.0.commit()?;
            if self.1 {
                return Err(DestError::Http {
                    name: "lossy".into(),
                    what: "finish the upload".into(),
                    status: 400,
                    transient: false,
                    retry_after: None,
                });
            }
            Ok(())
        }
    }

    impl Destination for LostAnswer {
        fn name(&self) -> &str {
            "lossy"
        }
        fn reach(&self) -> Result<(), DestError> {
            self.inner.reach()
        }
        fn prepare(&self) -> Result<(), DestError> {
            self.inner.prepare()
        }
        fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
            self.inner.exists(album, name)
        }
        fn holds(
            &self,
            album: &str,
            name: &str,
            len: u64,
            hash: &crate::store::Hash,
        ) -> Result<bool, DestError> {
            self.inner.holds(album, name, len, hash)
        }
        fn stage(
            &self,
            upload: &Upload<'_>,
            source: &mut (dyn Read + Send),
        ) -> Result<(Box<dyn crate::dest::Staged>, u64), DestError> {
            let (staged, n) = self.inner.stage(upload, source)?;
            let lose = self.lose.swap(false, Ordering::Relaxed);
            Ok((Box::new(LostAnswerStaged(staged, lose)), n))
        }
        fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
            self.inner.rename(from, to)
        }
        fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
            self.inner.copy(from, to)
        }
        fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
            self.inner.delete(album, name)
        }
    }

    fn drain(p: &mut Pipeline<'_>) {
        let done = p.done_channel();
        while !p.is_drained() {
            p.pump().unwrap();
            if p.in_flight() > 0 {
                p.handle(done.recv().unwrap()).unwrap();
            }
        }
    }

    /// An upload that completed but was reported failed must not leave a
    /// complete copy under one name and the retry under a second one.
    #[test]
    fn a_lost_commit_answer_is_retried_under_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("Photos");
        fs::create_dir(&photos).unwrap();
        fs::write(photos.join("IMG.jpg"), b"the photo").unwrap();
        let (home, engine) = scanned(dir.path(), photos, Some("Album"));
        let store = engine.store();
        let watch = store.watches().unwrap().remove(0);
        let row = store.destination(watch.dest_id).unwrap();
        let library = crate::dest::open(&home, &row).unwrap();
        library.prepare().unwrap();
        let lossy: Arc<dyn Destination> = Arc::new(LostAnswer {
            inner: library.clone(),
            lose: AtomicBool::new(true),
        });
        let emit = |_: &Event| {};
        // First pass: the upload lands, but its answer is lost.
        let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
        p.configure([watch.clone()], HashMap::from([(row.id, lossy)]));
        drain(&mut p);
        assert_eq!(p.report.uploaded, 0, "the pass saw the upload fail");
        drop(p);
        // Next pass: the retry goes to the very same name.
        crate::deletion::forget_unconfirmed(store, library.as_ref(), row.id, &Default::default())
            .unwrap();
        let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
        p.configure([watch], HashMap::from([(row.id, library)]));
        drain(&mut p);
        // The complete copy is adopted (it holds exactly this content), or
        // uploaded again over itself: either way one file, sent at most once more.
        assert_eq!(p.report.uploaded + p.report.linked, 1, "{:?}", p.report);
        let album: Vec<String> = fs::read_dir(home.library_dir().join("Album"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            album,
            vec!["IMG.jpg".to_string()],
            "one copy, under its own name"
        );
    }
}
