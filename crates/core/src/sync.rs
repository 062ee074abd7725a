//! One sync pass (`shoebox sync`): scan every watch, run the upload
//! pipeline until the queue is empty, then apply each watch's delete policy.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::deletion::{PolicyOutcome, apply_policy, delete_marked};
use crate::dest::PassEnd;
use crate::error::Result;
use crate::events::Event;
use crate::home::Home;
use crate::platform::bytes_to_os;
use crate::report::{Problem, SyncReport};
use crate::scan::{RootCheck, check_root, mark_missing, rel_path, scan_watch};
use crate::settle::SettleRule;
use crate::store::{FileState, OnDelete, Store, WatchRow};
use crate::transfer::{date_old_copies, finish_pass, give_up_lost_names, open_all};
use crate::upload::Pipeline;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Parallel uploads.
    pub workers: usize,
    /// How long a file must hold still before it is read.
    pub settle: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            workers: 4,
            settle: Duration::from_secs(2),
        }
    }
}

/// How often one pass looks again for names lost to another writer.
const MAX_LOST_ROUNDS: u32 = 5;

/// Runs one full sync pass. The caller holds the [`crate::EngineLock`].
pub fn sync(
    store: &Store,
    home: &Home,
    opts: &SyncOptions,
    emit: &dyn Fn(&Event),
) -> Result<SyncReport> {
    store.requeue_interrupted()?;
    let all = store.watches()?;
    crate::transfer::rate::UPLOADS.set(crate::config::bandwidth(store)?);
    let mut pipeline = Pipeline::new(store, emit, opts.workers, SettleRule::new(opts.settle));
    let unavailable = open_all(pipeline.destinations_mut(), store, home, &all, emit)?;
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut ignored = 0;
    for w in &all {
        match check_root(w) {
            RootCheck::Present => {
                ignored += scan_watch(store, w, emit)?.ignored;
                present.push(w.id);
            }
            RootCheck::Missing(reason) => {
                mark_missing(store, w, &reason, emit)?;
                missing.push(reason);
            }
        }
    }
    let live: Vec<WatchRow> = store
        .watches()?
        .into_iter()
        .filter(|w| present.contains(&w.id))
        .collect();

    pipeline.configure(live);
    let (files, bytes) = store.queue_totals()?;
    emit(&Event::Queue { files, bytes });
    drain(&mut pipeline, store)?;
    let dests = pipeline.destinations().snapshot();
    let mut report = std::mem::take(&mut pipeline.report);
    report.bytes_read = pipeline.meters.read.load(Ordering::Relaxed);
    drop(pipeline);
    report.unavailable_destinations.extend(unavailable);
    report.missing_watches = missing;
    report.ignored = ignored;

    for w in store.watches()?.iter().filter(|w| present.contains(&w.id)) {
        if w.on_delete == OnDelete::Remove && !dests.contains_key(&w.dest_id) {
            continue; // decided when the destination is back
        }
        if let PolicyOutcome::Held(n) = apply_policy(store, w, 0, emit)? {
            report.deletions_held.push(format!(
                "{n} files vanished from {} at once; nothing was removed from its albums. \
                 If that was intended, run `shoebox watch confirm-deletions {}`; to keep them \
                 in the albums, run `shoebox watch keep-files {}`",
                w.root.display(),
                w.root.display(),
                w.root.display()
            ));
        }
    }
    for (id, d) in &dests {
        report.removed += delete_marked(store, d.as_ref(), *id, emit)?;
        date_old_copies(store, d.as_ref(), *id)?;
        finish_pass(d.as_ref(), PassEnd::Stopping);
    }
    collect_problems(store, &all, &mut report)?;
    Ok(report)
}

/// Runs the pipeline until nothing is left to do; then names another
/// writer took over in the instant between their check and our write go
/// back to the queue, for a free name.
fn drain(pipeline: &mut Pipeline<'_>, store: &Store) -> Result<()> {
    let mut rounds = 0;
    loop {
        pipeline.pump()?;
        if pipeline.is_drained() {
            rounds += 1;
            let dests = pipeline.destinations().snapshot();
            if rounds > MAX_LOST_ROUNDS || give_up_lost_names(store, &dests)? == 0 {
                return Ok(());
            }
            pipeline.rescan_queue();
            continue;
        }
        pipeline.handle_next(None)?;
    }
}

fn collect_problems(store: &Store, watches: &[WatchRow], report: &mut SyncReport) -> Result<()> {
    const SHOWN: usize = 1000;
    for w in watches {
        let (id, root) = (w.id, &w.root);
        for row in store.problems(id, SHOWN)? {
            let path = rel_path(root, &row.dir_rel)
                .join(bytes_to_os(&row.name))
                .display()
                .to_string();
            let p = Problem {
                path,
                reason: row.reason,
            };
            match row.state {
                FileState::Failed => report.failures.push(p),
                _ => report.skips.push(p),
            }
        }
        report.unreadable_folders += store.unreachable_dirs(id)?;
        for (state, n, _) in store.unfinished_counts(id)? {
            match state {
                FileState::Failed => report.failed += n,
                FileState::Skipped => report.skipped += n,
                FileState::Pending | FileState::Uploading => report.waiting += n,
                FileState::Uploaded => {}
            }
        }
    }
    Ok(())
}
