//! The queue side of the pipeline: reading the queue in order through a
//! bounded window, the settle gate, and handing files to be hashed. See
//! docs/ARCHITECTURE.md.

use std::fs;
use std::path::Path;

use super::InFlight;
use super::naming::album_for;
use super::{Pipeline, Slot, WINDOW_PER_WORKER};
use crate::album::{AlbumMode, sanitize_file_name};
use crate::capture::Captured;
use crate::error::Result;
use crate::filter::{MediaKind, media_kind};
use crate::platform::{Fingerprint, bytes_to_os};
use crate::scan::rel_path;
use crate::settle::Verdict;
use crate::store::{QueuedFile, now_ms};
use crate::transfer::{Content, Job};

impl Pipeline<'_> {
    /// Moves files whose settle time has come back to the front.
    pub(super) fn wake_settled(&mut self) -> Result<()> {
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
    pub(super) fn is_held(&self, file_id: i64) -> bool {
        self.window_files.contains(&file_id)
            || self.settling.contains_key(&file_id)
            || self.in_flight.contains_key(&(file_id as u64))
            || self.parked.values().flatten().any(|s| s.file.id == file_id)
    }

    /// Applies the settle gate to a file about to be taken: `Some` when it
    /// may be read now.
    pub(super) fn settled(
        &mut self,
        mut file: QueuedFile,
        path: &Path,
    ) -> Result<Option<QueuedFile>> {
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
        let changed = self
            .keeps_change_times(file.fp.dev, path)
            .then_some(file.fp.ctime_ns / 1_000_000);
        match self.settle.verdict(
            now,
            file.fp_since_ms,
            changed,
            file.fp.mtime_ns / 1_000_000,
            since,
        ) {
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

    /// Whether the file system of device `dev` keeps change times the
    /// settle rule can trust (asked once per device, through `path`).
    fn keeps_change_times(&mut self, dev: u64, path: &Path) -> bool {
        *self
            .change_times
            .entry(dev)
            .or_insert_with(|| crate::platform::keeps_change_times(path))
    }

    /// Hands `job` to the workers and remembers what it is for.
    pub(super) fn start(&mut self, job: Job, flight: InFlight) {
        let token = flight.slot.file.id as u64;
        self.send(job);
        self.in_flight.insert(token, flight);
    }

    /// Reads more of the queue while the window has room.
    pub(super) fn refill(&mut self) -> Result<()> {
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
            if !self.dests.is_open(watch.dest_id) {
                continue; // destination unavailable: the file stays queued
            }
            if self.is_withheld(&file.name, watch.dest_id) {
                self.held.insert(file.id);
                continue;
            }
            let path = rel_path(&watch.root, &file.dir_rel).join(bytes_to_os(&file.name));
            let dest_id = watch.dest_id;
            let album = album_for(watch, &file.dir_rel, file.captured.as_ref());
            let Some(file) = self.settled(file, &path)? else {
                continue;
            };
            // A file hashed before capture dates were kept is read again.
            let known = match (file.hash, file.captured) {
                (Some(hash), Some(captured)) => Some(Ok(Content {
                    hash,
                    captured: Some(captured),
                    live_id: file.live_id.clone(),
                })),
                _ => None,
            };
            let slot = Slot {
                path,
                dest_id,
                album,
                base: sanitize_file_name(&bytes_to_os(&file.name)),
                hashed: known,
                file,
            };
            let id = self.next_slot;
            self.next_slot += 1;
            if slot.hashed.is_none() {
                let dating = self.dating_of(&slot.file, &slot.base, &slot.path)?;
                self.send(Job::Hash {
                    slot: id,
                    path: slot.path.clone(),
                    fp: slot.file.fp,
                    dating,
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
    pub(super) fn decide_ready(&mut self) -> Result<usize> {
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
                Ok(content) => {
                    self.read(&mut slot, &content)?;
                    slot.file.hash = Some(content.hash);
                    self.plan(slot, true)?;
                }
                Err(e) => self.read_failed(slot, e)?,
            }
        }
        Ok(decided)
    }

    /// Records what reading a file found: its Live Photo identifier, then
    /// its date ([`Self::dated`]). A motion half named unlike its still is
    /// dated by the still, once the still's date is known.
    fn read(&mut self, slot: &mut Slot, content: &Content) -> Result<()> {
        if slot.file.live_id != content.live_id {
            self.store
                .set_live_id(slot.file.id, content.live_id.as_deref())?;
            slot.file.live_id = content.live_id.clone();
        }
        let mut captured = content.captured;
        if let Some(id) = &content.live_id
            && media_kind(&slot.base) == MediaKind::Video
        {
            let stills = self.store.live_mates(slot.file.id, id)?;
            if let Some(still) = stills
                .iter()
                .find(|m| media_kind(&bytes_to_os(&m.name).to_string_lossy()) == MediaKind::Photo)
                && let Some(theirs) = self.store.captured_of(still.id)?
            {
                captured = Some(theirs);
            }
        }
        self.dated(slot, captured)
    }

    /// Records a file's capture date when it is new, and gives a `by-date`
    /// watch's file the album of that date.
    fn dated(&mut self, slot: &mut Slot, captured: Option<Captured>) -> Result<()> {
        if let Some(c) = captured
            && slot.file.captured != captured
        {
            self.store.set_captured(slot.file.id, &c)?;
        }
        slot.file.captured = captured;
        if let Some(watch) = self.watches.get(&slot.file.watch_id)
            && watch.mode == AlbumMode::ByDate
        {
            slot.album = album_for(watch, &slot.file.dir_rel, captured.as_ref());
        }
        Ok(())
    }

    /// Hands `job` to the workers, once the turn under way is committed.
    pub(super) fn send(&mut self, job: Job) {
        match &mut self.turn {
            Some(turn) => turn.jobs.push(job),
            None => self.pool.send(job),
        }
    }
}
