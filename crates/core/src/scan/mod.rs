//! The scanner: reconciles what the lister (`list.rs`) finds in a watched
//! folder with the store, directory by directory (docs/ARCHITECTURE.md
//! invariant 1: a fresh `lstat` decides, never an event). Unchanged files
//! are recognised by their fingerprint without reading them; vanished files
//! are marked `gone` and matched against new ones to detect moves. Memory is
//! bounded by the largest directories, not by the tree.

mod list;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use walkdir::DirEntry;

use crate::coalesce::Rescan;
use crate::error::Result;
use crate::events::Event;
use crate::filter::Ignored;
use crate::platform::{Fingerprint, dir_identity, os_to_bytes};
use crate::store::{FileState, Store, WatchRow, WatchState};
use list::{DirBatch, Look, Rules, list_one_level, list_tree};

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

impl Scan<'_> {
    /// Walks the tree at `start`, reconciling each directory. The lister
    /// runs on a thread of its own, a few folders ahead; where no thread
    /// can be started, it runs on this one.
    fn walk(&mut self, start: &Path) -> Result<()> {
        let watch = self.watch;
        let rules = Rules {
            root: &watch.root,
            takes: watch.takes(),
        };
        let ignored_dirs = std::thread::scope(|s| {
            // Made inside the scope: should the reconcile panic, `rx` is
            // dropped before the scope waits for the lister, which then
            // stops instead of waiting to send.
            let (tx, rx) = crossbeam_channel::bounded(list::FOLDERS_AHEAD);
            let lister = std::thread::Builder::new()
                .name("shoebox-list".into())
                .spawn_scoped(s, move || list_tree(start, rules, |b| tx.send(b).is_ok()));
            let Ok(lister) = lister else {
                let mut failed = Ok(());
                let ignored = list_tree(start, rules, |b| {
                    failed = self.reconcile_dir(b);
                    failed.is_ok()
                });
                return failed.map(|()| ignored);
            };
            let mut reconciled = Ok(());
            for batch in rx.iter() {
                reconciled = self.reconcile_dir(batch);
                if reconciled.is_err() {
                    break;
                }
            }
            // The lister stops at its next folder once nobody receives.
            drop(rx);
            let ignored = lister
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            reconciled.map(|()| ignored)
        })?;
        self.record_ignored_dirs(ignored_dirs)
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
        let rules = Rules {
            root: &self.watch.root,
            takes: self.watch.takes(),
        };
        let (batch, subdirs, ignored_dirs) = list_one_level(&dir, rules);
        let subdirs: Vec<Vec<u8>> = subdirs
            .iter()
            .map(|sub| rel_key(&self.watch.root, sub))
            .collect();
        let unreadable = batch.unreadable.is_some();
        self.reconcile_dir(batch)?;
        if unreadable {
            return Ok(());
        }
        self.record_ignored_dirs(ignored_dirs)?;
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
        for (entry, look) in batch.entries {
            let found = match look {
                Look::File(fp, birth, skip) => (fp, birth, skip),
                Look::Ignored(why) => {
                    self.ignore(entry.path(), why);
                    continue;
                }
                Look::Vanished => continue,
            };
            let row = known.remove(&*os_to_bytes(entry.file_name()));
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The lister runs ahead on its own thread: when the store refuses a
    /// write halfway through a walk, the scan ends with that error (the
    /// lister stops at its next folder) instead of waiting on it.
    #[test]
    fn a_store_error_halfway_through_a_walk_ends_the_scan_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("Photos");
        for d in 0..(3 * list::FOLDERS_AHEAD) {
            let folder = photos.join(format!("{d:02}"));
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("IMG.jpg"), format!("photo {d}")).unwrap();
        }
        let home = crate::Home::open(Some(dir.path().join("home"))).unwrap();
        let engine = crate::Engine::open(home).unwrap();
        engine
            .add_watch(&crate::WatchSpec {
                folder: photos,
                mode: crate::album::AlbumMode::Single,
                album_names: crate::AlbumNames::Leaf,
                date_format: Default::default(),
                album: None,
                dest: "library".into(),
                on_delete: crate::store::OnDelete::Keep,
                all_files: false,
            })
            .unwrap();
        let (done, outcome) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let store = engine.store();
            let watch = store.watches().unwrap().remove(0);
            // The store refuses the folder in the middle of the walk.
            store
                .exec(
                    &format!(
                        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON dirs
                         WHEN NEW.rel = CAST('{:02}' AS BLOB)
                         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                        list::FOLDERS_AHEAD
                    ),
                    [],
                )
                .unwrap();
            let _ = done.send(scan_watch(store, &watch, &|_| {}).map(|_| ()));
        });
        let outcome = outcome
            .recv_timeout(Duration::from_secs(60))
            .expect("timed out waiting for the end of a scan whose store refuses a folder");
        let err = outcome.expect_err("a store that refuses a folder fails the scan");
        assert!(err.to_string().contains("refused by the test"), "{err}");
    }
}
