//! Checking the store and rebuilding a damaged one (`shoebox doctor`).
//!
//! A damaged database is moved aside, never deleted. The new one gets the
//! configuration that can still be read from it (destinations, watches,
//! settings); the file index starts empty and the next scan rebuilds it.
//! Objects already in the albums are then recognised by content (see
//! `Destination::holds`), so nothing is uploaded a second time.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{Store, now_secs, schema_version};
use crate::error::{Error, Result};

/// What `shoebox doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// No database yet (nothing was ever configured here).
    Missing,
    Healthy,
    /// SQLite's own integrity check failed; the lines say where.
    Damaged {
        problems: Vec<String>,
    },
    /// Written by a newer Shoebox: left alone.
    TooNew {
        version: i64,
    },
}

/// What `shoebox doctor --repair` did.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// Where the damaged database now is.
    pub moved_to: PathBuf,
    /// Configuration rows carried over, per table.
    pub kept: Vec<(String, u64)>,
    /// Configuration that could not be read, with what to do about it.
    pub lost: Vec<String>,
}

/// Tables carried over, parents first (foreign keys).
const CONFIG_TABLES: &[&str] = &["settings", "destinations", "watches"];

/// Runs SQLite's integrity check without changing anything.
pub fn check(path: &Path) -> Result<Health> {
    if !path.exists() {
        return Ok(Health::Missing);
    }
    let damaged = |e: rusqlite::Error| {
        Ok(Health::Damaged {
            problems: vec![e.to_string()],
        })
    };
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return damaged(e),
    };
    let version: i64 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(e) => return damaged(e),
    };
    if version > schema_version() as i64 {
        return Ok(Health::TooNew { version });
    }
    let problems: Vec<String> = match conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
    {
        Ok(p) => p,
        Err(e) => return damaged(e),
    };
    Ok(if problems == ["ok"] {
        Health::Healthy
    } else {
        Health::Damaged { problems }
    })
}

/// Moves the database at `path` aside and starts a new one with the
/// configuration that can be read from the old. The caller holds the
/// engine lock. A healthy or newer database is refused.
pub fn repair(path: &Path) -> Result<Repair> {
    match check(path)? {
        Health::Damaged { .. } => {}
        Health::TooNew { .. } => {
            return Err(Error::StoreTooNew {
                path: path.to_path_buf(),
            });
        }
        Health::Healthy | Health::Missing => {
            return Err(Error::Invalid(format!(
                "the Shoebox database at {} is not damaged; there is nothing to repair",
                path.display()
            )));
        }
    }
    let moved_to = aside(path)?;
    let new = Store::open(path)?;
    let mut kept = Vec::new();
    let mut lost = Vec::new();
    match Connection::open_with_flags(&moved_to, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(old) => {
            for table in CONFIG_TABLES {
                match copy_table(&old, &new.conn, table) {
                    Ok(n) => kept.push((table.to_string(), n)),
                    Err(e) => lost.push(format!("{table}: {e}")),
                }
            }
        }
        Err(e) => lost.push(format!("everything: {e}")),
    }
    // The index starts empty: every watch is scanned as new.
    new.exec(
        "UPDATE watches SET state = 'new', state_detail = NULL, scan_gen = 0, last_scan = NULL, ignored = 0",
        [],
    )?;
    Ok(Repair {
        moved_to,
        kept,
        lost,
    })
}

/// Renames the database and its WAL and shared-memory files to
/// `<name>.damaged-<unix seconds>[-wal|-shm]`.
fn aside(path: &Path) -> Result<PathBuf> {
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".damaged-{}", now_secs()));
    let target = PathBuf::from(target);
    for suffix in ["", "-wal", "-shm"] {
        let with = |p: &Path| {
            let mut s = p.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        match fs::rename(with(path), with(&target)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => return Err(Error::io("cannot move the damaged database aside", path, e)),
        }
    }
    Ok(target)
}

/// Copies every readable row of `table` in one transaction (all or
/// nothing), using the columns both databases have (the old one may be an
/// older schema).
fn copy_table(old: &Connection, new: &Connection, table: &str) -> rusqlite::Result<u64> {
    let columns = |c: &Connection| -> rusqlite::Result<Vec<String>> {
        c.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect()
    };
    let theirs = columns(old)?;
    let shared: Vec<String> = columns(new)?
        .into_iter()
        .filter(|c| theirs.contains(c))
        .collect();
    let list = shared.join(", ");
    let marks = vec!["?"; shared.len()].join(", ");
    let tx = new.unchecked_transaction()?;
    // The new store may already have rows (the embedded library destination).
    tx.execute(&format!("DELETE FROM {table}"), [])?;
    let mut read = old.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut write = tx.prepare(&format!("INSERT INTO {table} ({list}) VALUES ({marks})"))?;
    let mut rows = read.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let values: Vec<rusqlite::types::Value> = (0..shared.len())
            .map(|i| row.get(i))
            .collect::<rusqlite::Result<_>>()?;
        write.execute(rusqlite::params_from_iter(values))?;
        n += 1;
    }
    drop(write);
    tx.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(dir: &Path) -> PathBuf {
        let path = dir.join("shoebox.db");
        let s = Store::open(&path).unwrap();
        s.set_setting("paused", "1").unwrap();
        drop(s);
        path
    }

    #[test]
    fn a_healthy_store_checks_ok_and_is_not_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = configured(dir.path());
        assert_eq!(check(&path).unwrap(), Health::Healthy);
        assert!(
            repair(&path).is_err(),
            "repairing a healthy store would throw its index away"
        );
        assert!(path.exists(), "and the store is left where it is");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_damaged_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoebox.db");
        fs::write(&path, b"this is not a database, it is a text file").unwrap();
        assert!(matches!(check(&path).unwrap(), Health::Damaged { .. }));
        let r = repair(&path).unwrap();
        assert!(
            r.moved_to.exists(),
            "the damaged file is kept for inspection"
        );
        assert_eq!(
            check(&path).unwrap(),
            Health::Healthy,
            "a new store is in place"
        );
        assert!(!r.lost.is_empty(), "what could not be read is reported");
    }

    #[test]
    fn a_store_from_a_newer_version_is_reported_and_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = configured(dir.path());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let before = fs::read(&path).unwrap();
        assert_eq!(check(&path).unwrap(), Health::TooNew { version: 99 });
        assert!(matches!(repair(&path), Err(Error::StoreTooNew { .. })));
        assert_eq!(fs::read(&path).unwrap(), before, "not one byte changed");
    }
}
