//! `shoebox verify`: the backup checked (see `check.rs`) from the CLI,
//! while no engine runs.

use super::*;
use crate::check::{VerifyOptions, VerifyProblem, VerifyReport, check_destination, record_check};
use crate::dest;

impl Engine {
    /// Checks every album entry the index records. Refused while an
    /// engine runs (it would be checking what is being written). Each
    /// problem is passed to `report` as it is found.
    pub fn verify(
        &self,
        opts: &VerifyOptions,
        report: &mut dyn FnMut(&VerifyProblem),
    ) -> Result<VerifyReport> {
        let _lock = self.lock("verify")?;
        let rows: Vec<DestRow> = match &opts.dest {
            Some(name) => vec![self.store.destination_by_name(name)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "there is no destination named {name:?}; see `shoebox dest list`"
                ))
            })?],
            None => self.store.destinations()?,
        };
        let mut out = VerifyReport::default();
        for row in rows {
            let entries = self.store.entries_of(row.id)?;
            if entries.is_empty() {
                continue;
            }
            let checked = dest::open(&self.home, &row).and_then(|d| {
                dest::prepare_checked(&self.store, &row, d.as_ref())
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                check_destination(
                    &self.store,
                    &row.name,
                    d.as_ref(),
                    &entries,
                    opts,
                    &mut out,
                    report,
                )
            });
            if let Err(e) = checked {
                out.unavailable.push(e.to_string());
            }
        }
        record_check(&self.store, &out)?;
        Ok(out)
    }
}
