//! `shoebox restore`: albums from a destination back into a folder, with
//! their names and dates. Nothing in the folder is ever overwritten (a
//! name that is taken gets the next number, and that is said), and an
//! interrupted restore continues where it stopped: each file is written
//! to a temporary name and renamed into place once whole.

use std::io::Write;

use super::*;
use crate::dest::{self, Destination, Listed};
use crate::error::DestError;

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The destination; `None`: the one destination besides the library
    /// (as on a new computer), or the library when it is the only one.
    pub dest: Option<String>,
    /// Only these albums (all by default).
    pub albums: Vec<String>,
    /// Only files whose `album/name` matches one of these globs (`*` stays
    /// within a name, `**` crosses `/`; all by default).
    pub paths: Vec<String>,
    /// The folder albums are restored into (`<to>/<album>/<name>`).
    pub to: PathBuf,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restored {
    /// Written under its own name.
    Restored,
    /// Another file had its name: written under the next numbered name.
    Renamed,
    /// Already there with its length and date (an earlier restore).
    AlreadyThere,
}

/// Progress of a restore, as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RestoreEvent {
    /// What the destination holds for the restore: files and bytes.
    Planned { files: u64, bytes: u64 },
    File {
        album: String,
        name: String,
        path: String,
        bytes: u64,
        outcome: Restored,
    },
    Failed {
        album: String,
        name: String,
        error: String,
    },
}

/// The end of a restore.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub restored: u64,
    pub renamed: u64,
    pub already_there: u64,
    pub failed: u64,
    pub bytes: u64,
}

/// Where unfinished restored files are written, beside their final name.
const PART_PREFIX: &str = ".shoebox-restore-";

impl Engine {
    /// Restores albums of the destination `opts.dest` into `opts.to`. Works
    /// on a machine whose index knows nothing of them (a new laptop): only
    /// the destination's address and credentials are needed.
    pub fn restore(
        &self,
        opts: &RestoreOptions,
        on: &mut dyn FnMut(&RestoreEvent),
    ) -> Result<RestoreReport> {
        let row = self.restore_source(opts.dest.as_deref())?;
        let d = dest::open(&self.home, &row)?;
        let failed = |e: DestError| Error::Invalid(e.to_string());
        d.reach().map_err(failed)?;
        let cannot_list = || {
            Error::Invalid(format!(
                "destination {} cannot list what it holds, so it cannot be restored from",
                row.name
            ))
        };
        let mut albums = match opts.albums.is_empty() {
            true => d.albums().map_err(failed)?.ok_or_else(cannot_list)?,
            false => opts.albums.clone(),
        };
        albums.sort();
        let wanted = globs(&opts.paths)?;
        let mut plan = Vec::new();
        for album in albums {
            if !is_plain_name(&album) {
                return Err(Error::Invalid(format!(
                    "the destination has an album named {album:?}, which is not a plain folder \
                     name; nothing was restored"
                )));
            }
            let mut objects = d
                .list_album(&album)
                .map_err(failed)?
                .ok_or_else(cannot_list)?;
            objects.retain(|o| {
                !o.name.starts_with(".shoebox")
                    && wanted
                        .as_ref()
                        .is_none_or(|g| g.is_match(format!("{album}/{}", o.name)))
            });
            objects.sort_by(|a, b| a.name.cmp(&b.name));
            plan.push((album, objects));
        }
        on(&RestoreEvent::Planned {
            files: plan.iter().map(|(_, o)| o.len() as u64).sum(),
            bytes: plan.iter().flat_map(|(_, o)| o).map(|o| o.len).sum(),
        });
        let mut jobs = Vec::new();
        for (album, objects) in plan {
            let dir = opts.to.join(&album);
            fs::create_dir_all(&dir).map_err(|e| Error::io("create the folder", &dir, e))?;
            remove_unfinished(&dir);
            jobs.extend(objects.into_iter().map(|o| (album.clone(), o, dir.clone())));
        }
        let mut report = RestoreReport::default();
        let mut stopped = None;
        restore_all(d.as_ref(), jobs, |album, o, result| match result {
            Ok((path, outcome)) => {
                match outcome {
                    Restored::Restored => report.restored += 1,
                    Restored::Renamed => report.renamed += 1,
                    Restored::AlreadyThere => report.already_there += 1,
                }
                if outcome != Restored::AlreadyThere {
                    report.bytes += o.len;
                }
                on(&RestoreEvent::File {
                    album: album.to_string(),
                    name: o.name.clone(),
                    path: path.display().to_string(),
                    bytes: o.len,
                    outcome,
                });
                true
            }
            // The whole destination went away: stop here.
            Err(Failure::Dest(e)) if e.is_destination_wide() => {
                stopped = Some(failed(e));
                false
            }
            Err(e) => {
                report.failed += 1;
                on(&RestoreEvent::Failed {
                    album: album.to_string(),
                    name: o.name.clone(),
                    error: e.to_string(),
                });
                true
            }
        });
        match stopped {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// The destination a restore reads: the one named, or the only one
    /// there can be.
    fn restore_source(&self, name: Option<&str>) -> Result<crate::store::DestRow> {
        if let Some(name) = name {
            return self.store.destination_by_name(name)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "there is no destination named {name:?}; add it first (`shoebox dest add`), \
                     with the address and credentials of the backup"
                ))
            });
        }
        let all = self.store.destinations()?;
        let others: Vec<_> = all.iter().filter(|d| d.name != LIBRARY_DEST).collect();
        match others.as_slice() {
            [one] => Ok((*one).clone()),
            [] => all.into_iter().next().ok_or_else(|| {
                Error::Invalid("there is no destination to restore from".to_string())
            }),
            _ => Err(Error::Invalid(format!(
                "say which destination to restore from with --dest: {}",
                all.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// Files restored at once: a download waits on the network (a round trip
/// per object) and on the disk (an fsync per file), so a few in flight
/// keep both busy, as `rclone --transfers 4` does.
const RESTORING_AT_ONCE: usize = 4;

/// Restores `jobs` (album, object, folder) on a few threads, handing each
/// outcome to `done` on the calling thread; `done` returns false to stop
/// (files being restored then finish, no new one starts).
fn restore_all(
    d: &dyn Destination,
    jobs: Vec<(String, Listed, PathBuf)>,
    mut done: impl FnMut(&str, &Listed, Result<(PathBuf, Restored), Failure>) -> bool,
) {
    let queue = std::sync::Mutex::new(jobs.into_iter());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|scope| {
        for _ in 0..RESTORING_AT_ONCE {
            let (tx, queue, stop) = (tx.clone(), &queue, &stop);
            scope.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Some((album, o, dir)) = queue.lock().expect("lock").next() else {
                        break;
                    };
                    let result = restore_one(d, &album, &o, &dir);
                    if tx.send((album, o, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (album, o, result) in &rx {
            if !done(&album, &o, result) {
                // Files being restored finish (each is whole, or removed);
                // no new one starts.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                rx.iter().for_each(drop);
                break;
            }
        }
    });
}

/// The `--path` globs as one set (`None`: every file).
fn globs(patterns: &[String]) -> Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Invalid(format!("--path {p:?} is not a valid pattern: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::Invalid(format!("the --path patterns cannot be used: {e}")))
}

/// True for a name that is one plain path component (a hostile server
/// could name an album `../..`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !(cfg!(windows) && name.contains(':'))
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Dest(DestError),
    #[error("{0}")]
    Local(String),
}

/// Removes what an interrupted restore left in `dir`.
fn remove_unfinished(dir: &Path) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(PART_PREFIX) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Restores one object into `dir`: its path there, and what happened.
fn restore_one(
    d: &dyn Destination,
    album: &str,
    o: &Listed,
    dir: &Path,
) -> Result<(PathBuf, Restored), Failure> {
    if !is_plain_name(&o.name) {
        return Err(Failure::Local(format!(
            "its name {:?} is not a plain file name; it was left on the destination",
            o.name
        )));
    }
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .ok()
    };
    // Restored before (its length and date), under its name or, where
    // another file had that, under a number: nothing to do. The date is
    // asked for only when a file of that length is there.
    let mut modified = o.modified;
    let member = crate::item::member(&o.name, &[]);
    for n in 1u32.. {
        let candidate = dir.join(member.numbered(n));
        let Ok(m) = fs::symlink_metadata(&candidate) else {
            break;
        };
        if !m.is_file() || m.len() != o.len {
            continue;
        }
        if modified.is_none() {
            modified = d.stored_modified(album, &o.name).map_err(Failure::Dest)?;
        }
        if modified.and_then(secs) == m.modified().ok().and_then(secs) {
            return Ok((candidate, Restored::AlreadyThere));
        }
    }
    let local = |what: &str, e: std::io::Error| Failure::Local(format!("could not {what}: {e}"));
    let mut part = tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| local("create a file in the folder", e))?;
    let Some(mut stored) = d.read_back(album, &o.name, o.len).map_err(Failure::Dest)? else {
        return Err(Failure::Local(
            "it changed on the destination while the restore ran; run it again".to_string(),
        ));
    };
    let copied = std::io::copy(&mut stored.bytes, part.as_file_mut()).map_err(|e| {
        Failure::Dest(DestError::Interrupted {
            name: d.name().to_string(),
            what: format!("read {album}/{} back", o.name),
            why: e.to_string(),
        })
    })?;
    if copied != o.len {
        return Err(Failure::Local(format!(
            "the destination sent {copied} bytes of {}; run the restore again",
            o.len
        )));
    }
    part.as_file_mut()
        .flush()
        .and_then(|()| part.as_file().sync_all())
        .map_err(|e| local("write the file", e))?;
    let modified = match modified.or(stored.modified) {
        Some(t) => Some(t),
        None => d.stored_modified(album, &o.name).map_err(Failure::Dest)?,
    };
    if let Some(t) = modified {
        part.as_file()
            .set_modified(t)
            .map_err(|e| local("date the file", e))?;
    }
    let (_, temp) = part.keep().map_err(|e| local("keep the file", e.error))?;
    for n in 1u32.. {
        let target = dir.join(member.numbered(n));
        match crate::platform::rename_no_replace(&temp, &target) {
            Ok(()) => {
                let _ = crate::platform::sync_dir(dir);
                let outcome = if n == 1 {
                    Restored::Restored
                } else {
                    Restored::Renamed
                };
                return Ok((target, outcome));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(local("put the file in place", e));
            }
        }
    }
    unreachable!("some number is free")
}
