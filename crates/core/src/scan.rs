//! The scanner: walks a watched folder directory by directory and reconciles
//! what it finds with the store (docs/ARCHITECTURE.md invariant 1: a fresh `lstat`
//! decides, never an event). Unchanged files are recognised by their
//! fingerprint without reading them; vanished files are marked `gone` and
//! matched against new ones to detect moves. Memory is bounded by the
//! largest directory, not by the tree.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

use crate::coalesce::Rescan;
use crate::error::Result;
use crate::events::Event;
use crate::filter::{Ignored, Verdict, ignore_dir, judge_file, media_file};
use crate::platform::{
    EntryKind, EntryMeta, Fingerprint, OpenDir, dir_identity, is_symlink_loop, os_to_bytes,
};
use crate::store::{FileState, Store, WatchRow, WatchState};

/// What one scan of a watch found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub files: u64,
    pub new: u64,
    pub changed: u64,
    pub vanished: u64,
    pub moved: u64,
    pub ignored: u64,
    pub skipped: u64,
}

/// Result of checking that a watched root is there and is the folder added.
#[derive(Debug)]
pub enum RootCheck {
    Present,
    Missing(String),
}

pub fn check_root(watch: &WatchRow) -> RootCheck {
    let root = &watch.root;
    match fs::metadata(root) {
        Ok(m) if !m.is_dir() => RootCheck::Missing(format!(
            "{} is no longer a folder; nothing will be removed from its albums",
            root.display()
        )),
        Ok(m) if dir_identity(&m) != watch.root_identity => RootCheck::Missing(format!(
            "{} is not the folder that was added (a drive not mounted, or the folder was \
             replaced); nothing will be removed from its albums. If it really is the new home \
             of these photos, remove the watch and add the folder again: nothing is uploaded twice",
            root.display()
        )),
        Ok(_) => match fs::read_dir(root) {
            Ok(_) => RootCheck::Present,
            Err(e) => RootCheck::Missing(format!(
                "{} cannot be read ({e}); nothing will be removed from its albums",
                root.display()
            )),
        },
        Err(e) => RootCheck::Missing(format!(
            "{} is missing ({e}); if it is on a drive that was unplugged, plug it back in. \
             Nothing will be removed from its albums",
            root.display()
        )),
    }
}

/// The key of a directory relative to the root: OS bytes joined with `/`.
pub fn rel_key(root: &Path, dir: &Path) -> Vec<u8> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let mut out = Vec::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend(os_to_bytes(c.as_os_str()));
    }
    out
}

/// The path of a directory key under `root`.
pub fn rel_path(root: &Path, rel: &[u8]) -> PathBuf {
    let mut p = root.to_path_buf();
    if !rel.is_empty() {
        for part in rel.split(|b| *b == b'/') {
            p.push(crate::platform::bytes_to_os(part));
        }
    }
    p
}

/// Commits the scan's work every this many changes, so a crash loses little
/// and other readers are not held up.
const COMMIT_EVERY: u32 = 2000;

struct Scan<'a> {
    store: &'a Store,
    watch: &'a WatchRow,
    generation: i64,
    stats: ScanStats,
    uncommitted: u32,
    /// When this scan started (unix ms): what it finds was seen then.
    seen_ms: i64,
    emit: &'a dyn Fn(&Event),
    /// What the folder being reconciled left out, and why.
    ignored_here: Vec<(Vec<u8>, Ignored)>,
}

/// One directory's listing, gathered from the walk.
struct DirBatch {
    path: PathBuf,
    /// Why the directory could not be read, if it could not.
    unreadable: Option<String>,
    entries: Vec<DirEntry>,
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

fn parent_rel(rel: &[u8]) -> Vec<u8> {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => rel[..i].to_vec(),
        None => Vec::new(),
    }
}

/// Scans a watch fully. The caller has checked the root with [`check_root`].
pub fn scan_watch(store: &Store, watch: &WatchRow, emit: &dyn Fn(&Event)) -> Result<ScanStats> {
    scan(store, watch, &Rescan::Watch, emit)
}

/// Reconciles part of a watch (or all of it) with the store.
pub fn scan(
    store: &Store,
    watch: &WatchRow,
    scope: &Rescan,
    emit: &dyn Fn(&Event),
) -> Result<ScanStats> {
    let (start_rel, one_level) = match scope {
        Rescan::Watch => (Vec::new(), false),
        Rescan::Tree(rel) => (rel.clone(), false),
        Rescan::Dir(rel) => (rel.clone(), true),
    };
    let start = rel_path(&watch.root, &start_rel);
    if !start_rel.is_empty() && !fs::symlink_metadata(&start).is_ok_and(|m| m.is_dir()) {
        // The directory itself went away: its parent's rescan notices.
        return scan(store, watch, &Rescan::Dir(parent_rel(&start_rel)), emit);
    }
    let full = *scope == Rescan::Watch;
    let watch_name = watch.root.display().to_string();
    if full {
        emit(&Event::ScanStarted {
            watch: watch_name.clone(),
        });
    }
    store.begin()?;
    let mut scan = Scan {
        store,
        watch,
        generation: 0,
        stats: ScanStats::default(),
        uncommitted: 0,
        seen_ms: crate::store::now_ms(),
        emit,
        ignored_here: Vec::new(),
    };
    let result = (|| {
        scan.generation = store.next_generation(watch.id)?;
        if one_level {
            scan.walk_one_level(&start_rel)?;
        } else {
            if full {
                store.clear_ignored(watch.id)?;
            }
            scan.walk(&start)?;
            scan.stats.vanished += store.vanish_unseen(watch.id, &start_rel, scan.generation)?;
        }
        scan.stats.moved = store.match_moves(watch.id)?;
        if full {
            store.finish_full_scan(watch.id, scan.stats.ignored)?;
        }
        store.commit()
    })();
    if let Err(e) = result {
        store.rollback();
        return Err(e);
    }
    let s = scan.stats;
    if full {
        emit(&Event::ScanFinished {
            watch: watch_name,
            files: s.files,
            new: s.new,
            changed: s.changed,
            vanished: s.vanished,
            moved: s.moved,
            ignored: s.ignored,
        });
    }
    Ok(s)
}

/// Marks a watch as missing, with the reason.
pub fn mark_missing(
    store: &Store,
    watch: &WatchRow,
    reason: &str,
    emit: &dyn Fn(&Event),
) -> Result<()> {
    store.set_watch_state(watch.id, WatchState::Missing, Some(reason))?;
    emit(&Event::WatchMissing {
        watch: watch.root.display().to_string(),
        reason: reason.to_string(),
    });
    Ok(())
}

/// Folders a walk did not descend into, and why.
type IgnoredDirs = std::cell::RefCell<Vec<(PathBuf, Ignored)>>;

fn walker(
    start: &Path,
    max_depth: usize,
    ignored_dirs: &IgnoredDirs,
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

impl Scan<'_> {
    /// Walks the tree at `start`, reconciling each directory.
    fn walk(&mut self, start: &Path) -> Result<()> {
        let ignored_dirs = IgnoredDirs::default();
        let mut batch: Option<DirBatch> = None;
        for item in walker(start, usize::MAX, &ignored_dirs) {
            match item {
                Ok(entry) if entry.file_type().is_dir() => {
                    if let Some(b) = batch.take() {
                        self.reconcile_dir(b)?;
                    }
                    batch = Some(DirBatch {
                        path: entry.into_path(),
                        unreadable: None,
                        entries: Vec::new(),
                    });
                }
                Ok(entry) => {
                    if let Some(b) = batch.as_mut() {
                        b.entries.push(entry);
                    }
                }
                Err(err) => self.walk_error(&mut batch, &err),
            }
        }
        if let Some(b) = batch.take() {
            self.reconcile_dir(b)?;
        }
        self.record_ignored_dirs(ignored_dirs.into_inner())
    }

    /// Folders a walk did not descend into: counted, said, and recorded in
    /// their parent's list.
    fn record_ignored_dirs(&mut self, dirs: Vec<(PathBuf, Ignored)>) -> Result<()> {
        for (path, why) in dirs {
            self.ignore(&path, why);
            if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
                let rel = rel_key(&self.watch.root, parent);
                self.store
                    .add_ignored(self.watch.id, &rel, &os_to_bytes(name), why.reason())?;
            }
        }
        self.ignored_here.clear();
        Ok(())
    }

    /// Counts an entry left out on purpose, says so, and keeps it for the
    /// folder's list.
    fn ignore(&mut self, path: &Path, why: Ignored) {
        if let Some(name) = path.file_name() {
            self.ignored_here.push((os_to_bytes(name), why));
        }
        self.stats.ignored += 1;
        tracing::debug!("ignored {}: {}", path.display(), why.reason());
        (self.emit)(&Event::FileIgnored {
            path: path.display().to_string(),
            reason: why.reason().to_string(),
        });
    }

    /// Reconciles the files of one directory, scans subdirectories that are
    /// new, and marks subdirectories that vanished.
    fn walk_one_level(&mut self, rel: &[u8]) -> Result<()> {
        let dir = rel_path(&self.watch.root, rel);
        let ignored_dirs = IgnoredDirs::default();
        let mut batch = DirBatch {
            path: dir.clone(),
            unreadable: None,
            entries: Vec::new(),
        };
        let mut subdirs = Vec::new();
        let mut batch_opt = Some(batch);
        for item in walker(&dir, 1, &ignored_dirs) {
            match item {
                Ok(entry) if entry.depth() == 0 => {}
                Ok(entry) if entry.file_type().is_dir() => {
                    subdirs.push(rel_key(&self.watch.root, entry.path()))
                }
                Ok(entry) => batch_opt.as_mut().expect("batch").entries.push(entry),
                Err(err) => self.walk_error(&mut batch_opt, &err),
            }
        }
        batch = batch_opt.take().expect("batch");
        let unreadable = batch.unreadable.is_some();
        self.reconcile_dir(batch)?;
        if unreadable {
            return Ok(());
        }
        self.record_ignored_dirs(ignored_dirs.into_inner())?;
        for known in self.store.child_dirs(self.watch.id, rel)? {
            if !subdirs.contains(&known) {
                self.stats.vanished +=
                    self.store
                        .vanish_unseen(self.watch.id, &known, self.generation)?;
            }
        }
        for sub in subdirs {
            if !self.store.dir_known(self.watch.id, &sub)? {
                // A new folder: files may have landed in it before any
                // watcher saw it, so all of it is scanned.
                self.walk(&rel_path(&self.watch.root, &sub))?;
            }
        }
        Ok(())
    }

    fn walk_error(&mut self, batch: &mut Option<DirBatch>, err: &walkdir::Error) {
        if let (Some(b), Some(p)) = (batch.as_mut(), err.path())
            && p == b.path
        {
            b.unreadable = Some(unreadable_reason(p, err.io_error()));
        }
        tracing::warn!("while scanning {}: {err}", self.watch.root.display());
    }

    fn maybe_commit(&mut self) -> Result<()> {
        self.uncommitted += 1;
        if self.uncommitted >= COMMIT_EVERY {
            self.store.commit()?;
            self.store.begin()?;
            self.uncommitted = 0;
        }
        Ok(())
    }

    /// Records one file of a folder: new, changed, back, or as it was.
    fn reconcile_file(
        &mut self,
        dir_id: i64,
        entry: &DirEntry,
        row: Option<crate::store::IndexedFile>,
        (fp, birth, skip): (Fingerprint, Option<i64>, Option<String>),
    ) -> Result<()> {
        let state = if skip.is_some() {
            FileState::Skipped
        } else {
            FileState::Pending
        };
        match row {
            None => {
                let name = os_to_bytes(entry.file_name());
                self.store.insert_file(
                    dir_id,
                    &name,
                    (&fp, birth),
                    state,
                    skip.as_deref(),
                    self.seen_ms,
                )?;
                self.stats.new += 1;
                self.report_skip(entry, skip.as_deref());
            }
            Some(row) => {
                let same_kind = (row.state == FileState::Skipped) == skip.is_some();
                let same_reason = row.error.as_deref() == skip.as_deref() || skip.is_none();
                if row.fp != fp || !same_kind || !same_reason {
                    self.store.file_changed(
                        row.id,
                        &fp,
                        state,
                        skip.as_deref(),
                        self.seen_ms,
                        birth,
                    )?;
                    self.stats.changed += 1;
                    self.report_skip(entry, skip.as_deref());
                } else if row.gone {
                    self.store.set_gone(row.id, false)?;
                }
            }
        }
        if skip.is_none() {
            self.stats.files += 1;
        } else {
            self.stats.skipped += 1;
        }
        Ok(())
    }

    fn reconcile_dir(&mut self, batch: DirBatch) -> Result<()> {
        let root = &self.watch.root;
        let rel = rel_key(root, &batch.path);
        let dir_id = self
            .store
            .upsert_dir(self.watch.id, &rel, self.generation)?;
        if let Some(reason) = batch.unreadable {
            // Unknown content: keep what the index knows, everything below too.
            self.store
                .protect_subtree(self.watch.id, &rel, self.generation)?;
            self.store.set_dir_unreachable(dir_id, &reason)?;
            (self.emit)(&Event::FileSkipped {
                path: batch.path.display().to_string(),
                reason,
            });
            return Ok(());
        }
        let mut known: HashMap<Vec<u8>, _> = self
            .store
            .dir_files(dir_id)?
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        self.ignored_here.clear();
        let dir = OpenDir::open(&batch.path);
        for entry in batch.entries {
            let name = os_to_bytes(entry.file_name());
            let Some(found) = self.classify(&dir, &entry) else {
                continue; // ignored, or vanished since it was listed
            };
            let row = known.remove(&name);
            self.reconcile_file(dir_id, &entry, row, found)?;
            self.maybe_commit()?;
        }
        let ignored: Vec<(Vec<u8>, &str)> = std::mem::take(&mut self.ignored_here)
            .into_iter()
            .map(|(name, why)| (name, why.reason()))
            .collect();
        self.store.set_ignored(self.watch.id, &rel, &ignored)?;
        for row in known.into_values().filter(|r| !r.gone) {
            self.store.set_gone(row.id, true)?;
            self.stats.vanished += 1;
            self.maybe_commit()?;
        }
        self.maybe_commit()
    }

    fn report_skip(&mut self, entry: &DirEntry, reason: Option<&str>) {
        if let Some(reason) = reason {
            (self.emit)(&Event::FileSkipped {
                path: entry.path().display().to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Decides what a non-directory entry is. `None`: not ours (ignored or
    /// vanished). `Some((fp, birth, None))`: a file to back up. `Some((fp,
    /// birth, Some(reason)))`: something we cannot back up, with the reason.
    fn classify(
        &mut self,
        dir: &OpenDir,
        entry: &DirEntry,
    ) -> Option<(Fingerprint, Option<i64>, Option<String>)> {
        match judge_file(entry.file_name(), self.watch.all_files) {
            Verdict::Take => {}
            Verdict::Ignore(why) => {
                self.ignore(entry.path(), why);
                return None;
            }
            Verdict::ByContent => {
                if entry.file_type().is_file() && !media_file(entry.path()) {
                    self.ignore(entry.path(), Ignored::NotMedia);
                    return None;
                }
            }
        }
        let meta = dir.entry(entry.file_name()).ok()?;
        let (fp, skip) = self.classify_kind(entry, &meta)?;
        Some((fp, meta.birth_ns, skip))
    }

    fn classify_kind(
        &mut self,
        entry: &DirEntry,
        meta: &EntryMeta,
    ) -> Option<(Fingerprint, Option<String>)> {
        let fp = meta.fp;
        if meta.kind == EntryKind::File {
            return Some((fp, None));
        }
        if meta.kind == EntryKind::Symlink {
            return match fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(&self.watch.root) => {
                    self.ignore(entry.path(), Ignored::LinkInside);
                    None
                }
                Ok(target) => Some((fp, Some(format!(
                    "is a link to {}, outside the watched folder; links are not followed out of \
                     a watch. Add that folder as a watch of its own to back it up",
                    target.display()
                )))),
                Err(e) if is_symlink_loop(&e) => Some((fp, Some(
                    "is a symbolic link loop (it points back to itself); remove or fix the link".into(),
                ))),
                Err(e) => Some((fp, Some(format!("is a link whose target cannot be reached ({e})")))),
            };
        }
        let kind = match meta.kind {
            EntryKind::Special(kind) => kind,
            _ => "a special file",
        };
        Some((
            fp,
            Some(format!(
                "is {kind}, not a regular file; only regular files are backed up"
            )),
        ))
    }
}
