//! Carrying out: the worker pool, the jobs it takes and what it reports.
//!
//! Workers do the slow parts (hashing, uploading, server-side copies and
//! moves) and never decide anything: the upload path (`upload`) decides and
//! records, then hands a [`Job`] here; the [`Done`] comes back on a channel.
//! A worker retries a failed operation a few times ([`crate::retry`]) and
//! marks a destination found unusable as [`Tripped`], so that jobs still
//! queued for it are not sent one by one. Uploads committed into local
//! folders are reported once their album folders are synced, a few at a
//! time ([`PendingSyncs`]). The destinations in use and their
//! health are in `destinations`. See docs/ARCHITECTURE.md.

mod destinations;
mod ops;
pub(crate) mod rate;

pub(crate) use destinations::{
    DestinationSet, Tripped, date_old_copies, finish_pass, give_up_lost_names, open_all,
    open_destination,
};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::capture::{Captured, capture_date};
use crate::dest::{Destination, PendingSyncs};
use crate::error::FileError;
use crate::hash::hash_file;
use crate::live_photo::live_photo_id;
use crate::platform::Fingerprint;
use crate::retry::Backoff;
use crate::store::Hash;

use ops::{UploadJob, on_dest, relocate, upload};

/// What a worker is asked to do.
pub(crate) enum Job {
    /// Hash a file and read its item's capture date.
    Hash {
        slot: u64,
        path: PathBuf,
        fp: Fingerprint,
        dating: Dating,
    },
    Upload {
        token: u64,
        dest: Arc<dyn Destination>,
        path: PathBuf,
        fp: Fingerprint,
        hash: Hash,
        album: String,
        name: String,
        overwrite: bool,
        /// When the photo was taken, for destinations that keep it.
        taken: Option<chrono::NaiveDateTime>,
        claim: Option<Claim>,
        progress: Arc<AtomicU64>,
    },
    /// A server-side move (`copy == false`) or copy of an object.
    Relocate {
        token: u64,
        dest: Arc<dyn Destination>,
        from: (String, String),
        to: (String, String),
        claim: Option<Claim>,
        copy: bool,
    },
}

/// Where a file's item gets its capture date (`crate::capture`): the
/// member dated, and the Takeout JSON named after it.
#[derive(Debug, Clone)]
pub(crate) struct Dating {
    pub member: PathBuf,
    pub takeout: Option<PathBuf>,
}

/// What reading a file found: its content hash, capture date and Live
/// Photo identifier.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub hash: Hash,
    /// `None` only when neither the dated member nor the file itself could
    /// be read for a date.
    pub captured: Option<Captured>,
    pub live_id: Option<String>,
}

/// A hashed file's capture date and Live Photo identifier. The item's
/// dating member gives the date, unless both carry Live Photo identifiers
/// and they differ: then the two only share a name, and the file is dated
/// by itself.
fn read_content(hash: Hash, path: &std::path::Path, dating: &Dating) -> Content {
    let live_id = live_photo_id(path);
    let other_photo = dating.member != path
        && live_id.is_some()
        && live_photo_id(&dating.member).is_some_and(|theirs| Some(theirs) != live_id);
    let captured = if other_photo {
        capture_date(path, None)
    } else {
        capture_date(&dating.member, dating.takeout.as_deref()).or_else(|| capture_date(path, None))
    };
    Content {
        hash,
        captured,
        live_id,
    }
}

/// A name a job is the first to put something under. The worker asks the
/// destination whether it is free before sending anything (so that no
/// network wait ever holds up the thread that decides); with `adopt`, an
/// object already there with exactly this length and content (left by a
/// lost or rebuilt store) is taken over instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    pub adopt: Option<(u64, Hash)>,
}

/// What a finished job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// The operation was carried out, sending this many bytes.
    Sent(u64),
    /// The name already held exactly this content: nothing was sent.
    Adopted,
}

/// What a worker reports back.
pub struct Done(pub(crate) DoneKind);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

pub(crate) enum DoneKind {
    Hashed {
        slot: u64,
        result: Result<Content, FileError>,
    },
    Finished {
        token: u64,
        result: Result<Transfer, FileError>,
    },
}

/// Counters and the cancel switch shared with the workers.
#[derive(Default)]
pub(crate) struct Meters {
    /// Bytes read from watched folders.
    pub read: AtomicU64,
    /// Set to abort reads in progress (shutdown, pause).
    pub cancel: AtomicBool,
    /// Destinations found unusable: jobs still queued for them are
    /// skipped, not sent one by one.
    pub tripped: Arc<Tripped>,
}

/// Commits a worker holds back at most before it syncs their album
/// folders and reports them (see [`PendingSyncs`]).
const COMMITS_PER_SYNC: usize = 8;

/// A worker: takes jobs until the channel closes. Uploads committed into
/// local folders are reported once their folders are synced, together,
/// when the worker has no other job at hand or holds
/// [`COMMITS_PER_SYNC`] of them; every other result at once.
fn work(jobs: Receiver<Job>, done: Sender<Done>, meters: Arc<Meters>) {
    let mut syncs = PendingSyncs::default();
    let mut held = Vec::new();
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(_) => {
                if !report_held(&mut syncs, &mut held, &done) {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        let waiting = syncs.commits();
        let msg = carry_out(job, &meters, &mut syncs);
        if syncs.commits() == waiting {
            if done.send(Done(msg)).is_err() {
                return;
            }
            continue;
        }
        held.push(msg);
        if held.len() >= COMMITS_PER_SYNC && !report_held(&mut syncs, &mut held, &done) {
            return;
        }
    }
}

/// Syncs the folders the held commits wait for and reports them; a folder
/// that cannot be synced fails them. False when nobody listens any more.
fn report_held(syncs: &mut PendingSyncs, held: &mut Vec<DoneKind>, done: &Sender<Done>) -> bool {
    if held.is_empty() {
        return true;
    }
    let failed = syncs.sync().err();
    held.drain(..).all(|msg| {
        let msg = match (&failed, msg) {
            (
                Some(f),
                DoneKind::Finished {
                    token,
                    result: Ok(_),
                },
            ) => DoneKind::Finished {
                token,
                result: Err(FileError::Dest(f.error())),
            },
            (_, msg) => msg,
        };
        done.send(Done(msg)).is_ok()
    })
}

/// Carries out one job.
fn carry_out(job: Job, meters: &Meters, syncs: &mut PendingSyncs) -> DoneKind {
    let msg = match job {
        Job::Hash {
            slot,
            path,
            fp,
            dating,
        } => DoneKind::Hashed {
            slot,
            result: Backoff::OPERATION
                .retry(|| hash_file(&path, &fp, &meters.read, &meters.cancel))
                .map(|hash| read_content(hash, &path, &dating)),
        },
        Job::Upload {
            token,
            dest,
            path,
            fp,
            hash,
            album,
            name,
            overwrite,
            taken,
            claim,
            progress,
        } => {
            let job = UploadJob {
                dest: dest.as_ref(),
                path: &path,
                fp: &fp,
                hash: &hash,
                album: &album,
                name: &name,
                overwrite,
                taken,
                claim: claim.as_ref(),
                progress: &progress,
            };
            DoneKind::Finished {
                token,
                result: on_dest(meters, dest.as_ref(), || upload(meters, &job, syncs)),
            }
        }
        Job::Relocate {
            token,
            dest,
            from,
            to,
            claim,
            copy,
        } => DoneKind::Finished {
            token,
            result: on_dest(meters, dest.as_ref(), || {
                relocate(dest.as_ref(), &from, &to, claim.as_ref(), copy)
            }),
        },
    };
    // A cancelled read is not the file's fault.
    match msg {
        DoneKind::Hashed {
            slot,
            result: Err(_),
        } if meters.cancel.load(Ordering::Relaxed) => DoneKind::Hashed {
            slot,
            result: Err(FileError::Cancelled),
        },
        DoneKind::Finished {
            token,
            result: Err(_),
        } if meters.cancel.load(Ordering::Relaxed) => DoneKind::Finished {
            token,
            result: Err(FileError::Cancelled),
        },
        other => other,
    }
}

/// The worker pool: threads that take [`Job`]s and report [`Done`].
/// Dropping it stops the workers after their current job.
pub(crate) struct Workers {
    jobs: Option<Sender<Job>>,
    done_rx: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
    pub meters: Arc<Meters>,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub fn start(count: usize) -> Workers {
        let (job_tx, job_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<Done>();
        let meters = Arc::new(Meters::default());
        let handles = (0..count.max(1))
            .map(|i| {
                let (rx, tx, m) = (job_rx.clone(), done_tx.clone(), meters.clone());
                std::thread::Builder::new()
                    .name(format!("shoebox-worker-{i}"))
                    .spawn(move || work(rx, tx, m))
                    .expect("spawn a worker thread")
            })
            .collect();
        Workers {
            jobs: Some(job_tx),
            done_rx,
            handles,
            meters,
        }
    }

    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // Workers only stop when the channel closes, so this cannot fail.
            let _ = tx.send(job);
        }
    }

    /// The channel on which workers report.
    pub fn done_channel(&self) -> Receiver<Done> {
        self.done_rx.clone()
    }
}

impl Drop for Workers {
    /// Stops the workers after their current job. A worker still waiting
    /// on a stalled server after a few seconds is left to end on its own
    /// (its request has a time bound), so that stopping never waits for it.
    fn drop(&mut self) {
        self.jobs = None;
        // The done channel disconnects once every worker has ended.
        let deadline = crate::clock::now() + Duration::from_secs(3);
        while let Ok(_late) = self.done_rx.recv_deadline(deadline) {}
        for h in self.handles.drain(..) {
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::info!("a worker is still waiting on a destination; not waiting for it");
            }
        }
    }
}
