//! The lister: walks a watched folder and looks at each entry (docs/ARCHITECTURE.md
//! invariant 1: a fresh look decides). It owns everything a scan asks the
//! file system: listing folders (files before subfolders, in name order),
//! which entries a watch takes, and each entry's fingerprint, taken by name
//! in its open folder. A full walk runs it on a thread of its own, a few
//! folders ahead of the scan that reconciles them with the store, so that
//! the file system's work and the store's overlap.

use std::fs;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

use crate::filter::{Ignored, Verdict, ignore_dir, judge_file, media_file};
use crate::platform::{EntryKind, EntryMeta, Fingerprint, OpenDir, is_symlink_loop};

/// How many listed folders the lister may be ahead of the scan: memory
/// stays bounded by a few folders, not by the tree.
pub(super) const FOLDERS_AHEAD: usize = 4;

/// What a look at one entry found.
pub(super) enum Look {
    /// A file to record: its fingerprint, its birth time, and why it cannot
    /// be backed up if it cannot.
    File(Fingerprint, Option<i64>, Option<String>),
    /// Left out on purpose.
    Ignored(Ignored),
    /// Vanished since it was listed.
    Vanished,
}

/// One folder's listing, each entry looked at.
pub(super) struct DirBatch {
    pub path: PathBuf,
    /// Why the folder could not be read, if it could not.
    pub unreadable: Option<String>,
    pub entries: Vec<(DirEntry, Look)>,
}

/// One folder's entries as listed, before they are looked at.
struct Listing {
    path: PathBuf,
    /// Why the folder could not be read, if it could not.
    unreadable: Option<String>,
    entries: Vec<DirEntry>,
}

impl Listing {
    fn of(path: PathBuf) -> Listing {
        Listing {
            path,
            unreadable: None,
            entries: Vec::new(),
        }
    }
}

/// What a watch takes, as the lister needs it.
#[derive(Clone, Copy)]
pub(super) struct Rules<'a> {
    pub root: &'a Path,
    pub takes: crate::filter::Takes,
}

/// Folders a walk did not descend into, and why.
pub(super) type IgnoredDirs = Vec<(PathBuf, Ignored)>;

fn walker(
    start: &Path,
    max_depth: usize,
    ignored_dirs: &std::cell::RefCell<IgnoredDirs>,
) -> impl Iterator<Item = walkdir::Result<DirEntry>> {
    WalkDir::new(start)
        .follow_links(false)
        .max_depth(max_depth)
        // Files before folders: a directory's files then arrive together.
        // Siblings share their parent's path, so their paths compare as
        // their names do, without taking the name out of each path (which
        // parses it from the end) at every comparison.
        .sort_by(|a, b| {
            a.file_type()
                .is_dir()
                .cmp(&b.file_type().is_dir())
                .then_with(|| a.path().as_os_str().cmp(b.path().as_os_str()))
        })
        .into_iter()
        .filter_entry(move |e| {
            let skip = (e.depth() > 0 && e.file_type().is_dir())
                .then(|| ignore_dir(e.file_name()))
                .flatten();
            if let Some(why) = skip {
                ignored_dirs
                    .borrow_mut()
                    .push((e.path().to_path_buf(), why));
            }
            skip.is_none()
        })
}

/// Walks the tree at `start` and hands each folder, looked at, to `take`
/// (which returns false to stop the walk). Returns the folders it did not
/// descend into.
pub(super) fn list_tree(
    start: &Path,
    rules: Rules<'_>,
    mut take: impl FnMut(DirBatch) -> bool,
) -> IgnoredDirs {
    let ignored_dirs = std::cell::RefCell::default();
    let mut listed: Option<Listing> = None;
    for item in walker(start, usize::MAX, &ignored_dirs) {
        match item {
            Ok(entry) if entry.file_type().is_dir() => {
                if let Some(folder) = listed.take()
                    && !take(look_all(folder, rules))
                {
                    break;
                }
                listed = Some(Listing::of(entry.into_path()));
            }
            Ok(entry) => {
                if let Some(folder) = listed.as_mut() {
                    folder.entries.push(entry);
                }
            }
            Err(err) => note_walk_error(rules.root, listed.as_mut(), &err),
        }
    }
    if let Some(folder) = listed.take() {
        take(look_all(folder, rules));
    }
    ignored_dirs.into_inner()
}

/// Lists one folder without descending: its files looked at, its
/// subfolders, and the subfolders left out.
pub(super) fn list_one_level(
    dir: &Path,
    rules: Rules<'_>,
) -> (DirBatch, Vec<PathBuf>, IgnoredDirs) {
    let ignored_dirs = std::cell::RefCell::default();
    let mut folder = Listing::of(dir.to_path_buf());
    let mut subdirs = Vec::new();
    for item in walker(dir, 1, &ignored_dirs) {
        match item {
            Ok(entry) if entry.depth() == 0 => {}
            Ok(entry) if entry.file_type().is_dir() => subdirs.push(entry.into_path()),
            Ok(entry) => folder.entries.push(entry),
            Err(err) => note_walk_error(rules.root, Some(&mut folder), &err),
        }
    }
    (look_all(folder, rules), subdirs, ignored_dirs.into_inner())
}

/// A walk error: the folder being listed is unreadable if the error is
/// about it; logged either way.
fn note_walk_error(root: &Path, folder: Option<&mut Listing>, err: &walkdir::Error) {
    if let (Some(folder), Some(p)) = (folder, err.path())
        && p == folder.path
    {
        folder.unreadable = Some(unreadable_reason(p, err.io_error()));
    }
    tracing::warn!("while scanning {}: {err}", root.display());
}

/// Why a directory cannot be read, in words that say what to do.
fn unreadable_reason(path: &Path, err: Option<&std::io::Error>) -> String {
    match err {
        Some(e) if e.kind() == std::io::ErrorKind::InvalidFilename => format!(
            "the folder {} cannot be opened: its path is longer than this system allows \
             (4,096 bytes on Linux), so its files cannot be backed up. Shorten the names of the \
             folders above it",
            path.display()
        ),
        Some(e) => format!(
            "the folder {} cannot be read ({e}); its files are kept as they were. Check its \
             permissions",
            path.display()
        ),
        None => format!(
            "the folder {} cannot be read; its files are kept as they were. Check its permissions",
            path.display()
        ),
    }
}

/// Looks at every entry of a listed folder, by name in the open folder.
fn look_all(
    Listing {
        path,
        unreadable,
        entries,
    }: Listing,
    rules: Rules<'_>,
) -> DirBatch {
    if unreadable.is_some() {
        return DirBatch {
            path,
            unreadable,
            entries: Vec::new(),
        };
    }
    let dir = OpenDir::open(&path);
    let entries = entries
        .into_iter()
        .map(|entry| {
            let look = look(&dir, &entry, rules);
            (entry, look)
        })
        .collect();
    DirBatch {
        path,
        unreadable,
        entries,
    }
}

/// Decides what a non-directory entry is.
fn look(dir: &OpenDir, entry: &DirEntry, rules: Rules<'_>) -> Look {
    match judge_file(entry.file_name(), rules.takes) {
        Verdict::Take => {}
        Verdict::Ignore(why) => return Look::Ignored(why),
        Verdict::ByContent => {
            if entry.file_type().is_file() && !media_file(entry.path()) {
                return Look::Ignored(Ignored::NotMedia);
            }
        }
    }
    match dir.entry(entry.file_name()) {
        Ok(meta) => look_kind(entry, &meta, rules.root),
        Err(_) => Look::Vanished,
    }
}

fn look_kind(entry: &DirEntry, meta: &EntryMeta, root: &Path) -> Look {
    let fp = meta.fp;
    let birth = meta.birth_ns;
    let refused = |why: String| Look::File(fp, birth, Some(why));
    match meta.kind {
        EntryKind::File => Look::File(fp, birth, None),
        EntryKind::Symlink => match fs::canonicalize(entry.path()) {
            Ok(target) if target.starts_with(root) => Look::Ignored(Ignored::LinkInside),
            Ok(target) => refused(format!(
                "is a link to {}, outside the watched folder; links are not followed out of \
                 a watch. Add that folder as a watch of its own to back it up",
                target.display()
            )),
            Err(e) if is_symlink_loop(&e) => refused(
                "is a symbolic link loop (it points back to itself); remove or fix the link".into(),
            ),
            Err(e) => refused(format!("is a link whose target cannot be reached ({e})")),
        },
        EntryKind::Special(kind) => refused(format!(
            "is {kind}, not a regular file; only regular files are backed up"
        )),
        _ => refused(
            "is a special file, not a regular file; only regular files are backed up".into(),
        ),
    }
}
