//! What a sync pass did, file counts and the files it could not back up:
//! what `shoebox sync` prints and the window shows. See
//! docs/ARCHITECTURE.md.

use serde::Serialize;

/// A file that could not be backed up, or was skipped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// What a sync pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub uploaded: u64,
    pub linked: u64,
    pub moved: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Folders that could not be read (their files are among `skips` with
    /// the reason): what is in them cannot be backed up.
    pub unreadable_folders: u64,
    pub ignored: u64,
    /// Files still waiting (their destination was unavailable).
    pub waiting: u64,
    pub missing_watches: Vec<String>,
    /// Watches whose deletions are held for the user to confirm.
    pub deletions_held: Vec<String>,
    pub unavailable_destinations: Vec<String>,
    pub bytes_uploaded: u64,
    /// Bytes read from the watched folders (hashing and uploading).
    pub bytes_read: u64,
    pub failures: Vec<Problem>,
    pub skips: Vec<Problem>,
}

impl SyncReport {
    /// True when every eligible file is in its album.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
            && self.unreadable_folders == 0
            && self.waiting == 0
            && self.missing_watches.is_empty()
            && self.unavailable_destinations.is_empty()
    }
}
