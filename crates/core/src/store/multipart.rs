//! The multipart log: S3 multipart uploads in progress and the parts the
//! server has acknowledged, so that an engine restarted mid-upload continues
//! where it stopped instead of sending the whole file again. Upload workers
//! write it through their own connection to the store.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};

use super::{Hash, Store, now_secs};
use crate::error::Result;

/// One multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRecord {
    pub upload_id: String,
    pub object_key: String,
    /// The content being uploaded (BLAKE3) and its size.
    pub content: Hash,
    pub size: u64,
    pub part_size: u64,
    pub started_at: i64,
    /// Acknowledged parts: (part number, server ETag, MD5 of the bytes).
    pub parts: Vec<(u32, String, [u8; 16])>,
}

/// The multipart uploads of one destination.
#[derive(Debug)]
pub struct MultipartLog {
    store: Mutex<Store>,
    dest_id: i64,
}

impl MultipartLog {
    /// Opens its own connection to the store at `db`.
    pub fn open(db: &Path, dest_id: i64) -> Result<MultipartLog> {
        Ok(MultipartLog {
            store: Mutex::new(Store::open(db)?),
            dest_id,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&store)
    }

    /// The upload in progress for `key`, with its acknowledged parts.
    pub fn find(&self, key: &str) -> Result<Option<MultipartRecord>> {
        let id = self.with(|s| {
            s.conn
                .query_row(
                    "SELECT upload_id FROM multipart_uploads WHERE dest_id = ?1 AND object_key = ?2",
                    params![self.dest_id, key],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(|e| s.err(e))
        })?;
        match id {
            Some(id) => self.record(&id),
            None => Ok(None),
        }
    }

    fn record(&self, upload_id: &str) -> Result<Option<MultipartRecord>> {
        self.with(|s| {
            let head = s
                .conn
                .query_row(
                    "SELECT object_key, content, size, part_size, started_at
                     FROM multipart_uploads WHERE upload_id = ?1",
                    [upload_id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| s.err(e))?;
            let Some((object_key, content, size, part_size, started_at)) = head else {
                return Ok(None);
            };
            let mut st = s
                .conn
                .prepare_cached(
                    "SELECT part_number, etag, md5 FROM multipart_parts
                     WHERE upload_id = ?1 ORDER BY part_number",
                )
                .map_err(|e| s.err(e))?;
            let parts = st
                .query_map([upload_id], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(|e| s.err(e))?
                .into_iter()
                .filter_map(|(n, etag, md5)| Some((n, etag, md5.try_into().ok()?)))
                .collect();
            Ok(Some(MultipartRecord {
                upload_id: upload_id.to_string(),
                object_key,
                content: content.try_into().unwrap_or_default(),
                size: size as u64,
                part_size: part_size as u64,
                started_at,
                parts,
            }))
        })
    }

    /// Records a new upload for `key` (replacing any older record for it).
    pub fn start(
        &self,
        key: &str,
        upload_id: &str,
        content: &Hash,
        size: u64,
        part_size: u64,
    ) -> Result<()> {
        self.with(|s| {
            s.exec(
                "DELETE FROM multipart_uploads WHERE dest_id = ?1 AND object_key = ?2",
                params![self.dest_id, key],
            )?;
            s.exec(
                "INSERT INTO multipart_uploads
                 (upload_id, dest_id, object_key, content, size, part_size, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    upload_id,
                    self.dest_id,
                    key,
                    &content[..],
                    size as i64,
                    part_size as i64,
                    now_secs()
                ],
            )
            .map(drop)
        })
    }

    /// Records a part the server acknowledged.
    pub fn part_done(&self, upload_id: &str, part: u32, etag: &str, md5: &[u8; 16]) -> Result<()> {
        self.with(|s| {
            s.exec(
                "INSERT INTO multipart_parts (upload_id, part_number, etag, md5) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag, md5 = excluded.md5",
                params![upload_id, part, etag, &md5[..]],
            )
            .map(drop)
        })
    }

    /// Forgets an upload (completed or aborted).
    pub fn forget(&self, upload_id: &str) -> Result<()> {
        self.with(|s| {
            s.exec(
                "DELETE FROM multipart_uploads WHERE upload_id = ?1",
                [upload_id],
            )
            .map(drop)
        })
    }

    /// Every upload this destination has recorded: (upload id, object
    /// key, start time in Unix seconds).
    pub fn uploads(&self) -> Result<Vec<(String, String, i64)>> {
        self.with(|s| {
            let mut st = s
                .conn
                .prepare_cached(
                    "SELECT upload_id, object_key, started_at FROM multipart_uploads WHERE dest_id = ?1",
                )
                .map_err(|e| s.err(e))?;
            st.query_map([self.dest_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(Iterator::collect)
                .map_err(|e| s.err(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_survive_reopening_and_forget_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("store.db");
        let store = Store::open(&db).unwrap();
        store
            .insert_destination("lib", crate::store::DestKind::Local, None)
            .expect("a destination row for the foreign key");
        let dest_id = store.destination_by_name("lib").unwrap().unwrap().id;
        let content = [7u8; 32];
        {
            let log = MultipartLog::open(&db, dest_id).unwrap();
            log.start("a/b.mov", "up-1", &content, 100, 10).unwrap();
            log.part_done("up-1", 1, "\"e1\"", &[1; 16]).unwrap();
            log.part_done("up-1", 2, "\"e2\"", &[2; 16]).unwrap();
        }
        // A new connection (a restarted engine) sees what the old one wrote.
        let log = MultipartLog::open(&db, dest_id).unwrap();
        let rec = log
            .find("a/b.mov")
            .unwrap()
            .expect("the upload is recorded");
        assert_eq!(rec.upload_id, "up-1");
        assert_eq!(rec.content, content);
        assert_eq!((rec.size, rec.part_size), (100, 10));
        assert_eq!(
            rec.parts,
            vec![(1, "\"e1\"".into(), [1; 16]), (2, "\"e2\"".into(), [2; 16])]
        );
        // Starting over for the same key replaces the old record and its parts.
        log.start("a/b.mov", "up-2", &content, 100, 10).unwrap();
        let rec = log.find("a/b.mov").unwrap().unwrap();
        assert_eq!(rec.upload_id, "up-2");
        assert!(
            rec.parts.is_empty(),
            "parts of the replaced upload are gone"
        );
        let uploads = log.uploads().unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(
            (uploads[0].0.as_str(), uploads[0].1.as_str()),
            ("up-2", "a/b.mov")
        );
        log.forget("up-2").unwrap();
        assert_eq!(log.find("a/b.mov").unwrap(), None);
    }
}
