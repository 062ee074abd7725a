//! What happens to album entries when files leave a watched folder
//! (docs/ARCHITECTURE.md invariant 5): the watch's policy (`keep` or `remove`), the
//! guard that holds deletions when too many files vanish at once, and the
//! clean-up of objects that replaced versions or interrupted uploads left.

use crate::dest::Destination;
use crate::error::{DestError, Result};
use crate::events::Event;
use crate::store::{EntryState, OnDelete, Store, WatchRow, now_secs};

/// Deletions are held when more than this many files vanished…
pub const MASS_DELETION_MIN: u64 = 50;
/// …and more than this share (percent) of the watch's files.
pub const MASS_DELETION_PERCENT: u64 = 20;

/// What [`apply_policy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    Applied,
    /// Too many files vanished at once: held for the user (their count).
    Held(u64),
}

/// Applies a watch's delete policy to the files that vanished from it at
/// least `grace_secs` ago. Nothing is deleted from a destination here; the
/// entries to delete are marked, and [`delete_marked`] deletes them.
pub fn apply_policy(
    store: &Store,
    watch: &WatchRow,
    grace_secs: i64,
    emit: &dyn Fn(&Event),
) -> Result<PolicyOutcome> {
    if watch.on_delete == OnDelete::Remove && !watch.release_deletions {
        let (gone, total) = store.gone_counts(watch.id)?;
        let threshold = MASS_DELETION_MIN.max(total * MASS_DELETION_PERCENT / 100);
        if gone > threshold {
            if watch.deletions_held != gone {
                store.hold_deletions(watch.id, gone)?;
                emit(&Event::DeletionsHeld {
                    watch: watch.root.display().to_string(),
                    count: gone,
                });
            }
            return Ok(PolicyOutcome::Held(gone));
        }
    }
    let gone_before = now_secs() - grace_secs;
    let mut after = 0;
    loop {
        let page = store.gone_files(watch.id, gone_before, after, 500)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        store.transaction(|s| {
            for g in &page {
                s.delete_file(g.id)?;
                let Some(entry) = g.entry_id.map(|id| s.entry(id)).transpose()?.flatten() else {
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
    if watch.release_deletions || watch.deletions_held > 0 {
        store.release_deletions(watch.id, false)?;
    }
    store.prune_dirs(watch.id)?;
    Ok(PolicyOutcome::Applied)
}

/// Deletes from the destination the entries marked for deletion. Returns
/// how many were deleted.
pub fn delete_marked(
    store: &Store,
    dest: &dyn Destination,
    dest_id: i64,
    emit: &dyn Fn(&Event),
) -> Result<u64> {
    let mut removed = 0;
    for e in store.entries_to_delete(dest_id, false)? {
        match dest.delete(&e.album, &e.name) {
            Ok(()) => {
                store.delete_entry(e.id)?;
                removed += 1;
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
    Ok(removed)
}

/// Reservations that no file refers to are what a crash left between
/// "name reserved" and "upload recorded" (those of uploads still
/// `in_flight` excepted): drop them, and the object that reached the
/// destination if it holds our content, so the name is free again.
pub fn forget_unconfirmed(
    store: &Store,
    dest: &dyn Destination,
    dest_id: i64,
    in_flight: &std::collections::HashSet<i64>,
) -> Result<(), DestError> {
    let unavailable = |e: crate::Error| DestError::Unavailable {
        name: dest.name().to_string(),
        why: e.to_string(),
    };
    for e in store
        .entries_to_delete(dest_id, true)
        .map_err(unavailable)?
    {
        if in_flight.contains(&e.id) {
            continue; // an upload still under way reserved it
        }
        // Only what this engine put there goes: on a shared destination the
        // name may since have been taken by another computer's upload.
        let ours = match e.hash {
            Some(h) => crate::dest::holds(dest, &e.album, &e.name, e.size, &h)?,
            None => false,
        };
        if ours {
            dest.delete(&e.album, &e.name)?;
        }
        store.delete_entry(e.id).map_err(unavailable)?;
    }
    Ok(())
}
