//! OS change notifications for watched folders (inotify, FSEvents,
//! ReadDirectoryChangesW through `notify`). Events are only hints (docs/ARCHITECTURE.md
//! invariant 1): each becomes "rescan this directory / subtree / watch",
//! and the scanner decides what changed. Our own reads (`Access` events) are
//! dropped so hashing a file does not wake the engine.

use std::path::{Component, Path, PathBuf};

use crossbeam_channel::Sender;
use notify::event::{CreateKind, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::coalesce::Rescan;
use crate::filter::{ignore_dir, ignore_file};
use crate::platform;
use crate::scan::rel_key;
use crate::store::WatcherMode;

/// What the watchers tell the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Something changed in a watch: rescan this part of it.
    Rescan { watch_id: i64, what: Rescan },
    /// The watched root itself changed (deleted, moved, unmounted, back).
    Root { watch_id: i64 },
    /// The watcher of a watch failed; `limit` when the OS ran out of watches.
    Failed {
        watch_id: i64,
        error: String,
        limit: bool,
    },
    /// The configuration changed (another process added a watch, paused…).
    Control,
    /// The computer's battery or network conditions changed.
    Machine,
}

/// Turns one notify event into hints for the watch rooted at `root`.
pub fn hints_for(watch_id: i64, root: &Path, event: &notify::Event) -> Vec<Hint> {
    if matches!(event.kind, EventKind::Access(_)) {
        return Vec::new();
    }
    if event.need_rescan() || event.paths.is_empty() {
        return vec![Hint::Rescan {
            watch_id,
            what: Rescan::Watch,
        }];
    }
    let mut out = Vec::new();
    for path in &event.paths {
        if path == root {
            out.push(Hint::Root { watch_id });
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let parts: Vec<_> = rel.components().collect();
        let Some((Component::Normal(last), dirs)) = parts.split_last().map(|(l, d)| (*l, d)) else {
            continue;
        };
        if dirs
            .iter()
            .any(|c| matches!(c, Component::Normal(n) if ignore_dir(n).is_some()))
        {
            continue; // inside a hidden or system folder
        }
        // The kind says so where it can; a storm of new files costs no
        // `stat` per event.
        let is_dir = match event.kind {
            EventKind::Create(CreateKind::Folder) => true,
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => false,
            _ => path.is_dir(),
        };
        if is_dir {
            if ignore_dir(last).is_some() {
                continue;
            }
            out.push(Hint::Rescan {
                watch_id,
                what: Rescan::Tree(rel_key(root, path)),
            });
        } else if ignore_file(last, crate::filter::Takes::Everything).is_some() {
            continue; // junk or a partial download: its final name will come
        }
        let parent = path.parent().unwrap_or(root);
        out.push(Hint::Rescan {
            watch_id,
            what: Rescan::Dir(rel_key(root, parent)),
        });
    }
    out
}

/// A live watcher of one folder (or of the parent of a missing root).
pub struct FolderWatcher {
    _inner: RecommendedWatcher,
}

impl std::fmt::Debug for FolderWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FolderWatcher")
    }
}

/// Why a folder cannot be watched live.
#[derive(Debug, Clone)]
pub struct NotWatched {
    pub mode: WatcherMode,
}

/// Advice for raising the inotify limit to fit `needed` more watches.
fn limit_advice(needed: u64, limit: u64) -> String {
    let suggested = (limit.max(needed) * 2).div_ceil(65_536) * 65_536;
    format!(
        "watching it needs {needed} directory watches but the system allows {limit} \
         (fs.inotify.max_user_watches); it is rescanned periodically instead. To watch it live, run \
         `sudo sysctl fs.inotify.max_user_watches={suggested}` and add \
         `fs.inotify.max_user_watches={suggested}` to /etc/sysctl.d/90-shoebox.conf"
    )
}

/// Starts watching `root` recursively, unless its file system must be
/// polled or it would not fit in `limit` directory watches (`dirs` is how
/// many it has, `in_use` how many other watches already take).
pub fn watch_folder(
    watch_id: i64,
    root: &Path,
    dirs: u64,
    in_use: u64,
    limit: Option<u64>,
    hints: Sender<Hint>,
) -> Result<FolderWatcher, NotWatched> {
    if let Some(fs) = platform::network_fs(root) {
        return Err(NotWatched {
            mode: WatcherMode::Polling(format!(
                "{fs} file systems send no change notifications; rescanned periodically"
            )),
        });
    }
    if let Some(limit) = limit
        && in_use + dirs > limit
    {
        return Err(NotWatched {
            mode: WatcherMode::Degraded(limit_advice(in_use + dirs, limit)),
        });
    }
    let root_owned = root.to_path_buf();
    let tx = hints.clone();
    let handler = move |res: notify::Result<notify::Event>| {
        let hints = match res {
            Ok(event) => hints_for(watch_id, &root_owned, &event),
            Err(e) => vec![failure(watch_id, &e, in_use + dirs, limit)],
        };
        for h in hints {
            let _ = tx.send(h);
        }
    };
    let mut inner = notify::recommended_watcher(handler).map_err(|e| NotWatched {
        mode: WatcherMode::Degraded(format!(
            "the system refused a watcher ({e}); rescanned periodically"
        )),
    })?;
    match inner.watch(root, RecursiveMode::Recursive) {
        Ok(()) => Ok(FolderWatcher { _inner: inner }),
        Err(e) => match failure(watch_id, &e, in_use + dirs, limit) {
            Hint::Failed { error, .. } => Err(NotWatched {
                mode: WatcherMode::Degraded(error),
            }),
            _ => unreachable!("failure() returns Failed"),
        },
    }
}

fn failure(watch_id: i64, e: &notify::Error, needed: u64, limit: Option<u64>) -> Hint {
    let limit_hit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(28));
    let error = if limit_hit {
        limit_advice(
            needed,
            limit.or_else(platform::watch_limit).unwrap_or(needed),
        )
    } else {
        format!("the watcher failed ({e}); rescanned periodically")
    };
    Hint::Failed {
        watch_id,
        error,
        limit: limit_hit,
    }
}

/// Watches one directory (not recursively) and sends `make()` for any
/// event in it: used for the parent of a missing root, to notice when it
/// comes back.
pub fn watch_dir_shallow(
    dir: &Path,
    hints: Sender<Hint>,
    make: impl Fn(&notify::Event) -> Option<Hint> + Send + 'static,
) -> Option<FolderWatcher> {
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && let Some(h) = make(&event)
        {
            let _ = hints.send(h);
        }
    };
    let mut inner = notify::recommended_watcher(handler).ok()?;
    inner.watch(dir, RecursiveMode::NonRecursive).ok()?;
    Some(FolderWatcher { _inner: inner })
}

/// The nearest existing ancestor of a missing path.
pub fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, ModifyKind, RemoveKind, RenameMode};

    fn ev(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    fn dir(s: &str) -> Hint {
        Hint::Rescan {
            watch_id: 1,
            what: Rescan::Dir(s.as_bytes().to_vec()),
        }
    }

    const ROOT: &str = "/nonexistent-shoebox-root";

    #[test]
    fn our_own_reads_do_not_wake_the_engine() {
        let e = ev(
            EventKind::Access(AccessKind::Any),
            &["/nonexistent-shoebox-root/a.jpg"],
        );
        assert!(hints_for(1, Path::new(ROOT), &e).is_empty());
    }

    #[test]
    fn a_file_event_marks_its_directory() {
        let e = ev(
            EventKind::Modify(ModifyKind::Any),
            &["/nonexistent-shoebox-root/2024/a.jpg"],
        );
        assert_eq!(hints_for(1, Path::new(ROOT), &e), vec![dir("2024")]);
    }

    #[test]
    fn overflow_with_no_path_rescans_the_watch() {
        let e = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(
            hints_for(1, Path::new(ROOT), &e),
            vec![Hint::Rescan {
                watch_id: 1,
                what: Rescan::Watch
            }]
        );
        let e = ev(EventKind::Any, &[]);
        assert_eq!(
            hints_for(1, Path::new(ROOT), &e),
            vec![Hint::Rescan {
                watch_id: 1,
                what: Rescan::Watch
            }]
        );
    }

    #[test]
    fn a_new_folder_is_scanned_whole() {
        let e = ev(
            EventKind::Create(CreateKind::Folder),
            &["/nonexistent-shoebox-root/new"],
        );
        assert_eq!(
            hints_for(1, Path::new(ROOT), &e),
            vec![
                Hint::Rescan {
                    watch_id: 1,
                    what: Rescan::Tree(b"new".to_vec())
                },
                dir("")
            ]
        );
    }

    #[test]
    fn a_rename_marks_both_places() {
        let e = ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[
                "/nonexistent-shoebox-root/a/x.jpg",
                "/nonexistent-shoebox-root/b/x.jpg",
            ],
        );
        assert_eq!(hints_for(1, Path::new(ROOT), &e), vec![dir("a"), dir("b")]);
    }

    /// An event whose kind does not say what moved (a rename) is asked of
    /// the file system: a folder moved in is scanned whole. A new file's
    /// event says it is a file, and is taken at its word.
    #[test]
    fn a_folder_moved_in_is_scanned_whole_and_a_new_file_marks_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let moved = root.path().join("Trip");
        std::fs::create_dir(&moved).unwrap();
        let moved_in = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::To)))
            .add_path(moved.clone());
        assert_eq!(
            hints_for(1, root.path(), &moved_in),
            vec![
                Hint::Rescan {
                    watch_id: 1,
                    what: Rescan::Tree(b"Trip".to_vec())
                },
                dir("")
            ]
        );
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Content)),
        ] {
            let e = notify::Event::new(kind).add_path(moved.join("IMG_0001.jpg"));
            assert_eq!(hints_for(1, root.path(), &e), vec![dir("Trip")], "{kind:?}");
        }
    }

    #[test]
    fn hidden_folders_junk_and_partial_downloads_are_not_hints() {
        for p in [
            "/nonexistent-shoebox-root/.git/index",
            "/nonexistent-shoebox-root/a/.DS_Store",
            "/nonexistent-shoebox-root/v.mp4.part",
        ] {
            let e = ev(EventKind::Create(CreateKind::File), &[p]);
            assert!(hints_for(1, Path::new(ROOT), &e).is_empty(), "{p}");
        }
    }

    #[test]
    fn an_editor_atomic_save_becomes_one_rescan_of_its_folder() {
        use crate::coalesce::{DirtySet, Limits};
        use std::time::Duration;
        let root = Path::new(ROOT);
        let t0 = crate::clock::now();
        let seq = [
            ev(
                EventKind::Create(CreateKind::File),
                &["/nonexistent-shoebox-root/2024/.IMG.jpg.swp"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Any),
                &["/nonexistent-shoebox-root/2024/.IMG.jpg.swp"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &[
                    "/nonexistent-shoebox-root/2024/.IMG.jpg.swp",
                    "/nonexistent-shoebox-root/2024/IMG.jpg",
                ],
            ),
        ];
        let mut dirty = DirtySet::new(Limits::default());
        for (i, e) in seq.iter().enumerate() {
            for h in hints_for(1, root, e) {
                if let Hint::Rescan { what, .. } = h {
                    dirty.mark(what, t0 + Duration::from_millis(i as u64));
                }
            }
        }
        assert_eq!(
            dirty.take_due(t0 + Duration::from_secs(1)),
            vec![Rescan::Dir(b"2024".to_vec())]
        );
    }

    #[test]
    fn the_root_itself_is_a_root_hint() {
        let e = ev(EventKind::Remove(RemoveKind::Folder), &[ROOT]);
        assert_eq!(
            hints_for(1, Path::new(ROOT), &e),
            vec![Hint::Root { watch_id: 1 }]
        );
    }
}
