//! What the engine tells its host while it works. Hosts (CLI, tray app)
//! receive these through a callback; the engine knows nothing about them.

use serde::{Deserialize, Serialize};

use crate::capture::Captured;

/// How a file reached its album.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its bytes were sent.
    Uploaded,
    /// The same content was already in the album: nothing sent.
    Linked,
    /// Renamed or moved: the album entry followed, nothing sent.
    Moved,
    /// Its content was checked and found unchanged.
    Unchanged,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ScanStarted {
        watch: String,
    },
    ScanFinished {
        watch: String,
        files: u64,
        new: u64,
        changed: u64,
        vanished: u64,
        moved: u64,
        ignored: u64,
    },
    /// The watched root is missing or not the folder that was added:
    /// nothing of this watch is touched until it is back.
    WatchMissing {
        watch: String,
        reason: String,
    },
    /// The upload phase starts with this much to do.
    Queue {
        files: u64,
        bytes: u64,
    },
    FileDone {
        path: String,
        album: String,
        name: String,
        outcome: Outcome,
        /// Bytes sent to the destination.
        bytes: u64,
        /// Bytes of the file that are now accounted for (its size).
        size: u64,
        /// When its item was taken, and where that was read.
        #[serde(skip_serializing_if = "Option::is_none")]
        taken: Option<Captured>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    FileFailed {
        path: String,
        error: String,
        size: u64,
    },
    FileSkipped {
        path: String,
        reason: String,
    },
    /// A file or folder a scan left out on purpose (junk, hidden, not a
    /// photo or video), and why.
    FileIgnored {
        path: String,
        reason: String,
    },
    FileRemoved {
        album: String,
        name: String,
    },
    /// Too many files vanished at once from a watch whose policy is
    /// `remove`: nothing is deleted until the user confirms.
    DeletionsHeld {
        watch: String,
        count: u64,
    },
    /// A running engine changed how it watches a folder.
    Watcher {
        watch: String,
        state: String,
    },
    DestinationUnavailable {
        dest: String,
        error: String,
    },
    /// The destinations that cannot be used now changed (one went down or
    /// came back); `down` lists them all, as `status` shows them.
    DestinationHealth {
        down: Vec<crate::error::DestDown>,
    },
    /// A condition began or stopped holding uploads (quiet hours, the
    /// battery, a metered network); `waiting` is what holds them now, as
    /// `status` shows it.
    UploadsWaiting {
        waiting: Option<crate::waiting::Waiting>,
    },
    /// The engine cannot go on for now (its data disk is full) and waits,
    /// trying again every `retry_secs`.
    EngineWaiting {
        reason: String,
        retry_secs: u64,
    },
    /// The running engine checked that what the index records is on the
    /// destinations (about monthly): `shoebox verify` lists the problems.
    BackupChecked {
        checked: u64,
        missing: u64,
        damaged: u64,
        unexpected: u64,
    },
}
