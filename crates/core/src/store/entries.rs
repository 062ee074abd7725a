//! The record of what each destination holds: album entries (`entries`),
//! their states, and the reservations of names for uploads under way. See
//! docs/ARCHITECTURE.md.

use rusqlite::{OptionalExtension, Row, params};

use super::index::hash_from;
use super::{Hash, Store};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Name taken for an upload that is not confirmed yet.
    Reserved,
    Present,
    /// To be deleted from the destination.
    Deleting,
}

/// A name reserved on a destination for a new upload of a file.
#[derive(Debug)]
pub struct Reservation<'a> {
    pub dest_id: i64,
    pub album: &'a str,
    pub name: &'a str,
    /// The name before any " (n)" suffix.
    pub base: &'a str,
    pub hash: &'a Hash,
    pub size: u64,
    pub file_id: i64,
}

/// One object in a destination, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub id: i64,
    pub dest_id: i64,
    pub album: String,
    pub name: String,
    pub base_name: String,
    pub hash: Option<Hash>,
    pub size: u64,
    pub state: EntryState,
    /// Where the object is while a move to `album/name` is unfinished.
    pub moving_from: Option<(String, String)>,
}

super::codes::stored_as_text!(EntryState, "album entry state", {
    Reserved => "reserved",
    Present => "present",
    Deleting => "deleting",
});

const ENTRY_SELECT: &str = "SELECT id, dest_id, album, name, base_name, hash, size, state, from_album, from_name FROM entries";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        id: r.get(0)?,
        dest_id: r.get(1)?,
        album: r.get(2)?,
        name: r.get(3)?,
        base_name: r.get(4)?,
        hash: hash_from(r.get(5)?),
        size: r.get::<_, i64>(6)? as u64,
        state: r.get(7)?,
        moving_from: match (r.get(8)?, r.get(9)?) {
            (Some(a), Some(n)) => Some((a, n)),
            _ => None,
        },
    })
}

impl Store {
    pub fn entry(&self, id: i64) -> Result<Option<EntryRow>> {
        self.conn
            .prepare_cached(&format!("{ENTRY_SELECT} WHERE id = ?1"))
            .and_then(|mut st| st.query_row([id], entry_from_row).optional())
            .map_err(|e| self.err(e))
    }

    /// An entry of the album with this content, if any (other than `except`).
    pub fn entry_with_hash(
        &self,
        dest_id: i64,
        album: &str,
        hash: &Hash,
        except: i64,
    ) -> Result<Option<EntryRow>> {
        // A present one first, else one under way. Each query stops at its
        // first row in the index's order: an album may hold thousands of
        // names of one content (every name is kept), and sorting them all
        // for every new file would make a pass quadratic.
        for states in ["state = 'present'", "state != 'deleting'"] {
            let found = self
                .conn
                .prepare_cached(&format!(
                    "{ENTRY_SELECT} WHERE dest_id = ?1 AND album = ?2 AND hash = ?3
                       AND id != ?4 AND {states}
                     ORDER BY id LIMIT 1"
                ))
                .and_then(|mut st| {
                    st.query_row(
                        params![dest_id, album, hash.as_slice(), except],
                        entry_from_row,
                    )
                    .optional()
                })
                .map_err(|e| self.err(e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    pub fn entry_name_taken(&self, dest_id: i64, album: &str, name: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE dest_id = ?1 AND name_key = ?2)",
            )
            .and_then(|mut st| {
                st.query_row(params![dest_id, crate::album::name_key(album, name)], |r| {
                    r.get(0)
                })
            })
            .map_err(|e| self.err(e))
    }

    /// One entry the destination is recorded to hold, if any.
    pub fn any_present_entry(&self, dest_id: i64) -> Result<Option<EntryRow>> {
        self.conn
            .prepare_cached(&format!(
                "{ENTRY_SELECT} WHERE dest_id = ?1 AND state = 'present' LIMIT 1"
            ))
            .and_then(|mut st| st.query_row([dest_id], entry_from_row).optional())
            .map_err(|e| self.err(e))
    }

    /// True when the index records anything stored (or being stored) on
    /// the destination.
    pub fn has_entries(&self, dest_id: i64) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM entries WHERE dest_id = ?1)")
            .and_then(|mut st| st.query_row([dest_id], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// How many files (present or vanished) refer to the entry.
    pub fn entry_refs(&self, id: i64) -> Result<u64> {
        self.conn
            .prepare_cached("SELECT count(*) FROM files WHERE entry_id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Reserves `album/name` on a destination for a new upload of a file.
    pub fn reserve_entry(&self, r: &Reservation<'_>) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO entries (dest_id, album, name, base_name, hash, size, state, name_key,
                                      file_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'reserved', ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    r.dest_id,
                    r.album,
                    r.name,
                    r.base,
                    r.hash.as_slice(),
                    r.size as i64,
                    crate::album::name_key(r.album, r.name),
                    r.file_id
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The name a new upload of this file reserved on the destination and
    /// never confirmed (a crash, a lost answer, a failure), if any: the
    /// file's next attempt takes it up again.
    pub fn reservation_for(&self, file_id: i64, dest_id: i64) -> Result<Option<EntryRow>> {
        self.conn
            .prepare_cached(&format!(
                "{ENTRY_SELECT} WHERE file_id = ?1 AND dest_id = ?2 AND state = 'reserved'
                   AND from_album IS NULL
                   AND NOT EXISTS (SELECT 1 FROM files WHERE entry_id = entries.id)
                 ORDER BY id DESC LIMIT 1"
            ))
            .and_then(|mut st| {
                st.query_row(params![file_id, dest_id], entry_from_row)
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// The file no longer stands behind its unconfirmed reservations on this
    /// destination (it took another name): they are cleaned up as crash
    /// leftovers.
    pub fn release_reservations(&self, file_id: i64, dest_id: i64) -> Result<()> {
        self.exec(
            "UPDATE entries SET file_id = NULL
             WHERE file_id = ?1 AND dest_id = ?2 AND state = 'reserved'",
            params![file_id, dest_id],
        )
        .map(drop)
    }

    /// Sets an entry's content record and state.
    pub fn update_entry(
        &self,
        id: i64,
        hash: Option<&Hash>,
        size: u64,
        state: EntryState,
    ) -> Result<()> {
        let state = state.as_str();
        self.conn
            .prepare_cached(
                "UPDATE entries SET hash = ?2, size = ?3, state = ?4,
                        from_album = CASE ?4 WHEN 'reserved' THEN from_album END,
                        from_name = CASE ?4 WHEN 'reserved' THEN from_name END
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![id, hash.map(|h| h.to_vec()), size as i64, state])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Records that the entry is being moved to `album/name` (the old place
    /// is kept until the move is confirmed, so a crash can finish it).
    pub fn start_entry_move(&self, id: i64, album: &str, name: &str, base: &str) -> Result<()> {
        self.exec(
            "UPDATE entries SET from_album = album, from_name = name, album = ?2, name = ?3,
                        base_name = ?4, state = 'reserved', name_key = ?5
                 WHERE id = ?1",
            params![id, album, name, base, crate::album::name_key(album, name)],
        )
        .map(drop)
    }

    /// Gives up an entry whose object another writer replaced: the entry
    /// goes (nothing is deleted on the destination), and the files that
    /// used it are queued again. Returns how many.
    pub fn give_up_entry(&self, dest_id: i64, album: &str, name: &str) -> Result<u64> {
        self.transaction(|s| {
            let n = s.exec(
                "UPDATE files SET state = 'pending', entry_id = NULL, attempts = 0,
                        next_attempt_at = 0
                 WHERE entry_id IN (SELECT id FROM entries
                                    WHERE dest_id = ?1 AND album = ?2 AND name = ?3)",
                params![dest_id, album, name],
            )?;
            s.exec(
                "DELETE FROM entries WHERE dest_id = ?1 AND album = ?2 AND name = ?3",
                params![dest_id, album, name],
            )?;
            Ok(n as u64)
        })
    }

    /// The file no longer refers to any entry.
    pub fn set_file_entry_none(&self, file_id: i64) -> Result<()> {
        self.exec("UPDATE files SET entry_id = NULL WHERE id = ?1", [file_id])
            .map(drop)
    }

    /// Undoes a move that could not be made (its target name was taken):
    /// the entry is back at its old place.
    pub fn cancel_entry_move(&self, id: i64) -> Result<()> {
        let Some(e) = self.entry(id)? else {
            return Ok(());
        };
        let Some((album, name)) = e.moving_from else {
            return Ok(());
        };
        self.exec(
            "UPDATE entries SET album = ?2, name = ?3, base_name = ?3, name_key = ?4,
                    from_album = NULL, from_name = NULL, state = 'present'
             WHERE id = ?1",
            params![id, album, name, crate::album::name_key(&album, &name)],
        )
        .map(drop)
    }

    /// Every entry a destination records, by album and name.
    pub fn entries_of(&self, dest_id: i64) -> Result<Vec<EntryRow>> {
        self.conn
            .prepare_cached(&format!(
                "{ENTRY_SELECT} WHERE dest_id = ?1 ORDER BY album, name"
            ))
            .and_then(|mut st| st.query_map([dest_id], entry_from_row)?.collect())
            .map_err(|e| self.err(e))
    }

    /// Queues the files stored as the entry again and forgets the entry,
    /// so that the next sync sends them (`shoebox verify --repair`).
    /// Returns how many files were queued; with none (every source file
    /// is gone), the entry is kept as it is.
    pub fn requeue_entry(&self, id: i64) -> Result<u64> {
        self.transaction(|s| {
            let queued = s.exec(
                "UPDATE files SET state = 'pending', entry_id = NULL, attempts = 0,
                        next_attempt_at = 0, error = NULL
                 WHERE entry_id = ?1 AND gone = 0",
                [id],
            )?;
            if queued > 0 {
                s.exec("UPDATE files SET entry_id = NULL WHERE entry_id = ?1", [id])?;
                s.exec("DELETE FROM entries WHERE id = ?1", [id])?;
            }
            Ok(queued as u64)
        })
    }

    pub fn delete_entry(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM entries WHERE id = ?1", [id])
            .map(drop)
    }

    /// Entries of a destination to delete there: those marked `deleting`,
    /// or (`unconfirmed`) reservations that no file refers to, which only a
    /// crash between reserving a name and recording the upload leaves. A
    /// reservation whose file is still queued is not one of them: that file
    /// takes it up again if its content is the same
    /// ([`Store::reservation_for`]), or releases it.
    pub fn entries_to_delete(&self, dest_id: i64, unconfirmed: bool) -> Result<Vec<EntryRow>> {
        let filter = if unconfirmed {
            "state = 'reserved' AND NOT EXISTS (SELECT 1 FROM files WHERE entry_id = entries.id)
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = entries.file_id
                                AND f.gone = 0 AND f.state IN ('pending', 'uploading', 'failed'))"
        } else {
            "state = 'deleting'"
        };
        self.conn
            .prepare_cached(&format!(
                "{ENTRY_SELECT} INDEXED BY entries_by_state
                 WHERE dest_id = ?1 AND state != 'present' AND {filter}"
            ))
            .and_then(|mut st| st.query_map([dest_id], entry_from_row)?.collect())
            .map_err(|e| self.err(e))
    }

    /// Present entries after `after_id` (in id order, at most `limit`),
    /// each with the modification time of a file it holds (unix ns): for
    /// giving copies made before dates were kept their source's date.
    pub fn entries_with_dates(
        &self,
        dest_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(EntryRow, i64)>> {
        self.conn
            .prepare_cached(
                "SELECT e.id, e.dest_id, e.album, e.name, e.base_name, e.hash, e.size, e.state,
                        e.from_album, e.from_name, MAX(f.mtime_ns)
                 FROM entries e JOIN files f ON f.entry_id = e.id
                 WHERE e.dest_id = ?1 AND e.state = 'present' AND e.id > ?2
                 GROUP BY e.id ORDER BY e.id LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![dest_id, after_id, limit as i64], |r| {
                    Ok((entry_from_row(r)?, r.get(10)?))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }
}
