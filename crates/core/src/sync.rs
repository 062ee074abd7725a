//! One sync pass: scan every watch, then work through the upload queue with
//! a bounded pool of workers, then apply each watch's delete policy.
//!
//! Workers do the slow parts (hashing, uploading, server-side moves); this
//! thread owns the store and makes every decision, in queue order, so that
//! names and duplicates come out the same however the workers race. Every
//! state change is committed before it is acted on (DESIGN.md invariant 4).

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;

use crate::album::{AlbumMode, numbered, sanitize_album, sanitize_file_name};
use crate::dest::{Destination, LocalFolder};
use crate::error::{DestError, Error, FileError, Result};
use crate::events::{Event, Outcome};
use crate::hash::{HashingReader, check_unchanged, hash_file, open_version};
use crate::home::Home;
use crate::platform::{Fingerprint, bytes_to_os};
use crate::scan::{RootCheck, check_root, mark_missing, rel_path, scan_watch};
use crate::store::{
    EntryRow, EntryState, FileState, Hash, OnDelete, QueuedFile, Store, WatchRow, now_secs,
};

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Parallel uploads.
    pub workers: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { workers: 4 }
    }
}

/// A file that could not be backed up, or was skipped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// What a sync pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub uploaded: u64,
    pub linked: u64,
    pub moved: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub ignored: u64,
    /// Files still waiting (their destination was unavailable).
    pub waiting: u64,
    pub missing_watches: Vec<String>,
    pub unavailable_destinations: Vec<String>,
    pub bytes_uploaded: u64,
    /// Bytes read from the watched folders (hashing and uploading).
    pub bytes_read: u64,
    pub failures: Vec<Problem>,
    pub skips: Vec<Problem>,
}

impl SyncReport {
    /// True when every eligible file is in its album.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
            && self.waiting == 0
            && self.missing_watches.is_empty()
            && self.unavailable_destinations.is_empty()
    }
}

/// Builds the destination object for a destination row.
pub fn open_destination(home: &Home, row: &crate::store::DestRow) -> Result<Arc<dyn Destination>> {
    match row.kind.as_str() {
        "local" => Ok(Arc::new(match &row.path {
            Some(p) => LocalFolder::new(&row.name, p.clone(), false),
            None => LocalFolder::new(&row.name, home.library_dir(), true),
        })),
        other => Err(Error::Invalid(format!(
            "destination {} has kind {other:?}, which this version of Shoebox does not know; update Shoebox",
            row.name
        ))),
    }
}

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
    },
    Rename {
        token: u64,
        dest: Arc<dyn Destination>,
        from: (String, String),
        to: (String, String),
    },
    Copy {
        token: u64,
        dest: Arc<dyn Destination>,
        from: (String, String),
        to: (String, String),
    },
}

enum Done {
    Hashed {
        slot: u64,
        result: Result<Hash, FileError>,
    },
    Finished {
        token: u64,
        result: Result<u64, FileError>,
    },
}

/// Counters shared with the workers.
#[derive(Default)]
struct Meters {
    read: AtomicU64,
}

const RETRIES: usize = 3;

fn with_retries<T>(mut op: impl FnMut() -> Result<T, FileError>) -> Result<T, FileError> {
    use backon::{BlockingRetryable, ExponentialBuilder};
    (|| op())
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(RETRIES)
                .with_jitter(),
        )
        .sleep(std::thread::sleep)
        .when(|e: &FileError| e.is_transient() && !matches!(e, FileError::Changed))
        .notify(|e, after| tracing::info!("retrying in {after:?} after: {e}"))
        .call()
}

fn upload(
    meters: &Meters,
    dest: &dyn Destination,
    path: &std::path::Path,
    fp: &Fingerprint,
    hash: &Hash,
    album: &str,
    name: &str,
) -> Result<u64, FileError> {
    let file = open_version(path, fp)?;
    let mut reader = HashingReader::new(
        std::io::BufReader::with_capacity(256 * 1024, &file),
        &meters.read,
    );
    let (staged, written) = dest.stage(album, name, &mut reader)?;
    // Only the exact version that was hashed may be committed.
    if reader.finish() != *hash || written != fp.size {
        return Err(FileError::Changed);
    }
    check_unchanged(&file, path, fp)?;
    staged.commit()?;
    Ok(written)
}

fn work(jobs: Receiver<Job>, done: Sender<Done>, meters: Arc<Meters>) {
    for job in jobs {
        let msg = match job {
            Job::Hash { slot, path, fp } => Done::Hashed {
                slot,
                result: with_retries(|| hash_file(&path, &fp, &meters.read)),
            },
            Job::Upload {
                token,
                dest,
                path,
                fp,
                hash,
                album,
                name,
            } => Done::Finished {
                token,
                result: with_retries(|| {
                    upload(&meters, dest.as_ref(), &path, &fp, &hash, &album, &name)
                }),
            },
            Job::Rename {
                token,
                dest,
                from,
                to,
            } => Done::Finished {
                token,
                result: with_retries(|| {
                    Ok(dest
                        .rename((&from.0, &from.1), (&to.0, &to.1))
                        .map(|()| 0)?)
                }),
            },
            Job::Copy {
                token,
                dest,
                from,
                to,
            } => Done::Finished {
                token,
                result: with_retries(|| {
                    Ok(dest.copy((&from.0, &from.1), (&to.0, &to.1)).map(|()| 0)?)
                }),
            },
        };
        if done.send(msg).is_err() {
            return;
        }
    }
}

/// A queued file with what the pass knows about it.
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
struct InFlight {
    slot: Slot,
    hash: Hash,
    entry: EntryRow,
    kind: OpKind,
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

struct Watched {
    row: WatchRow,
    available: bool,
}

/// Runs one full sync pass. The caller holds the [`crate::EngineLock`].
pub fn sync(
    store: &Store,
    home: &Home,
    opts: &SyncOptions,
    emit: &mut dyn FnMut(&Event),
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    store.requeue_interrupted()?;

    let all_watches = store.watches()?;
    let mut dests: HashMap<i64, Arc<dyn Destination>> = HashMap::new();
    let mut dest_ids: Vec<i64> = all_watches.iter().map(|w| w.dest_id).collect();
    dest_ids.sort_unstable();
    dest_ids.dedup();
    for dest_id in dest_ids {
        let row = store.destination(dest_id)?;
        let dest = open_destination(home, &row)?;
        match dest
            .prepare()
            .and_then(|()| forget_unconfirmed(store, dest.as_ref(), dest_id))
        {
            Ok(()) => {
                dests.insert(dest_id, dest);
            }
            Err(e) => {
                emit(&Event::DestinationUnavailable {
                    dest: row.name.clone(),
                    error: e.to_string(),
                });
                report.unavailable_destinations.push(e.to_string());
            }
        }
    }
    let mut watches: HashMap<i64, Watched> = HashMap::new();
    for w in all_watches {
        let available = match check_root(&w) {
            RootCheck::Present => {
                let stats = scan_watch(store, &w, emit)?;
                report.ignored += stats.ignored;
                true
            }
            RootCheck::Missing(reason) => {
                mark_missing(store, &w, &reason, emit)?;
                report.missing_watches.push(reason);
                false
            }
        };
        watches.insert(w.id, Watched { row: w, available });
    }

    let mut pass = Pass::new(
        store,
        dests.clone(),
        &watches,
        opts.workers.max(1),
        &mut report,
        emit,
    );
    pass.run()?;
    let meters = pass.meters.clone();

    for w in watches.values().filter(|w| w.available) {
        apply_deletions(store, &w.row, dests.contains_key(&w.row.dest_id))?;
    }
    for (dest_id, dest) in &dests {
        delete_entries(store, dest.as_ref(), *dest_id, &mut report, emit)?;
    }
    report.bytes_read = meters.read.load(Ordering::Relaxed);
    collect_problems(store, &watches, &mut report)?;
    Ok(report)
}

/// Reservations that no file refers to are what a crash left between
/// "name reserved" and "upload recorded": drop them (and whatever object
/// reached the destination) so the name is free for the upload to redo.
fn forget_unconfirmed(
    store: &Store,
    dest: &dyn Destination,
    dest_id: i64,
) -> Result<(), DestError> {
    let orphans = store
        .entries_to_delete(dest_id, true)
        .map_err(|e| DestError::Unavailable {
            name: dest.name().to_string(),
            why: e.to_string(),
        })?;
    for e in orphans {
        dest.delete(&e.album, &e.name)?;
        store
            .delete_entry(e.id)
            .map_err(|err| DestError::Unavailable {
                name: dest.name().to_string(),
                why: err.to_string(),
            })?;
    }
    Ok(())
}

/// Applies a watch's delete policy to the files that vanished from it.
fn apply_deletions(store: &Store, watch: &WatchRow, dest_available: bool) -> Result<()> {
    if watch.on_delete == OnDelete::Remove && !dest_available {
        return Ok(()); // decided when the destination is back
    }
    let mut after = 0;
    loop {
        let page = store.gone_files(watch.id, after, 500)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        store.transaction(|s| {
            for g in &page {
                s.delete_file(g.id)?;
                let Some(entry) = g
                    .entry_id
                    .and_then(|id| s.entry(id).transpose())
                    .transpose()?
                else {
                    continue;
                };
                if s.entry_refs(entry.id)? > 0 {
                    continue;
                }
                match (watch.on_delete, entry.state) {
                    (OnDelete::Remove, _) => s.update_entry(
                        entry.id,
                        entry.hash.as_ref(),
                        entry.size,
                        EntryState::Deleting,
                    )?,
                    // Kept: if a replacement was interrupted, the content is
                    // one of the two versions; either way it stays.
                    (OnDelete::Keep, EntryState::Reserved) => {
                        s.update_entry(entry.id, None, entry.size, EntryState::Present)?
                    }
                    (OnDelete::Keep, _) => {}
                }
            }
            Ok(())
        })?;
    }
    store.prune_dirs(watch.id, watch.scan_gen + 1)
}

fn delete_entries(
    store: &Store,
    dest: &dyn Destination,
    dest_id: i64,
    report: &mut SyncReport,
    emit: &mut dyn FnMut(&Event),
) -> Result<()> {
    for e in store.entries_to_delete(dest_id, false)? {
        match dest.delete(&e.album, &e.name) {
            Ok(()) => {
                store.delete_entry(e.id)?;
                report.removed += 1;
                emit(&Event::FileRemoved {
                    album: e.album,
                    name: e.name,
                });
            }
            Err(err) => {
                tracing::warn!("could not delete {}/{}: {err}", e.album, e.name);
                if err.is_destination_wide() {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn collect_problems(
    store: &Store,
    watches: &HashMap<i64, Watched>,
    report: &mut SyncReport,
) -> Result<()> {
    const SHOWN: usize = 1000;
    let mut ids: Vec<_> = watches.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let root = &watches[&id].row.root;
        for row in store.problems(id, SHOWN)? {
            let path = rel_path(root, &row.dir_rel)
                .join(bytes_to_os(&row.name))
                .display()
                .to_string();
            let p = Problem {
                path,
                reason: row.reason,
            };
            match row.state {
                FileState::Failed => report.failures.push(p),
                _ => report.skips.push(p),
            }
        }
        for (state, n) in store.watch_counts(id)? {
            match state {
                FileState::Failed => report.failed += n,
                FileState::Skipped => report.skipped += n,
                FileState::Pending | FileState::Uploading => report.waiting += n,
                FileState::Uploaded => {}
            }
        }
    }
    Ok(())
}

/// The album a file of directory `rel` goes to.
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
/// A file that keeps changing while it is read is tried this often per pass.
const MAX_REREADS: u32 = 3;

struct Pass<'a> {
    store: &'a Store,
    dests: HashMap<i64, Arc<dyn Destination>>,
    watches: &'a HashMap<i64, Watched>,
    workers: usize,
    report: &'a mut SyncReport,
    emit: &'a mut dyn FnMut(&Event),
    meters: Arc<Meters>,
    cursor: (i64, Vec<u8>, Vec<u8>),
    exhausted: bool,
    /// Files read from the queue, decided strictly in this order.
    window: VecDeque<u64>,
    slots: HashMap<u64, Slot>,
    next_slot: u64,
    /// Files to try again in this pass (they changed while being read).
    again: VecDeque<QueuedFile>,
    rereads: HashMap<i64, u32>,
    in_flight: HashMap<u64, InFlight>,
    /// Files whose content is being uploaded by an earlier file: they wait
    /// for that entry, then link to it.
    parked: HashMap<i64, Vec<Slot>>,
    jobs: Option<Sender<Job>>,
}

impl<'a> Pass<'a> {
    fn new(
        store: &'a Store,
        dests: HashMap<i64, Arc<dyn Destination>>,
        watches: &'a HashMap<i64, Watched>,
        workers: usize,
        report: &'a mut SyncReport,
        emit: &'a mut dyn FnMut(&Event),
    ) -> Self {
        Pass {
            store,
            dests,
            watches,
            workers,
            report,
            emit,
            meters: Arc::new(Meters::default()),
            cursor: (0, Vec::new(), Vec::new()),
            exhausted: false,
            window: VecDeque::new(),
            slots: HashMap::new(),
            next_slot: 0,
            again: VecDeque::new(),
            rereads: HashMap::new(),
            in_flight: HashMap::new(),
            parked: HashMap::new(),
            jobs: None,
        }
    }

    fn run(&mut self) -> Result<()> {
        let (files, bytes) = self.store.queue_totals()?;
        (self.emit)(&Event::Queue { files, bytes });
        let (job_tx, job_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<Done>();
        let meters = self.meters.clone();
        std::thread::scope(|scope| {
            for _ in 0..self.workers {
                let (rx, tx, m) = (job_rx.clone(), done_tx.clone(), meters.clone());
                scope.spawn(move || work(rx, tx, m));
            }
            drop(done_tx);
            self.jobs = Some(job_tx);
            let result = self.drive(&done_rx);
            // Closing the job channel ends the workers; the scope joins them.
            self.jobs = None;
            result
        })
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // Workers only stop when the channel closes, so this cannot fail.
            let _ = tx.send(job);
        }
    }

    fn drive(&mut self, done: &Receiver<Done>) -> Result<()> {
        loop {
            self.refill()?;
            self.decide_ready()?;
            if self.window.is_empty()
                && self.in_flight.is_empty()
                && self.exhausted
                && self.again.is_empty()
            {
                if self.parked.is_empty() {
                    return Ok(());
                }
                // Whatever still waits on an entry that nobody is uploading
                // in this pass uploads for itself.
                for (_, slots) in std::mem::take(&mut self.parked) {
                    for slot in slots {
                        self.plan(slot, false)?;
                    }
                }
                continue;
            }
            match done.recv() {
                Ok(Done::Hashed { slot, result }) => {
                    if let Some(s) = self.slots.get_mut(&slot) {
                        s.hashed = Some(result);
                    }
                }
                Ok(Done::Finished { token, result }) => self.finished(token, result)?,
                Err(_) => return Ok(()),
            }
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
                    let batch = self.store.next_queued(&self.cursor, cap)?;
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
            let Some(watch) = self.watches.get(&file.watch_id).map(|w| &w.row) else {
                continue;
            };
            if !self.dests.contains_key(&watch.dest_id) {
                continue; // destination unavailable: the file stays queued
            }
            let slot = Slot {
                path: rel_path(&watch.root, &file.dir_rel).join(bytes_to_os(&file.name)),
                dest_id: watch.dest_id,
                album: album_for(watch, &file.dir_rel),
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
            self.slots.insert(id, slot);
            self.window.push_back(id);
        }
        Ok(())
    }

    fn decide_ready(&mut self) -> Result<()> {
        while let Some(&id) = self.window.front() {
            if self.slots.get(&id).is_none_or(|s| s.hashed.is_none()) {
                return Ok(());
            }
            self.window.pop_front();
            let mut slot = self.slots.remove(&id).expect("slot in window");
            match slot.hashed.take().expect("checked above") {
                Ok(hash) => {
                    slot.file.hash = Some(hash);
                    self.plan(slot, true)?;
                }
                Err(e) => self.read_failed(slot, e)?,
            }
        }
        Ok(())
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
                    self.fail(&slot, "the file kept changing while it was read; it will be tried again at the next sync")?;
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
            other => self.fail(&slot, &other.to_string()),
        }
    }

    fn fail(&mut self, slot: &Slot, message: &str) -> Result<()> {
        self.store.file_failed(slot.file.id, message, now_secs())?;
        (self.emit)(&Event::FileFailed {
            path: slot.path.display().to_string(),
            error: message.to_string(),
            size: slot.file.fp.size,
        });
        Ok(())
    }

    fn destination_down(&mut self, dest_id: i64, err: &DestError) -> Result<()> {
        if let Some(dest) = self.dests.remove(&dest_id) {
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

    /// Picks a name in the slot's album that neither the store nor the
    /// destination uses: `base`, then `base (2)`, `base (3)`, … `None` when
    /// the destination could not be asked (it is then marked down).
    fn free_name(&mut self, slot: &Slot) -> Result<Option<String>> {
        let dest = self.dests[&slot.dest_id].clone();
        for n in 1u32.. {
            let name = if n == 1 {
                slot.base.clone()
            } else {
                numbered(&slot.base, n)
            };
            if self
                .store
                .entry_name_taken(slot.dest_id, &slot.album, &name)?
            {
                continue;
            }
            match dest.exists(&slot.album, &name) {
                Ok(false) => return Ok(Some(name)),
                Ok(true) => continue,
                Err(e) => {
                    self.destination_down(slot.dest_id, &e)?;
                    return Ok(None);
                }
            }
        }
        unreachable!("u32 names run out")
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
        // 2. The same content is already in the album: link, send nothing.
        let except = current.as_ref().map_or(-1, |e| e.id);
        if let Some(x) = store.entry_with_hash(slot.dest_id, &slot.album, &hash, except)? {
            if x.state == EntryState::Reserved && may_park {
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
            && store.entry_refs(e.id)? == 1
        {
            if let Some(from) = e.moving_from.clone() {
                // 3a. A move that a crash interrupted: finish it.
                store.set_file_state(slot.file.id, FileState::Uploading)?;
                self.send(Job::Rename {
                    token,
                    dest,
                    from,
                    to: (e.album.clone(), e.name.clone()),
                });
                self.in_flight.insert(
                    token,
                    InFlight {
                        slot,
                        hash,
                        entry: e,
                        kind: OpKind::Move,
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
                self.send(Job::Upload {
                    token,
                    dest,
                    path: slot.path.clone(),
                    fp: slot.file.fp,
                    hash,
                    album: e.album.clone(),
                    name: e.name.clone(),
                });
                self.in_flight.insert(
                    token,
                    InFlight {
                        slot,
                        hash,
                        entry,
                        kind: OpKind::Replace {
                            old_hash,
                            old_size: e.size,
                        },
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
                self.send(Job::Rename {
                    token,
                    dest,
                    from: (e.album.clone(), e.name.clone()),
                    to: (slot.album.clone(), name),
                });
                self.in_flight.insert(
                    token,
                    InFlight {
                        slot,
                        hash,
                        entry,
                        kind: OpKind::Move,
                    },
                );
                return Ok(());
            }
        }
        // 5. A new entry: copy inside the destination if the content is
        //    already there under the file's old entry, else upload.
        let Some(name) = self.free_name(&slot)? else {
            return Ok(());
        };
        let copy_from = current.filter(|e| e.hash == Some(hash) && e.state == EntryState::Present);
        let entry_id = store.transaction(|s| {
            let id = s.insert_entry(
                slot.dest_id,
                &slot.album,
                &name,
                &slot.base,
                &hash,
                slot.file.fp.size,
            )?;
            s.set_file_state(slot.file.id, FileState::Uploading)?;
            Ok(id)
        })?;
        let entry = store.entry(entry_id)?.expect("just inserted");
        match &copy_from {
            Some(src) => self.send(Job::Copy {
                token,
                dest,
                from: (src.album.clone(), src.name.clone()),
                to: (slot.album.clone(), name),
            }),
            None => self.send(Job::Upload {
                token,
                dest,
                path: slot.path.clone(),
                fp: slot.file.fp,
                hash,
                album: slot.album.clone(),
                name,
            }),
        }
        self.in_flight.insert(
            token,
            InFlight {
                slot,
                hash,
                entry,
                kind: OpKind::New {
                    copy: copy_from.is_some(),
                },
            },
        );
        Ok(())
    }

    /// Records the end of an upload, copy or move.
    fn finished(&mut self, token: u64, result: Result<u64, FileError>) -> Result<()> {
        let Some(op) = self.in_flight.remove(&token) else {
            return Ok(());
        };
        let InFlight {
            slot,
            hash,
            entry,
            kind,
        } = op;
        let store = self.store;
        match result {
            Ok(bytes) => {
                let previous = match slot.file.entry_id {
                    Some(id) if id != entry.id => store.entry(id)?,
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
                let outcome = match kind {
                    OpKind::Move | OpKind::New { copy: true } => Outcome::Moved,
                    _ => Outcome::Uploaded,
                };
                self.done(&slot, &entry, outcome, bytes);
                // Files waiting for this content can now link to it.
                for waiting in self.parked.remove(&entry.id).unwrap_or_default() {
                    self.plan(waiting, true)?;
                }
            }
            Err(err) => {
                store.transaction(|s| {
                    match &kind {
                        OpKind::New { .. } => s.delete_entry(entry.id)?,
                        OpKind::Replace { old_hash, old_size } => s.update_entry(
                            entry.id,
                            old_hash.as_ref(),
                            *old_size,
                            EntryState::Present,
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
