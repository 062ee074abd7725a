//! The ledger: every change of an album entry's or a file's upload state,
//! one method per transition, each one transaction (a savepoint inside the
//! pipeline's turn under way, [`super::Pipeline::turn`]). A transition is
//! committed before the work it records is handed to a worker, so that a
//! crash at any moment leaves a state the next pass can finish: a name
//! reserved and never confirmed is taken up again by its file
//! ([`crate::store::Store::reservation_for`]). See docs/ARCHITECTURE.md.

use super::OpKind;
use crate::error::Result;
use crate::store::{EntryRow, EntryState, FileState, Hash, Reservation, Store};

/// The upload state of files and album entries, in the store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ledger<'a>(pub &'a Store);

impl Ledger<'_> {
    /// The file is stored as it is in `entry`.
    pub fn unchanged(&self, file_id: i64, entry: &EntryRow, hash: &Hash) -> Result<()> {
        self.0.file_done(file_id, entry.id, hash)
    }

    /// The file is recorded in `to`, which holds its content already; the
    /// entry it leaves is released.
    pub fn link(
        &self,
        file_id: i64,
        to: &EntryRow,
        hash: &Hash,
        leaving: Option<&EntryRow>,
    ) -> Result<()> {
        self.0.transaction(|s| {
            s.file_done(file_id, to.id, hash)?;
            release(s, leaving)
        })
    }

    /// The file's own entry is about to be overwritten with new content.
    pub fn begin_replace(
        &self,
        file_id: i64,
        entry: &EntryRow,
        hash: &Hash,
        size: u64,
    ) -> Result<EntryRow> {
        self.0.transaction(|s| {
            s.update_entry(entry.id, Some(hash), size, EntryState::Reserved)?;
            s.set_file_state(file_id, FileState::Uploading)
        })?;
        Ok(self.0.entry(entry.id)?.expect("just updated"))
    }

    /// The file's own entry is about to move to `album/name`.
    pub fn begin_move(
        &self,
        file_id: i64,
        entry: &EntryRow,
        (album, name, base): (&str, &str, &str),
    ) -> Result<EntryRow> {
        self.0.transaction(|s| {
            s.start_entry_move(entry.id, album, name, base)?;
            s.set_file_state(file_id, FileState::Uploading)
        })?;
        Ok(self.0.entry(entry.id)?.expect("just updated"))
    }

    /// Work on the file's existing entry or reservation is about to start.
    pub fn begin(&self, file_id: i64) -> Result<()> {
        self.0.set_file_state(file_id, FileState::Uploading)
    }

    /// A new name is reserved for the file; reservations it made earlier
    /// on this destination are let go (cleaned up as crash leftovers).
    pub fn reserve(&self, r: &Reservation<'_>) -> Result<EntryRow> {
        let id = self.0.transaction(|s| {
            s.release_reservations(r.file_id, r.dest_id)?;
            let id = s.reserve_entry(r)?;
            s.set_file_state(r.file_id, FileState::Uploading)?;
            Ok(id)
        })?;
        Ok(self.0.entry(id)?.expect("just inserted"))
    }

    /// The work finished: `entry` holds the file's content; the entry the
    /// file leaves (if the watch's policy lets it go) is released.
    pub fn commit(
        &self,
        file_id: i64,
        entry: &EntryRow,
        (hash, size): (&Hash, u64),
        leaving: Option<&EntryRow>,
    ) -> Result<()> {
        self.0.transaction(|s| {
            s.update_entry(entry.id, Some(hash), size, EntryState::Present)?;
            s.file_done(file_id, entry.id, hash)?;
            release(s, leaving)
        })
    }

    /// The work failed: the file goes back to the queue and the entry to
    /// what it was. `earlier` is the file's entry before this work.
    pub fn roll_back(
        &self,
        file_id: i64,
        entry: &EntryRow,
        kind: &OpKind,
        earlier: Option<i64>,
    ) -> Result<()> {
        self.0.transaction(|s| {
            match (kind, earlier) {
                // The upload may have completed with its answer lost (a
                // reset, a timeout): a new file keeps the name reserved,
                // and its retry takes it up again (and adopts what is there
                // if it is this content) rather than taking a second name
                // beside a complete copy.
                (OpKind::New { .. }, None) => {}
                // A file with an earlier entry goes back to it; what may
                // have reached the reserved name is deleted at the end of
                // the pass.
                (OpKind::New { .. }, Some(old)) => {
                    s.set_file_entry(file_id, old)?;
                    s.update_entry(entry.id, None, entry.size, EntryState::Deleting)?;
                }
                (OpKind::Replace { old_hash, old_size }, _) => s.update_entry(
                    entry.id,
                    old_hash.as_ref(),
                    *old_size,
                    if old_hash.is_some() {
                        EntryState::Present
                    } else {
                        EntryState::Reserved
                    },
                )?,
                // The object may be at either place; the file stays queued
                // and the move is retried (it is idempotent).
                (OpKind::Move, _) => {}
            }
            s.set_file_state(file_id, FileState::Pending)
        })
    }

    /// The server refused a server-side copy (or the copy of a move): the
    /// object is still where it was, so a move goes back to its old place;
    /// other work is rolled back. The file is then uploaded instead.
    pub fn copy_refused(
        &self,
        file_id: i64,
        entry: &EntryRow,
        kind: &OpKind,
        earlier: Option<i64>,
    ) -> Result<()> {
        match kind {
            OpKind::Move => self.0.transaction(|s| {
                s.cancel_entry_move(entry.id)?;
                s.set_file_state(file_id, FileState::Pending)
            }),
            OpKind::New { .. } | OpKind::Replace { .. } => {
                self.roll_back(file_id, entry, kind, earlier)
            }
        }
    }

    /// The destination holds something else under the entry's name: the
    /// entry is given up (a move goes back to its old place) and the file
    /// queued again for another name.
    pub fn name_taken(
        &self,
        file_id: i64,
        entry: &EntryRow,
        kind: &OpKind,
        earlier: Option<i64>,
    ) -> Result<()> {
        self.0.transaction(|s| {
            match kind {
                OpKind::Move => s.cancel_entry_move(entry.id)?,
                OpKind::New { .. } | OpKind::Replace { .. } => {
                    if earlier == Some(entry.id) {
                        s.set_file_entry_none(file_id)?;
                    }
                    s.delete_entry(entry.id)?;
                }
            }
            s.set_file_state(file_id, FileState::Pending)
        })
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
