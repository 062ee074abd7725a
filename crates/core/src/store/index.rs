//! The file index, the upload queue and the record of what each destination
//! holds (`dirs`, `files`, `entries`). Every state change is one statement or
//! one transaction, committed before the engine acts on it.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, now_ms, now_secs};
use crate::capture::{Captured, DateSource};
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

super::codes::stored_as_text!(FileState, "file state", {
    Pending => "pending",
    Uploading => "uploading",
    Uploaded => "uploaded",
    Failed => "failed",
    Skipped => "skipped",
});

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

/// Another file of a file's folder (see [`Store::folder_mates`]).
#[derive(Debug, Clone)]
pub struct FolderMate {
    pub id: i64,
    pub name: Vec<u8>,
    pub entry_id: Option<i64>,
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
    /// Its capture date, once it was read (with its hash).
    pub captured: Option<Captured>,
    /// Its Live Photo identifier, once it was read (`crate::live_photo`).
    pub live_id: Option<String>,
}

/// A file that failed or was skipped.
#[derive(Debug, Clone)]
pub struct ProblemRow {
    pub dir_rel: Vec<u8>,
    pub name: Vec<u8>,
    pub state: FileState,
    pub reason: String,
}

/// One file of a watch as `status --files` shows it: where it is, how far
/// its backup is, where it went and when it was taken.
#[derive(Debug, Clone)]
pub struct FileDetailRow {
    pub dir_rel: Vec<u8>,
    pub name: Vec<u8>,
    pub size: u64,
    pub state: FileState,
    /// The album and name of its entry on the watch's destination.
    pub stored_as: Option<(String, String)>,
    pub captured: Option<Captured>,
    pub error: Option<String>,
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

fn folder_mate(r: &Row<'_>) -> rusqlite::Result<FolderMate> {
    Ok(FolderMate {
        id: r.get(0)?,
        name: r.get(1)?,
        entry_id: r.get(2)?,
    })
}

/// A capture date from its two columns (`captured`, `captured_from`).
fn captured_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<Option<Captured>> {
    let (Some(text), Some(from)) = (
        r.get::<_, Option<String>>(first)?,
        r.get::<_, Option<DateSource>>(first + 1)?,
    ) else {
        return Ok(None);
    };
    Captured::parse(&text, from).map(Some).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            first,
            rusqlite::types::Type::Text,
            format!("the store holds a capture date it cannot read: {text:?}").into(),
        )
    })
}

pub(super) fn hash_from(v: Option<Vec<u8>>) -> Option<Hash> {
    v.and_then(|b| b.try_into().ok())
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

    /// Runs `f` in one transaction; inside a transaction already under way
    /// (a turn of the upload pipeline), as a savepoint of it.
    pub fn transaction<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return self.savepoint(f);
        }
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

    fn savepoint<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        // Prepared once: a busy pipeline runs two of these per transition.
        let run = |sql: &str| {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut st| st.execute([]))
                .map(drop)
                .map_err(|e| self.err(e))
        };
        run("SAVEPOINT step")?;
        match f(self) {
            Ok(v) => {
                run("RELEASE step")?;
                Ok(v)
            }
            Err(e) => {
                let _ = run("ROLLBACK TO step");
                let _ = run("RELEASE step");
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
                state: r.get(7)?,
                gone: r.get(8)?,
                error: r.get(9)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// The other files (not gone) in the folder of `file_id` whose names
    /// start with `prefix`, with their album entries: the candidates for
    /// the file's item (see `item`).
    pub fn folder_mates(&self, file_id: i64, prefix: &[u8]) -> Result<Vec<FolderMate>> {
        let mut hi = prefix.to_vec();
        hi.extend_from_slice(&[0xff; 8]);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, name, entry_id FROM files
                 WHERE dir_id = (SELECT dir_id FROM files WHERE id = ?1)
                   AND name >= ?2 AND name < ?3 AND id != ?1 AND gone = 0",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![file_id, prefix, hi], folder_mate)
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// The other files (not gone) in the folder of `file_id` that carry the
    /// Live Photo identifier `live_id`, whatever their names.
    pub fn live_mates(&self, file_id: i64, live_id: &str) -> Result<Vec<FolderMate>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, name, entry_id FROM files
                 WHERE dir_id = (SELECT dir_id FROM files WHERE id = ?1)
                   AND live_id = ?2 AND id != ?1 AND gone = 0",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![file_id, live_id], folder_mate)
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Records the Live Photo identifier read with a file's hash.
    pub fn set_live_id(&self, id: i64, live_id: Option<&str>) -> Result<()> {
        self.exec(
            "UPDATE files SET live_id = ?2 WHERE id = ?1",
            params![id, live_id],
        )
        .map(drop)
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
    /// many moves were found. A vanished file holds its entry whatever its
    /// state: one renamed again before its first move reached the
    /// destination (a crash came between) still has its object at the old
    /// name, or a move of it under way, and the new path takes that over.
    pub fn match_moves(&self, watch_id: i64) -> Result<u64> {
        let moves: Vec<(i64, i64, Option<i64>, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT g.id, n.id, g.btime_ns, n.btime_ns FROM files g
                   JOIN dirs gd ON gd.id = g.dir_id
                   JOIN files n ON n.ino = g.ino AND n.size = g.size AND n.mtime_ns = g.mtime_ns
                               AND n.dev = g.dev
                   JOIN dirs nd ON nd.id = n.dir_id
                 WHERE g.gone = 1 AND g.entry_id IS NOT NULL
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
            // A proven move keeps what reading the file found: its hash and
            // its capture date.
            let read = if proven {
                "hash = o.hash, captured = o.captured, captured_from = o.captured_from, \
                 live_id = o.live_id"
            } else {
                "hash = NULL"
            };
            self.conn
                .execute(
                    &format!(
                        "UPDATE files SET {read}, entry_id = o.entry_id
                         FROM (SELECT hash, captured, captured_from, live_id, entry_id
                               FROM files WHERE id = ?1) AS o
                         WHERE files.id = ?2"
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
            "UPDATE files INDEXED BY files_by_state SET state = 'pending'
             WHERE state = 'uploading' AND state != 'uploaded'",
            [],
        )
        .map(|n| n as u64)
    }

    /// Number and total size of the files waiting to be processed.
    pub fn queue_totals(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(f.size), 0) FROM files f INDEXED BY files_by_state
                   JOIN dirs d ON d.id = f.dir_id JOIN watches w ON w.id = d.watch_id
                 WHERE f.state IN ('pending', 'failed') AND f.state != 'uploaded' AND f.gone = 0
                   AND w.state = 'ok'",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Whether any file waits or failed, from the index of unfinished
    /// files: `next_queued` walks the index in path order, which reads
    /// every file's row, so an empty queue is found out here first.
    fn anything_queued(&self) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM files INDEXED BY files_by_state
                                WHERE state IN ('pending', 'failed') AND state != 'uploaded'
                                  AND gone = 0)",
            )
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// The next files to process, in a stable order (watch, directory,
    /// name), after the key `after`.
    /// Failed files are included once `retry_failed_before` (unix seconds)
    /// has passed their `next_attempt_at`.
    ///
    /// Read in two ranges: the rest of the directory `after` is in, then
    /// the directories after it. One condition on the whole key would
    /// make SQLite walk the directory's files from its first name at every
    /// call, and a queue read through in steps would cost the square of a
    /// large folder's size.
    pub fn next_queued(
        &self,
        after: &(i64, Vec<u8>, Vec<u8>),
        retry_failed_before: i64,
        limit: usize,
    ) -> Result<Vec<QueuedFile>> {
        if !self.anything_queued()? {
            return Ok(Vec::new());
        }
        macro_rules! queued {
            ($range:literal) => {
                concat!(
                    "SELECT f.id, d.watch_id, d.rel, f.name, f.size, f.mtime_ns, f.ctime_ns,
                            f.ino, f.dev, f.hash, f.entry_id, f.attempts, f.fp_since_ms,
                            f.captured, f.captured_from, f.live_id
                     FROM files f JOIN dirs d ON d.id = f.dir_id
                                  JOIN watches w ON w.id = d.watch_id
                     WHERE (f.state = 'pending' OR (f.state = 'failed' AND f.next_attempt_at <= ?5))
                       AND f.gone = 0 AND w.state = 'ok' AND ",
                    $range
                )
            };
        }
        let mut files = self.queued_where(
            queued!("d.watch_id = ?1 AND d.rel = ?2 AND f.name > ?3 ORDER BY f.name LIMIT ?4"),
            after,
            retry_failed_before,
            limit,
        )?;
        if files.len() < limit {
            files.extend(self.queued_where(
                queued!(
                    "(d.watch_id, d.rel) > (?1, ?2) ORDER BY d.watch_id, d.rel, f.name LIMIT ?4"
                ),
                after,
                retry_failed_before,
                limit - files.len(),
            )?);
        }
        Ok(files)
    }

    /// The queued files `sql` selects (parameters as [`Self::next_queued`]'s).
    fn queued_where(
        &self,
        sql: &str,
        after: &(i64, Vec<u8>, Vec<u8>),
        retry_failed_before: i64,
        limit: usize,
    ) -> Result<Vec<QueuedFile>> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
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
                captured: captured_from_row(r, 13)?,
                live_id: r.get(15)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// Records a file's capture date, read with its hash.
    /// A file's capture date, if it was read.
    pub fn captured_of(&self, id: i64) -> Result<Option<Captured>> {
        self.conn
            .prepare_cached("SELECT captured, captured_from FROM files WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id], |r| captured_from_row(r, 0))
                    .optional()
                    .map(Option::flatten)
            })
            .map_err(|e| self.err(e))
    }

    pub fn set_captured(&self, id: i64, captured: &Captured) -> Result<()> {
        self.exec(
            "UPDATE files SET captured = ?2, captured_from = ?3 WHERE id = ?1",
            params![id, captured.text(), captured.from],
        )
        .map(drop)
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

    /// When the next failed file is due for another attempt after `after`
    /// (unix seconds), if one is.
    pub fn next_failed_attempt(&self, after: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM files
                 WHERE state = 'failed' AND gone = 0 AND next_attempt_at > ?1",
                [after],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
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

    /// Failed files go back to the queue now.
    pub fn retry_failed(&self) -> Result<u64> {
        self.exec("UPDATE files SET state = 'pending', next_attempt_at = 0, attempts = 0 WHERE state = 'failed'",
                [],).map(|n| n as u64)
    }

    // ---- status ------------------------------------------------------------

    /// Per-state file counts of a watch (vanished files not counted).
    pub fn watch_counts(&self, watch_id: i64) -> Result<Vec<(FileState, u64, u64)>> {
        self.state_counts(
            watch_id,
            "SELECT f.state, count(*), coalesce(sum(f.size), 0) FROM files f
               JOIN dirs d ON d.id = f.dir_id
             WHERE d.watch_id = ?1 AND f.gone = 0 GROUP BY f.state",
        )
    }

    /// The files of a watch not uploaded, by state: `watch_counts` without
    /// the uploaded, read from the index of unfinished files alone, so that
    /// it costs nothing on a backup that is complete.
    pub fn unfinished_counts(&self, watch_id: i64) -> Result<Vec<(FileState, u64, u64)>> {
        self.state_counts(
            watch_id,
            "SELECT f.state, count(*), coalesce(sum(f.size), 0) FROM files f INDEXED BY files_by_state
               JOIN dirs d ON d.id = f.dir_id
             WHERE d.watch_id = ?1 AND f.gone = 0 AND f.state != 'uploaded'
             GROUP BY f.state",
        )
    }

    /// The per-state counts and bytes the query `by_state` gives for
    /// watch `?1`, and the folders that could not be read, counted as
    /// skipped.
    fn state_counts(&self, watch_id: i64, by_state: &str) -> Result<Vec<(FileState, u64, u64)>> {
        self.conn
            .prepare_cached(&format!(
                "{by_state}
                 UNION ALL
                 SELECT 'skipped', count(*), 0 FROM dirs
                 WHERE watch_id = ?1 AND unreachable IS NOT NULL"
            ))
            .and_then(|mut st| {
                st.query_map([watch_id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)?.max(0) as u64,
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
                            coalesce(f.error, '') AS reason FROM files f INDEXED BY files_by_state
                       JOIN dirs d ON d.id = f.dir_id
                     WHERE d.watch_id = ?1 AND f.gone = 0 AND f.state IN ('failed', 'skipped')
                       AND f.state != 'uploaded'
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
                        state: r.get(2)?,
                        reason: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Every file of a watch still there, in path order, with its entry
    /// and capture date (`status --files`).
    pub fn file_details(&self, watch_id: i64) -> Result<Vec<FileDetailRow>> {
        self.conn
            .prepare_cached(
                "SELECT d.rel, f.name, f.size, f.state, e.album, e.name, f.captured,
                        f.captured_from, f.error
                 FROM files f JOIN dirs d ON d.id = f.dir_id
                 LEFT JOIN entries e ON e.id = f.entry_id
                 WHERE d.watch_id = ?1 AND f.gone = 0
                 ORDER BY d.rel, f.name",
            )
            .and_then(|mut st| {
                st.query_map([watch_id], |r| {
                    let album: Option<String> = r.get(4)?;
                    let name: Option<String> = r.get(5)?;
                    Ok(FileDetailRow {
                        dir_rel: r.get(0)?,
                        name: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        state: r.get(3)?,
                        stored_as: album.zip(name),
                        captured: captured_from_row(r, 6)?,
                        error: r.get(8)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }
}
