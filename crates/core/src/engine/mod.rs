//! The engine's API for its hosts (CLI, tray app): configure destinations
//! and watches, read status, run a sync pass. Each call validates its input
//! and says clearly why a request is refused.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::album::{AlbumMode, AlbumNames, DateFormat, sanitize_album};
use crate::daemon::{PAUSED_KEY, RunOptions};
use crate::error::{Error, FolderProblem, Result};
use crate::events::Event;
use crate::home::{Home, LIBRARY_DEST};
use crate::local_api::Activity;
use crate::lock::EngineLock;
use crate::platform::dir_identity;
use crate::report::SyncReport;
use crate::store::{
    DestRow, FileState, NewWatch, OnDelete, Store, WatchRow, WatchState, WatcherKind, WatcherMode,
};
use crate::sync::{SyncOptions, sync};

mod destinations;
mod keys;
mod restore;
mod verify;
pub use destinations::{DestEdit, DestInfo, S3Spec, SftpSignIn, SftpSpec};
pub use keys::{IMMICH_UNENCRYPTED, KeySource, key_warning};
pub use restore::{RestoreEvent, RestoreOptions, RestoreReport, Restored};

/// What a host asks for when adding a watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub folder: PathBuf,
    pub mode: AlbumMode,
    /// How `per-folder` names a folder's album.
    pub album_names: AlbumNames,
    /// How `by-date` names an album after a capture date.
    pub date_format: DateFormat,
    pub album: Option<String>,
    pub dest: String,
    pub on_delete: OnDelete,
    pub all_files: bool,
}

/// A watch as hosts show it.
#[derive(Debug, Clone, Serialize)]
pub struct WatchInfo {
    pub folder: String,
    pub mode: AlbumMode,
    pub album_names: AlbumNames,
    pub date_format: DateFormat,
    pub album: String,
    pub dest: String,
    pub on_delete: &'static str,
    pub all_files: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchStatus {
    #[serde(flatten)]
    pub watch: WatchInfo,
    /// `new`, `up_to_date`, `pending`, `needs_attention`, `folder_missing`
    /// or `deletions_held`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub files: u64,
    pub uploaded: u64,
    pub pending: u64,
    /// The size of its files (uploaded, pending and failed), and of those
    /// still to upload (pending), for progress and the time left.
    pub bytes: u64,
    pub pending_bytes: u64,
    pub failed: u64,
    pub skipped: u64,
    pub ignored: u64,
    pub last_scan: Option<String>,
    /// How a running engine watches it: `ok`, `degraded: …`, `polling: …`
    /// (absent when no engine runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watcher: Option<String>,
    /// The same, as a kind to branch on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watcher_kind: Option<WatcherKind>,
    /// Deletions waiting for `watch confirm-deletions` / `watch keep-files`.
    pub deletions_held: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStatus {
    pub pending: u64,
    pub in_progress: u64,
    pub failed: u64,
}

/// What following the running engine hands on (`Engine::follow`).
#[derive(Debug, Clone)]
pub enum Followed {
    /// The status, with what the engine does now.
    Status(Box<Status>),
    /// Something the engine did.
    Event(Event),
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub home: String,
    /// The engine running on this data folder, if any (`shoebox run`, the app).
    pub engine: Option<String>,
    pub paused: bool,
    pub watches: Vec<WatchStatus>,
    pub queue: QueueStatus,
    /// Uploads in progress (while an engine runs).
    pub uploading: Vec<crate::upload::Uploading>,
    /// Files waiting for their content to stop changing.
    pub settling: u64,
    /// Destinations the running engine cannot use now, with the code the
    /// window reads (`dest_unreachable`, `dest_full`) and why.
    pub destinations_down: Vec<crate::DestDown>,
    /// The last check that the destinations hold what the index records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<crate::check::BackupCheck>,
    /// The upload limit for all transfers together, in bytes per second
    /// (`shoebox config set bandwidth`), when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<u64>,
    /// Why the running engine holds uploads now (quiet hours, battery, a
    /// metered network), what it holds, until when, and how many files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<crate::waiting::Waiting>,
    /// Whether the computer runs on battery, and whether its network is
    /// metered, as the running engine knows them (absent: unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_battery: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metered: Option<bool>,
}

/// A file or folder a scan left out on purpose, and why.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredFile {
    /// The watched folder it is in.
    pub watch: String,
    pub path: String,
    pub reason: String,
}

/// One file of a watch, as `status --files` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    /// The watched folder it is in.
    pub watch: String,
    pub path: String,
    pub size: u64,
    /// `pending`, `uploading`, `uploaded`, `failed` or `skipped`.
    pub state: &'static str,
    /// Its album and name on the watch's destination, once it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
    /// When its item was taken, and where that was read; absent until the
    /// file is first read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken: Option<crate::Captured>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The engine for one data directory.
#[derive(Debug)]
pub struct Engine {
    home: Home,
    store: Store,
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// One folder is the other or inside it, by path or by identity (see
/// [`crate::platform::folders_overlap`]).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a) || crate::platform::folders_overlap(a, b)
}

impl Engine {
    /// Opens the engine on `home`, creating the store and the embedded
    /// library destination on first use.
    pub fn open(home: Home) -> Result<Engine> {
        let store = Store::open(&home.db_path())?;
        store.insert_destination(LIBRARY_DEST, crate::store::DestKind::Local, None)?;
        Ok(Engine { home, store })
    }

    /// A connection for a tray or a window, which reads the status
    /// now and then rather than running the engine: a small page cache
    /// (a status reads every file's row once; kept, 2 MiB per connection
    /// would be most of what an idle tray weighs beyond its code).
    pub fn open_light(home: Home) -> Result<Engine> {
        let engine = Engine::open(home)?;
        engine.store.limit_cache(256)?;
        Ok(engine)
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn watch_info(w: &WatchRow) -> WatchInfo {
        WatchInfo {
            folder: display(&w.root),
            mode: w.mode,
            album_names: w.album_names,
            date_format: w.date_format.clone(),
            album: w.album.clone(),
            dest: w.dest_name.clone(),
            on_delete: w.on_delete.as_str(),
            all_files: w.all_files,
        }
    }

    /// Refuses a folder that is, contains or lies inside a watched folder
    /// or Shoebox's data folder.
    fn check_overlaps(&self, root: &Path, identity: (u64, u64)) -> Result<()> {
        for w in self.store.watches()? {
            if w.root == *root || (cfg!(unix) && w.root_identity == identity) {
                return Err(Error::Invalid(format!(
                    "{} is already watched{}",
                    root.display(),
                    if w.root == *root {
                        String::new()
                    } else {
                        format!(
                            " as {} (the same folder, reached another way)",
                            w.root.display()
                        )
                    }
                )));
            }
            if overlaps(root, &w.root) {
                return Err(Error::Invalid(format!(
                    "cannot watch {}: it overlaps the watched folder {}. A folder can only be in one \
                     watch; remove that watch first, or pick a folder outside it",
                    root.display(),
                    w.root.display()
                )));
            }
        }
        if overlaps(root, self.home.dir()) {
            return Err(Error::Invalid(format!(
                "cannot watch {}: Shoebox keeps its own data in {}, and the two must not overlap",
                root.display(),
                self.home.dir().display()
            )));
        }
        Ok(())
    }

    /// Adds a watch. Returns it and notices for the user (e.g. an album name
    /// that had to be changed).
    pub fn add_watch(&self, spec: &WatchSpec) -> Result<(WatchInfo, Vec<String>)> {
        let (root, meta) = readable_folder(&spec.folder)?;
        let identity = dir_identity(&meta);
        self.check_overlaps(&root, identity)?;
        let Some(dest) = self.store.destination_by_name(&spec.dest)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {:?}; see `shoebox dest list`",
                spec.dest
            )));
        };
        if spec.all_files && dest.kind == crate::store::DestKind::Immich {
            return Err(Error::Invalid(format!(
                "destination {} is an Immich server, which keeps photos and videos only: add the \
                 folder without --all-files (an XMP sidecar goes with its photo's upload)",
                dest.name
            )));
        }
        let dest_path = self.dest_path(&dest);
        if overlaps(&root, &dest_path) {
            return Err(Error::Invalid(format!(
                "cannot watch {}: it overlaps the destination folder {}",
                root.display(),
                dest_path.display()
            )));
        }
        let mut notices = Vec::new();
        let raw_album = match &spec.album {
            Some(a) => a.clone(),
            None => root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let album = sanitize_album(&raw_album);
        if album != raw_album {
            notices.push(format!(
                "album name {raw_album:?} cannot be used as a folder name on every destination; using {album:?}"
            ));
        }
        let id = self.store.insert_watch(&NewWatch {
            root,
            mode: spec.mode,
            album_names: spec.album_names,
            date_format: spec.date_format.clone(),
            album,
            dest_id: dest.id,
            on_delete: spec.on_delete,
            all_files: spec.all_files,
            root_identity: identity,
        })?;
        crate::local_api::changed(&self.home);
        Ok((Engine::watch_info(&self.store.watch(id)?), notices))
    }

    pub fn watches(&self) -> Result<Vec<WatchInfo>> {
        Ok(self
            .store
            .watches()?
            .iter()
            .map(Engine::watch_info)
            .collect())
    }

    fn find_watch(&self, folder: &Path) -> Result<WatchRow> {
        // The folder may be gone (that is often why it is being removed).
        let wanted = fs::canonicalize(folder)
            .or_else(|_| std::path::absolute(folder))
            .unwrap_or_else(|_| folder.to_path_buf());
        self.store
            .watches()?
            .into_iter()
            .find(|w| w.root == wanted)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} is not watched; see `shoebox watch list`",
                    wanted.display()
                ))
            })
    }

    /// Stops watching a folder. Deletes nothing in the folder or any album.
    pub fn remove_watch(&self, folder: &Path) -> Result<WatchInfo> {
        let w = self.find_watch(folder)?;
        self.store.delete_watch(w.id)?;
        crate::local_api::changed(&self.home);
        Ok(Engine::watch_info(&w))
    }

    pub fn status(&self) -> Result<Status> {
        // What a running engine does is asked of it, and only true while
        // it runs.
        let engine = crate::lock::holder(&self.home);
        let activity = match &engine {
            Some(_) => crate::local_api::activity(&self.home).unwrap_or_default(),
            None => Activity::default(),
        };
        self.status_with(engine, activity)
    }

    /// Follows the running engine (`shoebox status --follow`, the desktop
    /// processes): its last `recent` uploads (`Event::FileDone`, oldest
    /// first), the status now, then each event and the status again
    /// whenever the engine's activity changes (at most about once a second
    /// while it uploads), until the engine stops.
    pub fn follow(&self, recent: usize, each: &mut dyn FnMut(Followed)) -> Result<()> {
        let Some(engine) = crate::lock::holder(&self.home) else {
            return Err(Error::Invalid(format!(
                "no engine runs for {}. `shoebox status --follow` follows `shoebox run` or \
                 the tray app; start one of them",
                self.home.dir().display()
            )));
        };
        crate::local_api::follow(&self.home, recent, &mut |message| match message {
            crate::local_api::Message::Activity(activity) => {
                match self.status_with(Some(engine.clone()), activity) {
                    Ok(status) => each(Followed::Status(Box::new(status))),
                    // The next activity reads it again.
                    Err(e) => tracing::warn!("could not read the status to follow: {e}"),
                }
            }
            crate::local_api::Message::Event(event) => each(Followed::Event(event)),
            _ => {}
        })
    }

    fn status_with(&self, engine: Option<String>, activity: Activity) -> Result<Status> {
        let mut watches = Vec::new();
        let mut queue = QueueStatus::default();
        for w in self.store.watches()? {
            let (mut uploaded, mut pending, mut failed, mut skipped) = (0, 0, 0, 0);
            let (mut bytes, mut pending_bytes) = (0, 0);
            for (state, n, size) in self.store.watch_counts(w.id)? {
                match state {
                    FileState::Uploaded => uploaded += n,
                    FileState::Pending => pending += n,
                    FileState::Uploading => {
                        pending += n;
                        queue.in_progress += n;
                    }
                    FileState::Failed => failed += n,
                    FileState::Skipped => skipped += n,
                }
                if state != FileState::Skipped {
                    bytes += size;
                }
                if matches!(state, FileState::Pending | FileState::Uploading) {
                    pending_bytes += size;
                }
            }
            queue.pending += pending;
            queue.failed += failed;
            let state = match w.state {
                WatchState::Missing => "folder_missing",
                WatchState::Ok if w.deletions_held > 0 => "deletions_held",
                WatchState::New => "new",
                WatchState::Ok if failed > 0 => "needs_attention",
                WatchState::Ok if pending > 0 => "pending",
                WatchState::Ok => "up_to_date",
            };
            let watcher = w.watcher.as_ref().filter(|_| engine.is_some());
            watches.push(WatchStatus {
                watch: Engine::watch_info(&w),
                state,
                detail: w.state_detail.clone(),
                files: uploaded + pending + failed,
                uploaded,
                pending,
                bytes,
                pending_bytes,
                failed,
                skipped,
                ignored: w.ignored,
                last_scan: w.last_scan.map(|s| {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64);
                    humantime::format_rfc3339_seconds(t).to_string()
                }),
                watcher: watcher.map(WatcherMode::describe),
                watcher_kind: watcher.map(WatcherMode::kind),
                deletions_held: w.deletions_held,
            });
        }
        // Everything queued waits for a condition that holds every upload;
        // the engine counts those one that holds some leaves queued.
        let queued = queue.pending + queue.failed;
        let held = |w: &crate::waiting::Waiting| match w.holds {
            crate::waiting::Holds::All => queued,
            _ => w.held,
        };
        // The running engine's limit in force (a `limit` schedule's rate in
        // its hours); else the setting.
        let bandwidth_limit = match &engine {
            Some(_) => activity.bandwidth_limit,
            None => crate::config::bandwidth(&self.store)?,
        };
        Ok(Status {
            home: display(self.home.dir()),
            engine,
            paused: self.paused()?,
            watches,
            queue,
            uploading: activity.uploading,
            settling: activity.settling,
            destinations_down: activity.destinations_down,
            last_check: crate::check::last_check(&self.store)?,
            bandwidth_limit,
            waiting: activity.waiting.map(|w| crate::waiting::Waiting {
                held: held(&w),
                ..w
            }),
            on_battery: activity.on_battery,
            metered: activity.metered,
        })
    }

    /// What the last scans left out on purpose, with the reasons: up to
    /// `limit` entries per watched folder.
    pub fn ignored(&self, limit: usize) -> Result<Vec<IgnoredFile>> {
        let mut out = Vec::new();
        for w in self.store.watches()? {
            for row in self.store.ignored(w.id, limit)? {
                let path = crate::scan::rel_path(&w.root, &row.dir_rel)
                    .join(crate::platform::bytes_to_os(&row.name));
                out.push(IgnoredFile {
                    watch: display(&w.root),
                    path: display(&path),
                    reason: row.reason,
                });
            }
        }
        Ok(out)
    }

    /// Every file of every watch, in path order, with how far its backup
    /// is, where it went and when it was taken (`status --files`).
    pub fn files(&self) -> Result<Vec<FileStatus>> {
        let mut out = Vec::new();
        for w in self.store.watches()? {
            for row in self.store.file_details(w.id)? {
                let path = crate::scan::rel_path(&w.root, &row.dir_rel)
                    .join(crate::platform::bytes_to_os(&row.name));
                let (album, stored_as) = row.stored_as.unzip();
                out.push(FileStatus {
                    watch: display(&w.root),
                    path: display(&path),
                    size: row.size,
                    state: row.state.as_str(),
                    album,
                    stored_as,
                    taken: row.captured,
                    error: row.error,
                });
            }
        }
        Ok(out)
    }

    /// Puts failed files back in the queue and tells a running engine.
    pub fn retry_failed(&self) -> Result<u64> {
        let n = self.store.retry_failed()?;
        crate::local_api::changed(&self.home);
        Ok(n)
    }

    /// Asks a running engine to rescan every watch now.
    pub fn request_rescan(&self) -> Result<()> {
        self.store.set_setting(
            crate::daemon::RESCAN_KEY,
            &crate::store::now_ms().to_string(),
        )?;
        crate::local_api::changed(&self.home);
        Ok(())
    }

    /// Files of every watch that failed or were skipped, with reasons.
    pub fn problems(&self, limit: usize) -> Result<Vec<crate::report::Problem>> {
        let mut out = Vec::new();
        for w in self.store.watches()? {
            for row in self.store.problems(w.id, limit)? {
                if row.state != FileState::Failed {
                    continue;
                }
                let path = crate::scan::rel_path(&w.root, &row.dir_rel)
                    .join(crate::platform::bytes_to_os(&row.name));
                out.push(crate::report::Problem {
                    path: path.display().to_string(),
                    reason: row.reason,
                });
            }
        }
        Ok(out)
    }

    /// Previews the albums a watch of `folder` would produce. A `by-date`
    /// preview reads each file's date, so it looks at fewer files.
    pub fn preview_albums(
        &self,
        folder: &Path,
        (mode, names, date_format): (AlbumMode, AlbumNames, &DateFormat),
        album: Option<&str>,
        all_files: bool,
    ) -> Result<Vec<crate::album::AlbumPreview>> {
        let root = fs::canonicalize(folder)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", folder.display())))?;
        let album = sanitize_album(&album.map(str::to_string).unwrap_or_else(|| {
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }));
        let max_entries = match mode {
            AlbumMode::ByDate => 2_000,
            AlbumMode::Single | AlbumMode::PerFolder => 20_000,
        };
        Ok(crate::album::preview(
            &root,
            (mode, names, date_format),
            &album,
            if all_files {
                crate::filter::Takes::Everything
            } else {
                crate::filter::Takes::MediaAndSidecars
            },
            max_entries,
        ))
    }

    /// Every setting of `shoebox config`, with its value and what it does.
    pub fn config_list(&self) -> Result<Vec<crate::ConfigEntry>> {
        crate::config::list(&self.store)
    }

    pub fn config_get(&self, key: &str) -> Result<crate::ConfigEntry> {
        crate::config::get(&self.store, key)
    }

    /// Checks and keeps a setting (a running engine applies it at once);
    /// returns it as it is now kept.
    pub fn config_set(&self, key: &str, value: &str) -> Result<crate::ConfigEntry> {
        let entry = crate::config::set(&self.store, key, value)?;
        crate::local_api::changed(&self.home);
        Ok(entry)
    }

    pub fn paused(&self) -> Result<bool> {
        self.store.flag(PAUSED_KEY)
    }

    /// Pauses or resumes syncing (persisted; a running engine obeys at once).
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.store.set_flag(PAUSED_KEY, paused)?;
        crate::local_api::changed(&self.home);
        Ok(())
    }

    /// "Back up now anyway": the running engine uploads through the
    /// conditions that hold it now (quiet hours, battery, a metered
    /// network), each until it ends.
    pub fn back_up_now_anyway(&self) -> Result<()> {
        if self.status()?.waiting.is_none() {
            return Err(Error::Invalid(
                "nothing holds uploads now (no running engine waits for its upload hours, \
                 power or an unmetered network)"
                    .to_string(),
            ));
        }
        self.store
            .set_setting(crate::daemon::ANYWAY_KEY, crate::daemon::ANYWAY_NOW)?;
        crate::local_api::changed(&self.home);
        Ok(())
    }

    /// Carries out deletions held for a watch (the user confirmed them).
    pub fn confirm_deletions(&self, folder: &Path) -> Result<u64> {
        let w = self.find_watch(folder)?;
        if w.deletions_held == 0 {
            return Err(Error::Invalid(format!(
                "no deletions are held for {}",
                w.root.display()
            )));
        }
        self.store.release_deletions(w.id, true)?;
        crate::local_api::changed(&self.home);
        Ok(w.deletions_held)
    }

    /// Drops deletions held for a watch: the files stay in their albums.
    pub fn keep_files(&self, folder: &Path) -> Result<u64> {
        let w = self.find_watch(folder)?;
        if w.deletions_held == 0 {
            return Err(Error::Invalid(format!(
                "no deletions are held for {}",
                w.root.display()
            )));
        }
        let n = self.store.transaction(|s| {
            let n = s.forget_gone(w.id)?;
            s.release_deletions(w.id, false)?;
            Ok(n)
        })?;
        crate::local_api::changed(&self.home);
        Ok(n)
    }

    /// Runs the live engine until `stop` receives; `_lock` proves this
    /// process holds the engine lock.
    pub fn run(
        &self,
        _lock: &EngineLock,
        opts: &RunOptions,
        stop: &crossbeam_channel::Receiver<()>,
        emit: &dyn Fn(&Event),
    ) -> Result<()> {
        crate::daemon::run(&self.store, &self.home, opts, stop, emit)
    }

    /// Takes the engine lock for `what` (e.g. "shoebox sync").
    pub fn lock(&self, what: &str) -> Result<EngineLock> {
        EngineLock::acquire(&self.home, what)
    }

    /// Runs one sync pass; `_lock` proves this process holds the engine lock.
    pub fn sync(
        &self,
        _lock: &EngineLock,
        opts: &SyncOptions,
        emit: &dyn Fn(&Event),
    ) -> Result<SyncReport> {
        sync(&self.store, &self.home, opts, emit)
    }
}

/// The folder a watch is asked for, resolved, if it can be watched: a
/// readable folder that is not one of the system's live views.
fn readable_folder(folder: &Path) -> Result<(PathBuf, fs::Metadata)> {
    let refuse = |folder: &Path, problem, why: String| Error::Folder {
        folder: folder.to_path_buf(),
        problem,
        why,
    };
    let root = fs::canonicalize(folder).map_err(|e| {
        let problem = if e.kind() == std::io::ErrorKind::NotFound {
            FolderProblem::Missing
        } else {
            FolderProblem::Unreadable
        };
        refuse(folder, problem, format!("{e}. Check the path"))
    })?;
    let meta = fs::metadata(&root).map_err(|e| Error::io("cannot read", &root, e))?;
    if !meta.is_dir() {
        let why = "it is not a folder".to_string();
        return Err(refuse(&root, FolderProblem::NotAFolder, why));
    }
    if let Some(kind) = crate::platform::pseudo_fs(&root) {
        let why = format!(
            "it is the system's {kind} file system, a live view of the running computer, \
             not files to back up. Pick a folder of photos"
        );
        return Err(refuse(&root, FolderProblem::SystemView, why));
    }
    fs::read_dir(&root).map_err(|e| {
        let why = format!("it cannot be read ({e}). Check its permissions");
        refuse(&root, FolderProblem::Unreadable, why)
    })?;
    Ok((root, meta))
}

/// Checks the store of `home` without opening the engine (which would fail
/// on a damaged store) and without changing anything.
pub fn check_store(home: &Home) -> Result<crate::store::repair::Health> {
    crate::store::repair::check(&home.db_path())
}

/// Sets a damaged store aside and starts a new one with the configuration
/// that can still be read; the next sync rebuilds the file index. Refused
/// while an engine runs.
pub fn repair_store(home: &Home) -> Result<crate::store::repair::Repair> {
    let _lock = EngineLock::acquire(home, "shoebox doctor --repair")?;
    crate::store::repair::repair(&home.db_path())
}
