//! Reading a file's content safely: BLAKE3 hashing, streamed, with the
//! file's fingerprint checked before and after so a file that changes while
//! it is read is never taken for a consistent version.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::FileError;
use crate::platform::{self, Fingerprint};
use crate::store::Hash;

const BUF: usize = 1024 * 1024;

/// A read buffer for a file of `size` bytes: at most `max`, and no larger
/// than the file needs (a buffer is zeroed when it is made, and a camera
/// dump is mostly files far smaller than a buffer for a video).
pub fn buffer_len(size: u64, max: usize) -> usize {
    usize::try_from(size.saturating_add(1)).map_or(max, |len| len.clamp(4096, max))
}

/// Opens `path` for reading if it still is the version `expected`.
pub fn open_version(path: &Path, expected: &Fingerprint) -> Result<File, FileError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => FileError::Vanished,
        _ => FileError::Read(e),
    })?;
    let now = Fingerprint::of(&file.metadata().map_err(FileError::Read)?);
    if now != *expected {
        return Err(FileError::Changed);
    }
    Ok(file)
}

/// Fails with [`FileError::Changed`] unless the open file and the path still
/// show the version `expected` (catches in-place writes and replacement).
pub fn check_unchanged(file: &File, path: &Path, expected: &Fingerprint) -> Result<(), FileError> {
    let open = Fingerprint::of(&file.metadata().map_err(FileError::Read)?);
    let at_path = fs::symlink_metadata(path).map(|m| Fingerprint::of(&m));
    match at_path {
        Ok(p) if p == *expected && open == *expected => Ok(()),
        Ok(_) => Err(FileError::Changed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(FileError::Vanished),
        Err(e) => Err(FileError::Read(e)),
    }
}

/// Reads the first `len` bytes of a file, producing the zeros of its holes
/// without asking the disk for them: a 10 GiB sparse file costs I/O only
/// for the blocks it really has.
#[derive(Debug)]
pub struct SparseFile<'a> {
    file: &'a File,
    pos: u64,
    len: u64,
    /// The data region at or after `pos` (empty: not looked up yet).
    data: std::ops::Range<u64>,
}

impl<'a> SparseFile<'a> {
    pub fn new(file: &'a File, len: u64) -> Self {
        SparseFile {
            file,
            pos: 0,
            len,
            data: 0..0,
        }
    }
}

impl Read for SparseFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.data.end {
            let start = platform::next_data(self.file, self.pos)?
                .unwrap_or(self.len)
                .min(self.len);
            let end = if start < self.len {
                platform::next_hole(self.file, start)?.min(self.len)
            } else {
                self.len
            };
            self.data = start..end;
        }
        let room = buf.len() as u64;
        let n = if self.pos < self.data.start {
            let n = room.min(self.data.start - self.pos) as usize;
            buf[..n].fill(0);
            n
        } else {
            let want = room.min(self.data.end - self.pos) as usize;
            // 0 means the file shrank; the fingerprint check reports it.
            platform::read_at(self.file, &mut buf[..want], self.pos)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// A reader that hashes what passes through it and counts the bytes.
pub struct HashingReader<'a, R> {
    inner: R,
    hasher: blake3::Hasher,
    counter: &'a AtomicU64,
    cancel: &'a AtomicBool,
}

impl<R> std::fmt::Debug for HashingReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingReader").finish_non_exhaustive()
    }
}

impl<'a, R: Read> HashingReader<'a, R> {
    /// Reading stops with an error once `cancel` is set.
    pub fn new(inner: R, counter: &'a AtomicU64, cancel: &'a AtomicBool) -> Self {
        HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            counter,
            cancel,
        }
    }

    pub fn finish(&self) -> Hash {
        *self.hasher.finalize().as_bytes()
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The content hash the engine gives the file at `path`, read the way the
/// engine reads it (for tools that compare with it, such as `bench/run`).
pub fn content_hash(path: &Path) -> Result<Hash, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    let fp = Fingerprint::of(&meta);
    hash_file(path, &fp, &AtomicU64::new(0), &AtomicBool::new(false)).map_err(|e| e.to_string())
}

/// Hashes the version `expected` of the file at `path`; fails with
/// [`FileError::Changed`] if it changes while being read.
pub fn hash_file(
    path: &Path,
    expected: &Fingerprint,
    read_counter: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Hash, FileError> {
    let file = open_version(path, expected)?;
    let sparse = SparseFile::new(&file, expected.size);
    let mut reader = HashingReader::new(sparse, read_counter, cancel);
    // Large reads: BLAKE3 is fastest on big inputs (SIMD over many chunks).
    let mut buf = vec![0u8; buffer_len(expected.size, BUF)];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileError::Read(e)),
        }
    }
    check_unchanged(&file, path, expected)?;
    Ok(reader.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_fits_the_file_within_its_bounds() {
        assert_eq!(buffer_len(0, BUF), 4096, "never smaller than a page");
        assert_eq!(buffer_len(20_000, BUF), 20_001, "a small photo: its size");
        assert_eq!(buffer_len(200 << 20, BUF), BUF, "a video: the largest");
        assert_eq!(buffer_len(u64::MAX, BUF), BUF);
    }

    #[test]
    fn hash_matches_blake3_of_the_content_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        let fp = Fingerprint::of(&fs::metadata(&p).unwrap());
        let counter = AtomicU64::new(0);
        let h = hash_file(&p, &fp, &counter, &AtomicBool::new(false)).unwrap();
        assert_eq!(h, *blake3::hash(&data).as_bytes());
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
    }

    #[test]
    fn a_file_that_is_not_the_expected_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        fs::write(&p, b"one").unwrap();
        let mut fp = Fingerprint::of(&fs::metadata(&p).unwrap());
        fp.size += 1;
        let counter = AtomicU64::new(0);
        assert!(matches!(
            hash_file(&p, &fp, &counter, &AtomicBool::new(false)),
            Err(FileError::Changed)
        ));
        assert!(matches!(
            hash_file(
                &dir.path().join("gone.jpg"),
                &fp,
                &counter,
                &AtomicBool::new(false)
            ),
            Err(FileError::Vanished)
        ));
    }

    #[test]
    fn a_sparse_file_reads_back_exactly_with_its_holes_as_zeros() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        let mut f = File::create(&p).unwrap();
        // hole, data, hole, data, trailing hole
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(&[1; 5000]).unwrap();
        f.seek(SeekFrom::Start(9 << 20)).unwrap();
        f.write_all(&[2; 70_000]).unwrap();
        f.set_len(16 << 20).unwrap();
        drop(f);
        let want = fs::read(&p).unwrap();
        let file = File::open(&p).unwrap();
        let mut got = Vec::new();
        // Odd-sized reads cross every region boundary at odd places.
        let mut buf = vec![0u8; 777_777];
        let mut r = SparseFile::new(&file, want.len() as u64);
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the same bytes as a plain read");
    }
}
