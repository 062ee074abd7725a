//! The live engine's watches: adding one, full scans, its watcher (and
//! falling back to polling), a folder gone missing, and watcher hints. See
//! docs/ARCHITECTURE.md.

use super::*;

impl Daemon<'_> {
    pub(super) fn add(&mut self, row: WatchRow) -> Result<()> {
        let id = row.id;
        let live = Live {
            row,
            watcher: None,
            mode: WatcherMode::Live,
            dirty: DirtySet::new(Limits::default()),
            next_full: clock::now(),
            missing: false,
            parent_watcher: None,
            dirs: 0,
        };
        self.lives.insert(id, live);
        self.full_scan(id)
    }

    /// Checks the root, then (re)starts its watcher if needed and scans the
    /// whole watch.
    pub(super) fn full_scan(&mut self, id: i64) -> Result<()> {
        let Some(live) = self.lives.get(&id) else {
            return Ok(());
        };
        let row = live.row.clone();
        if let RootCheck::Missing(reason) = check_root(&row) {
            return self.go_missing(id, &reason);
        }
        let was_missing = live.missing;
        let needs_watcher =
            live.watcher.is_none() && (live.mode == WatcherMode::Live || was_missing);
        let first_scan = row.last_scan.is_none();
        if needs_watcher && !first_scan {
            self.start_watcher(id)?;
        }
        if was_missing {
            self.store.set_watch_state(id, WatchState::Ok, None)?;
        }
        match scan(self.store, &row, &Rescan::Watch, self.emit) {
            Ok(stats) => {
                if stats.vanished > 0 {
                    self.deletions_due =
                        Some(clock::now() + Duration::from_secs(self.grace_secs() as u64 + 1));
                }
            }
            Err(e) if e.is_transient_store_error() => return Err(e),
            Err(e) => tracing::error!("scanning {} failed: {e}", row.root.display()),
        }
        let dirs = self.store.dir_count(id)?;
        let live = self.lives.get_mut(&id).expect("present");
        live.missing = false;
        live.parent_watcher = None;
        live.dirs = dirs;
        if needs_watcher && first_scan {
            // Never scanned before: the directory count is known only now.
            // Changes made during that first scan are caught by one more.
            self.start_watcher(id)?;
            self.lives
                .get_mut(&id)
                .expect("present")
                .dirty
                .mark(Rescan::Watch, clock::now());
        }
        let mode = self.lives[&id].mode.clone();
        let next_full = self.next_full_for(&mode);
        let Some(row) = self.store.watch_if_any(id)? else {
            // Removed by a command while it was being scanned.
            self.lives.remove(&id);
            self.configure_pipeline();
            return Ok(());
        };
        let live = self.lives.get_mut(&id).expect("present");
        live.row = row;
        live.next_full = next_full;
        if was_missing {
            self.configure_pipeline();
        }
        self.pipeline.rescan_queue();
        Ok(())
    }

    pub(super) fn start_watcher(&mut self, id: i64) -> Result<()> {
        let in_use: u64 = self
            .lives
            .iter()
            .filter(|(other, l)| **other != id && l.watcher.is_some())
            .map(|(_, l)| l.dirs)
            .sum();
        let live = self.lives.get_mut(&id).expect("present");
        let dirs = self.store.dir_count(id)?.max(1);
        let limit = self.opts.watch_limit.or_else(crate::platform::watch_limit);
        let mode = match watch_folder(
            id,
            &live.row.root,
            dirs,
            in_use,
            limit,
            self.hints_tx.clone(),
        ) {
            Ok(w) => {
                live.watcher = Some(w);
                WatcherMode::Live
            }
            Err(not) => not.mode,
        };
        self.set_mode(id, mode)
    }

    pub(super) fn set_mode(&mut self, id: i64, mode: WatcherMode) -> Result<()> {
        let live = self.lives.get_mut(&id).expect("present");
        if mode != WatcherMode::Live {
            live.watcher = None;
            tracing::warn!("{}: {}", live.row.root.display(), mode.describe());
        }
        let text = mode.describe();
        self.store.set_watcher(id, Some(&mode))?;
        live.mode = mode;
        (self.emit)(&Event::Watcher {
            watch: live.row.root.display().to_string(),
            state: text,
        });
        Ok(())
    }

    pub(super) fn go_missing(&mut self, id: i64, reason: &str) -> Result<()> {
        let Some(live) = self.lives.get_mut(&id) else {
            return Ok(());
        };
        let newly = !live.missing;
        live.watcher = None;
        live.missing = true;
        live.dirty = DirtySet::new(Limits::default());
        // Notice the folder's return as soon as it happens; a slow periodic
        // check covers what the parent's watcher cannot see.
        live.parent_watcher = existing_ancestor(&live.row.root).and_then(|p| {
            watch_dir_shallow(&p, self.hints_tx.clone(), move |_| {
                Some(Hint::Root { watch_id: id })
            })
        });
        live.next_full = clock::now() + self.opts.poll_every;
        if newly {
            let row = live.row.clone();
            mark_missing(self.store, &row, reason, self.emit)?;
            self.store.set_watcher(id, None)?;
            self.configure_pipeline();
        }
        Ok(())
    }

    /// Takes `first` and the hints already waiting behind it, up to
    /// [`super::HINTS_PER_TICK`] in all, so that the engine ticks once for
    /// the lot.
    pub(super) fn on_hints(&mut self, first: Hint) -> Result<()> {
        let waiting = self.hints.clone();
        let behind = waiting.try_iter().take(super::HINTS_PER_TICK - 1);
        for hint in std::iter::once(first).chain(behind) {
            self.on_hint(hint)?;
        }
        Ok(())
    }

    fn on_hint(&mut self, hint: Hint) -> Result<()> {
        match hint {
            Hint::Control => {
                self.reload()?;
                // Followers see a pause or an edit at once.
                self.publish(true)?;
            }
            // Followed on the next tick.
            Hint::Machine => {}
            Hint::Rescan { watch_id, what } => {
                if let Some(live) = self.lives.get_mut(&watch_id)
                    && !live.missing
                {
                    live.dirty.mark(what, clock::now());
                }
            }
            Hint::Root { watch_id } => {
                let Some(live) = self.lives.get(&watch_id) else {
                    return Ok(());
                };
                match check_root(&live.row) {
                    RootCheck::Missing(reason) => self.go_missing(watch_id, &reason)?,
                    RootCheck::Present if live.missing => self.full_scan(watch_id)?,
                    RootCheck::Present => {}
                }
            }
            Hint::Failed {
                watch_id, error, ..
            } => {
                if self
                    .lives
                    .get(&watch_id)
                    .is_some_and(|l| l.watcher.is_some())
                {
                    self.set_mode(watch_id, WatcherMode::Degraded(error))?;
                    let live = self.lives.get_mut(&watch_id).expect("present");
                    live.dirty.mark(Rescan::Watch, clock::now());
                    live.next_full = clock::now() + self.opts.poll_every;
                }
            }
        }
        Ok(())
    }

    pub(super) fn next_full_for(&self, mode: &WatcherMode) -> Instant {
        let every = match mode {
            WatcherMode::Live => self
                .opts
                .full_scan_every
                .mul_f64(0.75 + 0.5 * random_unit()),
            _ => self.opts.poll_every,
        };
        clock::now() + every
    }
}
