//! Destinations: where albums are stored. A destination stores objects
//! named `<album>/<name>` and never makes a partial object visible under its
//! final name: an upload is staged, then committed.

pub(crate) mod http;
mod http_auth;
pub(crate) mod immich;
mod local;
pub mod s3;
mod sealed;
pub mod sftp;
pub mod tls;
mod webdav;

pub use immich::{Immich, ImmichConfig};
pub use local::{LocalFolder, PendingSyncs};
pub use s3::{S3, S3Config};
pub use sftp::Sftp;
pub use webdav::WebDav;

use std::io::Read;
use std::sync::Arc;

use crate::error::{DestError, Error, Result};
use crate::home::Home;
use crate::store::{DestKind, DestRow, Hash};

/// Builds the destination object for a destination row: an encrypted one
/// wraps the real destination in [`sealed::Sealed`].
pub fn open(home: &Home, row: &DestRow) -> Result<Arc<dyn Destination>> {
    let plain = open_plain(home, row)?;
    match &row.encryption {
        None => Ok(plain),
        Some(recipient) => Ok(Arc::new(sealed::Sealed::new(
            plain,
            key_of(row, recipient)?,
            row.hide_names,
        ))),
    }
}

/// An encrypted destination's key, from the keyring or the environment; it
/// must be the one the destination encrypts to.
pub(crate) fn key_of(row: &DestRow, recipient: &str) -> Result<crate::seal::AgeKey> {
    use crate::secrets::Slot;
    let var = Slot::Identity.env_var(&row.name);
    let text = crate::secrets::load_from(Slot::Identity, &row.name)?.ok_or_else(|| {
        Error::Invalid(format!(
            "destination {} is encrypted, and its key is neither in the system keyring nor in {var}: \
             run `shoebox dest encrypt {} --identity FILE` with the key file you exported, or set \
             {var} to the key (AGE-SECRET-KEY-1…)",
            row.name, row.name
        ))
    })?;
    let key = crate::seal::AgeKey::from_identity_text(&text).map_err(|e| {
        Error::Invalid(format!(
            "the key of destination {} (in the keyring or {var}) is not usable: {e}",
            row.name
        ))
    })?;
    if key.recipient() != recipient {
        return Err(Error::Invalid(format!(
            "the key found for destination {} (in the keyring or {var}) is {}, but the \
             destination is encrypted to {recipient}: give it the key file exported for it",
            row.name,
            key.recipient()
        )));
    }
    Ok(key)
}

/// The destination itself, without encryption.
fn open_plain(home: &Home, row: &DestRow) -> Result<Arc<dyn Destination>> {
    match row.kind {
        DestKind::Local => Ok(Arc::new(match &row.path {
            Some(p) => LocalFolder::new(&row.name, p.clone(), false, &home.engine_id()?),
            None => LocalFolder::new(&row.name, home.library_dir(), true, &home.engine_id()?),
        })),
        DestKind::Webdav => {
            let url = row.url.as_deref().unwrap_or_default();
            // A server without accounts needs no secret (nor a keyring).
            let password = match row.username {
                Some(_) => crate::secrets::load(&row.name)?,
                None => None,
            };
            if row.username.is_some() && password.is_none() {
                return Err(Error::Invalid(format!(
                    "destination {} has no password: add it again with --password-stdin, or set {}",
                    row.name,
                    crate::secrets::env_var(&row.name)
                )));
            }
            WebDav::new(
                &row.name,
                url,
                row.username.clone(),
                password,
                row.insecure_http,
                row.tls_cert.as_deref(),
                &home.engine_id()?,
            )
            .map(|d| Arc::new(d) as Arc<dyn Destination>)
            .map_err(|e| Error::Invalid(e.to_string()))
        }
        DestKind::S3 => {
            let secret = crate::secrets::load(&row.name)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "destination {} has no secret key: add it again with --secret-stdin, or set {}",
                    row.name,
                    crate::secrets::env_var(&row.name)
                ))
            })?;
            let cfg = S3Config {
                endpoint: row.url.clone().unwrap_or_default(),
                settings: row.s3.clone().ok_or_else(|| {
                    Error::Invalid(format!(
                        "destination {} has no bucket; add it again",
                        row.name
                    ))
                })?,
                access_key_id: row.username.clone().unwrap_or_default(),
                secret,
                insecure_http: row.insecure_http,
                tls_cert: row.tls_cert.clone(),
            };
            S3::new(&row.name, cfg, &home.db_path(), row.id)
                .map(|d| Arc::new(d) as Arc<dyn Destination>)
                .map_err(|e| Error::Invalid(e.to_string()))
        }
        DestKind::Sftp => open_sftp(home, row),
        DestKind::Immich => open_immich(home, row),
    }
}

/// Builds an Immich destination from its row and its API key.
fn open_immich(home: &Home, row: &DestRow) -> Result<Arc<dyn Destination>> {
    let key = crate::secrets::load(&row.name)?.ok_or_else(|| {
        Error::Invalid(format!(
            "destination {} has no API key: give it with `shoebox dest edit {} --api-key-stdin`, \
             or set {}",
            row.name,
            row.name,
            crate::secrets::env_var(&row.name)
        ))
    })?;
    let cfg = ImmichConfig {
        url: row.url.as_deref().unwrap_or_default(),
        key,
        insecure_http: row.insecure_http,
        tls_cert: row.tls_cert.as_deref(),
        db: &home.db_path(),
        dest_id: row.id,
    };
    Immich::new(&row.name, cfg)
        .map(|d| Arc::new(d) as Arc<dyn Destination>)
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Builds an SFTP destination from its row and its secret.
fn open_sftp(home: &Home, row: &DestRow) -> Result<Arc<dyn Destination>> {
    let incomplete = || {
        Error::Invalid(format!(
            "destination {} lacks its SFTP settings; remove it and add it again",
            row.name
        ))
    };
    let ssh = row.ssh.as_ref().ok_or_else(incomplete)?;
    let (host, port) = sftp::host_port(row.url.as_deref().unwrap_or_default())
        .map_err(|why| Error::Invalid(format!("destination {}: {why}", row.name)))?;
    let secret = match ssh.auth {
        crate::store::SshAuth::Agent => None,
        what => Some(crate::secrets::load(&row.name)?.ok_or_else(|| {
            Error::Invalid(format!(
                "destination {} has no {}: add it again, or set {}",
                row.name,
                if what == crate::store::SshAuth::Key {
                    "private key"
                } else {
                    "password"
                },
                crate::secrets::env_var(&row.name)
            ))
        })?),
    };
    let host_key = sftp::parse_host_key(&ssh.host_key)
        .map_err(|why| Error::Invalid(format!("destination {}: {why}; add it again", row.name)))?;
    let target = sftp::SshTarget {
        host,
        port,
        user: row.username.clone().unwrap_or_default(),
        auth: ssh.auth,
        secret,
    };
    let root = row
        .path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or_else(incomplete)?;
    Sftp::new(&row.name, target, host_key, &root, &home.engine_id()?)
        .map(|d| Arc::new(d) as Arc<dyn Destination>)
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// What is being uploaded: the object's place, its length and the content
/// hash the bytes must have (known before the upload starts).
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub album: &'a str,
    pub name: &'a str,
    /// The length of the bytes the reader yields (what is stored).
    pub len: u64,
    /// The content hash of the source file.
    pub hash: &'a Hash,
    /// True when the bytes are an encoding of the content (encrypted,
    /// `seal.rs`): they do not hash to `hash`, and the encoder itself ends
    /// them short when the content is not the hashed version.
    pub encoded: bool,
    /// True when the object replaces this engine's own earlier version of
    /// the entry; otherwise the name must be free when the upload commits,
    /// and [`DestError::NameTaken`] says it no longer was.
    pub overwrite: bool,
    /// The source's modification time, which the copy keeps where the
    /// destination can hold it (for many photos the only date they have).
    pub modified: Option<std::time::SystemTime>,
    /// When the photo was taken (its item's capture date, local time),
    /// for destinations that keep it apart (Immich's `fileCreatedAt`).
    pub taken: Option<chrono::NaiveDateTime>,
    /// The file being backed up, for a destination that sends companions
    /// along with it (Immich: the photo's XMP sidecar).
    pub source: Option<&'a std::path::Path>,
}

/// A modification time as S3 metadata carries it: seconds since 1970,
/// with the fraction rclone reads.
pub(crate) fn mtime_text(t: std::time::SystemTime) -> Option<String> {
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(match d.subsec_nanos() {
        0 => d.as_secs().to_string(),
        ns => format!("{}.{ns:09}", d.as_secs()),
    })
}

/// What a destination's identity marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// This kind of destination keeps no marker (a server is reached by
    /// its address; it cannot be "unmounted").
    NotKept,
    /// No marker: a destination never used, or one whose drive is not
    /// mounted or whose folder was deleted.
    Absent,
    /// The marker's id.
    Found(String),
}

/// The marker's file name in a destination's root.
pub const MARKER_FILE: &str = ".shoebox-destination";

/// An upload whose bytes are written but not yet visible under the final
/// name. Dropping it without [`Staged::commit`] discards it.
pub trait Staged: Send {
    /// Makes the object visible under its final name, durably.
    fn commit(self: Box<Self>) -> Result<(), DestError>;

    /// Makes the object visible under its final name; what makes that
    /// durable may be left in `syncs`, for the caller to do (once for
    /// several commits) before it counts this one as done.
    fn commit_with(self: Box<Self>, syncs: &mut PendingSyncs) -> Result<(), DestError> {
        let _ = syncs;
        self.commit()
    }
}

/// What a destination can do, which decides how a change reaches it: a
/// destination without server-side copy or rename gets an upload instead,
/// and one that cannot read content back never adopts what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Copies an object into a new place without sending it again.
    pub server_side_copy: bool,
    /// Moves or renames an object without sending it again.
    pub rename: bool,
    /// Reads an object's content back (to prove it is the one expected).
    pub reads_back: bool,
}

impl Capabilities {
    /// Copies and renames server-side, and reads content back.
    pub const ALL: Capabilities = Capabilities {
        server_side_copy: true,
        rename: true,
        reads_back: true,
    };
}

/// An object found in an album by [`Destination::list_album`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Its stored length.
    pub len: u64,
    /// Its modification time, where the listing gives the photo's date.
    pub modified: Option<std::time::SystemTime>,
}

/// An object's stored bytes, being read back.
pub type StoredBytes = Box<dyn Read + Send>;

/// An object being read back: its stored bytes, and its date where the
/// answer carried one (`None`: ask [`Destination::stored_modified`]).
pub struct ReadBack {
    pub bytes: StoredBytes,
    pub modified: Option<std::time::SystemTime>,
}

impl ReadBack {
    /// Bytes whose answer carried no date.
    pub fn undated(bytes: StoredBytes) -> Self {
        Self {
            bytes,
            modified: None,
        }
    }
}

/// When [`Destination::after_pass`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassEnd {
    /// A pass ended; more follow. Costly upkeep may wait for a later one.
    Pass,
    /// The engine is stopping (or a one-off `sync` ends): upkeep is due now.
    Stopping,
}

/// A place that stores albums. It stores and returns bytes as it is given
/// them, and knows nothing of what they mean (their content hash, or an
/// encoding): the upload path checks what it reads back.
pub trait Destination: Send + Sync {
    /// The destination's name, for messages.
    fn name(&self) -> &str;

    /// Checks that the destination can be used now (mounted, reachable,
    /// credentials accepted), changing nothing on it.
    fn reach(&self) -> Result<(), DestError>;

    /// [`Destination::reach`], then removes what this engine's interrupted
    /// uploads left behind (never another engine's).
    fn prepare(&self) -> Result<(), DestError>;

    /// What the destination can do, for the planner.
    fn capabilities(&self) -> Capabilities;

    /// The folder on this computer the destination writes into, if it is
    /// one (a local or NAS folder): it must never be inside a watch.
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }

    /// New names written since the last call whose object another writer
    /// has replaced since (on a server with no atomic "create if absent",
    /// in the instant between a name's check and its write): each is given
    /// up and its file backed up again under a free name. Empty where
    /// writes of new names cannot replace anything.
    fn names_lost(&self) -> Result<Vec<(String, String)>, DestError> {
        Ok(Vec::new())
    }

    /// Called after each pass, once the pass's work is done, and once more
    /// when the engine stops: a place for what a destination keeps about
    /// the whole backup (the manifest of hidden names, `sealed.rs`).
    fn after_pass(&self, _when: PassEnd) -> Result<(), DestError> {
        Ok(())
    }

    /// Every object in `<album>/` with its stored length, in one request
    /// (or a few) where the destination can list: what `shoebox verify`
    /// compares with the index. An album with no folder or prefix is
    /// empty. `None` where the destination cannot list (each object is
    /// then looked up on its own).
    fn list_album(&self, _album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        Ok(None)
    }

    /// The albums the destination holds (for `shoebox restore` on a
    /// machine whose index knows nothing yet); `None` where it cannot list.
    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        Ok(None)
    }

    /// An object's modification time where its listing does not give it
    /// (S3 keeps it in metadata that only a HEAD returns).
    fn stored_modified(
        &self,
        _album: &str,
        _name: &str,
    ) -> Result<Option<std::time::SystemTime>, DestError> {
        Ok(None)
    }

    /// Reads the destination's identity marker.
    fn marker(&self) -> Result<Marker, DestError> {
        Ok(Marker::NotKept)
    }

    /// Writes the identity marker `id` durably, unless a marker appeared
    /// meanwhile (another computer's engine starting on the same
    /// destination): returns the id the marker holds now.
    fn write_marker(&self, id: &str) -> Result<String, DestError> {
        Ok(id.to_string())
    }

    /// True when an object with this name exists (whether or not Shoebox
    /// put it there), so that nothing is ever overwritten by accident.
    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError>;

    /// The stored bytes of `<album>/<name>`, to read back, when it exists
    /// and holds exactly `len` of them; `None` when it is absent or of
    /// another length (ruled out without reading it where the destination
    /// can tell). See [`holds`]. The object's date comes with them where
    /// the answer carries it (S3's `mtime` metadata), so that `restore`
    /// needs no second request for it.
    fn read_back(&self, album: &str, name: &str, len: u64) -> Result<Option<ReadBack>, DestError>;

    /// Streams `source` (`upload.len` bytes) into a staged object for
    /// `<album>/<name>`; returns the staged upload and the bytes written.
    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError>;

    /// Moves an object inside the destination without sending its bytes.
    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError>;

    /// Copies an object inside the destination without sending its bytes.
    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError>;

    /// Deletes an object; an object that is already gone is not an error.
    fn delete(&self, album: &str, name: &str) -> Result<(), DestError>;

    /// Gives an existing object the modification time `t`, where the
    /// destination keeps one and can change it without the object being
    /// sent again; false where it cannot.
    fn set_modified(
        &self,
        _album: &str,
        _name: &str,
        _t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        Ok(false)
    }

    /// Checks reachability, credentials and write permission, one line each
    /// (`shoebox dest test`).
    fn check(&self) -> Vec<Check> {
        let reached = self.reach();
        let mut out = vec![reach_check(&reached)];
        if reached.is_ok() {
            out.push(write_check(self));
        }
        out
    }
}

/// [`Destination::prepare`], retrying transient failures (a reset, a 503)
/// with backoff, so that one lost request does not stop the destination
/// for a whole pass.
pub fn prepare_with_retries(dest: &dyn Destination) -> Result<(), DestError> {
    with_dest_retries(|| dest.prepare())
}

/// Checks a destination's identity before anything is written to it, then
/// prepares it. A destination that keeps a marker gets one at first use
/// (its id recorded in the store); afterwards a missing marker means the
/// drive is not mounted or the folder was deleted, and a different one
/// means another backup is there: either way nothing is written.
pub(crate) fn prepare_checked(
    store: &crate::store::Store,
    row: &DestRow,
    dest: &dyn Destination,
) -> Result<(), DestError> {
    let unavailable = |why: String| DestError::Unavailable {
        name: row.name.clone(),
        why,
    };
    let store_err = |e: Error| unavailable(e.to_string());
    // Checked before every pass: the folder may since have been replaced
    // by a link or a mount that leads into a watched folder.
    if let Some(root) = dest.local_root() {
        for w in store.watches().map_err(store_err)? {
            if crate::platform::folders_overlap(root, &w.root) {
                return Err(unavailable(format!(
                    "its folder {} now leads into the watched folder {} (through a link or a \
                     mount), and Shoebox never writes into a watched folder. Point the destination \
                     back at a folder outside every watch",
                    root.display(),
                    w.root.display()
                )));
            }
        }
    }
    let recorded = store.destination_marker(row.id).map_err(store_err)?;
    match (with_dest_retries(|| dest.marker())?, recorded) {
        (Marker::NotKept, _) => {}
        (Marker::Found(found), Some(want)) if found == want => {}
        (Marker::Found(found), Some(want)) => {
            return Err(unavailable(format!(
                "it holds a different Shoebox backup (marker {found}, expected {want}), as when \
                 another drive is mounted in its place; connect the right drive. If this one is \
                 meant to replace it, run `shoebox dest reset {}` to back everything up to it again",
                row.name
            )));
        }
        // Another computer's engine, or this store rebuilt: the same backup.
        (Marker::Found(found), None) => {
            store
                .set_destination_marker(row.id, &found)
                .map_err(store_err)?;
        }
        (Marker::Absent, Some(_)) => {
            return Err(unavailable(format!(
                "its marker file {MARKER_FILE} is gone, so this is not the folder Shoebox backed up \
                 into: is the drive mounted? Connect or mount it and sync again. If the backup there \
                 was deleted, run `shoebox dest reset {}` to back everything up to it again",
                row.name
            )));
        }
        (Marker::Absent, None) => {
            // An older store recorded entries here before markers existed:
            // only a folder that still holds one of them is that backup.
            if let Some(e) = store.any_present_entry(row.id).map_err(store_err)?
                && !with_dest_retries(|| dest.exists(&e.album, &e.name))?
            {
                return Err(unavailable(format!(
                    "{}/{} which Shoebox stored there is missing: is the drive mounted? Connect \
                     or mount it and sync again. If the backup there was deleted, run \
                     `shoebox dest reset {}` to back everything up to it again",
                    e.album, e.name, row.name
                )));
            }
            let id = crate::platform::random_hex(16);
            let id = with_dest_retries(|| dest.write_marker(&id))?;
            store
                .set_destination_marker(row.id, &id)
                .map_err(store_err)?;
        }
    }
    prepare_with_retries(dest)
}

/// Runs a destination operation with retries of transient failures.
fn with_dest_retries<T>(op: impl FnMut() -> Result<T, DestError>) -> Result<T, DestError> {
    crate::retry::Backoff::OPERATION.retry(op)
}

/// True when `body` is exactly `len` bytes whose BLAKE3 is `hash`.
/// True when `<album>/<name>` exists and holds exactly `len` bytes hashing
/// to `hash`: a copy Shoebox made before its index was lost, which is
/// adopted rather than uploaded again beside itself (and, before a name is
/// deleted, proof that it is still ours). The bytes are the stored ones;
/// an encrypted destination (`sealed.rs`) decodes them before they are compared.
pub(crate) fn holds(
    dest: &dyn Destination,
    album: &str,
    name: &str,
    len: u64,
    hash: &Hash,
) -> Result<bool, DestError> {
    let Some(mut stored) = dest.read_back(album, name, len)? else {
        return Ok(false);
    };
    content_is(&mut stored.bytes, len, hash).map_err(|e| DestError::Interrupted {
        name: dest.name().to_string(),
        what: "read an existing object back".to_string(),
        why: e.to_string(),
    })
}

fn content_is(body: &mut dyn Read, len: u64, hash: &Hash) -> std::io::Result<bool> {
    let mut hasher = blake3::Hasher::new();
    // One byte more than expected is enough to tell a longer object.
    match std::io::copy(&mut body.take(len + 1), &mut hasher) {
        Ok(read) => Ok(read == len && hasher.finalize().as_bytes() == hash),
        // Bytes that do not decode (an encrypted object damaged, or
        // encrypted with another key) are not this content.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(false),
        Err(e) => Err(e),
    }
}

/// The "reachable" line of `shoebox dest test`.
pub(crate) fn reach_check(reached: &Result<(), DestError>) -> Check {
    Check::new(
        "reachable",
        reached
            .as_ref()
            .map(|()| "yes".to_string())
            .map_err(ToString::to_string),
    )
}

/// Stages a small file (never committed: it is discarded at once), to show
/// that the destination accepts writes. A transient refusal (a folder
/// locked by a running engine's upload, a busy server) is tried again as an
/// upload would be, so that it is not reported as a missing permission.
pub(crate) fn write_check(dest: &(impl Destination + ?Sized)) -> Check {
    let probe = b"shoebox write test";
    let hash = blake3::hash(probe);
    let upload = Upload {
        album: ".shoebox-staging",
        name: "write-test",
        len: probe.len() as u64,
        hash: hash.as_bytes(),
        overwrite: false,
        modified: None,
        taken: None,
        source: None,
        encoded: false,
    };
    let write = with_dest_retries(|| dest.stage(&upload, &mut &probe[..]))
        .map(|(staged, _)| drop(staged))
        .map(|()| "a test file was written and removed".to_string())
        .map_err(|e| e.to_string());
    Check::new("write permission", write)
}

/// One line of `shoebox dest test`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(check: &'static str, result: std::result::Result<String, String>) -> Check {
        match result {
            Ok(detail) => Check {
                check,
                ok: true,
                detail,
            },
            Err(detail) => Check {
                check,
                ok: false,
                detail,
            },
        }
    }
}
