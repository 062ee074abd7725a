//! An SFTP server as a destination: `<root>/<album>/<name>` on the server,
//! reached over SSH (russh, pure Rust, with russh-sftp for the protocol).
//!
//! The same shape as a local folder: an upload is written into this
//! engine's staging folder on the server (`<root>/.shoebox-staging/<engine
//! id>`), given its date, fsynced (`fsync@openssh.com`), then renamed into
//! place. SFTP's plain rename never replaces a name (OpenSSH links, then
//! unlinks), which keeps an existing object safe; a new version of the
//! engine's own object replaces it with `posix-rename@openssh.com`. A copy
//! is a hard link (`hardlink@openssh.com`) where the server offers one,
//! else the planner uploads. A marker file in the root proves it is the
//! backup, as for a folder.
//!
//! The engine's threads call in synchronously; each call runs its requests
//! on the destination's own small tokio runtime. One SSH connection is
//! shared and opened again when it is lost.

mod connect;

pub use connect::{SshTarget, fingerprint, parse_host_key};

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use russh::keys::PublicKey;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::{Destination, Listed, MARKER_FILE, Marker, Staged, Upload};
use crate::error::DestError;
use connect::Conn;

/// Bytes per write or read request.
const CHUNK: usize = 64 * 1024;
/// Write requests sent before the first is answered.
const WRITES_IN_FLIGHT: usize = 16;

/// An SFTP destination.
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    target: SshTarget,
    host_key: PublicKey,
    /// The folder on the server, without a trailing `/` (but `/` itself).
    root: String,
    /// This engine's staging folder, inside `<root>/.shoebox-staging`.
    staging: String,
    rt: tokio::runtime::Runtime,
    conn: Mutex<Option<Arc<Conn>>>,
    /// The server offers hard links: copies need no upload.
    hardlink: AtomicBool,
}

impl std::fmt::Debug for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sftp")
            .field("name", &self.inner.name)
            .field("target", &self.inner.target)
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// A failure of one request, before it is given a meaning.
enum Fail {
    Dest(DestError),
    Sftp(SftpError),
    Source(io::Error),
}

impl From<SftpError> for Fail {
    fn from(e: SftpError) -> Fail {
        Fail::Sftp(e)
    }
}

fn status(e: &Fail) -> Option<StatusCode> {
    match e {
        Fail::Sftp(SftpError::Status(s)) => Some(s.status_code),
        _ => None,
    }
}

fn not_found(e: &Fail) -> bool {
    status(e) == Some(StatusCode::NoSuchFile)
}

impl Sftp {
    /// `root` is the folder on the server; `engine` names this engine's
    /// staging folder there.
    pub fn new(
        name: &str,
        target: SshTarget,
        host_key: PublicKey,
        root: &str,
        engine: &str,
    ) -> Result<Sftp, DestError> {
        let root = match root.trim_end_matches('/') {
            "" => "/".to_string(),
            r => r.to_string(),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("shoebox-sftp")
            .enable_all()
            .build()
            .map_err(|e| DestError::Unavailable {
                name: name.to_string(),
                why: format!("its connection thread could not start ({e})"),
            })?;
        Ok(Sftp {
            inner: Arc::new(Inner {
                name: name.to_string(),
                staging: format!("{}/{STAGING_DIR}/{engine}", join_root(&root)),
                root,
                target,
                host_key,
                rt,
                conn: Mutex::new(None),
                hardlink: AtomicBool::new(false),
            }),
        })
    }

    fn name_str(&self) -> &str {
        &self.inner.name
    }

    fn album_path(&self, album: &str) -> String {
        format!("{}/{album}", join_root(&self.inner.root))
    }

    fn object(&self, album: &str, name: &str) -> String {
        format!("{}/{album}/{name}", join_root(&self.inner.root))
    }

    /// The open connection, or a new one.
    fn conn(&self) -> Result<Arc<Conn>, DestError> {
        let mut slot = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref()
            && !c.ssh.is_closed()
        {
            return Ok(c.clone());
        }
        *slot = None;
        let inner = &self.inner;
        let conn = Arc::new(inner.rt.block_on(connect::open(
            &inner.name,
            &inner.target,
            &inner.host_key,
        ))?);
        inner.hardlink.store(conn.hardlink, Ordering::Relaxed);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs requests on a connection; a lost connection is dropped so
    /// that the next call opens a new one.
    fn run<T, F>(&self, op: impl FnOnce(Arc<Conn>) -> F) -> Result<T, Fail>
    where
        F: Future<Output = Result<T, Fail>>,
    {
        let conn = self.conn().map_err(Fail::Dest)?;
        let result = self.inner.rt.block_on(op(conn.clone()));
        if let Err(e) = &result
            && is_lost(e)
        {
            let mut slot = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                *slot = None;
            }
        }
        result
    }

    /// What a failed request means for the user.
    fn error(&self, what: &str, path: &str, e: Fail) -> DestError {
        let name = self.name_str().to_string();
        match e {
            Fail::Dest(d) => d,
            Fail::Source(source) => DestError::Io {
                name,
                path: path.to_string(),
                source,
            },
            ref f if is_lost(f) => DestError::Interrupted {
                name,
                what: what.to_string(),
                why: match f {
                    Fail::Sftp(e) => format!("the SFTP connection was lost ({e})"),
                    _ => "the SFTP connection was lost".to_string(),
                },
            },
            Fail::Sftp(SftpError::Status(s))
                if s.status_code == StatusCode::Failure && self.disk_full() =>
            {
                DestError::Full {
                    name,
                    source: io::Error::new(
                        io::ErrorKind::StorageFull,
                        format!(
                            "could not {what}: the disk holding {} on {} has no space left",
                            self.inner.root, self.inner.target.host
                        ),
                    ),
                }
            }
            Fail::Sftp(SftpError::Status(s)) => {
                let kind = match s.status_code {
                    StatusCode::NoSuchFile => io::ErrorKind::NotFound,
                    StatusCode::PermissionDenied => io::ErrorKind::PermissionDenied,
                    StatusCode::OpUnsupported => io::ErrorKind::Unsupported,
                    _ => io::ErrorKind::Other,
                };
                let advice = match s.status_code {
                    StatusCode::PermissionDenied => {
                        "; check that the account may write into the destination's folder"
                    }
                    // OpenSSH reports a full disk, a quota or a read-only
                    // file system as a plain "Failure".
                    StatusCode::Failure => {
                        "; the server gave no reason: check its free space and quota"
                    }
                    _ => "",
                };
                DestError::Io {
                    name,
                    path: path.to_string(),
                    source: io::Error::new(
                        kind,
                        format!(
                            "could not {what}: the server said {:?}{advice}",
                            s.error_message
                        ),
                    ),
                }
            }
            Fail::Sftp(other) => DestError::Io {
                name,
                path: path.to_string(),
                source: io::Error::other(format!("could not {what}: {other}")),
            },
        }
    }

    /// True when the server says the destination's disk has (almost) no
    /// space left: OpenSSH reports a full disk as a plain "Failure", so
    /// after one the free space is asked for (`statvfs@openssh.com`).
    fn disk_full(&self) -> bool {
        /// Less than this free is too little for any photo.
        const FULL_BELOW: u64 = 1 << 20;
        let root = self.inner.root.clone();
        let free = self.run(|c| async move {
            if !c.statvfs {
                return Ok(None);
            }
            let v = c.sftp.statvfs(root).await?;
            Ok(Some(v.blocks_avail.saturating_mul(v.fragment_size.max(1))))
        });
        matches!(free, Ok(Some(bytes)) if bytes < FULL_BELOW)
    }

    fn unavailable(&self, why: String) -> DestError {
        DestError::Unavailable {
            name: self.name_str().to_string(),
            why,
        }
    }

    fn name_taken(&self, album: &str, name: &str) -> DestError {
        DestError::NameTaken {
            name: self.name_str().to_string(),
            album: album.to_string(),
            object: name.to_string(),
        }
    }

    /// Writes `source` into a new file in the staging folder: dated,
    /// fsynced and closed. Returns its path and the bytes written.
    fn write_staged(
        &self,
        modified: Option<std::time::SystemTime>,
        source: &mut (dyn Read + Send),
    ) -> Result<(String, u64), DestError> {
        let temp = format!(
            "{}/upload-{}.part",
            self.inner.staging,
            crate::platform::random_hex(8)
        );
        let mtime = modified.and_then(unix_secs);
        // Paced as it is read: each chunk is written as soon as it is read.
        let mut source = crate::transfer::rate::paced(source);
        let result = self.run(|c| write_file(c, temp.clone(), mtime, &mut source));
        match result {
            Ok(n) => Ok((temp, n)),
            Err(e) => {
                let failed = self.error("write the upload", &temp, e);
                self.remove_quietly(&temp);
                Err(failed)
            }
        }
    }

    /// Creates an album's folder unless it exists.
    fn album_dir(&self, album: &str) -> Result<(), DestError> {
        let dir = self.album_path(album);
        self.run(|c| mkdir_unless_there(c, dir.clone()))
            .map_err(|e| self.error("create the album folder", &dir, e))
    }

    /// Removes an album's folder if it is now empty.
    fn tidy_album(&self, album: &str) {
        let dir = self.album_path(album);
        // Fails while the folder holds anything, as it should.
        let _ = self.run(|c| async move { Ok(c.sftp.rmdir(dir).await?) });
    }

    /// True when something exists at `path`.
    fn there(&self, path: &str) -> Result<bool, DestError> {
        let p = path.to_string();
        match self.run(|c| async move { Ok(c.sftp.lstat(p).await?) }) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.error("look up a file", path, e)),
        }
    }

    /// Renames `from` to `to` without replacing anything: a name that is
    /// already taken fails with `Ok(false)`.
    fn rename_no_replace(&self, from: &str, to: &str) -> Result<bool, DestError> {
        let (f, t) = (from.to_string(), to.to_string());
        match self.run(|c| async move { Ok(c.sftp.rename(f, t).await?) }) {
            Ok(_) => Ok(true),
            // SFTP version 3 gives no reason: look.
            Err(_) if self.there(to)? => Ok(false),
            Err(e) => Err(self.error("rename a file", from, e)),
        }
    }

    /// Renames `from` to `to`, replacing what is there.
    fn rename_replacing(&self, from: &str, to: &str) -> Result<(), DestError> {
        let (f, t) = (from.to_string(), to.to_string());
        self.run(|c| async move {
            if c.posix_rename {
                let mut data = Vec::new();
                put_string(&mut data, &f);
                put_string(&mut data, &t);
                let reply = c.sftp.extended("posix-rename@openssh.com", data).await?;
                return status_ok(reply);
            }
            // No atomic replace: remove, then rename (a crash in between
            // leaves the new version staged and the entry sent again).
            match c.sftp.remove(t.clone()).await {
                Ok(_) => {}
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
                Err(e) => return Err(e.into()),
            }
            c.sftp.rename(f, t).await?;
            Ok(())
        })
        .map_err(|e| self.error("replace a file", to, e))
    }

    /// The size of the file at `path`, when it is one.
    fn file_size(&self, path: &str) -> Result<Option<u64>, DestError> {
        let p = path.to_string();
        match self.run(|c| async move { Ok(c.sftp.lstat(p).await?.attrs) }) {
            Ok(a) if a.is_regular() => Ok(Some(a.size.unwrap_or(0))),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(self.error("look up a file", path, e)),
        }
    }

    /// The entries of a folder on the server (empty when it is missing).
    fn read_dir(&self, dir: &str) -> Result<Vec<(String, FileAttributes)>, Fail> {
        let dir = dir.to_string();
        self.run(|c| async move {
            let handle = match c.sftp.opendir(dir).await {
                Ok(h) => h.handle,
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            let listed = loop {
                match c.sftp.readdir(handle.clone()).await {
                    Ok(batch) => out.extend(
                        batch
                            .files
                            .into_iter()
                            .filter(|f| f.filename != "." && f.filename != "..")
                            .map(|f| (f.filename, f.attrs)),
                    ),
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let _ = c.sftp.close(handle).await;
            listed?;
            Ok(out)
        })
    }

    /// Makes the staging folders (the root must exist: a missing one may
    /// be an unmounted disk on the server).
    fn make_staging(&self) -> Result<(), DestError> {
        let top = format!("{}/{STAGING_DIR}", join_root(&self.inner.root));
        for dir in [top, self.inner.staging.clone()] {
            self.run(|c| mkdir_unless_there(c, dir.clone()))
                .map_err(|e| self.error("create the staging folder", &dir, e))?;
        }
        Ok(())
    }
}

/// The root as a prefix for `/`-joined paths.
fn join_root(root: &str) -> &str {
    if root == "/" { "" } else { root }
}

/// Where staged uploads live on the server, as in a folder destination.
const STAGING_DIR: &str = super::local::STAGING_DIR;

/// True when the connection itself failed (not one request).
fn is_lost(e: &Fail) -> bool {
    match e {
        Fail::Sftp(SftpError::Status(s)) => matches!(
            s.status_code,
            StatusCode::NoConnection | StatusCode::ConnectionLost
        ),
        Fail::Sftp(_) => true,
        Fail::Dest(_) | Fail::Source(_) => false,
    }
}

fn unix_secs(t: std::time::SystemTime) -> Option<u32> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    u32::try_from(secs).ok()
}

/// Appends an SSH string (length, then bytes).
fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn status_ok(reply: russh_sftp::protocol::Packet) -> Result<(), Fail> {
    match reply {
        russh_sftp::protocol::Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        russh_sftp::protocol::Packet::Status(s) => Err(SftpError::Status(s).into()),
        _ => Err(SftpError::UnexpectedPacket.into()),
    }
}

async fn mkdir_unless_there(c: Arc<Conn>, dir: String) -> Result<(), Fail> {
    match c.sftp.mkdir(dir.clone(), FileAttributes::empty()).await {
        Ok(_) => Ok(()),
        Err(e) => match c.sftp.lstat(dir).await {
            Ok(a) if a.attrs.is_dir() => Ok(()),
            _ => Err(e.into()),
        },
    }
}

/// Creates `path` (it must not exist), writes `source` into it with
/// several writes in flight, dates it, fsyncs it and closes it.
async fn write_file(
    c: Arc<Conn>,
    path: String,
    mtime: Option<u32>,
    source: &mut (dyn Read + Send),
) -> Result<u64, Fail> {
    let attrs = FileAttributes {
        permissions: Some(0o644),
        ..FileAttributes::empty()
    };
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
    let handle = c.sftp.open(path, flags, attrs).await?.handle;
    let written = write_all(&c.sftp, &handle, source).await;
    let finished = match written {
        Ok(n) => finish(&c, &handle, mtime).await.map(|()| n),
        Err(e) => Err(e),
    };
    let closed = c.sftp.close(handle).await;
    let n = finished?;
    closed?;
    Ok(n)
}

async fn write_all(
    sftp: &Arc<RawSftpSession>,
    handle: &str,
    source: &mut (dyn Read + Send),
) -> Result<u64, Fail> {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut offset = 0u64;
    loop {
        let chunk = read_chunk(source).map_err(Fail::Source)?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len() as u64;
        let (s, h) = (sftp.clone(), handle.to_string());
        in_flight.spawn(async move { s.write(h, offset, chunk).await });
        offset += n;
        while in_flight.len() >= WRITES_IN_FLIGHT {
            joined(in_flight.join_next().await)?;
        }
    }
    while let Some(r) = in_flight.join_next().await {
        joined(Some(r))?;
    }
    Ok(offset)
}

fn joined<T>(r: Option<Result<Result<T, SftpError>, tokio::task::JoinError>>) -> Result<(), Fail> {
    match r {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) => Err(SftpError::UnexpectedBehavior(e.to_string()).into()),
    }
}

/// Up to [`CHUNK`] bytes of `source`; empty at its end.
fn read_chunk(source: &mut (dyn Read + Send)) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(CHUNK);
    source.take(CHUNK as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Dates and fsyncs a written file.
async fn finish(c: &Conn, handle: &str, mtime: Option<u32>) -> Result<(), Fail> {
    if let Some(t) = mtime {
        let attrs = FileAttributes {
            atime: Some(t),
            mtime: Some(t),
            ..FileAttributes::empty()
        };
        c.sftp.fsetstat(handle.to_string(), attrs).await?;
    }
    if c.fsync {
        c.sftp.fsync(handle.to_string()).await?;
    }
    Ok(())
}

/// An upload written into the staging folder; removed if not committed.
struct SftpStaged {
    dest: Sftp,
    temp: Option<String>,
    album: String,
    name: String,
    overwrite: bool,
    len: u64,
}

impl Staged for SftpStaged {
    fn commit(mut self: Box<Self>) -> Result<(), DestError> {
        let temp = self.temp.take().expect("committed once");
        let d = &self.dest;
        let target = d.object(&self.album, &self.name);
        let placed = d.album_dir(&self.album).and_then(|()| {
            if self.overwrite {
                d.rename_replacing(&temp, &target).map(|()| true)
            } else {
                d.rename_no_replace(&temp, &target)
            }
        });
        match placed {
            Ok(true) => {}
            Ok(false) => {
                d.remove_quietly(&temp);
                return Err(d.name_taken(&self.album, &self.name));
            }
            Err(e) => {
                d.remove_quietly(&temp);
                return Err(e);
            }
        }
        // Read back: the server holds the whole file under its name.
        match d.file_size(&target)? {
            Some(n) if n == self.len => Ok(()),
            found => Err(DestError::Io {
                name: d.name_str().to_string(),
                path: target,
                source: io::Error::other(format!(
                    "the server holds {} after the upload of {} bytes; it will be sent again",
                    found.map_or("nothing".to_string(), |n| format!("{n} bytes")),
                    self.len
                )),
            }),
        }
    }
}

impl Drop for SftpStaged {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            self.dest.remove_quietly(&temp);
        }
    }
}

impl Sftp {
    fn remove_quietly(&self, path: &str) {
        let p = path.to_string();
        let _ = self.run(|c| async move { Ok(c.sftp.remove(p).await?) });
    }
}

/// An object's bytes, read from the server in order.
struct SftpReader {
    dest: Sftp,
    conn: Arc<Conn>,
    handle: Option<String>,
    offset: u64,
}

impl Read for SftpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(handle) = self.handle.clone() else {
            return Ok(0);
        };
        let len = buf.len().min(CHUNK) as u32;
        let sftp = self.conn.sftp.clone();
        let offset = self.offset;
        let read = self
            .dest
            .inner
            .rt
            .block_on(async move { sftp.read(handle, offset, len).await });
        match read {
            Ok(data) => {
                let n = data.data.len().min(buf.len());
                buf[..n].copy_from_slice(&data.data[..n]);
                self.offset += n as u64;
                Ok(n)
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Ok(0),
            Err(e) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)),
        }
    }
}

impl Drop for SftpReader {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let sftp = self.conn.sftp.clone();
            let _ = self
                .dest
                .inner
                .rt
                .block_on(async move { sftp.close(handle).await });
        }
    }
}

impl Destination for Sftp {
    fn name(&self) -> &str {
        self.name_str()
    }

    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities {
            server_side_copy: self.inner.hardlink.load(Ordering::Relaxed),
            rename: true,
            reads_back: true,
        }
    }

    fn reach(&self) -> Result<(), DestError> {
        let root = self.inner.root.clone();
        let host = &self.inner.target.host;
        match self.run(|c| async move { Ok(c.sftp.stat(root).await?.attrs) }) {
            Ok(a) if a.is_dir() => Ok(()),
            Ok(_) => Err(self.unavailable(format!(
                "{} on {host} is not a folder; point the destination at a folder",
                self.inner.root
            ))),
            Err(e) if not_found(&e) => Err(self.unavailable(format!(
                "the folder {} on {host} is gone; if it is on a disk of the server's, mount it \
                 again",
                self.inner.root
            ))),
            Err(Fail::Dest(d)) => Err(d),
            Err(e) => Err(self.unavailable(
                self.error("look up its folder", &self.inner.root, e)
                    .to_string(),
            )),
        }
    }

    fn prepare(&self) -> Result<(), DestError> {
        self.reach()?;
        // What this engine's interrupted uploads left behind.
        let leftovers = self
            .read_dir(&self.inner.staging)
            .map_err(|e| self.error("list the staging folder", &self.inner.staging, e))?;
        for (n, _) in leftovers {
            self.remove_quietly(&format!("{}/{n}", self.inner.staging));
        }
        self.make_staging()
    }

    /// Reachable (signed in, the folder there), then a test file staged
    /// and removed; the staging folder is made first, as before a sync.
    fn check(&self) -> Vec<super::Check> {
        let reached = self.reach();
        let mut out = vec![super::reach_check(&reached)];
        if reached.is_ok() {
            match self.make_staging() {
                Ok(()) => out.push(super::write_check(self)),
                Err(e) => out.push(super::Check::new("write permission", Err(e.to_string()))),
            }
        }
        out
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        let dir = self.album_path(album);
        let entries = self
            .read_dir(&dir)
            .map_err(|e| self.error("list an album", &dir, e))?;
        Ok(Some(
            entries
                .into_iter()
                .filter(|(_, a)| a.is_regular())
                .map(|(name, a)| Listed {
                    name,
                    len: a.size.unwrap_or(0),
                    modified: a.mtime.map(|t| {
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(t))
                    }),
                })
                .collect(),
        ))
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        let root = self.inner.root.clone();
        let entries = self
            .read_dir(&root)
            .map_err(|e| self.error("list its folder", &root, e))?;
        Ok(Some(
            entries
                .into_iter()
                .filter(|(name, a)| a.is_dir() && !name.starts_with('.'))
                .map(|(name, _)| name)
                .collect(),
        ))
    }

    fn marker(&self) -> Result<Marker, DestError> {
        let path = format!("{}/{MARKER_FILE}", join_root(&self.inner.root));
        let p = path.clone();
        let text = self.run(|c| async move {
            let handle = c
                .sftp
                .open(p, OpenFlags::READ, FileAttributes::empty())
                .await?;
            let handle = handle.handle;
            let read = c.sftp.read(handle.clone(), 0, 4096).await;
            let _ = c.sftp.close(handle).await;
            match read {
                Ok(d) => Ok(d.data),
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        });
        match text {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
                .lines()
                .find_map(|l| l.strip_prefix("id = "))
                .map_or(Marker::Absent, |id| Marker::Found(id.trim().to_string()))),
            Err(e) if not_found(&e) => Ok(Marker::Absent),
            Err(e) => Err(self.error("read the marker file", &path, e)),
        }
    }

    fn write_marker(&self, id: &str) -> Result<String, DestError> {
        self.reach()?;
        self.make_staging()?;
        let path = format!("{}/{MARKER_FILE}", join_root(&self.inner.root));
        let text = format!(
            "# This folder holds a Shoebox backup. Shoebox writes into it only while this\n\
             # file is here, so that an unmounted disk's empty mount point is never\n\
             # mistaken for it. Keep this file.\nid = {id}\n"
        );
        let (temp, _) = self.write_staged(None, &mut text.as_bytes())?;
        if self.rename_no_replace(&temp, &path)? {
            return Ok(id.to_string());
        }
        self.remove_quietly(&temp);
        match self.marker()? {
            Marker::Found(theirs) => Ok(theirs),
            _ => Err(self.error(
                "write the marker file",
                &path,
                Fail::Source(io::Error::other("a file of that name is in the way")),
            )),
        }
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        self.there(&self.object(album, name))
    }

    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<super::ReadBack>, DestError> {
        let path = self.object(album, name);
        if self.file_size(&path)? != Some(len) {
            return Ok(None);
        }
        let p = path.clone();
        let opened = self.run(|c| async move {
            let h = c
                .sftp
                .open(p, OpenFlags::READ, FileAttributes::empty())
                .await?;
            Ok((c, h.handle))
        });
        match opened {
            Ok((conn, handle)) => Ok(Some(super::ReadBack::undated(Box::new(SftpReader {
                dest: self.clone(),
                conn,
                handle: Some(handle),
                offset: 0,
            })))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(self.error("read a file back", &path, e)),
        }
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let (temp, written) = self.write_staged(upload.modified, source)?;
        Ok((
            Box::new(SftpStaged {
                dest: self.clone(),
                temp: Some(temp),
                album: upload.album.to_string(),
                name: upload.name.to_string(),
                overwrite: upload.overwrite,
                len: written,
            }),
            written,
        ))
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let (src, dst) = (self.object(from.0, from.1), self.object(to.0, to.1));
        self.album_dir(to.0)?;
        match self.rename_no_replace(&src, &dst) {
            Ok(true) => {}
            // Already moved (a crash came between the move and its record).
            Ok(false) if !self.there(&src)? => {}
            Ok(false) => return Err(self.name_taken(to.0, to.1)),
            Err(e) => return Err(e),
        }
        self.tidy_album(from.0);
        Ok(())
    }

    /// A hard link: the bytes are stored once; replacing or deleting one
    /// name leaves the other.
    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let (src, dst) = (self.object(from.0, from.1), self.object(to.0, to.1));
        self.album_dir(to.0)?;
        let (s, d) = (src.clone(), dst.clone());
        match self.run(|c| async move { Ok(c.sftp.hardlink(s, d).await?) }) {
            Ok(_) => Ok(()),
            Err(_) if self.there(&dst)? => Err(self.name_taken(to.0, to.1)),
            Err(e) => Err(self.error("link a copy", &src, e)),
        }
    }

    fn set_modified(
        &self,
        album: &str,
        name: &str,
        t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        let Some(secs) = unix_secs(t) else {
            return Ok(false);
        };
        let path = self.object(album, name);
        let p = path.clone();
        let attrs = FileAttributes {
            atime: Some(secs),
            mtime: Some(secs),
            ..FileAttributes::empty()
        };
        match self.run(|c| async move { Ok(c.sftp.setstat(p, attrs).await?) }) {
            Ok(_) => Ok(true),
            // Gone meanwhile: nothing to date.
            Err(e) if not_found(&e) => Ok(true),
            Err(e) => Err(self.error("date a file", &path, e)),
        }
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        let path = self.object(album, name);
        let p = path.clone();
        match self.run(|c| async move { Ok(c.sftp.remove(p).await?) }) {
            Ok(_) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(self.error("delete a file", &path, e)),
        }
        self.tidy_album(album);
        Ok(())
    }
}

/// The host key `host` shows, for pinning it when a destination is added.
pub fn server_host_key(name: &str, host: &str, port: u16) -> Result<PublicKey, DestError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DestError::Unavailable {
            name: name.to_string(),
            why: format!("its connection could not start ({e})"),
        })?
        .block_on(connect::host_key_of(name, host, port))
}

/// A private key as the keyring keeps it (OpenSSH text, not encrypted),
/// from a key file's text and the passphrase that protects it, if any.
pub fn private_key_text(text: &str, passphrase: Option<&str>) -> Result<String, KeyProblem> {
    let key = match russh::keys::decode_secret_key(text, passphrase) {
        Ok(k) => k,
        Err(russh::keys::Error::KeyIsEncrypted) => return Err(KeyProblem::NeedsPassphrase),
        Err(e) if passphrase.is_some() => {
            return Err(KeyProblem::Unreadable(format!(
                "{e}; is the passphrase right?"
            )));
        }
        Err(e) => return Err(KeyProblem::Unreadable(e.to_string())),
    };
    key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map(|t| t.to_string())
        .map_err(|e| KeyProblem::Unreadable(e.to_string()))
}

/// Why a private key file cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// It is protected by a passphrase, and none (or a wrong one) was given.
    NeedsPassphrase,
    Unreadable(String),
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::NeedsPassphrase => f.write_str("it is protected by a passphrase"),
            KeyProblem::Unreadable(why) => f.write_str(why),
        }
    }
}

impl Sftp {
    /// The absolute path of the destination's folder on the server,
    /// creating the folder when it is missing but its parent is there.
    /// Signs in on the way, so that wrong credentials fail here.
    pub fn resolve_root(&self) -> Result<String, DestError> {
        let root = self.inner.root.clone();
        let r = root.clone();
        let resolved = self.run(|c| async move {
            // OpenSSH resolves a path whose last folder is missing.
            let name = c.sftp.realpath(r).await?;
            let path = name
                .files
                .into_iter()
                .next()
                .map(|f| f.filename)
                .ok_or_else(|| Fail::from(SftpError::UnexpectedBehavior("no path".into())))?;
            match c.sftp.stat(path.clone()).await {
                Ok(_) => {}
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                    c.sftp.mkdir(path.clone(), FileAttributes::empty()).await?;
                }
                Err(e) => return Err(e.into()),
            }
            Ok(path)
        });
        resolved.map_err(|e| match e {
            Fail::Dest(d) => d,
            e => self.unavailable(format!(
                "its folder {root} cannot be used: {}",
                self.error("find the folder", &root, e)
            )),
        })
    }
}

/// The address of an SFTP destination as the store keeps it.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("sftp://[{host}]:{port}")
    } else {
        format!("sftp://{host}:{port}")
    }
}

/// The host and port of an address made by [`address`].
pub fn host_port(address: &str) -> Result<(String, u16), String> {
    let url = url::Url::parse(address).map_err(|e| format!("the address {address:?}: {e}"))?;
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(format!("the address {address:?} names no host")),
    };
    Ok((host, url.port().unwrap_or(22)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_host_and_port() {
        for (host, port) in [("nas.local", 22), ("10.0.0.2", 2222), ("::1", 22)] {
            assert_eq!(
                host_port(&address(host, port)).unwrap(),
                (host.to_string(), port)
            );
        }
    }
}
