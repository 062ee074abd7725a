//! Everything that differs between operating systems, in one place: how a
//! path is stored as bytes, what identifies a file version, how a directory is
//! made durable, and what kind of special file an entry is.

use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::path::Path;

/// What identifies one version of a file without reading it: if all of these
/// are unchanged, the content is taken as unchanged (as rsync/restic do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

/// Encodes an OS string as bytes for the store, losslessly (non-UTF-8 names
/// included). Unix: the raw bytes. Windows: UTF-16 code units, little endian.
pub fn os_to_bytes(s: &OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        s.as_bytes().to_vec()
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt;
        s.encode_wide().flat_map(u16::to_le_bytes).collect()
    }
}

/// The inverse of [`os_to_bytes`].
pub fn bytes_to_os(b: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        OsStr::from_bytes(b).to_os_string()
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        let wide: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        OsString::from_wide(&wide)
    }
}

/// When the file was born (statx `btime` on Linux, `st_birthtime` on macOS,
/// the creation time on Windows), where the file system records it. An
/// inode number handed out again to a new file comes with a new birth
/// time, so this tells a moved file from a new one that reuses the inode.
pub fn birth_time_ns(meta: &Metadata) -> Option<i64> {
    let t = meta.created().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(nanos(d.as_secs() as i64, i64::from(d.subsec_nanos())))
}

/// `bytes` random bytes as lower-case hex, from the OS's randomly keyed
/// hasher mixed with the clock and the process id (ids, not secrets).
pub fn random_hex(bytes: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(bytes * 2);
    let now = crate::clock::unix_nanos();
    while out.len() < bytes * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(bytes * 2);
    out
}

/// Renames `from` to `to` unless `to` exists: `Err(AlreadyExists)` then,
/// and nothing is overwritten. Linux: `renameat2(RENAME_NOREPLACE)`; where
/// the file system lacks it, a hard link then unlink (atomic too); where it
/// has no hard links either (FAT, exFAT), a check then rename, which is
/// safe against everything but a second writer in the same instant.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
        ) {
            return Err(e);
        }
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => return std::fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

impl Fingerprint {
    pub fn of(meta: &Metadata) -> Fingerprint {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Fingerprint {
                size: meta.size(),
                mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
                ino: meta.ino(),
                dev: meta.dev(),
            }
        }
        #[cfg(not(unix))]
        {
            // Windows exposes no stable inode through std; size and times
            // still change with every write.
            let t = |r: io::Result<std::time::SystemTime>| {
                r.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| {
                        nanos(d.as_secs() as i64, i64::from(d.subsec_nanos()))
                    })
            };
            Fingerprint {
                size: meta.len(),
                mtime_ns: t(meta.modified()),
                ctime_ns: t(meta.created()),
                ino: 0,
                dev: 0,
            }
        }
    }

    /// The modification time it records (none before 1970).
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        let ns = u64::try_from(self.mtime_ns).ok().filter(|&ns| ns > 0)?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
    }
}

/// Creates a new file's permissions as `cp` would for a photo: readable by
/// everyone, writable by the owner, under the umask (0644 with the usual
/// umask), so that a media server running as another user can read the
/// library.
pub fn new_file_permissions() -> Option<std::fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::Permissions::from_mode(0o666))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Creates a new file only its owner can read (a key file), never over an
/// existing one. Elsewhere than on Unix, the folder's own access rules
/// apply (a user's profile folder is private on Windows).
pub fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The identity of a directory (device, inode), used to notice that a
/// watched root was replaced or that a drive is no longer mounted there.
pub fn dir_identity(meta: &Metadata) -> (u64, u64) {
    let f = Fingerprint::of(meta);
    (f.dev, f.ino)
}

/// True when one of the two folders is the other or inside it, however
/// each is reached: compared by device and inode along each one's chain of
/// parents, so that a bind mount, a symbolic link or a second mount of the
/// same disk cannot hide an overlap. Where the OS gives no inode numbers,
/// the resolved paths are compared instead.
pub fn folders_overlap(a: &Path, b: &Path) -> bool {
    let (Ok(a), Ok(b)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) else {
        return false;
    };
    if a.starts_with(&b) || b.starts_with(&a) {
        return true;
    }
    if cfg!(unix) {
        let chain = |p: &Path| -> Vec<(u64, u64)> {
            p.ancestors()
                .filter_map(|d| std::fs::metadata(d).ok())
                .map(|m| dir_identity(&m))
                .collect()
        };
        let (ca, cb) = (chain(&a), chain(&b));
        if let (Some(ia), Some(ib)) = (ca.first(), cb.first()) {
            return cb.contains(ia) || ca.contains(ib);
        }
    }
    false
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // NTFS journals directory entries; there is no portable dir fsync.
        let _ = dir;
        Ok(())
    }
}

/// Names the kind of a file that is neither a regular file, a directory nor
/// a symlink, for messages.
pub fn special_kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            "a named pipe (FIFO)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device file"
        } else {
            "a special file"
        }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        "a special file"
    }
}

/// True when an I/O error means "the disk is full".
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

/// True when an error means "too many levels of symbolic links".
pub fn is_symlink_loop(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// How many directory watches the OS allows one user (Linux inotify).
pub fn watch_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The file system type (`statfs` magic) of `path`, where the OS says.
fn fs_magic(path: &Path) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `c` is a valid NUL-terminated path and `st` is a
        // properly sized buffer that statfs fills on success.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } == 0;
        if !ok {
            return None;
        }
        // SAFETY: statfs returned 0, so it initialised `st`.
        #[allow(unsafe_code)]
        let magic = unsafe { st.assume_init() }.f_type as u64;
        Some(magic)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The kind of network or FUSE file system `path` is on, if it is one
/// (those send no change notifications for changes made elsewhere).
pub fn network_fs(path: &Path) -> Option<&'static str> {
    match fs_magic(path)? {
        0x6969 => Some("NFS"),
        0x517B => Some("SMB"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x6573_5546 => Some("FUSE"),
        0x0102_1997 => Some("9P"),
        _ => None,
    }
}

/// True when the file system `path` is on keeps every file's change time
/// (ctime) itself, to the nanosecond and by this computer's clock: then a
/// file's ctime says when it last changed, and one look tells how long it
/// has been still. Local Linux file systems (ext4, XFS, Btrfs, tmpfs, F2FS,
/// ZFS, bcachefs, overlay). Not network or FUSE file systems (another
/// computer's clock), not FAT (2-second times) and not other systems,
/// where the settle rule watches the fingerprint instead.
pub fn keeps_change_times(path: &Path) -> bool {
    matches!(
        fs_magic(path),
        Some(
            0xEF53 // ext2/3/4
                | 0x5846_5342 // XFS
                | 0x9123_683E // Btrfs
                | 0x0102_1994 // tmpfs
                | 0xF2F5_2010 // F2FS
                | 0x2FC1_2FC1 // ZFS
                | 0xCA45_1A4E // bcachefs
                | 0x794C_7630 // overlay
        )
    )
}

/// The kernel's own pseudo file system `path` is on, if it is one (`/proc`,
/// `/sys`, `/dev`…): views of the running system, never photos.
pub fn pseudo_fs(path: &Path) -> Option<&'static str> {
    // Device nodes, wherever /dev is mounted from (a tmpfs in containers);
    // /dev/shm is an ordinary memory-backed folder.
    if cfg!(target_os = "linux") && path.starts_with("/dev") && !path.starts_with("/dev/shm") {
        return Some("device");
    }
    match fs_magic(path)? {
        0x9FA0 => Some("proc"),
        0x6265_6572 => Some("sysfs"),
        0x1373 => Some("devtmpfs"),
        0x1CD1 => Some("devpts"),
        0x6462_6720 => Some("debugfs"),
        0x7472_6163 => Some("tracefs"),
        0x6367_7270 => Some("cgroup2"),
        0x7363_6673 => Some("securityfs"),
        _ => None,
    }
}

/// The offset of the first byte of data at or after `from` in `file`, or
/// `None` when only a hole follows. Where the OS cannot say (no
/// SEEK_DATA), everything is data.
pub fn next_data(file: &std::fs::File, from: u64) -> io::Result<Option<u64>> {
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    {
        match seek(file, from, libc::SEEK_DATA) {
            Ok(at) => Ok(Some(at)),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Some(from)),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        let _ = file;
        Ok(Some(from))
    }
}

/// The offset where the data region containing `from` ends (the next
/// hole, or the end of the file); `u64::MAX` where the OS cannot say.
pub fn next_hole(file: &std::fs::File, from: u64) -> io::Result<u64> {
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    {
        match seek(file, from, libc::SEEK_HOLE) {
            Ok(at) => Ok(at),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(u64::MAX),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        let _ = (file, from);
        Ok(u64::MAX)
    }
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
fn seek(file: &std::fs::File, from: u64, whence: libc::c_int) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let from = libc::off_t::try_from(from).map_err(io::Error::other)?;
    // SAFETY: lseek on a file descriptor we own; it only moves the offset,
    // which every reader of this file ignores (they read at an offset).
    #[allow(unsafe_code)]
    let at = unsafe { libc::lseek(file.as_raw_fd(), from, whence) };
    if at < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(at as u64)
    }
}

/// Reads from `file` at `offset` without using its cursor.
pub fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// What a folder's entry is, as a scan needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Symlink,
    Dir,
    /// Anything else, named for messages (a FIFO, a socket, a device).
    Special(&'static str),
}

/// A folder's entry, looked at without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub fp: Fingerprint,
    pub birth_ns: Option<i64>,
    pub kind: EntryKind,
}

impl EntryMeta {
    pub fn of(meta: &Metadata) -> EntryMeta {
        let t = meta.file_type();
        EntryMeta {
            fp: Fingerprint::of(meta),
            birth_ns: birth_time_ns(meta),
            kind: if t.is_file() {
                EntryKind::File
            } else if t.is_symlink() {
                EntryKind::Symlink
            } else if t.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::Special(special_kind(meta))
            },
        }
    }
}

/// An open folder whose entries are looked at by name, relative to it:
/// one path lookup for the folder rather than one from the root for each
/// entry (as `find` does). Where the OS has no such call, or the folder
/// cannot be opened, each entry is looked up by its path.
pub struct OpenDir {
    path: std::path::PathBuf,
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
}

impl OpenDir {
    pub fn open(path: &Path) -> OpenDir {
        OpenDir {
            path: path.to_path_buf(),
            #[cfg(target_os = "linux")]
            fd: std::fs::File::open(path)
                .ok()
                .map(std::os::fd::OwnedFd::from),
        }
    }

    /// The entry `name` of this folder.
    pub fn entry(&self, name: &OsStr) -> io::Result<EntryMeta> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            return statx_at(fd, name);
        }
        std::fs::symlink_metadata(self.path.join(name)).map(|m| EntryMeta::of(&m))
    }
}

/// `statx(2)` of `name` in the folder `dir`, read as std reads a
/// `symlink_metadata` (the same flags and fields), so that fingerprints
/// agree whichever way a file was looked at.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn statx_at(dir: &std::os::fd::OwnedFd, name: &OsStr) -> io::Result<EntryMeta> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))?;
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is an open descriptor, `name` a NUL-terminated string
    // that outlives the call, and `st` a valid statx for the kernel to fill.
    let r = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_ALL,
            &mut st,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let t = |ts: libc::statx_timestamp| nanos(ts.tv_sec, i64::from(ts.tv_nsec));
    let kind = match u32::from(st.stx_mode) & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFLNK => EntryKind::Symlink,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFIFO => EntryKind::Special("a named pipe (FIFO)"),
        libc::S_IFSOCK => EntryKind::Special("a socket"),
        libc::S_IFBLK | libc::S_IFCHR => EntryKind::Special("a device file"),
        _ => EntryKind::Special("a special file"),
    };
    Ok(EntryMeta {
        fp: Fingerprint {
            size: st.stx_size,
            mtime_ns: t(st.stx_mtime),
            ctime_ns: t(st.stx_ctime),
            ino: st.stx_ino,
            dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        },
        birth_ns: (st.stx_mask & libc::STATX_BTIME != 0).then(|| t(st.stx_btime)),
        kind,
    })
}

#[cfg(test)]
mod open_dir_tests {
    use super::*;

    /// Looked at by name in an open folder or by path, every kind of
    /// entry comes out the same: a fingerprint that differed would make
    /// every file look changed.
    #[test]
    #[allow(unsafe_code)]
    fn an_entry_by_name_is_the_entry_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("IMG.jpg"), b"photo").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("IMG.jpg", d.join("link.jpg")).unwrap();
            let fifo =
                std::ffi::CString::new(d.join("pipe").as_os_str().to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        }
        let open = OpenDir::open(d);
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let by_path = EntryMeta::of(&std::fs::symlink_metadata(e.path()).unwrap());
            assert_eq!(
                open.entry(&e.file_name()).unwrap(),
                by_path,
                "{:?}",
                e.path()
            );
        }
        assert_eq!(
            open.entry(OsStr::new("IMG.jpg")).unwrap().kind,
            EntryKind::File
        );
        assert!(open.entry(OsStr::new("gone.jpg")).is_err());
    }
}

#[cfg(test)]
mod change_time_tests {
    use super::*;

    /// The suite's temporary folders are on ext4 or tmpfs here; `/proc`
    /// keeps no times of files, and a path that does not exist says
    /// nothing.
    #[test]
    #[cfg(target_os = "linux")]
    fn local_file_systems_keep_change_times_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(keeps_change_times(dir.path()), "{:?}", dir.path());
        assert!(keeps_change_times(Path::new("/dev/shm")));
        assert!(!keeps_change_times(Path::new("/proc/self")));
        assert!(!keeps_change_times(&dir.path().join("missing")));
    }
}
