//! shoebox-core: the Shoebox engine. Watches folders, keeps a file index
//! and upload queue in SQLite, and copies photos and videos into albums on a
//! destination. No GUI dependency: the CLI and the tray app are thin hosts.
//!
//! Layout: [`engine`] is the API hosts call; [`scan`] reconciles folders with
//! the [`store`]; [`sync`] runs the upload pipeline into a [`dest`]ination;
//! [`album`] and [`filter`] hold the naming and selection rules.

pub mod album;
pub mod coalesce;
pub mod daemon;
pub mod deletion;
pub mod dest;
pub mod engine;
pub mod error;
pub mod events;
pub mod filter;
pub mod hash;
pub mod home;
pub mod lock;
pub mod logging;
pub mod platform;
pub mod progress;
pub mod report;
mod retry;
pub mod scan;
pub mod secrets;
pub mod settle;
pub mod store;
pub mod sync;
mod transfer;
mod upload;
pub mod watcher;

pub use album::AlbumMode;
pub use daemon::RunOptions;
pub use engine::{
    DestEdit, DestInfo, Engine, QueueStatus, S3Spec, Status, WatchInfo, WatchSpec, WatchStatus,
};
pub use error::{Error, Result};
pub use events::{Event, Outcome};
pub use home::{Home, LIBRARY_DEST};
pub use lock::EngineLock;
pub use report::{Problem, SyncReport};
pub use store::OnDelete;
pub use sync::SyncOptions;
pub use upload::Uploading;
