//! Carrying out plans and recording their end: what the planner decided
//! is recorded through the ledger and handed to the workers; what a worker
//! reports is committed or rolled back. See docs/ARCHITECTURE.md.

use std::fs;
use std::sync::Arc;

use super::ledger::Ledger;
use super::plan::{Item, Known, Plan, Target, plan};
use super::{InFlight, MAX_REREADS, OpKind, Pipeline, Slot, reservation, upload_job};
use crate::album::name_key;
use crate::error::{DestDown, DestError, FileError, Result};
use crate::events::{Event, Outcome};
use crate::platform::Fingerprint;
use crate::retry::Backoff;
use crate::store::{EntryRow, EntryState, Hash, now_secs};
use crate::transfer::{Claim, Job, Transfer};

impl Pipeline<'_> {
    pub(super) fn read_failed(&mut self, slot: Slot, err: FileError) -> Result<()> {
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

    pub(super) fn fail(&mut self, slot: &Slot, message: &str) -> Result<()> {
        // Retried after 1 min, 2, 4, … up to a day (sooner by a new sync).
        let backoff = Backoff::FILE
            .delay(slot.file.attempts.max(0) as u32)
            .as_secs() as i64;
        self.store
            .file_failed(slot.file.id, message, now_secs() + backoff.min(86_400))?;
        self.emit(Event::FileFailed {
            path: slot.path.display().to_string(),
            error: message.to_string(),
            size: slot.file.fp.size,
        });
        Ok(())
    }

    pub(super) fn destination_down(&mut self, dest_id: i64, err: &DestError) -> Result<()> {
        let Some(name) = self.dests.get(dest_id).map(|d| d.name().to_string()) else {
            return Ok(()); // dropped already
        };
        let down = DestDown::from_error(&name, err);
        self.emit(Event::DestinationUnavailable {
            dest: name,
            error: down.message.clone(),
        });
        self.report
            .unavailable_destinations
            .push(down.message.clone());
        self.dests.lose(dest_id, down);
        Ok(())
    }

    pub(super) fn done(&mut self, slot: &Slot, entry: &EntryRow, outcome: Outcome, bytes: u64) {
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
        self.emit(Event::FileDone {
            path: slot.path.display().to_string(),
            album: entry.album.clone(),
            name: entry.name.clone(),
            outcome,
            bytes,
            size: slot.file.fp.size,
            taken: slot.file.captured,
            note,
        });
    }

    /// Decides what a file whose content hash is known needs (see
    /// [`plan`]), records it and starts it.
    pub(super) fn plan(&mut self, slot: Slot, may_park: bool) -> Result<()> {
        let Some(dest) = self.dests.get(slot.dest_id).cloned() else {
            return Ok(()); // destination went down: stays queued
        };
        let hash = slot.file.hash.expect("planned files are hashed");
        let facts = self.facts(&slot, &hash)?;
        let (current, known) = (facts.current.as_ref(), facts.known(may_park));
        let item = Item {
            hash,
            album: &slot.album,
            base: &slot.base,
        };
        let ledger = Ledger(self.store);
        let token = slot.file.id as u64;
        let size = slot.file.fp.size;
        let mut caps = dest.capabilities();
        if self.no_copy.contains(&slot.file.id) {
            caps.server_side_copy = false;
            caps.rename = false;
        }
        match plan(&item, &known, caps) {
            Plan::Unchanged(e) => {
                ledger.unchanged(slot.file.id, e, &hash)?;
                self.done(&slot, e, Outcome::Unchanged, 0);
            }
            Plan::Link { to, moved } => {
                ledger.link(slot.file.id, to, &hash, current)?;
                let outcome = if moved {
                    Outcome::Moved
                } else {
                    Outcome::Linked
                };
                self.done(&slot, to, outcome, 0);
            }
            Plan::Wait(twin) => self.parked.entry(twin.id).or_default().push(slot),
            Plan::FinishMove(e) => {
                ledger.begin(slot.file.id)?;
                let job = Job::Relocate {
                    token,
                    dest,
                    from: e.moving_from.clone().expect("a move under way"),
                    to: (e.album.clone(), e.name.clone()),
                    claim: None,
                    copy: false,
                };
                self.start_on(job, slot, hash, e.clone(), OpKind::Move, Arc::default());
            }
            Plan::Replace { entry, overwrite } => {
                let old_hash = overwrite.then_some(entry.hash).flatten();
                let kind = OpKind::Replace {
                    old_hash,
                    old_size: entry.size,
                };
                let entry = ledger.begin_replace(slot.file.id, entry, &hash, size)?;
                // Only a version this engine confirmed may be overwritten; a
                // reservation never confirmed may have lost its name.
                let to = (entry.album.as_str(), entry.name.as_str());
                let (job, progress) = upload_job(token, dest, &slot, hash, to, overwrite, None);
                self.start_on(job, slot, hash, entry, kind, progress);
            }
            Plan::Move(e) => {
                let Some(name) = self.free_name(&slot)? else {
                    return Ok(());
                };
                let place = (slot.album.as_str(), name.as_str(), slot.base.as_str());
                let entry = ledger.begin_move(slot.file.id, e, place)?;
                let job = Job::Relocate {
                    token,
                    dest,
                    from: (e.album.clone(), e.name.clone()),
                    to: (slot.album.clone(), name),
                    claim: Some(Claim { adopt: None }),
                    copy: false,
                };
                self.start_on(job, slot, hash, entry, OpKind::Move, Arc::default());
            }
            Plan::Copy { from, to, adopt } => {
                let own = current.is_some_and(|c| c.id == from.id);
                let outcome = if own { Outcome::Moved } else { Outcome::Linked };
                let from = (from.album.clone(), from.name.clone());
                self.start_new(slot, dest, Some((from, outcome)), to, adopt)?;
            }
            Plan::Upload { to, adopt } => self.start_new(slot, dest, None, to, adopt)?,
        }
        Ok(())
    }

    /// What the ledger knows about the slot's file on its destination.
    fn facts(&self, slot: &Slot, hash: &Hash) -> Result<Facts> {
        let store = self.store;
        let current = match slot.file.entry_id {
            Some(id) => store
                .entry(id)?
                .filter(|e| e.dest_id == slot.dest_id && e.state != EntryState::Deleting),
            None => None,
        };
        let except = current.as_ref().map_or(-1, |e| e.id);
        let reservation = store
            .reservation_for(slot.file.id, slot.dest_id)?
            .filter(|r| {
                r.id != except
                    && r.album == slot.album
                    && r.base_name == slot.base
                    && r.hash == Some(*hash)
            });
        let twin = store.entry_with_hash(slot.dest_id, &slot.album, hash, except)?;
        let current_shared = match &current {
            Some(e) => store.entry_refs(e.id)? != 1,
            None => false,
        };
        let twin_in_flight = twin
            .as_ref()
            .is_some_and(|x| self.in_flight.values().any(|f| f.entry.id == x.id));
        Ok(Facts {
            current,
            current_shared,
            reservation,
            twin,
            twin_in_flight,
        })
    }

    /// Starts a new object for the file under `to`: copied from `copy_from`
    /// on the destination, or uploaded. The worker claims the name first;
    /// with `adopt`, an object there with exactly this content is taken
    /// over (the store was rebuilt, or the answer to an upload was lost).
    fn start_new(
        &mut self,
        slot: Slot,
        dest: Arc<dyn crate::dest::Destination>,
        copy_from: Option<((String, String), Outcome)>,
        to: Target<'_>,
        adopt: bool,
    ) -> Result<()> {
        let hash = slot.file.hash.expect("planned files are hashed");
        let ledger = Ledger(self.store);
        let entry = match to {
            Target::Reserved(r) => {
                ledger.begin(slot.file.id)?;
                r.clone()
            }
            Target::FreeName => {
                let Some(name) = self.free_name(&slot)? else {
                    return Ok(());
                };
                ledger.reserve(&reservation(&slot, &name, &hash))?
            }
        };
        let claim = Claim {
            adopt: adopt.then_some((slot.file.fp.size, hash)),
        };
        let token = slot.file.id as u64;
        let kind = OpKind::New {
            copied: copy_from.as_ref().map(|(_, outcome)| *outcome),
        };
        let (job, progress) = match copy_from {
            Some((from, _)) => (
                Job::Relocate {
                    token,
                    dest,
                    from,
                    to: (entry.album.clone(), entry.name.clone()),
                    claim: Some(claim),
                    copy: true,
                },
                Arc::default(),
            ),
            None => {
                let to = (entry.album.as_str(), entry.name.as_str());
                upload_job(token, dest, &slot, hash, to, false, Some(claim))
            }
        };
        self.start_on(job, slot, hash, entry, kind, progress);
        Ok(())
    }

    /// Hands `job` to the workers and remembers what it is for.
    fn start_on(
        &mut self,
        job: Job,
        slot: Slot,
        hash: Hash,
        entry: EntryRow,
        kind: OpKind,
        progress: Arc<std::sync::atomic::AtomicU64>,
    ) {
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
    }

    /// Records the end of an upload, copy or move.
    pub(super) fn finished(
        &mut self,
        token: u64,
        result: Result<Transfer, FileError>,
    ) -> Result<()> {
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
                Ledger(store).commit(
                    slot.file.id,
                    &entry,
                    (&hash, slot.file.fp.size),
                    previous.as_ref(),
                )?;
                // A move a crash interrupted is finished, and the file was
                // renamed again since: on to its place now.
                if matches!(kind, OpKind::Move)
                    && (entry.album != slot.album || entry.base_name != slot.base)
                {
                    let mut slot = slot;
                    slot.file.entry_id = Some(entry.id);
                    self.plan(slot, true)?;
                    for waiting in self.parked.remove(&entry.id).unwrap_or_default() {
                        self.plan(waiting, true)?;
                    }
                    return Ok(());
                }
                let (outcome, bytes) = match (transfer, kind) {
                    // The album already held this content under this name
                    // (the store was rebuilt): recorded, nothing sent.
                    (Transfer::Adopted, _) => (Outcome::Linked, 0),
                    (Transfer::Sent(n), OpKind::Move) => (Outcome::Moved, n),
                    (
                        Transfer::Sent(n),
                        OpKind::New {
                            copied: Some(outcome),
                        },
                    ) => (outcome, n),
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
            Err(FileError::Dest(e @ DestError::CopyRefused { .. })) => {
                // Planned again, without server-side copies for this file.
                tracing::warn!("{e}");
                Ledger(store).copy_refused(slot.file.id, &entry, &kind, slot.file.entry_id)?;
                self.no_copy.insert(slot.file.id);
                let waiting = self.parked.remove(&entry.id).unwrap_or_default();
                self.again.push_back(slot.file);
                self.again.extend(waiting.into_iter().map(|w| w.file));
            }
            Err(err) => {
                Ledger(store).roll_back(slot.file.id, &entry, &kind, slot.file.entry_id)?;
                let waiting = self.parked.remove(&entry.id).unwrap_or_default();
                let dest_id = slot.dest_id;
                self.read_failed(slot, err)?;
                for w in waiting {
                    if self.dests.is_open(dest_id) {
                        self.plan(w, true)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The destination holds something else under the name this file was
    /// to take (put there by hand, by a second computer backing up into
    /// the same destination, or by a store that was lost): nothing was
    /// overwritten. The name is remembered as taken and the file planned
    /// again, which picks the next free name.
    pub(super) fn name_taken(
        &mut self,
        mut slot: Slot,
        entry: &EntryRow,
        kind: &OpKind,
    ) -> Result<()> {
        let store = self.store;
        self.taken
            .entry(slot.dest_id)
            .or_default()
            .insert(name_key(&entry.album, &entry.name));
        Ledger(store).name_taken(slot.file.id, entry, kind, slot.file.entry_id)?;
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

/// What the ledger knows about a file, owned; the planner borrows it as
/// [`Known`].
struct Facts {
    current: Option<EntryRow>,
    current_shared: bool,
    reservation: Option<EntryRow>,
    twin: Option<EntryRow>,
    twin_in_flight: bool,
}

impl Facts {
    fn known(&self, may_wait: bool) -> Known<'_> {
        Known {
            current: self.current.as_ref(),
            current_shared: self.current_shared,
            reservation: self.reservation.as_ref(),
            twin: self.twin.as_ref(),
            twin_in_flight: self.twin_in_flight,
            may_wait,
        }
    }
}
