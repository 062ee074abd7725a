//! Checking the backup: what the index records against what each
//! destination holds. Presence and size by listing each album (one request
//! per album where the destination lists), content with `deep` (read back
//! and hashed), and `repair` to send missing and damaged files again. Used
//! by `shoebox verify` (`Engine::verify`) and by the running engine's
//! periodic check (the daemon), and kept for `status`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dest::{self, Destination};
use crate::error::{DestError, Error, Result};
use crate::store::{EntryRow, EntryState, Store};

/// What verify found wrong with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Finding {
    /// The index records it; the destination does not hold it.
    Missing,
    /// The destination holds another length (or, `--deep`, other bytes).
    Damaged,
    /// The destination holds it in an album; the index does not record it.
    Unexpected,
}

/// One object verify reports.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyProblem {
    pub dest: String,
    pub finding: Finding,
    pub album: String,
    pub name: String,
    pub detail: String,
    /// `--repair`: whether its file was queued to be sent again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_again: Option<bool>,
}

/// What a verify found, over every destination checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub checked: u64,
    pub missing: u64,
    pub damaged: u64,
    pub unexpected: u64,
    /// `--repair`: files queued to be sent again by the next sync.
    pub queued_again: u64,
    /// `--repair`: missing or damaged entries whose source is gone.
    pub cannot_repair: u64,
    /// Destinations that could not be checked, and why.
    pub unavailable: Vec<String>,
}

impl VerifyReport {
    /// True when every recorded object is there and whole.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.damaged == 0 && self.unavailable.is_empty()
    }
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only this destination (all by default).
    pub dest: Option<String>,
    /// Read every object back and compare its content.
    pub deep: bool,
    /// Queue missing and damaged entries again (a damaged copy is deleted
    /// first, so that the file goes back under its own name).
    pub repair: bool,
}

/// Settings key: the last check of the backup ([`BackupCheck`], JSON).
pub const LAST_CHECK_KEY: &str = "last_check";

/// The last check of the backup, by `shoebox verify` or by the running
/// engine, as `status` and the window show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BackupCheck {
    /// When it ended (unix seconds).
    pub at: i64,
    pub checked: u64,
    pub missing: u64,
    pub damaged: u64,
    pub unexpected: u64,
    /// Destinations that could not be checked.
    pub unavailable: u64,
}

/// Keeps a check's result for `status`.
pub(crate) fn record_check(store: &Store, r: &VerifyReport) -> Result<BackupCheck> {
    let check = BackupCheck {
        at: crate::store::now_secs(),
        checked: r.checked,
        missing: r.missing,
        damaged: r.damaged,
        unexpected: r.unexpected,
        unavailable: r.unavailable.len() as u64,
    };
    store.set_setting(
        LAST_CHECK_KEY,
        &serde_json::to_string(&check).expect("serialisable"),
    )?;
    Ok(check)
}

/// The last check of the backup, if there was one.
pub(crate) fn last_check(store: &Store) -> Result<Option<BackupCheck>> {
    Ok(store
        .setting(LAST_CHECK_KEY)?
        .and_then(|t| serde_json::from_str(&t).ok()))
}

/// Checks the entries `entries` of the destination `d` (opened and
/// prepared), adding what it finds to `out`.
pub(crate) fn check_destination(
    store: &Store,
    dest_name: &str,
    d: &dyn Destination,
    entries: &[EntryRow],
    opts: &VerifyOptions,
    out: &mut VerifyReport,
    report: &mut dyn FnMut(&VerifyProblem),
) -> Result<()> {
    let dest_err = |e: DestError| Error::Invalid(e.to_string());
    let mut albums: BTreeMap<&str, Vec<&EntryRow>> = BTreeMap::new();
    for e in entries {
        albums.entry(&e.album).or_default().push(e);
    }
    for (album, recorded) in albums {
        // Every name the index knows in the album, whatever its state
        // (a reservation, where a move comes from), is expected.
        let known: BTreeSet<&str> = recorded
            .iter()
            .map(|e| e.name.as_str())
            .chain(entries.iter().filter_map(|e| {
                e.moving_from
                    .as_ref()
                    .filter(|(a, _)| a == album)
                    .map(|(_, n)| n.as_str())
            }))
            .collect();
        let listed = d.list_album(album).map_err(dest_err)?;
        let stored: Option<BTreeMap<&str, u64>> = listed
            .as_ref()
            .map(|l| l.iter().map(|o| (o.name.as_str(), o.len)).collect());
        for e in recorded
            .iter()
            .filter(|e| e.state == EntryState::Present && e.moving_from.is_none())
        {
            out.checked += 1;
            let finding = check_entry(d, e, stored.as_ref(), opts.deep).map_err(dest_err)?;
            if let Some((finding, detail)) = finding {
                let queued_again = if opts.repair {
                    Some(repair(store, d, e, finding).map_err(dest_err)?)
                } else {
                    None
                };
                match (finding, queued_again) {
                    (_, Some(true)) => out.queued_again += 1,
                    (_, Some(false)) => out.cannot_repair += 1,
                    _ => {}
                }
                *match finding {
                    Finding::Missing => &mut out.missing,
                    _ => &mut out.damaged,
                } += 1;
                report(&VerifyProblem {
                    dest: dest_name.to_string(),
                    finding,
                    album: album.to_string(),
                    name: e.name.clone(),
                    detail,
                    queued_again,
                });
            }
        }
        for o in listed.iter().flatten() {
            if !known.contains(o.name.as_str()) && !o.name.starts_with(".shoebox") {
                out.unexpected += 1;
                report(&VerifyProblem {
                    dest: dest_name.to_string(),
                    finding: Finding::Unexpected,
                    album: album.to_string(),
                    name: o.name.clone(),
                    detail: format!("{} bytes that Shoebox did not record", o.len),
                    queued_again: None,
                });
            }
        }
    }
    Ok(())
}

/// Queues an entry's files again; a damaged copy is deleted first.
/// False when no source file is left to send.
fn repair(
    store: &Store,
    d: &dyn Destination,
    e: &EntryRow,
    finding: Finding,
) -> Result<bool, DestError> {
    let queued = store
        .requeue_entry(e.id)
        .map_err(|err| DestError::Unavailable {
            name: d.name().to_string(),
            why: err.to_string(),
        })?;
    if queued > 0 && finding == Finding::Damaged {
        d.delete(&e.album, &e.name)?;
    }
    Ok(queued > 0)
}

/// What is wrong with one recorded object, if anything: from the album's
/// listing where there is one, else by looking it up; `deep` reads it back.
fn check_entry(
    d: &dyn Destination,
    e: &EntryRow,
    listed: Option<&BTreeMap<&str, u64>>,
    deep: bool,
) -> Result<Option<(Finding, String)>, DestError> {
    let missing = || Some((Finding::Missing, "not on the destination".to_string()));
    match listed.map(|l| l.get(e.name.as_str())) {
        Some(None) => return Ok(missing()),
        Some(Some(&len)) if len != e.size => {
            return Ok(Some((
                Finding::Damaged,
                format!("{len} bytes stored, {} backed up", e.size),
            )));
        }
        Some(Some(_)) => {}
        None if !d.exists(&e.album, &e.name)? => return Ok(missing()),
        None => {}
    }
    let Some(hash) = e.hash else {
        return Ok(None);
    };
    // Without a listing, the length is checked by reading it back.
    if (deep || listed.is_none()) && !dest::holds(d, &e.album, &e.name, e.size, &hash)? {
        return Ok(Some((
            Finding::Damaged,
            "its content differs from what was backed up".to_string(),
        )));
    }
    Ok(None)
}
