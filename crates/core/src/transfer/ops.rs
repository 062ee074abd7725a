//! One job's work on a destination: claiming a name, the reader stack a
//! file's bytes go through on their way out, and server-side copies and
//! moves. See docs/ARCHITECTURE.md.
//!
//! The reader stack, innermost first: [`SparseFile`] (holes read as zeros
//! without I/O) → a 256 KiB buffer → [`HashingReader`] (the source's content
//! hash, checked against the planned one before the upload is committed) →
//! [`Metered`] (the bytes handed to the destination: progress, and what the
//! destination must say it stored). The bandwidth limit paces bytes where
//! they leave, in each network destination (`rate.rs`), not here: a body
//! read into memory first would otherwise go out in one burst.

use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Claim, Meters, Transfer};
use crate::dest::{Destination, PendingSyncs, Upload, holds};
use crate::error::{DestError, FileError};
use crate::hash::{HashingReader, SparseFile, buffer_len, check_unchanged, open_version};
use crate::platform::Fingerprint;
use crate::retry::Backoff;
use crate::store::Hash;

/// Checks a claimed name on the destination: `Ok(None)` when it is free,
/// `Ok(Some(Adopted))` when it holds the content to adopt, and
/// [`DestError::NameTaken`] when something else is there.
pub(super) fn check_claim(
    dest: &dyn Destination,
    (album, name): (&str, &str),
    claim: Option<&Claim>,
) -> Result<Option<Transfer>, FileError> {
    let Some(claim) = claim else {
        return Ok(None);
    };
    if !dest.exists(album, name)? {
        return Ok(None);
    }
    if let Some((len, hash)) = &claim.adopt
        && holds(dest, album, name, *len, hash)?
    {
        return Ok(Some(Transfer::Adopted));
    }
    Err(FileError::Dest(DestError::NameTaken {
        name: dest.name().to_string(),
        album: album.to_string(),
        object: name.to_string(),
    }))
}

/// Runs a destination operation with retries, unless the destination was
/// already found unusable; records it when this operation finds it so.
pub(super) fn on_dest<T>(
    meters: &Meters,
    dest: &dyn Destination,
    op: impl FnMut() -> Result<T, FileError>,
) -> Result<T, FileError> {
    if let Some(why) = meters.tripped.why(dest.name()) {
        return Err(FileError::Dest(DestError::Unavailable {
            name: dest.name().to_string(),
            why,
        }));
    }
    // A failure of a cancelled operation (pause, a condition, shutdown)
    // is the cancel, not worth a retry.
    let mut op = op;
    let result = Backoff::OPERATION.retry(|| match op() {
        Err(_) if meters.cancel.load(Ordering::Relaxed) => Err(FileError::Cancelled),
        other => other,
    });
    if let Err(FileError::Dest(e)) = &result
        && e.is_destination_wide()
    {
        meters.tripped.trip(dest.name(), e.to_string());
    }
    result
}

/// Counts the bytes handed to the destination: the upload's progress, and
/// what the destination must report it stored.
struct Metered<'a, R> {
    inner: R,
    progress: &'a AtomicU64,
    sent: u64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub(super) struct UploadJob<'a> {
    pub dest: &'a dyn Destination,
    pub path: &'a Path,
    pub fp: &'a Fingerprint,
    pub hash: &'a Hash,
    pub album: &'a str,
    pub name: &'a str,
    pub overwrite: bool,
    pub taken: Option<chrono::NaiveDateTime>,
    pub claim: Option<&'a Claim>,
    pub progress: &'a AtomicU64,
}

/// Uploads a file; a commit whose durability can wait is left in `syncs`
/// (see [`PendingSyncs`]).
pub(super) fn upload(
    meters: &Meters,
    job: &UploadJob<'_>,
    syncs: &mut PendingSyncs,
) -> Result<Transfer, FileError> {
    if let Some(done) = check_claim(job.dest, (job.album, job.name), job.claim)? {
        return Ok(done);
    }
    job.progress.store(0, Ordering::Relaxed);
    let file = open_version(job.path, job.fp)?;
    let buffered = io::BufReader::with_capacity(
        buffer_len(job.fp.size, 256 * 1024),
        SparseFile::new(&file, job.fp.size),
    );
    let hashing = HashingReader::new(buffered, &meters.read, &meters.cancel);
    // The source's bytes are hashed above; what goes out is counted below.
    // A gate (pause, rate limit) and an encoding stage go in between, and
    // then `len` is the length of the encoded bytes.
    let mut outgoing = Metered {
        inner: hashing,
        progress: job.progress,
        sent: 0,
    };
    let upload = Upload {
        album: job.album,
        name: job.name,
        len: job.fp.size,
        hash: job.hash,
        overwrite: job.overwrite,
        modified: job.fp.modified(),
        taken: job.taken,
        source: Some(job.path),
        encoded: false,
    };
    let (staged, written) = job.dest.stage(&upload, &mut outgoing)?;
    // Only the exact version that was hashed, read to its end, may be
    // committed, and only if the destination took every byte it was given.
    let sent = outgoing.sent;
    if outgoing.inner.finish() != *job.hash || written != sent {
        return Err(FileError::Changed);
    }
    check_unchanged(&file, job.path, job.fp)?;
    match staged.commit_with(syncs) {
        // The name was reserved by an upload whose answer was lost: what
        // holds it now is that upload itself when its content is ours.
        Err(DestError::NameTaken { .. })
            if holds(job.dest, job.album, job.name, job.fp.size, job.hash)? =>
        {
            Ok(Transfer::Sent(written))
        }
        other => other
            .map(|()| Transfer::Sent(written))
            .map_err(FileError::from),
    }
}

/// Moves (`copy == false`) or copies an object inside the destination.
pub(super) fn relocate(
    dest: &dyn Destination,
    from: &(String, String),
    to: &(String, String),
    claim: Option<&Claim>,
    copy: bool,
) -> Result<Transfer, FileError> {
    if let Some(done) = check_claim(dest, (&to.0, &to.1), claim)? {
        return Ok(done);
    }
    let (from, to) = (
        (from.0.as_str(), from.1.as_str()),
        (to.0.as_str(), to.1.as_str()),
    );
    if copy {
        dest.copy(from, to)?;
    } else {
        dest.rename(from, to)?;
    }
    Ok(Transfer::Sent(0))
}
