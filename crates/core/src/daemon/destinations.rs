//! The live engine's destinations: opened on threads of their own, probed
//! again while down, and the deletions and clean-up done on the tidy
//! thread. See docs/ARCHITECTURE.md.

use super::*;
use crate::transfer::{date_old_copies, give_up_lost_names, open_destination};

impl Daemon<'_> {
    /// Starts opening, each on a thread of its own, the destinations the
    /// watches use that are neither open nor being opened. What comes of
    /// it arrives on `opened` (see [`Self::on_opened`]).
    pub(super) fn open_destinations(&mut self, rows: &[WatchRow]) -> Result<()> {
        for r in rows {
            if !self.pipeline.destinations_mut().begin_opening(r.dest_id) {
                continue;
            }
            let row = self.store.destination(r.dest_id)?;
            // A destination joining has nothing in flight, except what a
            // destination dropped mid-run still has: any other reservation
            // of it is a crash's leftover.
            let in_flight = self.pipeline.entries_in_flight();
            let (home, tx, epoch) = (
                self.home.clone(),
                self.opened_tx.clone(),
                self.dest_epoch.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("shoebox-open-{}", row.id))
                .spawn(move || {
                    let result = open_destination(&home, &row, &in_flight);
                    let _ = tx.send(Opened {
                        dest_id: row.id,
                        epoch,
                        result,
                    });
                });
            if let Err(e) = spawned {
                let dests = self.pipeline.destinations_mut();
                dests.abandon_opening(r.dest_id);
                dests.schedule_probe();
                tracing::error!("cannot start a thread to open a destination: {e}");
            }
        }
        Ok(())
    }

    /// Takes in a destination an opener thread opened, or reports why it
    /// could not.
    pub(super) fn on_opened(&mut self, o: Opened) -> Result<()> {
        let wanted = self.lives.values().any(|l| l.row.dest_id == o.dest_id);
        if o.epoch != self.dest_epoch || !wanted {
            // Its settings changed meanwhile, or no watch uses it now.
            self.pipeline.destinations_mut().abandon_opening(o.dest_id);
            if wanted {
                let rows: Vec<WatchRow> = self.lives.values().map(|l| l.row.clone()).collect();
                self.open_destinations(&rows)?;
            }
            return Ok(());
        }
        match o.result {
            Ok(d) => {
                self.pipeline.destinations_mut().opened(o.dest_id, d);
                self.configure_pipeline();
            }
            Err(down) => {
                let event = Event::DestinationUnavailable {
                    dest: down.dest.clone(),
                    error: down.message.clone(),
                };
                if self
                    .pipeline
                    .destinations_mut()
                    .unavailable(o.dest_id, down)
                {
                    (self.emit)(&event);
                }
            }
        }
        Ok(())
    }

    pub(super) fn apply_deletions(&mut self) -> Result<()> {
        let ids: Vec<i64> = self
            .lives
            .iter()
            .filter(|(_, l)| !l.missing)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(row) = self.store.watch_if_any(id)? else {
                continue; // removed meanwhile; the reload drops it
            };
            if row.on_delete == crate::store::OnDelete::Remove
                && !self.pipeline.destinations().is_open(row.dest_id)
            {
                continue;
            }
            if let PolicyOutcome::Held(n) =
                apply_policy(self.store, &row, self.grace_secs(), self.emit)?
            {
                tracing::warn!(
                    "{n} files vanished at once from {}: deletions held",
                    row.root.display()
                );
            }
            if let Some(row) = self.store.watch_if_any(id)? {
                self.lives.get_mut(&id).expect("present").row = row;
            }
        }
        self.delete_marked();
        Ok(())
    }

    /// Deletes the entries marked for deletion from the open destinations,
    /// on a thread of its own; what it removed arrives on `deleted`.
    pub(super) fn delete_marked(&mut self) {
        if self.deleting {
            self.delete_again = true;
            return;
        }
        let dests = self.pipeline.destinations().snapshot();
        if dests.is_empty() {
            return;
        }
        let (home, tx) = (self.home.clone(), self.deleted_tx.clone());
        let spawned = std::thread::Builder::new()
            .name("shoebox-delete".into())
            .spawn(move || {
                let events = std::cell::RefCell::new(Vec::new());
                let emit = |e: &Event| events.borrow_mut().push(e.clone());
                let mut requeued = 0;
                match Store::open(&home.db_path()) {
                    Ok(store) => {
                        for (id, d) in &dests {
                            if let Err(e) = delete_marked(&store, d.as_ref(), *id, &emit) {
                                tracing::warn!("deleting from {} stopped: {e}", d.name());
                            }
                            if let Err(e) = date_old_copies(&store, d.as_ref(), *id) {
                                tracing::warn!("dating the copies on {} stopped: {e}", d.name());
                            }
                            finish_pass(d.as_ref(), PassEnd::Pass);
                        }
                        match give_up_lost_names(&store, &dests) {
                            Ok(n) => requeued = n,
                            Err(e) => tracing::warn!("cannot check what was written: {e}"),
                        }
                    }
                    Err(e) => tracing::warn!("cannot tidy the destinations now: {e}"),
                }
                let _ = tx.send(Tidied {
                    events: events.into_inner(),
                    requeued,
                });
            });
        match spawned {
            Ok(_) => self.deleting = true,
            Err(e) => tracing::error!("cannot start a thread to delete: {e}"),
        }
    }

    /// Checks the open destinations against the index (presence and size,
    /// as `shoebox verify` does), on a thread of its own; the result
    /// arrives on `checked`. Destinations that are down wait for the next
    /// check.
    pub(super) fn check_backup(&mut self) {
        let dests = self.pipeline.destinations().snapshot();
        let (home, tx) = (self.home.clone(), self.checked_tx.clone());
        let spawned = std::thread::Builder::new()
            .name("shoebox-check".into())
            .spawn(move || {
                let mut report = crate::check::VerifyReport::default();
                let opts = crate::check::VerifyOptions::default();
                let checked = Store::open(&home.db_path()).and_then(|store| {
                    for (id, d) in &dests {
                        let entries = store.entries_of(*id)?;
                        let mut warn = |p: &crate::check::VerifyProblem| {
                            tracing::warn!(
                                "backup check: {}/{} on {} is {:?}: {}",
                                p.album,
                                p.name,
                                p.dest,
                                p.finding,
                                p.detail
                            );
                        };
                        let one = crate::check::check_destination(
                            &store,
                            d.name(),
                            d.as_ref(),
                            &entries,
                            &opts,
                            &mut report,
                            &mut warn,
                        );
                        if let Err(e) = one {
                            report.unavailable.push(e.to_string());
                        }
                    }
                    Ok(())
                });
                if let Err(e) = checked {
                    report.unavailable.push(e.to_string());
                }
                let _ = tx.send(report);
            });
        match spawned {
            Ok(_) => self.checking = true,
            Err(e) => tracing::error!("cannot start a thread to check the backup: {e}"),
        }
    }

    /// What a check found: kept for `status`, and said.
    pub(super) fn on_checked(&mut self, report: &crate::check::VerifyReport) -> Result<()> {
        self.checking = false;
        let check = crate::check::record_check(self.store, report)?;
        self.check_due = check.at + self.opts.check_every.as_secs() as i64;
        (self.emit)(&Event::BackupChecked {
            checked: check.checked,
            missing: check.missing,
            damaged: check.damaged,
            unexpected: check.unexpected,
        });
        Ok(())
    }

    /// What a deletion thread removed.
    pub(super) fn on_deleted(&mut self, tidied: Tidied) {
        for e in &tidied.events {
            (self.emit)(e);
        }
        if tidied.requeued > 0 {
            self.pipeline.rescan_queue();
        }
        self.deleting = false;
        if std::mem::take(&mut self.delete_again) {
            self.delete_marked();
        }
    }
}
