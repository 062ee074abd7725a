//! The store: one SQLite database that is the single source of truth for
//! destinations, watches, settings, the file index and the upload queue.
//! This module opens it (WAL, foreign keys, busy timeout, append-only
//! migrations) and owns the configuration tables; `index` owns the file index.

mod asset_names;
pub(crate) mod codes;
mod entries;
mod ignored;
mod index;
mod multipart;
pub mod repair;

pub use asset_names::AssetNames;
pub use codes::{WatcherKind, WatcherMode};
pub use entries::*;
pub use index::*;
pub use multipart::MultipartLog;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, MigrationDefinitionError, Migrations};

use crate::album::{AlbumMode, AlbumNames, DateFormat};
use crate::error::{Error, Result};
use crate::platform::{bytes_to_os, os_to_bytes};

/// The schema's migrations, oldest first (append-only).
fn migrations() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("schema_v1.sql")),
        M::up(include_str!("schema_v2.sql")),
        M::up(include_str!("schema_v3.sql")),
        M::up(include_str!("schema_v4.sql")),
        M::up(include_str!("schema_v5.sql")),
        M::up_with_hook(include_str!("schema_v6.sql"), fill_name_keys),
        M::up(include_str!("schema_v7.sql")),
        M::up(include_str!("schema_v8.sql")),
        M::up(include_str!("schema_v9.sql")),
        M::up(include_str!("schema_v10.sql")),
        M::up(include_str!("schema_v11.sql")),
        M::up(include_str!("schema_v12.sql")),
        M::up(include_str!("schema_v13.sql")),
        M::up(include_str!("schema_v14.sql")),
        M::up(include_str!("schema_v15.sql")),
        M::up(include_str!("schema_v16.sql")),
    ]
}

/// How many migrations the schema has: the version of a current store.
pub(crate) fn schema_version() -> usize {
    migrations().len()
}

/// Gives the entries an older store recorded their [`crate::album::name_key`].
fn fill_name_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let rows: Vec<(i64, String, String)> = tx
        .prepare("SELECT id, album, name FROM entries")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare("UPDATE entries SET name_key = ?2 WHERE id = ?1")?;
    for (id, album, name) in rows {
        update.execute(params![id, crate::album::name_key(&album, &name)])?;
    }
    Ok(())
}

const DEST_COLUMNS: &str = "id, name, kind, path, url, username, insecure_http, bucket, region, prefix, path_style, tls_cert, ssh_auth, host_key, encryption, key_exported_at, hide_names";

/// An open store. Cheap to open; each thread that writes opens its own.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

pub(crate) fn path_bytes(p: &Path) -> Vec<u8> {
    os_to_bytes(p.as_os_str())
}

pub(crate) fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(bytes_to_os(b))
}

pub(crate) use crate::clock::{unix_ms as now_ms, unix_secs as now_secs};

impl Store {
    /// Keeps at most `kib` KiB of the store's pages in memory on this
    /// connection (SQLite's default is 2 MiB).
    pub fn limit_cache(&self, kib: u32) -> Result<()> {
        self.conn
            .pragma_update(None, "cache_size", -i64::from(kib))
            .map_err(|e| self.err(e))
    }

    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let err = |source| Error::Store {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(err)?;
        match Migrations::new(migrations()).to_latest(&mut conn) {
            Ok(()) => {}
            Err(rusqlite_migration::Error::MigrationDefinition(
                MigrationDefinitionError::DatabaseTooFarAhead,
            )) => {
                return Err(Error::StoreTooNew {
                    path: path.to_path_buf(),
                });
            }
            Err(rusqlite_migration::Error::RusqliteError { err: e, .. }) => return Err(err(e)),
            Err(other) => {
                return Err(Error::StoreSchema {
                    path: path.to_path_buf(),
                    message: other.to_string(),
                });
            }
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> Error {
        Error::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs one statement (cached) and returns how many rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params))
            .map_err(|e| self.err(e))
    }

    // ---- settings ----------------------------------------------------------

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map(drop)
    }

    pub fn delete_setting(&self, key: &str) -> Result<()> {
        self.exec("DELETE FROM settings WHERE key = ?1", params![key])
            .map(drop)
    }

    /// A yes/no setting; absent means no. Any other text is an error that
    /// names it, never a silent default.
    pub fn flag(&self, key: &str) -> Result<bool> {
        match self.setting(key)?.as_deref() {
            None | Some("false" | "no") => Ok(false),
            Some("true" | "yes") => Ok(true),
            Some(other) => Err(Error::Invalid(format!(
                "the setting {key} holds {other:?}, which is neither true nor false; \
                 set it again (or `shoebox doctor` if the store is damaged)"
            ))),
        }
    }

    pub fn set_flag(&self, key: &str, on: bool) -> Result<()> {
        self.set_setting(key, if on { "true" } else { "false" })
    }

    /// A whole-number setting, if set. Text that is not a whole number is
    /// an error that names it.
    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.setting(key)?
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "the setting {key} holds {v:?}, which is not a whole number; set it again"
                    ))
                })
            })
            .transpose()
    }

    // ---- destinations ------------------------------------------------------

    pub fn destinations(&self) -> Result<Vec<DestRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DEST_COLUMNS} FROM destinations ORDER BY id"
            ))
            .map_err(|e| self.err(e))?;
        st.query_map([], DestRow::from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    pub fn destination_by_name(&self, name: &str) -> Result<Option<DestRow>> {
        self.conn
            .query_row(
                &format!("SELECT {DEST_COLUMNS} FROM destinations WHERE name = ?1"),
                [name],
                DestRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn destination(&self, id: i64) -> Result<DestRow> {
        self.conn
            .query_row(
                &format!("SELECT {DEST_COLUMNS} FROM destinations WHERE id = ?1"),
                [id],
                DestRow::from_row,
            )
            .map_err(|e| self.err(e))
    }

    /// The id of the destination's identity marker, once it has one.
    pub fn destination_marker(&self, id: i64) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT marker FROM destinations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    pub fn set_destination_marker(&self, id: i64, marker: &str) -> Result<()> {
        self.exec(
            "UPDATE destinations SET marker = ?2 WHERE id = ?1",
            params![id, marker],
        )
        .map(drop)
    }

    /// Forgets everything recorded about what a destination holds (its
    /// entries, its marker, its unfinished uploads): every file of the
    /// watches that use it is queued again. Objects already there and
    /// still whole are adopted by the next sync, not sent again.
    pub fn reset_destination(&self, id: i64) -> Result<u64> {
        self.transaction(|s| {
            let requeued = s.exec(
                "UPDATE files SET state = 'pending', entry_id = NULL, attempts = 0,
                        next_attempt_at = 0, error = NULL
                 WHERE state IN ('uploaded', 'uploading', 'failed') AND dir_id IN (
                     SELECT d.id FROM dirs d JOIN watches w ON w.id = d.watch_id
                     WHERE w.dest_id = ?1)",
                [id],
            )?;
            s.exec("DELETE FROM multipart_uploads WHERE dest_id = ?1", [id])?;
            s.exec("DELETE FROM asset_names WHERE dest_id = ?1", [id])?;
            s.exec("DELETE FROM entries WHERE dest_id = ?1", [id])?;
            s.exec("UPDATE destinations SET marker = NULL WHERE id = ?1", [id])?;
            Ok(requeued as u64)
        })
    }

    pub fn insert_destination(
        &self,
        name: &str,
        kind: DestKind,
        path: Option<&Path>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO destinations (name, kind, path, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
            params![name, kind, path.map(path_bytes), now_secs()],
        )
        .map(drop)
    }

    /// Saves a destination's connection settings (not where it stores).
    pub fn update_destination(&self, row: &DestRow) -> Result<()> {
        let s3 = row.s3.as_ref();
        self.exec(
            "UPDATE destinations SET url = ?2, username = ?3, insecure_http = ?4,
                    region = coalesce(?5, region), path_style = coalesce(?6, path_style),
                    tls_cert = ?7, host_key = coalesce(?8, host_key)
             WHERE id = ?1",
            params![
                row.id,
                row.url,
                row.username,
                row.insecure_http,
                s3.map(|s| s.region.clone()),
                s3.map(|s| s.path_style),
                row.tls_cert,
                row.ssh.as_ref().map(|s| s.host_key.clone())
            ],
        )
        .map(drop)
    }

    pub fn insert_s3_destination(
        &self,
        name: &str,
        endpoint: &str,
        access_key_id: &str,
        insecure_http: bool,
        s3: &S3Settings,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO destinations (name, kind, url, username, insecure_http, bucket, region, prefix, path_style, created_at)
             VALUES (?1, ?10, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                name,
                endpoint,
                access_key_id,
                insecure_http,
                s3.bucket,
                s3.region,
                s3.prefix,
                s3.path_style,
                now_secs(),
                DestKind::S3
            ],
        )
        .map(drop)
    }

    pub fn insert_remote_destination(
        &self,
        name: &str,
        kind: DestKind,
        url: &str,
        username: Option<&str>,
        insecure_http: bool,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO destinations (name, kind, url, username, insecure_http, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, kind, url, username, insecure_http, now_secs()],
        )
        .map(drop)
    }

    /// Adds an SFTP destination: `url` is `sftp://host:port`, `path` the
    /// folder on the server.
    pub fn insert_sftp_destination(
        &self,
        name: &str,
        url: &str,
        user: &str,
        path: &str,
        ssh: &SshSettings,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO destinations (name, kind, url, username, path, ssh_auth, host_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                name,
                DestKind::Sftp,
                url,
                user,
                path.as_bytes(),
                ssh.auth,
                ssh.host_key,
                now_secs()
            ],
        )
        .map(drop)
    }

    /// Records that every object of the destination is encrypted to the
    /// age `recipient`, with names hidden or not.
    pub fn set_destination_encryption(
        &self,
        id: i64,
        recipient: &str,
        hide_names: bool,
    ) -> Result<()> {
        self.exec(
            "UPDATE destinations SET encryption = ?2, hide_names = ?3, key_exported_at = NULL
             WHERE id = ?1",
            params![id, recipient, hide_names],
        )
        .map(drop)
    }

    /// Records that the destination's key file was exported now.
    pub fn set_key_exported(&self, id: i64) -> Result<()> {
        self.exec(
            "UPDATE destinations SET key_exported_at = ?2 WHERE id = ?1",
            params![id, now_secs()],
        )
        .map(drop)
    }

    pub fn delete_destination(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM destinations WHERE id = ?1", [id])
            .map(drop)
    }

    // ---- watches -----------------------------------------------------------

    pub fn watches(&self) -> Result<Vec<WatchRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{WATCH_SELECT} ORDER BY w.id"))
            .map_err(|e| self.err(e))?;
        st.query_map([], WatchRow::from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// The watch, unless it was removed (by a command racing the engine).
    pub fn watch_if_any(&self, id: i64) -> Result<Option<WatchRow>> {
        self.conn
            .query_row(
                &format!("{WATCH_SELECT} WHERE w.id = ?1"),
                [id],
                WatchRow::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn watch(&self, id: i64) -> Result<WatchRow> {
        self.conn
            .query_row(
                &format!("{WATCH_SELECT} WHERE w.id = ?1"),
                [id],
                WatchRow::from_row,
            )
            .map_err(|e| self.err(e))
    }

    pub fn insert_watch(&self, w: &NewWatch) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO watches (root, mode, album, dest_id, on_delete, all_files,
                                      root_dev, root_ino, created_at, album_names,
                                      album_mode, date_format)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    path_bytes(&w.root),
                    // v11 reads `album_mode`; `mode` only keeps its CHECK.
                    match w.mode {
                        AlbumMode::PerFolder => "per-folder",
                        AlbumMode::Single | AlbumMode::ByDate => "single",
                    },
                    w.album,
                    w.dest_id,
                    w.on_delete.as_str(),
                    w.all_files,
                    w.root_identity.0 as i64,
                    w.root_identity.1 as i64,
                    now_secs(),
                    w.album_names.as_str(),
                    w.mode.as_str(),
                    w.date_format.as_str()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Forgets a watch and its file index; nothing in any folder or
    /// destination is touched, and what was uploaded stays recorded in
    /// `entries` (so re-adding the folder sends no bytes twice).
    pub fn delete_watch(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM watches WHERE id = ?1", [id])
            .map(drop)
    }

    pub fn set_watcher(&self, id: i64, watcher: Option<&WatcherMode>) -> Result<()> {
        self.exec(
            "UPDATE watches SET watcher = ?2 WHERE id = ?1",
            params![id, watcher],
        )
        .map(drop)
    }

    /// Holds a watch's deletions (`count` of them) for the user to confirm.
    pub fn hold_deletions(&self, id: i64, count: u64) -> Result<()> {
        self.exec(
            "UPDATE watches SET deletions_held = ?2, release_deletions = 0 WHERE id = ?1",
            params![id, count as i64],
        )
        .map(drop)
    }

    /// The user's answer to held deletions: `true` to carry them out.
    pub fn release_deletions(&self, id: i64, release: bool) -> Result<()> {
        self.exec(
            "UPDATE watches SET release_deletions = ?2,
                        deletions_held = CASE WHEN ?2 THEN deletions_held ELSE 0 END
                 WHERE id = ?1",
            params![id, release],
        )
        .map(drop)
    }

    pub fn set_watch_state(&self, id: i64, state: WatchState, detail: Option<&str>) -> Result<()> {
        self.exec(
            "UPDATE watches SET state = ?2, state_detail = ?3 WHERE id = ?1",
            params![id, state.as_str(), detail],
        )
        .map(drop)
    }
}

/// Column list shared by every watch query.
/// What a watch into a destination of `kind` takes: an Immich server keeps
/// photos and videos only, whatever `--all-files` says.
fn takes(all_files: bool, kind: DestKind) -> crate::filter::Takes {
    use crate::filter::Takes;
    match (kind, all_files) {
        (DestKind::Immich, _) => Takes::Media,
        (_, true) => Takes::Everything,
        (_, false) => Takes::MediaAndSidecars,
    }
}

const WATCH_SELECT: &str =
    "SELECT w.id, w.root, w.album_mode, w.album, w.dest_id, d.name, w.on_delete,
        w.all_files, w.root_dev, w.root_ino, w.state, w.state_detail, w.ignored, w.scan_gen,
        w.last_scan, w.watcher, w.deletions_held, w.release_deletions, w.album_names,
        w.date_format, d.kind
     FROM watches w JOIN destinations d ON d.id = w.dest_id";

#[derive(Debug, Clone)]
pub struct DestRow {
    pub id: i64,
    pub name: String,
    pub kind: DestKind,
    /// `None` for the embedded library.
    pub path: Option<PathBuf>,
    /// Remote destinations: the server address and the account.
    pub url: Option<String>,
    pub username: Option<String>,
    pub insecure_http: bool,
    /// S3 only.
    pub s3: Option<S3Settings>,
    /// The one server certificate (DER) this destination trusts, if any.
    pub tls_cert: Option<Vec<u8>>,
    /// SFTP only.
    pub ssh: Option<SshSettings>,
    /// The age recipient every object is encrypted to (`seal.rs`); `None`
    /// for a plain destination.
    pub encryption: Option<String>,
    /// When the key file was last exported, if ever.
    pub key_exported_at: Option<i64>,
    /// Encrypted, with album and file names hidden too.
    pub hide_names: bool,
}

/// How an SFTP destination is reached besides its address and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub auth: SshAuth,
    /// The server's pinned host key, as OpenSSH writes public keys.
    pub host_key: String,
}

/// How an SFTP destination signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SshAuth {
    /// A password, kept in the keyring.
    Password,
    /// A private key, kept in the keyring.
    Key,
    /// The keys the user's ssh-agent holds.
    Agent,
}

codes::stored_as_text!(SshAuth, "ssh sign-in", {
    Password => "password",
    Key => "key",
    Agent => "agent",
});

/// What a destination is, which decides how it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestKind {
    /// A folder on this computer, a drive or a mounted NAS share.
    Local,
    Webdav,
    S3,
    Sftp,
    /// An Immich server: albums of assets, not folders of files.
    Immich,
}

codes::stored_as_text!(DestKind, "destination kind", {
    Local => "local",
    Webdav => "webdav",
    S3 => "s3",
    Sftp => "sftp",
    Immich => "immich",
});

impl std::fmt::Display for DestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where an S3 destination's objects go (`url` holds the endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Key prefix albums go under: empty, or ending in `/`.
    pub prefix: String,
    pub path_style: bool,
}

impl DestRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DestRow> {
        Ok(DestRow {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            path: r.get::<_, Option<Vec<u8>>>(3)?.map(|b| bytes_path(&b)),
            url: r.get(4)?,
            username: r.get(5)?,
            insecure_http: r.get(6)?,
            s3: match r.get::<_, Option<String>>(7)? {
                Some(bucket) => Some(S3Settings {
                    bucket,
                    region: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                    prefix: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                    path_style: r.get(10)?,
                }),
                None => None,
            },
            tls_cert: r.get(11)?,
            ssh: match (r.get::<_, Option<SshAuth>>(12)?, r.get(13)?) {
                (Some(auth), Some(host_key)) => Some(SshSettings { auth, host_key }),
                _ => None,
            },
            encryption: r.get(14)?,
            key_exported_at: r.get(15)?,
            hide_names: r.get(16)?,
        })
    }
}

/// What happens in the album when a file is deleted from the watched folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    Keep,
    Remove,
}

impl OnDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDelete::Keep => "keep",
            OnDelete::Remove => "remove",
        }
    }
}

impl std::str::FromStr for OnDelete {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(OnDelete::Keep),
            "remove" => Ok(OnDelete::Remove),
            other => Err(format!(
                "unknown delete policy {other:?}: use keep or remove"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchState {
    /// Added, never scanned.
    New,
    Ok,
    /// The root is missing, unreadable or not the folder that was added.
    Missing,
}

codes::stored_as_text!(WatchState, "watch state", {
    New => "new",
    Ok => "ok",
    Missing => "missing",
});

#[derive(Debug, Clone)]
pub struct NewWatch {
    pub root: PathBuf,
    pub mode: AlbumMode,
    pub album_names: AlbumNames,
    pub date_format: DateFormat,
    pub album: String,
    pub dest_id: i64,
    pub on_delete: OnDelete,
    pub all_files: bool,
    pub root_identity: (u64, u64),
}

#[derive(Debug, Clone)]
pub struct WatchRow {
    pub id: i64,
    pub root: PathBuf,
    pub mode: AlbumMode,
    pub album: String,
    pub dest_id: i64,
    pub dest_name: String,
    pub on_delete: OnDelete,
    pub all_files: bool,
    pub root_identity: (u64, u64),
    pub state: WatchState,
    pub state_detail: Option<String>,
    pub ignored: u64,
    pub scan_gen: i64,
    pub last_scan: Option<i64>,
    /// How a running engine watches it.
    pub watcher: Option<WatcherMode>,
    /// Deletions held for the user to confirm (their count).
    pub deletions_held: u64,
    pub release_deletions: bool,
    /// How `per-folder` names a folder's album.
    pub album_names: AlbumNames,
    /// How `by-date` names an album after a capture date.
    pub date_format: DateFormat,
    /// Its destination's kind, which decides what the watch takes.
    pub dest_kind: DestKind,
}

impl WatchRow {
    /// What the watch backs up.
    pub fn takes(&self) -> crate::filter::Takes {
        takes(self.all_files, self.dest_kind)
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WatchRow> {
        let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
        let bad = |i: usize, e: String| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        };
        Ok(WatchRow {
            id: r.get(0)?,
            root: bytes_path(&r.get::<_, Vec<u8>>(1)?),
            mode: text(2)?.parse().map_err(|e| bad(2, e))?,
            album: r.get(3)?,
            dest_id: r.get(4)?,
            dest_name: r.get(5)?,
            on_delete: text(6)?.parse().map_err(|e| bad(6, e))?,
            all_files: r.get(7)?,
            root_identity: (r.get::<_, i64>(8)? as u64, r.get::<_, i64>(9)? as u64),
            state: r.get(10)?,
            state_detail: r.get(11)?,
            ignored: r.get::<_, i64>(12)? as u64,
            scan_gen: r.get(13)?,
            last_scan: r.get(14)?,
            watcher: r.get(15)?,
            deletions_held: r.get::<_, i64>(16)? as u64,
            release_deletions: r.get(17)?,
            album_names: text(18)?.parse().map_err(|e| bad(18, e))?,
            date_format: text(19)?.parse().map_err(|e| bad(19, e))?,
            dest_kind: r.get(20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_immich_watch_takes_photos_and_videos_only_even_with_all_files() {
        use crate::filter::Takes;
        assert_eq!(takes(true, DestKind::Immich), Takes::Media);
        assert_eq!(takes(false, DestKind::Immich), Takes::Media);
        assert_eq!(takes(true, DestKind::S3), Takes::Everything);
        assert_eq!(takes(false, DestKind::Local), Takes::MediaAndSidecars);
    }

    /// Inside a transaction under way (a turn of the pipeline), a failed
    /// transition undoes only itself, and nothing is visible to another
    /// connection before the outer commit.
    #[test]
    fn a_transaction_inside_another_is_a_savepoint_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (store, reader) = (Store::open(&path).unwrap(), Store::open(&path).unwrap());
        store.begin().unwrap();
        store.transaction(|s| s.set_setting("kept", "yes")).unwrap();
        let failed: Result<()> = store.transaction(|s| {
            s.set_setting("undone", "yes")?;
            Err(crate::error::Error::Invalid("a failed transition".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            store.setting("undone").unwrap(),
            None,
            "the failed step is undone"
        );
        assert_eq!(store.setting("kept").unwrap().as_deref(), Some("yes"));
        assert_eq!(
            reader.setting("kept").unwrap(),
            None,
            "nothing shows before the commit"
        );
        store.commit().unwrap();
        assert_eq!(reader.setting("kept").unwrap().as_deref(), Some("yes"));
    }

    #[test]
    fn settings_are_read_as_types_and_a_value_of_no_type_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert!(!store.flag("paused").unwrap(), "absent is no");
        store.set_flag("paused", true).unwrap();
        assert!(store.flag("paused").unwrap());
        store.set_setting("paused", "sometimes").unwrap();
        let e = store.flag("paused").unwrap_err().to_string();
        assert!(e.contains("\"sometimes\""), "{e}");
        assert_eq!(store.number("workers").unwrap(), None);
        store.set_setting("workers", "6").unwrap();
        assert_eq!(store.number("workers").unwrap(), Some(6));
        store.set_setting("workers", "six").unwrap();
        let e = store.number("workers").unwrap_err().to_string();
        assert!(e.contains("\"six\""), "{e}");
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoebox.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, Error::StoreTooNew { .. }), "got {err}");
        assert!(
            err.to_string().contains("newer version"),
            "the message says what to do: {err}"
        );
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 99, "the newer store's version must not be rewritten");
        assert_eq!(before.len(), std::fs::read(&path).unwrap().len());
    }

    /// The queue is read in steps of a few files (the pipeline's window):
    /// each step goes on from the last file read, within its folder and
    /// across folders, and leaves out files that are not waiting.
    #[test]
    fn the_queue_read_in_steps_gives_every_waiting_file_once_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("Photos");
        for (folder, count) in [("", 3), ("a", 7), ("a/deep", 2), ("b", 4)] {
            let folder = photos.join(folder);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..count {
                std::fs::write(folder.join(format!("IMG_{i}.jpg")), format!("{i}")).unwrap();
            }
        }
        let home = crate::Home::open(Some(dir.path().join("home"))).unwrap();
        let engine = crate::Engine::open(home).unwrap();
        engine
            .add_watch(&crate::WatchSpec {
                folder: photos,
                mode: AlbumMode::Single,
                album_names: crate::AlbumNames::Leaf,
                date_format: Default::default(),
                album: None,
                dest: "library".into(),
                on_delete: OnDelete::Keep,
                all_files: false,
            })
            .unwrap();
        let store = engine.store();
        let watch = store.watches().unwrap().remove(0);
        crate::scan::scan_watch(store, &watch, &|_| {}).unwrap();
        let read_all = |step: usize| {
            let mut cursor = (0, Vec::new(), Vec::new());
            let mut read = Vec::new();
            loop {
                let batch = store.next_queued(&cursor, i64::MAX, step).unwrap();
                let Some(last) = batch.last() else {
                    return read;
                };
                cursor = (last.watch_id, last.dir_rel.clone(), last.name.clone());
                read.extend(batch.into_iter().map(|f| (f.dir_rel, f.name, f.id)));
            }
        };
        let all = read_all(1000);
        assert_eq!(all.len(), 16, "every file, once: {all:?}");
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "in path order");
        for step in [1, 2, 3, 5, 7] {
            assert_eq!(read_all(step), all, "read {step} at a time");
        }
        // Files that no longer wait are left out, wherever they are.
        for (_, _, id) in all.iter().skip(4).step_by(3) {
            store.set_file_state(*id, FileState::Uploaded).unwrap();
        }
        let waiting: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 4 || (i - 4) % 3 != 0)
            .map(|(_, f)| f.clone())
            .collect();
        for step in [1, 2, 3, 4] {
            assert_eq!(read_all(step), waiting, "read {step} at a time");
        }
    }

    #[test]
    fn migrations_are_valid() {
        Migrations::new(migrations()).validate().unwrap();
    }
}
