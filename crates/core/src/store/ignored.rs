//! What scans left out on purpose, by folder, with the reason each
//! `file_ignored` event gave: for `status --ignored` and the window.

use rusqlite::params;

use super::Store;
use crate::error::Result;

/// An entry a scan left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredRow {
    pub dir_rel: Vec<u8>,
    pub name: Vec<u8>,
    pub reason: String,
}

impl Store {
    /// Forgets everything recorded as ignored in a watch (a full scan
    /// records it again).
    pub fn clear_ignored(&self, watch_id: i64) -> Result<()> {
        self.exec("DELETE FROM ignored WHERE watch_id = ?1", [watch_id])
            .map(drop)
    }

    /// Replaces what is recorded as ignored in one folder.
    pub fn set_ignored(
        &self,
        watch_id: i64,
        dir_rel: &[u8],
        names: &[(Vec<u8>, &str)],
    ) -> Result<()> {
        self.exec(
            "DELETE FROM ignored WHERE watch_id = ?1 AND dir_rel = ?2",
            params![watch_id, dir_rel],
        )?;
        for (name, reason) in names {
            self.add_ignored(watch_id, dir_rel, name, reason)?;
        }
        Ok(())
    }

    pub fn add_ignored(
        &self,
        watch_id: i64,
        dir_rel: &[u8],
        name: &[u8],
        reason: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO ignored (watch_id, dir_rel, name, reason)
             VALUES (?1, ?2, ?3, ?4)",
            params![watch_id, dir_rel, name, reason],
        )
        .map(drop)
    }

    /// Up to `limit` ignored entries of a watch, in path order.
    pub fn ignored(&self, watch_id: i64, limit: usize) -> Result<Vec<IgnoredRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT dir_rel, name, reason FROM ignored WHERE watch_id = ?1
                 ORDER BY dir_rel, name LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![watch_id, limit as i64], |r| {
            Ok(IgnoredRow {
                dir_rel: r.get(0)?,
                name: r.get(1)?,
                reason: r.get(2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }
}
