//! The engine's API for its hosts (CLI, tray app): configure destinations
//! and watches, read status, run a sync pass. Each call validates its input
//! and says clearly why a request is refused.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::album::{AlbumMode, sanitize_album};
use crate::daemon::{ACTIVITY_KEY, Activity, PAUSED_KEY, RunOptions};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::home::{Home, LIBRARY_DEST};
use crate::lock::EngineLock;
use crate::platform::dir_identity;
use crate::report::SyncReport;
use crate::store::{DestRow, FileState, NewWatch, OnDelete, Store, WatchRow, WatchState};
use crate::sync::{SyncOptions, sync};

/// A destination as hosts show it.
#[derive(Debug, Clone, Serialize)]
pub struct DestInfo {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// S3 only: the bucket, its region and the key prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// The user allowed plain http:// for this destination.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
    /// The destination trusts one certificate of its own (not the system's roots).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pinned_certificate: bool,
}

/// What a host gives to add an S3-compatible destination.
#[derive(Debug, Clone, Default)]
pub struct S3Spec {
    pub name: String,
    pub endpoint: String,
    pub bucket: String,
    /// Defaults to us-east-1.
    pub region: Option<String>,
    pub prefix: String,
    pub path_style: bool,
    pub access_key_id: String,
    /// `None`: taken from the keyring or the environment variable.
    pub secret: Option<String>,
    pub allow_insecure_http: bool,
}

/// Changes to a remote destination's connection; `None` keeps a setting.
#[derive(Debug, Clone, Default)]
pub struct DestEdit {
    pub name: String,
    pub url: Option<String>,
    pub user: Option<String>,
    pub secret: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub allow_insecure_http: Option<bool>,
    /// `Some(Some(pem))`: trust exactly this server certificate (PEM text);
    /// `Some(None)`: trust the system's roots only again.
    pub trust_certificate: Option<Option<Vec<u8>>>,
}

/// What a host asks for when adding a watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub folder: PathBuf,
    pub mode: AlbumMode,
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
    pub failed: u64,
    pub skipped: u64,
    pub ignored: u64,
    pub last_scan: Option<String>,
    /// How a running engine watches it: `ok`, `degraded: …`, `polling: …`
    /// (absent when no engine runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watcher: Option<String>,
    /// Deletions waiting for `watch confirm-deletions` / `watch keep-files`.
    pub deletions_held: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStatus {
    pub pending: u64,
    pub in_progress: u64,
    pub failed: u64,
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
        store.insert_destination(LIBRARY_DEST, "local", None)?;
        Ok(Engine { home, store })
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn dest_path(&self, d: &DestRow) -> PathBuf {
        d.path.clone().unwrap_or_else(|| self.home.library_dir())
    }

    fn dest_info(&self, d: &DestRow) -> DestInfo {
        DestInfo {
            name: d.name.clone(),
            kind: d.kind.clone(),
            path: (d.kind == "local").then(|| display(&self.dest_path(d))),
            url: d.url.clone(),
            user: d.username.clone(),
            bucket: d.s3.as_ref().map(|s| s.bucket.clone()),
            region: d.s3.as_ref().map(|s| s.region.clone()),
            prefix: d.s3.as_ref().map(|s| s.prefix.clone()),
            path_style: d.s3.as_ref().map(|s| s.path_style),
            insecure_http: d.insecure_http,
            pinned_certificate: d.tls_cert.is_some(),
        }
    }

    pub fn destinations(&self) -> Result<Vec<DestInfo>> {
        Ok(self
            .store
            .destinations()?
            .iter()
            .map(|d| self.dest_info(d))
            .collect())
    }

    fn check_new_dest_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a destination needs a name of printable characters".into(),
            ));
        }
        if self.store.destination_by_name(name)?.is_some() {
            return Err(Error::Invalid(format!(
                "a destination named {name:?} already exists; choose another name or remove it first"
            )));
        }
        Ok(())
    }

    /// Adds a WebDAV destination. The password goes to the OS keyring (or,
    /// where there is none, must come from the environment variable the
    /// error names); it is never stored anywhere else.
    pub fn add_webdav_destination(
        &self,
        name: &str,
        url: &str,
        user: Option<&str>,
        password: Option<&str>,
        allow_insecure_http: bool,
    ) -> Result<(DestInfo, Vec<String>)> {
        let name = name.trim();
        self.check_new_dest_name(name)?;
        let mut notices = Vec::new();
        let secret = match password {
            Some(p) => Some(p.to_string()),
            // Only to validate the plain-HTTP rule: a missing keyring is fine here.
            None => crate::secrets::load(name).ok().flatten(),
        };
        // Validates the URL and the plain-HTTP rule before anything is saved.
        crate::dest::WebDav::new(
            name,
            url,
            user.map(str::to_string),
            secret,
            allow_insecure_http,
            None,
            &self.home.engine_id()?,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        if password.is_some() {
            notices = self.keep_secret(name, password, "password")?;
        }
        self.store
            .insert_remote_destination(name, "webdav", url, user, allow_insecure_http)?;
        self.home.signal_change();
        let row = self
            .store
            .destination_by_name(name)?
            .expect("just inserted");
        Ok((self.dest_info(&row), notices))
    }

    /// Adds an S3-compatible destination. The secret key goes to the OS
    /// keyring (or, where there is none, must come from the environment
    /// variable the error names); it is never stored anywhere else.
    pub fn add_s3_destination(&self, spec: &S3Spec) -> Result<(DestInfo, Vec<String>)> {
        let name = spec.name.trim();
        self.check_new_dest_name(name)?;
        let settings = crate::store::S3Settings {
            bucket: spec.bucket.clone(),
            region: spec.region.clone().unwrap_or_else(|| "us-east-1".into()),
            prefix: crate::dest::s3::normalize_prefix(&spec.prefix),
            path_style: spec.path_style,
        };
        crate::dest::s3::check_bucket_name(&settings.bucket).map_err(Error::Invalid)?;
        if spec.access_key_id.trim().is_empty() {
            return Err(Error::Invalid("--access-key-id must not be empty".into()));
        }
        // Validates the endpoint and the plain-HTTP rule before anything is saved.
        crate::dest::http::parse_url(name, &spec.endpoint, true, spec.allow_insecure_http)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let notices = self.keep_secret(name, spec.secret.as_deref(), "secret key")?;
        self.store.insert_s3_destination(
            name,
            &spec.endpoint,
            spec.access_key_id.trim(),
            spec.allow_insecure_http,
            &settings,
        )?;
        self.home.signal_change();
        let row = self
            .store
            .destination_by_name(name)?
            .expect("just inserted");
        Ok((self.dest_info(&row), notices))
    }

    /// Puts a secret in the keyring; without a keyring the environment
    /// variable must hold it (a notice says so), else the error says how.
    fn keep_secret(&self, name: &str, secret: Option<&str>, what: &str) -> Result<Vec<String>> {
        let var = crate::secrets::env_var(name);
        match secret {
            Some(s) => match crate::secrets::store(name, s) {
                Ok(()) => Ok(Vec::new()),
                Err(_) if std::env::var_os(&var).is_some() => Ok(vec![format!(
                    "no system keyring is available; the {what} is taken from {var} each time"
                )]),
                Err(e) => Err(e),
            },
            None if std::env::var_os(&var).is_some() => {
                Ok(vec![format!("the {what} is taken from {var} each time")])
            }
            None => Err(Error::Invalid(format!(
                "destination {name} needs a {what}: give it on the prompt or with --secret-stdin, or set {var}"
            ))),
        }
    }

    /// Checks that a destination can be used: one line per check.
    pub fn test_destination(&self, name: &str) -> Result<Vec<crate::dest::Check>> {
        let Some(row) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        Ok(crate::dest::open(&self.home, &row)?.check())
    }

    pub fn add_local_destination(&self, name: &str, path: &Path) -> Result<DestInfo> {
        let name = name.trim();
        self.check_new_dest_name(name)?;
        let path = fs::canonicalize(path).map_err(|e| {
            Error::Invalid(format!(
                "the folder {} cannot be used as a destination: {e}. Create it (or connect its drive) first",
                path.display()
            ))
        })?;
        if !path.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a folder",
                path.display()
            )));
        }
        for w in self.store.watches()? {
            if overlaps(&path, &w.root) {
                return Err(Error::Invalid(format!(
                    "{} overlaps the watched folder {}; a destination must be outside every watched folder",
                    path.display(),
                    w.root.display()
                )));
            }
        }
        self.store.insert_destination(name, "local", Some(&path))?;
        self.home.signal_change();
        let row = self
            .store
            .destination_by_name(name)?
            .expect("just inserted");
        Ok(self.dest_info(&row))
    }

    /// Changes how a remote destination is reached: its address, account,
    /// secret, region, addressing and the plain-HTTP consent. Where the
    /// albums live (bucket, prefix, local folder) cannot change: the index
    /// records what is there. The new settings are checked before saving,
    /// and a running engine reopens its destinations.
    pub fn edit_destination(&self, edit: &DestEdit) -> Result<(DestInfo, Vec<String>)> {
        let Some(mut row) = self.store.destination_by_name(&edit.name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {:?}; see `shoebox dest list`",
                edit.name
            )));
        };
        if row.kind == "local" {
            return Err(Error::Invalid(format!(
                "destination {:?} is a folder: it has no connection settings to edit",
                edit.name
            )));
        }
        if let Some(url) = &edit.url {
            row.url = Some(url.trim().to_string());
        }
        if let Some(user) = &edit.user {
            let user = user.trim();
            row.username = (!user.is_empty()).then(|| user.to_string());
        }
        if let Some(insecure) = edit.allow_insecure_http {
            row.insecure_http = insecure;
        }
        if let Some(pem) = &edit.trust_certificate {
            row.tls_cert = match pem {
                Some(pem) => Some(crate::dest::tls::parse_pem(pem).map_err(|why| {
                    Error::Invalid(format!("the certificate for {:?}: {why}", row.name))
                })?),
                None => None,
            };
        }
        if let Some(s3) = row.s3.as_mut() {
            if let Some(region) = &edit.region {
                s3.region = region.trim().to_string();
            }
            if let Some(path_style) = edit.path_style {
                s3.path_style = path_style;
            }
        }
        let has_secret =
            edit.secret.is_some() || crate::secrets::load(&row.name).ok().flatten().is_some();
        let url = row.url.clone().unwrap_or_default();
        crate::dest::http::parse_url(
            &row.name,
            &url,
            row.kind == "s3" || row.username.is_some() && has_secret,
            row.insecure_http,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        if row.kind == "s3" && row.username.is_none() {
            return Err(Error::Invalid(
                "an S3 destination needs an access key id".into(),
            ));
        }
        let notices = match edit.secret.as_deref() {
            Some(secret) => self.keep_secret(&row.name, Some(secret), "secret")?,
            None => Vec::new(),
        };
        self.store.update_destination(&row)?;
        self.store.set_setting(
            crate::daemon::DEST_EPOCH_KEY,
            &crate::store::now_ms().to_string(),
        )?;
        self.home.signal_change();
        Ok((self.dest_info(&row), notices))
    }

    /// Trusts exactly the certificate in the PEM text `pem` for the remote
    /// destination `name` (`None`: the system's roots only again).
    pub fn pin_certificate(&self, name: &str, pem: Option<Vec<u8>>) -> Result<DestInfo> {
        let edit = DestEdit {
            name: name.to_string(),
            trust_certificate: Some(pem),
            ..DestEdit::default()
        };
        Ok(self.edit_destination(&edit)?.0)
    }

    /// Starts a destination's backup again: forgets what the store recorded
    /// there and its identity marker, so that the next sync writes a new
    /// marker and backs every file up to it again (objects still there
    /// whole are adopted, not sent twice). For a drive replaced on purpose
    /// or a backup folder that was deleted. Refused while an engine runs.
    /// Returns how many files were queued again.
    pub fn reset_destination(&self, name: &str) -> Result<u64> {
        let Some(d) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        let _lock = self.lock("dest reset")?;
        self.store.reset_destination(d.id)
    }

    pub fn remove_destination(&self, name: &str) -> Result<()> {
        let Some(d) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        if name == LIBRARY_DEST {
            return Err(Error::Invalid(
                "the built-in library destination cannot be removed".into(),
            ));
        }
        let users: Vec<_> = self
            .store
            .watches()?
            .into_iter()
            .filter(|w| w.dest_id == d.id)
            .collect();
        if let Some(w) = users.first() {
            return Err(Error::Invalid(format!(
                "destination {name:?} is used by the watch of {} ({} watch(es) in all); remove those watches first",
                w.root.display(),
                users.len()
            )));
        }
        self.store.delete_destination(d.id)?;
        crate::secrets::forget(name);
        self.home.signal_change();
        Ok(())
    }

    fn watch_info(w: &WatchRow) -> WatchInfo {
        WatchInfo {
            folder: display(&w.root),
            mode: w.mode,
            album: w.album.clone(),
            dest: w.dest_name.clone(),
            on_delete: w.on_delete.as_str(),
            all_files: w.all_files,
        }
    }

    /// Adds a watch. Returns it and notices for the user (e.g. an album name
    /// that had to be changed).
    pub fn add_watch(&self, spec: &WatchSpec) -> Result<(WatchInfo, Vec<String>)> {
        let folder = &spec.folder;
        let root = fs::canonicalize(folder).map_err(|e| {
            Error::Invalid(format!(
                "cannot watch {}: {e}. Check the path",
                folder.display()
            ))
        })?;
        let meta = fs::metadata(&root).map_err(|e| Error::io("cannot read", &root, e))?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "cannot watch {}: it is not a folder",
                root.display()
            )));
        }
        if let Some(kind) = crate::platform::pseudo_fs(&root) {
            return Err(Error::Invalid(format!(
                "cannot watch {}: it is the system's {kind} file system, a live view of the \
                 running computer, not files to back up. Pick a folder of photos",
                root.display()
            )));
        }
        fs::read_dir(&root).map_err(|e| {
            Error::Invalid(format!(
                "cannot watch {}: it cannot be read ({e}). Check its permissions",
                root.display()
            ))
        })?;
        let identity = dir_identity(&meta);
        for w in self.store.watches()? {
            if w.root == root || (cfg!(unix) && w.root_identity == identity) {
                return Err(Error::Invalid(format!(
                    "{} is already watched{}",
                    root.display(),
                    if w.root == root {
                        String::new()
                    } else {
                        format!(
                            " as {} (the same folder, reached another way)",
                            w.root.display()
                        )
                    }
                )));
            }
            if overlaps(&root, &w.root) {
                return Err(Error::Invalid(format!(
                    "cannot watch {}: it overlaps the watched folder {}. A folder can only be in one \
                     watch; remove that watch first, or pick a folder outside it",
                    root.display(),
                    w.root.display()
                )));
            }
        }
        if overlaps(&root, self.home.dir()) {
            return Err(Error::Invalid(format!(
                "cannot watch {}: Shoebox keeps its own data in {}, and the two must not overlap",
                root.display(),
                self.home.dir().display()
            )));
        }
        let Some(dest) = self.store.destination_by_name(&spec.dest)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {:?}; see `shoebox dest list`",
                spec.dest
            )));
        };
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
            album,
            dest_id: dest.id,
            on_delete: spec.on_delete,
            all_files: spec.all_files,
            root_identity: identity,
        })?;
        self.home.signal_change();
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
        self.home.signal_change();
        Ok(Engine::watch_info(&w))
    }

    pub fn status(&self) -> Result<Status> {
        // What a running engine published is only true while it runs.
        let engine = crate::lock::holder(&self.home);
        let mut watches = Vec::new();
        let mut queue = QueueStatus::default();
        for w in self.store.watches()? {
            let (mut uploaded, mut pending, mut failed, mut skipped) = (0, 0, 0, 0);
            for (state, n) in self.store.watch_counts(w.id)? {
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
            watches.push(WatchStatus {
                watch: Engine::watch_info(&w),
                state,
                detail: w.state_detail.clone(),
                files: uploaded + pending + failed,
                uploaded,
                pending,
                failed,
                skipped,
                ignored: w.ignored,
                last_scan: w.last_scan.map(|s| {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64);
                    humantime::format_rfc3339_seconds(t).to_string()
                }),
                watcher: w.watcher.clone().filter(|_| engine.is_some()),
                deletions_held: w.deletions_held,
            });
        }
        let activity: Activity = match &engine {
            Some(_) => self
                .store
                .setting(ACTIVITY_KEY)?
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            None => Activity::default(),
        };
        Ok(Status {
            home: display(self.home.dir()),
            engine,
            paused: self.paused()?,
            watches,
            queue,
            uploading: activity.uploading,
            settling: activity.settling,
        })
    }

    /// Puts failed files back in the queue and tells a running engine.
    pub fn retry_failed(&self) -> Result<u64> {
        let n = self.store.retry_failed()?;
        self.home.signal_change();
        Ok(n)
    }

    /// Asks a running engine to rescan every watch now.
    pub fn request_rescan(&self) -> Result<()> {
        self.store.set_setting(
            crate::daemon::RESCAN_KEY,
            &crate::store::now_ms().to_string(),
        )?;
        self.home.signal_change();
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

    /// Previews the albums a watch of `folder` would produce.
    pub fn preview_albums(
        &self,
        folder: &Path,
        mode: AlbumMode,
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
        Ok(crate::album::preview(
            &root, mode, &album, all_files, 20_000,
        ))
    }

    pub fn paused(&self) -> Result<bool> {
        Ok(self.store.setting(PAUSED_KEY)?.as_deref() == Some("true"))
    }

    /// Pauses or resumes syncing (persisted; a running engine obeys at once).
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.store
            .set_setting(PAUSED_KEY, if paused { "true" } else { "false" })?;
        self.home.signal_change();
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
        self.home.signal_change();
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
        self.home.signal_change();
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
