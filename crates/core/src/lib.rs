//! shoebox-core: the Shoebox engine. Watches folders, keeps a file index
//! and upload queue in SQLite, and copies photos and videos into albums on a
//! destination. No GUI dependency: the CLI and the tray app are thin hosts.
//!
//! Hosts use [`Engine`] and the types re-exported here; the store, the
//! upload path, the live engine and the scanner are private to the crate.
//! The map of the code is docs/ARCHITECTURE.md.

pub mod album;
mod capture;
mod check;
mod clock;
mod coalesce;
mod conditions;
mod config;
mod daemon;
mod deletion;
mod dest;
mod engine;
mod error;
mod events;
mod filter;
mod hash;
mod home;
mod item;
mod live_photo;
mod local_api;
mod lock;
pub mod logging;
mod platform;
pub mod progress;
mod report;
mod retry;
mod scan;
mod schedule;
mod seal;
mod secrets;
mod settle;
mod store;
mod sync;
mod transfer;
mod upload;
mod waiting;
mod watcher;

pub use album::{AlbumMode, AlbumNames, DateFormat};
pub use capture::{Captured, DateSource};
pub use check::{BackupCheck, Finding, VerifyOptions, VerifyProblem, VerifyReport};
pub use config::ConfigEntry;
pub use daemon::RunOptions;
pub use dest::sftp::{KeyProblem, private_key_text};
pub use dest::{Check, tls::read_pem_file};
pub use engine::{
    DestEdit, DestInfo, Engine, FileStatus, Followed, IMMICH_UNENCRYPTED, IgnoredFile, KeySource,
    QueueStatus, RestoreEvent, RestoreOptions, RestoreReport, Restored, S3Spec, SftpSignIn,
    SftpSpec, Status, WatchInfo, WatchSpec, WatchStatus, check_store, key_warning, repair_store,
};
pub use error::{DestDown, DestProblem, Error, FolderProblem, KeyFileProblem, Result};
pub use events::{Event, Outcome};
pub use hash::content_hash;
pub use home::{Home, LIBRARY_DEST};
pub use lock::EngineLock;
pub use lock::holder as engine_holder;
pub use report::{Problem, SyncReport};
pub use store::repair::{Health, Repair};
pub use store::{DestKind, OnDelete, SshAuth, WatcherKind};
pub use sync::SyncOptions;
pub use upload::Uploading;
pub use waiting::{Holds, WaitReason, Waiting};
