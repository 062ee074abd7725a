//! A local or NAS folder as a destination: `<root>/<album>/<name>`, written
//! through this engine's staging folder on the same file system
//! (`<root>/.shoebox-staging/<engine id>`), fsynced, then renamed into place
//! without replacing anything (unless it replaces this engine's own older
//! version) and the album folder fsynced (once for the commits a worker
//! makes in a row: [`PendingSyncs`]). A marker file in the root
//! (`.shoebox-destination`) proves that the folder is the backup: an empty
//! mount point left by an unplugged drive has none.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::{Destination, Listed, MARKER_FILE, Marker, Staged, Upload};
use crate::error::DestError;
use crate::platform::{is_disk_full, rename_no_replace, sync_dir};

/// Where staged uploads live; album names never start with a dot, so this
/// cannot collide with an album.
pub const STAGING_DIR: &str = ".shoebox-staging";

/// Copies `source` into `file`, leaving holes where whole blocks are zero,
/// so that a sparse source (a disk image, a preallocated video) does not
/// take its full size on the destination. Returns the bytes copied.
fn copy_sparse(source: &mut dyn Read, file: &mut fs::File) -> io::Result<u64> {
    const BLOCK: usize = 64 * 1024;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    let mut pending_hole = false;
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        let block = &buf[..filled];
        if block.iter().all(|&b| b == 0) {
            file.seek(io::SeekFrom::Current(filled as i64))?;
            pending_hole = true;
        } else {
            file.write_all(block)?;
            pending_hole = false;
        }
        total += filled as u64;
        if filled < BLOCK {
            break;
        }
    }
    if pending_hole {
        // A trailing hole: give the file its full length.
        file.set_len(total)?;
    }
    Ok(total)
}

/// What an I/O error at `path` on the destination named `dest` means: a
/// full disk, or a failed write.
fn io_error(dest: &str, path: &Path, source: io::Error) -> DestError {
    if is_disk_full(&source) {
        DestError::Full {
            name: dest.to_string(),
            source,
        }
    } else {
        DestError::Io {
            name: dest.to_string(),
            path: path.display().to_string(),
            source,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LocalFolder {
    name: String,
    root: PathBuf,
    /// The embedded library is created on first use; a user's folder must
    /// exist (a missing one may be an unplugged drive).
    create_root: bool,
    /// This engine's own staging folder.
    staging: PathBuf,
}

impl LocalFolder {
    /// Writes `source` to a durable temporary file that commits to `<album>/<name>`.
    /// Writes `source` to a staged file, with the modification time
    /// `modified` (set before the file is renamed into place).
    fn write_temp(
        &self,
        (album, name): (&str, &str),
        overwrite: bool,
        modified: Option<std::time::SystemTime>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let mut temp = self.new_temp()?;
        let path = temp.path().to_path_buf();
        let written = copy_sparse(source, temp.as_file_mut()).map_err(|e| self.io_err(&path, e))?;
        temp.as_file_mut()
            .flush()
            .map_err(|e| self.io_err(&path, e))?;
        if let Some(t) = modified {
            temp.as_file()
                .set_modified(t)
                .map_err(|e| self.io_err(&path, e))?;
        }
        temp.as_file()
            .sync_all()
            .map_err(|e| self.io_err(&path, e))?;
        Ok((
            Box::new(LocalStaged {
                dest: self.clone(),
                temp,
                album: album.to_string(),
                name: name.to_string(),
                overwrite,
            }),
            written,
        ))
    }

    /// `engine` names this engine's staging folder inside the root.
    pub fn new(name: &str, root: PathBuf, create_root: bool, engine: &str) -> LocalFolder {
        LocalFolder {
            name: name.to_string(),
            staging: root.join(STAGING_DIR).join(engine),
            root,
            create_root,
        }
    }

    fn object(&self, album: &str, name: &str) -> PathBuf {
        self.root.join(album).join(name)
    }

    fn io_err(&self, path: &Path, source: io::Error) -> DestError {
        io_error(&self.name, path, source)
    }

    fn album_dir(&self, album: &str) -> Result<PathBuf, DestError> {
        let dir = self.root.join(album);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.io_err(&dir, e)),
        }
        Ok(dir)
    }

    fn name_taken(&self, album: &str, name: &str) -> DestError {
        DestError::NameTaken {
            name: self.name.clone(),
            album: album.to_string(),
            object: name.to_string(),
        }
    }

    /// Puts a staged file at its final place; returns the album folder,
    /// which must be synced to make that durable. Only with `overwrite`
    /// may it replace what is there. The album folder is made when the
    /// rename finds it missing: most files go to a folder that is there,
    /// and making it first would cost every file a `mkdir` under the lock
    /// of the destination's root.
    fn place(
        &self,
        temp: NamedTempFile,
        album: &str,
        name: &str,
        overwrite: bool,
    ) -> Result<PathBuf, DestError> {
        let dir = self.root.join(album);
        let target = dir.join(name);
        let (_, temp_path) = temp.keep().map_err(|e| self.io_err(&target, e.error))?;
        let rename = |to: &Path| {
            if overwrite {
                fs::rename(&temp_path, to)
            } else {
                rename_no_replace(&temp_path, to)
            }
        };
        let mut renamed = rename(&target);
        if renamed
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        {
            if let Err(e) = self.album_dir(album) {
                let _ = fs::remove_file(&temp_path);
                return Err(e);
            }
            renamed = rename(&target);
        }
        if let Err(e) = renamed {
            let _ = fs::remove_file(&temp_path);
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                self.name_taken(album, name)
            } else {
                self.io_err(&target, e)
            });
        }
        Ok(dir)
    }

    /// After an object left an album: makes that durable, and removes the
    /// album folder if it is now empty.
    fn tidy_album(&self, album: &str) -> Result<(), DestError> {
        let dir = self.root.join(album);
        if fs::remove_dir(&dir).is_ok() {
            sync_dir(&self.root).map_err(|e| self.io_err(&self.root, e))
        } else {
            sync_dir(&dir).map_err(|e| self.io_err(&dir, e))
        }
    }

    /// A new staged file. The engine's staging folder is made inside
    /// `.shoebox-staging` only, which [`Destination::prepare`] makes once the
    /// marker proved the folder: on the empty mount point of a drive pulled
    /// out since, this fails instead of writing onto the system disk.
    fn new_temp(&self) -> Result<NamedTempFile, DestError> {
        let staging = &self.staging;
        let mut builder = tempfile::Builder::new();
        builder.prefix("upload-").suffix(".part");
        if let Some(mode) = crate::platform::new_file_permissions() {
            builder.permissions(mode);
        }
        match builder.tempfile_in(staging) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            made => return made.map_err(|e| self.io_err(staging, e)),
        }
        // The staging folder is made on first use (and again should it go).
        match fs::create_dir(staging) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DestError::Unavailable {
                    name: self.name.clone(),
                    why: format!(
                        "the folder {} no longer holds the backup (its staging folder is gone): \
                         is the drive still mounted? Connect or mount it again",
                        self.root.display()
                    ),
                });
            }
            Err(e) => return Err(self.io_err(staging, e)),
        }
        builder
            .tempfile_in(staging)
            .map_err(|e| self.io_err(staging, e))
    }
}

struct LocalStaged {
    dest: LocalFolder,
    temp: NamedTempFile,
    album: String,
    name: String,
    overwrite: bool,
}

impl Staged for LocalStaged {
    fn commit(self: Box<Self>) -> Result<(), DestError> {
        let mut syncs = PendingSyncs::default();
        self.commit_with(&mut syncs)?;
        syncs.sync().map_err(|f| f.error())
    }

    fn commit_with(self: Box<Self>, syncs: &mut PendingSyncs) -> Result<(), DestError> {
        let this = *self;
        let dir = this
            .dest
            .place(this.temp, &this.album, &this.name, this.overwrite)?;
        syncs.add(dir, &this.dest.name);
        Ok(())
    }
}

/// Album folders that files were renamed into and that are not yet
/// synced: a worker that puts several files into one album syncs the
/// folder once for them all, before it reports any of them as done
/// ([`Staged::commit_with`]).
#[derive(Debug, Default)]
pub struct PendingSyncs {
    /// Each folder once, with the name of its destination.
    dirs: Vec<(PathBuf, String)>,
    /// The commits that wait for these folders.
    commits: usize,
}

/// A folder that could not be synced: the commits waiting for it failed.
#[derive(Debug)]
pub struct SyncFailed {
    dest: String,
    dir: PathBuf,
    error: io::Error,
}

impl SyncFailed {
    /// The error of each commit that waited (a new value for each).
    pub fn error(&self) -> DestError {
        let source = match self.error.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.error.kind(), self.error.to_string()),
        };
        io_error(&self.dest, &self.dir, source)
    }
}

impl PendingSyncs {
    /// A commit into `dir` (of destination `dest`) waits for its sync.
    pub fn add(&mut self, dir: PathBuf, dest: &str) {
        if !self.dirs.iter().any(|(d, _)| *d == dir) {
            self.dirs.push((dir, dest.to_string()));
        }
        self.commits += 1;
    }

    /// How many commits wait.
    pub fn commits(&self) -> usize {
        self.commits
    }

    /// Syncs every folder; the first that fails fails every commit that
    /// waited (each is tried again, and finds its file in place).
    pub fn sync(&mut self) -> Result<(), SyncFailed> {
        self.commits = 0;
        let mut failed = None;
        for (dir, dest) in self.dirs.drain(..) {
            if let Err(error) = sync_dir(&dir) {
                failed.get_or_insert(SyncFailed { dest, dir, error });
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Destination for LocalFolder {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities::ALL
    }

    fn reach(&self) -> Result<(), DestError> {
        let unavailable = |why: String| DestError::Unavailable {
            name: self.name.clone(),
            why,
        };
        if self.create_root {
            fs::create_dir_all(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        }
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(unavailable(format!(
                    "{} is not a folder; point the destination at a folder",
                    self.root.display()
                )));
            }
            Err(e) => {
                return Err(unavailable(format!(
                    "the folder {} cannot be reached ({e}); if it is on a drive or NAS, \
                     connect it and sync again",
                    self.root.display()
                )));
            }
        }
        Ok(())
    }

    fn prepare(&self) -> Result<(), DestError> {
        self.reach()?;
        let staging = &self.staging;
        match fs::remove_dir_all(staging) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_err(staging, e)),
        }
        // What an engine of an older version staged directly in the folder.
        if let Ok(old) = fs::read_dir(self.root.join(STAGING_DIR)) {
            for e in old.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        fs::create_dir_all(staging).map_err(|e| self.io_err(staging, e))
    }

    /// Reachable, then a test file written in the folder and removed
    /// (nothing is left, even on the empty mount point of a pulled drive).
    fn check(&self) -> Vec<super::Check> {
        let reached = self.reach();
        let mut out = vec![super::reach_check(&reached)];
        if reached.is_ok() {
            let write = tempfile::Builder::new()
                .prefix(".shoebox-write-test-")
                .tempfile_in(&self.root)
                .and_then(|mut f| f.write_all(b"shoebox write test"))
                .map(|()| "a test file was written and removed".to_string())
                .map_err(|e| self.io_err(&self.root, e).to_string());
            out.push(super::Check::new("write permission", write));
        }
        out
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        let dir = self.root.join(album);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Vec::new())),
            Err(e) => return Err(self.io_err(&dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| self.io_err(&dir, e))?;
            let meta = e.metadata().map_err(|err| self.io_err(&e.path(), err))?;
            if meta.is_file() {
                out.push(Listed {
                    name: e.file_name().to_string_lossy().into_owned(),
                    len: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        Ok(Some(out))
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        let entries = fs::read_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| self.io_err(&self.root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(name);
            }
        }
        Ok(Some(out))
    }

    fn marker(&self) -> Result<Marker, DestError> {
        let path = self.root.join(MARKER_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .find_map(|l| l.strip_prefix("id = "))
                .map_or(Marker::Absent, |id| Marker::Found(id.trim().to_string()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Marker::Absent),
            // The library's folder was deleted: it is created again, and
            // its missing marker tells what happened.
            Err(_) if self.create_root && !self.root.exists() => Ok(Marker::Absent),
            Err(e) => Err(DestError::Unavailable {
                name: self.name.clone(),
                why: format!(
                    "the folder {} cannot be reached ({e}); if it is on a drive or NAS, \
                     connect it and sync again",
                    self.root.display()
                ),
            }),
        }
    }

    fn write_marker(&self, id: &str) -> Result<String, DestError> {
        self.reach()?;
        let path = self.root.join(MARKER_FILE);
        fs::create_dir_all(&self.staging).map_err(|e| self.io_err(&self.staging, e))?;
        let text = format!(
            "# This folder holds a Shoebox backup. Shoebox writes into it only while this\n\
             # file is here, so that an unmounted drive's empty mount point is never\n\
             # mistaken for it. Keep this file.\nid = {id}\n"
        );
        let mut temp = self.new_temp()?;
        temp.write_all(text.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| self.io_err(&path, e))?;
        let (_, temp_path) = temp.keep().map_err(|e| self.io_err(&path, e.error))?;
        match rename_no_replace(&temp_path, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&temp_path);
                return match self.marker()? {
                    Marker::Found(theirs) => Ok(theirs),
                    _ => Err(self.io_err(&path, e)),
                };
            }
            Err(e) => {
                let _ = fs::remove_file(&temp_path);
                return Err(self.io_err(&path, e));
            }
        }
        sync_dir(&self.root).map_err(|e| self.io_err(&self.root, e))?;
        Ok(id.to_string())
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        let p = self.object(album, name);
        fs::symlink_metadata(&p)
            .map(|_| true)
            .or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => Ok(false),
                _ => Err(self.io_err(&p, e)),
            })
    }

    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<super::ReadBack>, DestError> {
        let p = self.object(album, name);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() && m.len() == len => {
                let file = fs::File::open(&p).map_err(|e| self.io_err(&p, e))?;
                Ok(Some(super::ReadBack {
                    bytes: Box::new(file),
                    modified: m.modified().ok(),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_err(&p, e)),
        }
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        self.write_temp(
            (upload.album, upload.name),
            upload.overwrite,
            upload.modified,
            source,
        )
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let src = self.object(from.0, from.1);
        let dir = self.album_dir(to.0)?;
        let dst = dir.join(to.1);
        match rename_no_replace(&src, &dst) {
            Ok(()) => {}
            // Already moved (a crash came between the move and its record).
            Err(e) if e.kind() == io::ErrorKind::NotFound && dst.exists() => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(self.name_taken(to.0, to.1));
            }
            Err(e) => return Err(self.io_err(&src, e)),
        }
        sync_dir(&dir).map_err(|e| self.io_err(&dir, e))?;
        self.tidy_album(from.0)
    }

    /// A hard link where the file system has them (the bytes are stored
    /// once; replacing or deleting one name leaves the other), else a copy
    /// of the bytes. Either way an existing name is never replaced.
    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let src = self.object(from.0, from.1);
        let dir = self.album_dir(to.0)?;
        let dst = dir.join(to.1);
        match fs::hard_link(&src, &dst) {
            Ok(()) => return sync_dir(&dir).map_err(|e| self.io_err(&dir, e)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(self.name_taken(to.0, to.1));
            }
            // No hard links here (FAT, exFAT, some network shares), or
            // across a mount inside the destination: copy the bytes.
            Err(_) => {}
        }
        let mut file = fs::File::open(&src).map_err(|e| self.io_err(&src, e))?;
        // The copy keeps the original's date.
        let modified = file.metadata().and_then(|m| m.modified()).ok();
        let (staged, _) = self.write_temp(to, false, modified, &mut file)?;
        staged.commit()
    }

    fn set_modified(
        &self,
        album: &str,
        name: &str,
        t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        let p = self.object(album, name);
        match fs::File::options().write(true).open(&p) {
            Ok(f) => f.set_modified(t).map_err(|e| self.io_err(&p, e))?,
            // Gone meanwhile: nothing to date.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_err(&p, e)),
        }
        Ok(true)
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        let p = self.object(album, name);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_err(&p, e)),
        }
        self.tidy_album(album)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files staged and committed with a shared [`PendingSyncs`] are in
    /// place at once and wait for one sync of each album folder; an album
    /// folder that cannot be synced fails every commit that waited, with
    /// an error naming the destination and the folder.
    #[test]
    fn commits_into_one_album_wait_for_one_sync_of_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let dest = LocalFolder::new("Library", dir.path().to_path_buf(), true, "engine");
        dest.prepare().unwrap();
        let mut syncs = PendingSyncs::default();
        for (album, name) in [("A", "1.jpg"), ("A", "2.jpg"), ("B", "3.jpg")] {
            let (staged, _) = dest
                .write_temp((album, name), false, None, &mut &b"photo"[..])
                .unwrap();
            staged.commit_with(&mut syncs).unwrap();
            assert!(
                dir.path().join(album).join(name).is_file(),
                "{name} in place"
            );
        }
        assert_eq!(syncs.commits(), 3);
        assert_eq!(
            syncs.dirs.len(),
            2,
            "each album folder once: {:?}",
            syncs.dirs
        );
        syncs.sync().unwrap();
        assert_eq!((syncs.commits(), syncs.dirs.len()), (0, 0), "nothing waits");

        let (staged, _) = dest
            .write_temp(("C", "4.jpg"), false, None, &mut &b"photo"[..])
            .unwrap();
        staged.commit_with(&mut syncs).unwrap();
        fs::remove_dir_all(dir.path().join("C")).unwrap();
        let err = syncs.sync().unwrap_err().error().to_string();
        let folder = dir.path().join("C").display().to_string();
        assert!(err.contains("Library") && err.contains(&folder), "{err}");
    }

    #[test]
    fn zero_blocks_become_holes_and_the_content_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0u8; 8 << 20];
        data[..1000].fill(7); // data, a 8 MiB hole, a trailing hole
        data[4 << 20] = 1;
        let path = dir.path().join("out");
        let mut f = fs::File::create(&path).unwrap();
        let n = copy_sparse(&mut &data[..], &mut f).unwrap();
        drop(f);
        assert_eq!(n, data.len() as u64);
        assert_eq!(fs::read(&path).unwrap(), data, "holes read back as zeros");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let allocated = fs::metadata(&path).unwrap().blocks() * 512;
            assert!(
                allocated < 1 << 20,
                "only the two data blocks take space: {allocated} bytes"
            );
        }
    }
}
