//! The file index, the upload queue and the record of what each destination
//! holds (`dirs`, `files`, `entries`). Every state change is one statement or
//! one transaction, committed before the engine acts on it.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, now_ms, now_secs};
use crate::error::Result;
use crate::platform::Fingerprint;

/// BLAKE3 digest of a file's content.
pub type Hash = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Pending,
    Uploading,
    Uploaded,
    Failed,
    Skipped,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Uploading => "uploading",
            FileState::Uploaded => "uploaded",
            FileState::Failed => "failed",
            FileState::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> FileState {
        match s {
            "uploading" => FileState::Uploading,
            "uploaded" => FileState::Uploaded,
            "failed" => FileState::Failed,
            "skipped" => FileState::Skipped,
            _ => FileState::Pending,
        }
    }
}

/// A file of one directory as the index knows it.
#[derive(Debug, Clone)]
pub struct IndexedFile {
    pub id: i64,
    pub name: Vec<u8>,
    pub fp: Fingerprint,
    pub state: FileState,
    pub gone: bool,
    pub error: Option<String>,
}

/// A file waiting in the upload queue, with what is needed to process it.
#[derive(Debug, Clone)]
pub struct QueuedFile {
    pub id: i64,
    pub watch_id: i64,
    pub dir_rel: Vec<u8>,
    pub name: Vec<u8>,
    pub fp: Fingerprint,
    pub hash: Option<Hash>,
    pub entry_id: Option<i64>,
    pub attempts: i64,
    /// When the current fingerprint was first seen (unix ms).
    pub fp_since_ms: i64,
}

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

/// A file that failed or was skipped.
#[derive(Debug, Clone)]
pub struct ProblemRow {
    pub dir_rel: Vec<u8>,
    pub name: Vec<u8>,
    pub state: FileState,
    pub reason: String,
}

/// A vanished file awaiting its watch's delete policy.
#[derive(Debug, Clone)]
pub struct GoneFile {
    pub id: i64,
    pub entry_id: Option<i64>,
}

fn fp_params(fp: &Fingerprint) -> [i64; 5] {
    [
        fp.size as i64,
        fp.mtime_ns,
        fp.ctime_ns,
        fp.ino as i64,
        fp.dev as i64,
    ]
}

fn fp_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<Fingerprint> {
    Ok(Fingerprint {
        size: r.get::<_, i64>(first)? as u64,
        mtime_ns: r.get(first + 1)?,
        ctime_ns: r.get(first + 2)?,
        ino: r.get::<_, i64>(first + 3)? as u64,
        dev: r.get::<_, i64>(first + 4)? as u64,
    })
}

fn hash_from(v: Option<Vec<u8>>) -> Option<Hash> {
    v.and_then(|b| b.try_into().ok())
}

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
        state: match r.get::<_, String>(7)?.as_str() {
            "reserved" => EntryState::Reserved,
            "deleting" => EntryState::Deleting,
            _ => EntryState::Present,
        },
        moving_from: match (r.get(8)?, r.get(9)?) {
            (Some(a), Some(n)) => Some((a, n)),
            _ => None,
        },
    })
}

/// Upper bound (exclusive) and lower bound of the keys of everything below
/// directory `rel`: `rel/` .. `rel0` (b'0' follows b'/').
fn subtree_bounds(rel: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if rel.is_empty() {
        return (Vec::new(), vec![0xff; 8]);
    }
    let mut lo = rel.to_vec();
    lo.push(b'/');
    let mut hi = rel.to_vec();
    hi.push(b'0');
    (lo, hi)
}

impl Store {
    pub fn begin(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))
    }

    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))
    }

    pub fn rollback(&self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    // ---- scanning ----------------------------------------------------------

    /// Records that directory `rel` of a watch was seen in scan `generation`.
    pub fn upsert_dir(&self, watch_id: i64, rel: &[u8], generation: i64) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO dirs (watch_id, rel, scan_gen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (watch_id, rel) DO UPDATE SET scan_gen = excluded.scan_gen,
                                                           unreachable = NULL
                 RETURNING id",
            )
            .and_then(|mut st| st.query_row(params![watch_id, rel, generation], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Records why a directory could not be read (it counts as skipped).
    pub fn set_dir_unreachable(&self, dir_id: i64, reason: &str) -> Result<()> {
        self.exec(
            "UPDATE dirs SET unreachable = ?2 WHERE id = ?1",
            params![dir_id, reason],
        )
        .map(drop)
    }

    /// How many directories of the watch could not be read at the last scan.
    pub fn unreachable_dirs(&self, watch_id: i64) -> Result<u64> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM dirs WHERE watch_id = ?1 AND unreachable IS NOT NULL",
            )
            .and_then(|mut st| st.query_row([watch_id], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Marks everything below `rel` as seen, so that a directory that could
    /// not be read is not mistaken for deleted.
    pub fn protect_subtree(&self, watch_id: i64, rel: &[u8], generation: i64) -> Result<()> {
        let (lo, hi) = subtree_bounds(rel);
        self.exec(
            "UPDATE dirs SET scan_gen = ?2
                 WHERE watch_id = ?1 AND (rel = ?3 OR (rel >= ?4 AND rel < ?5))",
            params![watch_id, generation, rel, lo, hi],
        )
        .map(drop)
    }

    pub fn dir_files(&self, dir_id: i64) -> Result<Vec<IndexedFile>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, name, size, mtime_ns, ctime_ns, ino, dev, state, gone, error
                 FROM files WHERE dir_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([dir_id], |r| {
            Ok(IndexedFile {
                id: r.get(0)?,
                name: r.get(1)?,
                fp: fp_from_row(r, 2)?,
                state: FileState::parse(&r.get::<_, String>(7)?),
                gone: r.get(8)?,
                error: r.get(9)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    pub fn insert_file(
        &self,
        dir_id: i64,
        name: &[u8],
        (fp, btime_ns): (&Fingerprint, Option<i64>),
        state: FileState,
        error: Option<&str>,
        seen_ms: i64,
    ) -> Result<()> {
        let [size, mtime, ctime, ino, dev] = fp_params(fp);
        self.conn
            .prepare_cached(
                "INSERT INTO files (dir_id, name, size, mtime_ns, ctime_ns, ino, dev, state, error,
                                    fp_since_ms, btime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    dir_id,
                    name,
                    size,
                    mtime,
                    ctime,
                    ino,
                    dev,
                    state.as_str(),
                    error,
                    seen_ms,
                    btime_ns
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// A new version of a file was seen: it has to be hashed (and probably
    /// uploaded) again. Its album entry is kept so the upload replaces it.
    pub fn file_changed(
        &self,
        id: i64,
        fp: &Fingerprint,
        state: FileState,
        error: Option<&str>,
        seen_ms: i64,
        btime_ns: Option<i64>,
    ) -> Result<()> {
        let [size, mtime, ctime, ino, dev] = fp_params(fp);
        self.conn
            .prepare_cached(
                "UPDATE files SET size = ?2, mtime_ns = ?3, ctime_ns = ?4, ino = ?5, dev = ?6,
                        hash = NULL, state = ?7, error = ?8, gone = 0, attempts = 0,
                        fp_since_ms = ?9, btime_ns = coalesce(?10, btime_ns)
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    size,
                    mtime,
                    ctime,
                    ino,
                    dev,
                    state.as_str(),
                    error,
                    seen_ms,
                    btime_ns
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn set_gone(&self, id: i64, gone: bool) -> Result<()> {
        self.exec(
            "UPDATE files SET gone = ?2, gone_since = ?3 WHERE id = ?1",
            params![id, gone, now_secs()],
        )
        .map(drop)
    }

    /// Starts a scan of a watch: returns its generation number.
    pub fn next_generation(&self, watch_id: i64) -> Result<i64> {
        self.conn
            .query_row(
                "UPDATE watches SET scan_gen = scan_gen + 1 WHERE id = ?1 RETURNING scan_gen",
                [watch_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Ends a scan of the subtree at `rel`: files of directories below it
    /// that the scan did not see are gone, and those directories too.
    pub fn vanish_unseen(&self, watch_id: i64, rel: &[u8], generation: i64) -> Result<u64> {
        let (lo, hi) = subtree_bounds(rel);
        let unseen = "SELECT id FROM dirs WHERE watch_id = ?1 AND scan_gen >= 0 AND scan_gen < ?2
                        AND (rel = ?3 OR (rel >= ?4 AND rel < ?5))";
        let n = self
            .conn
            .execute(
                &format!("UPDATE files SET gone = 1, gone_since = ?6 WHERE gone = 0 AND dir_id IN ({unseen})"),
                params![watch_id, generation, rel, lo, hi, now_secs()],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                &format!("UPDATE dirs SET scan_gen = -1 WHERE id IN ({unseen})"),
                params![watch_id, generation, rel, lo, hi],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// Records a completed full scan.
    pub fn finish_full_scan(&self, watch_id: i64, ignored: u64) -> Result<()> {
        self.exec(
            "UPDATE watches SET last_scan = ?2, ignored = ?3, state = 'ok', state_detail = NULL
                 WHERE id = ?1",
            params![watch_id, now_secs(), ignored as i64],
        )
        .map(drop)
    }

    /// The directories of a watch directly below `rel` that the index knows.
    pub fn child_dirs(&self, watch_id: i64, rel: &[u8]) -> Result<Vec<Vec<u8>>> {
        let (lo, hi) = subtree_bounds(rel);
        let all: Vec<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT rel FROM dirs WHERE watch_id = ?1 AND scan_gen >= 0 AND rel >= ?2 AND rel < ?3",
            )
            .and_then(|mut st| st.query_map(params![watch_id, lo, hi], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))?;
        let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
        Ok(all
            .into_iter()
            .filter(|r: &Vec<u8>| !r[skip..].contains(&b'/'))
            .collect())
    }

    /// How many directories of a watch the index knows.
    pub fn dir_count(&self, watch_id: i64) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM dirs WHERE watch_id = ?1 AND scan_gen >= 0",
                [watch_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    pub fn dir_known(&self, watch_id: i64, rel: &[u8]) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM dirs WHERE watch_id = ?1 AND rel = ?2 AND scan_gen >= 0)")
            .and_then(|mut st| st.query_row(params![watch_id, rel], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Number of vanished files of a watch not yet dealt with, and of all
    /// its files.
    pub fn gone_counts(&self, watch_id: i64) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT coalesce(sum(f.gone), 0), count(*) FROM files f JOIN dirs d ON d.id = f.dir_id
                 WHERE d.watch_id = ?1 AND f.state != 'skipped'",
                [watch_id],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Forgets a watch's vanished files without touching their album
    /// entries (the user chose to keep them in the albums).
    pub fn forget_gone(&self, watch_id: i64) -> Result<u64> {
        self.exec("DELETE FROM files WHERE gone = 1 AND dir_id IN (SELECT id FROM dirs WHERE watch_id = ?1)",
                [watch_id],).map(|n| n as u64)
    }

    /// Finds vanished files that reappeared elsewhere in the same watch (same
    /// device, inode, size and mtime): the new path takes over the old one's
    /// album entry and content hash, so no bytes are sent again. Returns how
    /// many moves were found.
    pub fn match_moves(&self, watch_id: i64) -> Result<u64> {
        let moves: Vec<(i64, i64, Option<i64>, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT g.id, n.id, g.btime_ns, n.btime_ns FROM files g
                   JOIN dirs gd ON gd.id = g.dir_id
                   JOIN files n ON n.ino = g.ino AND n.size = g.size AND n.mtime_ns = g.mtime_ns
                               AND n.dev = g.dev
                   JOIN dirs nd ON nd.id = n.dir_id
                 WHERE g.gone = 1 AND g.state = 'uploaded' AND g.entry_id IS NOT NULL
                   AND gd.watch_id = ?1 AND nd.watch_id = ?1
                   AND n.gone = 0 AND n.entry_id IS NULL AND n.hash IS NULL
                   AND n.state = 'pending'",
            )
            .and_then(|mut st| {
                st.query_map([watch_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        let mut taken = std::collections::HashSet::new();
        let mut count = 0;
        for (old, new, old_birth, new_birth) in moves {
            // The inode alone does not prove a move: ext4 hands a freed inode
            // to the next new file. Equal birth times do; different ones
            // rule it out; where the file system keeps none, the file is
            // hashed again (the planner then compares the content).
            let proven = match (old_birth, new_birth) {
                (Some(a), Some(b)) if a == b => true,
                (Some(_), Some(_)) => continue,
                _ => false,
            };
            if !taken.insert(new) {
                continue;
            }
            let hash = if proven {
                "(SELECT hash FROM files WHERE id = ?1)"
            } else {
                "NULL"
            };
            self.conn
                .execute(
                    &format!(
                        "UPDATE files SET hash = {hash},
                                          entry_id = (SELECT entry_id FROM files WHERE id = ?1)
                         WHERE id = ?2"
                    ),
                    params![old, new],
                )
                .and_then(|_| self.conn.execute("DELETE FROM files WHERE id = ?1", [old]))
                .map_err(|e| self.err(e))?;
            count += 1;
        }
        Ok(count)
    }

    /// Vanished files of a watch, a page at a time (ids above `after`).
    /// Vanished files of a watch, gone since before `gone_before` (unix
    /// seconds), a page at a time (ids above `after`).
    pub fn gone_files(
        &self,
        watch_id: i64,
        gone_before: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<GoneFile>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT f.id, f.entry_id FROM files f JOIN dirs d ON d.id = f.dir_id
                 WHERE f.gone = 1 AND d.watch_id = ?1 AND f.id > ?2 AND f.gone_since <= ?4
                 ORDER BY f.id LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![watch_id, after, limit as i64, gone_before], |r| {
            Ok(GoneFile {
                id: r.get(0)?,
                entry_id: r.get(1)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    pub fn delete_file(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM files WHERE id = ?1", [id]).map(drop)
    }

    /// Drops directories that are gone and hold no more files.
    pub fn prune_dirs(&self, watch_id: i64) -> Result<()> {
        self.exec(
            "DELETE FROM dirs WHERE watch_id = ?1 AND scan_gen = -1
                   AND NOT EXISTS (SELECT 1 FROM files WHERE dir_id = dirs.id)",
            [watch_id],
        )
        .map(drop)
    }

    // ---- the queue ---------------------------------------------------------

    /// After a crash, uploads that were in flight go back to the queue.
    pub fn requeue_interrupted(&self) -> Result<u64> {
        self.exec(
            "UPDATE files SET state = 'pending' WHERE state = 'uploading'",
            [],
        )
        .map(|n| n as u64)
    }

    /// Number and total size of the files waiting to be processed.
    pub fn queue_totals(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(f.size), 0) FROM files f
                   JOIN dirs d ON d.id = f.dir_id JOIN watches w ON w.id = d.watch_id
                 WHERE f.state IN ('pending', 'failed') AND f.gone = 0 AND w.state = 'ok'",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// The next files to process, in a stable order (watch, directory,
    /// name), after the key `after`.
    /// Failed files are included once `retry_failed_before` (unix seconds)
    /// has passed their `next_attempt_at`.
    pub fn next_queued(
        &self,
        after: &(i64, Vec<u8>, Vec<u8>),
        retry_failed_before: i64,
        limit: usize,
    ) -> Result<Vec<QueuedFile>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT f.id, d.watch_id, d.rel, f.name, f.size, f.mtime_ns, f.ctime_ns, f.ino,
                        f.dev, f.hash, f.entry_id, f.attempts, f.fp_since_ms
                 FROM files f JOIN dirs d ON d.id = f.dir_id JOIN watches w ON w.id = d.watch_id
                 WHERE (f.state = 'pending' OR (f.state = 'failed' AND f.next_attempt_at <= ?5))
                   AND f.gone = 0 AND w.state = 'ok'
                   AND (d.watch_id, d.rel, f.name) > (?1, ?2, ?3)
                 ORDER BY d.watch_id, d.rel, f.name LIMIT ?4",
            )
            .map_err(|e| self.err(e))?;
        let p = params![after.0, after.1, after.2, limit as i64, retry_failed_before];
        st.query_map(p, |r| {
            Ok(QueuedFile {
                id: r.get(0)?,
                watch_id: r.get(1)?,
                dir_rel: r.get(2)?,
                name: r.get(3)?,
                fp: fp_from_row(r, 4)?,
                hash: hash_from(r.get(9)?),
                entry_id: r.get(10)?,
                attempts: r.get(11)?,
                fp_since_ms: r.get(12)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    pub fn set_file_state(&self, id: i64, state: FileState) -> Result<()> {
        self.exec(
            "UPDATE files SET state = ?2 WHERE id = ?1",
            params![id, state.as_str()],
        )
        .map(drop)
    }

    /// The file's current content is stored as entry `entry_id`.
    pub fn file_done(&self, id: i64, entry_id: i64, hash: &Hash) -> Result<()> {
        self.exec(
            "UPDATE files SET state = 'uploaded', entry_id = ?2, hash = ?3, error = NULL,
                        attempts = 0, next_attempt_at = 0
                 WHERE id = ?1",
            params![id, entry_id, hash.as_slice()],
        )
        .map(drop)
    }

    /// Points a file back at its entry (an upload to a new place failed).
    pub fn set_file_entry(&self, id: i64, entry_id: i64) -> Result<()> {
        self.exec(
            "UPDATE files SET entry_id = ?2 WHERE id = ?1",
            params![id, entry_id],
        )
        .map(drop)
    }

    /// The file is being uploaded to `entry_id` (whose name is reserved).
    pub fn file_uploading(&self, id: i64, entry_id: i64, hash: &Hash) -> Result<()> {
        self.exec(
            "UPDATE files SET state = 'uploading', entry_id = ?2, hash = ?3 WHERE id = ?1",
            params![id, entry_id, hash.as_slice()],
        )
        .map(drop)
    }

    /// The file's fingerprint moved on while it was read: record the new one
    /// and queue it again.
    pub fn file_requeue(&self, id: i64, fp: &Fingerprint) -> Result<()> {
        self.file_changed(id, fp, FileState::Pending, None, now_ms(), None)
    }

    pub fn file_failed(&self, id: i64, message: &str, retry_at: i64) -> Result<()> {
        self.exec(
            "UPDATE files SET state = 'failed', error = ?2, attempts = attempts + 1,
                        next_attempt_at = ?3
                 WHERE id = ?1",
            params![id, message, retry_at],
        )
        .map(drop)
    }

    // ---- entries -----------------------------------------------------------

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
        self.conn
            .prepare_cached(&format!(
                "{ENTRY_SELECT} WHERE dest_id = ?1 AND album = ?2 AND hash = ?3 AND id != ?4
                   AND state != 'deleting'
                 ORDER BY state = 'present' DESC, id LIMIT 1"
            ))
            .and_then(|mut st| {
                st.query_row(
                    params![dest_id, album, hash.as_slice(), except],
                    entry_from_row,
                )
                .optional()
            })
            .map_err(|e| self.err(e))
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
        let state = match state {
            EntryState::Reserved => "reserved",
            EntryState::Present => "present",
            EntryState::Deleting => "deleting",
        };
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
            .prepare_cached(&format!("{ENTRY_SELECT} WHERE dest_id = ?1 AND {filter}"))
            .and_then(|mut st| st.query_map([dest_id], entry_from_row)?.collect())
            .map_err(|e| self.err(e))
    }

    /// Failed files go back to the queue now.
    pub fn retry_failed(&self) -> Result<u64> {
        self.exec("UPDATE files SET state = 'pending', next_attempt_at = 0, attempts = 0 WHERE state = 'failed'",
                [],).map(|n| n as u64)
    }

    // ---- status ------------------------------------------------------------

    /// Per-state file counts of a watch (vanished files not counted).
    pub fn watch_counts(&self, watch_id: i64) -> Result<Vec<(FileState, u64)>> {
        self.conn
            .prepare_cached(
                "SELECT f.state, count(*) FROM files f JOIN dirs d ON d.id = f.dir_id
                 WHERE d.watch_id = ?1 AND f.gone = 0 GROUP BY f.state
                 UNION ALL
                 SELECT 'skipped', count(*) FROM dirs
                 WHERE watch_id = ?1 AND unreachable IS NOT NULL",
            )
            .and_then(|mut st| {
                st.query_map([watch_id], |r| {
                    Ok((
                        FileState::parse(&r.get::<_, String>(0)?),
                        r.get::<_, i64>(1)? as u64,
                    ))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Files that failed or were skipped, with their reasons.
    pub fn problems(&self, watch_id: i64, limit: usize) -> Result<Vec<ProblemRow>> {
        self.conn
            .prepare_cached(
                "SELECT rel, name, state, reason FROM (
                     SELECT d.rel AS rel, f.name AS name, f.state AS state,
                            coalesce(f.error, '') AS reason FROM files f
                       JOIN dirs d ON d.id = f.dir_id
                     WHERE d.watch_id = ?1 AND f.gone = 0 AND f.state IN ('failed', 'skipped')
                     UNION ALL
                     SELECT rel, X'', 'skipped', unreachable FROM dirs
                     WHERE watch_id = ?1 AND unreachable IS NOT NULL)
                 ORDER BY rel, name LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![watch_id, limit as i64], |r| {
                    Ok(ProblemRow {
                        dir_rel: r.get(0)?,
                        name: r.get(1)?,
                        state: FileState::parse(&r.get::<_, String>(2)?),
                        reason: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }
}
