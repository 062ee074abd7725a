//! The engine's error types. Every message says what happened and what the
//! user can do; whether an error is worth retrying is a property of the error.

use std::io;
use std::path::PathBuf;

/// Errors of the engine's API: opening the store, configuring watches and
/// destinations, starting a sync.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", store_message(path, source))]
    Store {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the Shoebox database at {path} could not be brought up to date: {message}. \
         Please report this. To start over, move the file aside and add the folders and \
         destinations again: files already backed up are recognised, not uploaded twice"
    )]
    StoreSchema { path: PathBuf, message: String },
    #[error(
        "the Shoebox database at {path} was written by a newer version of Shoebox; \
         update Shoebox to use it (it was left untouched)"
    )]
    StoreTooNew { path: PathBuf },
    #[error(
        "another Shoebox engine is using {home}: {holder}. Wait for it to finish or stop it, then try again"
    )]
    Locked { home: PathBuf, holder: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A folder that cannot be watched; `why` says why and what to do.
    #[error("cannot watch {}: {why}", folder.display())]
    Folder {
        folder: PathBuf,
        problem: FolderProblem,
        why: String,
    },
    /// A request that cannot be carried out as given; the message says why
    /// and what to do instead.
    #[error("{0}")]
    Invalid(String),
    /// An SSH server seen for the first time: its host key is trusted only
    /// once the user confirms its fingerprint.
    #[error(
        "{host} (port {port}) is not known to this computer yet; its host key fingerprint is \
         {fingerprint}. Check it with the server's administrator (`ssh-keygen -lf \
         /etc/ssh/ssh_host_ed25519_key.pub` on the server), then add the destination again with \
         --trust-host-key {fingerprint}"
    )]
    HostKeyUnknown {
        host: String,
        port: u16,
        fingerprint: String,
    },
    /// A key file for an encrypted destination that cannot be used (yet):
    /// `problem` tells a host whether to ask for the passphrase.
    #[error("{why}")]
    KeyFile {
        problem: KeyFileProblem,
        why: String,
    },
}

/// Why a key file was refused, for hosts that ask again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileProblem {
    /// It is protected by a passphrase, and none was given.
    NeedsPassphrase,
    WrongPassphrase,
    /// It holds no age identity.
    NotAKey,
}

/// Why a folder cannot be watched, for UIs to act on (the window marks the
/// folder field for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderProblem {
    /// It does not exist (or a part of its path does not).
    Missing,
    NotAFolder,
    /// It exists but cannot be read.
    Unreadable,
    /// One of the system's live views (/proc, /sys …), not files.
    SystemView,
}

impl FolderProblem {
    pub fn code(self) -> &'static str {
        match self {
            FolderProblem::Missing => "folder_missing",
            FolderProblem::NotAFolder => "not_a_folder",
            FolderProblem::Unreadable => "folder_unreadable",
            FolderProblem::SystemView => "folder_is_system_view",
        }
    }
}

/// What a store error means for the user, by its cause: only damage
/// points at `shoebox doctor`.
fn store_message(path: &std::path::Path, source: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode::*;
    let path = path.display();
    match source.sqlite_error_code() {
        Some(DatabaseCorrupt | NotADatabase) => format!(
            "the Shoebox database at {path} is damaged ({source}). `shoebox doctor` checks it and \
             `shoebox doctor --repair` rebuilds it (the settings are kept, the file index is \
             rebuilt by rescanning, nothing is uploaded twice)"
        ),
        Some(DiskFull) => format!(
            "the disk holding the Shoebox database {path} is full ({source}); free some space \
             there, and Shoebox carries on where it stopped"
        ),
        Some(DatabaseBusy | DatabaseLocked) => format!(
            "the Shoebox database at {path} is busy with another command ({source}); try again \
             in a moment"
        ),
        Some(ReadOnly | PermissionDenied | CannotOpen) => format!(
            "the Shoebox database at {path} cannot be written ({source}); check that the data \
             folder is writable by you and its disk is mounted"
        ),
        Some(ConstraintViolation) => format!(
            "the Shoebox database at {path} was changed meanwhile by another command ({source}); \
             try again"
        ),
        Some(SystemIoFailure) => format!(
            "the disk holding the Shoebox database {path} failed to read or write ({source}); \
             check the disk. If the database was damaged, `shoebox doctor --repair` rebuilds it"
        ),
        _ => format!("the Shoebox database at {path} could not be used: {source}"),
    }
}

impl Error {
    /// True when the store could not be written for a reason that passes
    /// (a full disk, a busy database): worth waiting for, not stopping.
    pub fn is_transient_store_error(&self) -> bool {
        use rusqlite::ErrorCode::*;
        matches!(
            self,
            Error::Store { source, .. }
                if matches!(source.sqlite_error_code(), Some(DiskFull | DatabaseBusy | DatabaseLocked))
        )
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// A stable, machine-readable code for UIs (`{code, message}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store { source, .. }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
                ) =>
            {
                "store_damaged"
            }
            Error::Store { .. } => "store",
            Error::StoreTooNew { .. } => "store_too_new",
            Error::StoreSchema { .. } => "store",
            Error::Locked { .. } => "locked",
            Error::Io { .. } => "io",
            Error::Folder { problem, .. } => problem.code(),
            Error::Invalid(_) => "invalid",
            Error::HostKeyUnknown { .. } => "host_key_unknown",
            Error::KeyFile { problem, .. } => match problem {
                KeyFileProblem::NeedsPassphrase => "key_needs_passphrase",
                KeyFileProblem::WrongPassphrase => "key_wrong_passphrase",
                KeyFileProblem::NotAKey => "key_not_a_key",
            },
        }
    }
}

/// Why a destination cannot be used now, for UIs to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DestProblem {
    /// It cannot be reached, refuses the credentials, is not the backup it
    /// was (its drive unmounted), or its settings are incomplete.
    #[serde(rename = "dest_unreachable")]
    Unreachable,
    /// Its disk is full.
    #[serde(rename = "dest_full")]
    Full,
}

/// A destination that cannot be used now: the code a UI reads and the
/// message it shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestDown {
    pub dest: String,
    pub code: DestProblem,
    pub message: String,
}

impl DestDown {
    pub(crate) fn unreachable(dest: &str, message: String) -> DestDown {
        DestDown {
            dest: dest.to_string(),
            code: DestProblem::Unreachable,
            message,
        }
    }

    pub(crate) fn from_error(dest: &str, error: &DestError) -> DestDown {
        DestDown {
            dest: dest.to_string(),
            code: match error {
                DestError::Full { .. } => DestProblem::Full,
                _ => DestProblem::Unreachable,
            },
            message: error.to_string(),
        }
    }
}

/// Why a destination could not take a file.
#[derive(Debug, thiserror::Error)]
pub enum DestError {
    /// The whole destination is unusable right now (missing, unmounted,
    /// full): nothing else should be tried on it in this pass.
    #[error("destination {name} is unavailable: {why}")]
    Unavailable { name: String, why: String },
    #[error("destination {name} is full: {source}. Free some space there, then sync again")]
    Full {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("destination {name}: could not {what}: the server answered HTTP {status}{}", if *transient { "; it will be tried again" } else { "" })]
    Http {
        name: String,
        what: String,
        status: u16,
        transient: bool,
        /// Seconds the server asked us to wait (Retry-After).
        retry_after: Option<u64>,
    },
    /// A request that started but did not finish (timeout, reset).
    #[error("destination {name}: could not {what}: {why}; it will be tried again")]
    Interrupted {
        name: String,
        what: String,
        why: String,
    },
    /// Something else took the name between the check and the write (a
    /// second computer backing up into the same destination): nothing was
    /// overwritten, and the file takes the next free name.
    #[error(
        "destination {name}: {album}/{object} was taken by someone else meanwhile; the file takes another name"
    )]
    NameTaken {
        name: String,
        album: String,
        object: String,
    },
    #[error("could not write {path} on destination {name}: {source}")]
    Io {
        name: String,
        path: String,
        #[source]
        source: io::Error,
    },
    /// The server holds `object` but could not copy it (s3rver misreads a
    /// `+` in the copy's source): the file is sent again instead.
    #[error(
        "destination {name}: the server could not copy {object} though it holds it (it misreads \
         the name); the file is uploaded instead"
    )]
    CopyRefused { name: String, object: String },
    /// A name too long to be hidden (`--encrypt-names`): its token would
    /// not fit a file name.
    #[error(
        "destination {name} hides names, and {object} is too long to be hidden (at most {max} \
         bytes): give the file or its folder a shorter name"
    )]
    NameTooLong {
        name: String,
        object: String,
        max: usize,
    },
}

impl DestError {
    /// True when the error concerns the whole destination, not one file.
    pub fn is_destination_wide(&self) -> bool {
        matches!(self, DestError::Unavailable { .. } | DestError::Full { .. })
    }

    pub fn is_transient(&self) -> bool {
        match self {
            DestError::Io { source, .. } => is_transient_io(source),
            DestError::Http { transient, .. } => *transient,
            DestError::Interrupted { .. } => true,
            _ => false,
        }
    }
}

/// Why one file could not be backed up.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("could not read the file: {0}. Check that it is readable, then sync again")]
    Read(#[source] io::Error),
    #[error(
        "the file changed while it was being read; it will be read again once it stops changing"
    )]
    Changed,
    #[error("the file disappeared before it could be read")]
    Vanished,
    #[error("stopped before the file was done; it stays queued")]
    Cancelled,
    #[error(transparent)]
    Dest(#[from] DestError),
}

impl FileError {
    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            FileError::Dest(DestError::Http {
                retry_after: Some(s),
                ..
            }) => Some(std::time::Duration::from_secs(*s)),
            _ => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            FileError::Read(e) => is_transient_io(e),
            FileError::Changed => true,
            FileError::Vanished | FileError::Cancelled => false,
            FileError::Dest(d) => d.is_transient(),
        }
    }
}

pub(crate) fn is_transient_io(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        Interrupted | WouldBlock | TimedOut | ConnectionReset | ConnectionAborted | ResourceBusy
    )
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn store_error(code: std::ffi::c_int) -> Error {
        Error::Store {
            path: PathBuf::from("/data/shoebox.db"),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        }
    }

    #[test]
    fn only_damage_points_at_doctor_and_a_full_disk_is_worth_waiting_for() {
        let damaged = store_error(rusqlite::ffi::SQLITE_CORRUPT).to_string();
        assert!(damaged.contains("damaged") && damaged.contains("shoebox doctor --repair"));
        let full = store_error(rusqlite::ffi::SQLITE_FULL);
        assert!(full.to_string().contains("is full") && !full.to_string().contains("doctor"));
        assert!(full.is_transient_store_error());
        let busy = store_error(rusqlite::ffi::SQLITE_BUSY);
        assert!(busy.to_string().contains("busy") && !busy.to_string().contains("damaged"));
        let raced = store_error(rusqlite::ffi::SQLITE_CONSTRAINT).to_string();
        assert!(raced.contains("changed meanwhile") && !raced.contains("damaged"));
        assert!(!store_error(rusqlite::ffi::SQLITE_CORRUPT).is_transient_store_error());
    }
}
