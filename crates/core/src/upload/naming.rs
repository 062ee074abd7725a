//! Naming: which album a file belongs to, and the free names in it
//! (`base`, `base (2)`, …), assigned once per item. See
//! docs/ARCHITECTURE.md.

use super::{Pipeline, Slot};
use crate::album::{AlbumMode, name_key, numbered, sanitize_album};
use crate::error::Result;
use crate::platform::bytes_to_os;
use crate::store::WatchRow;

/// How many names (`base`, `base (2)` … ) the destination may be found to
/// hold, beyond those this engine put there, before it is taken for one
/// that does not behave.
const MAX_SUFFIX: u32 = 1000;

pub(super) fn album_for(watch: &WatchRow, rel: &[u8]) -> String {
    match watch.mode {
        AlbumMode::Single => watch.album.clone(),
        AlbumMode::PerFolder => match rel.rsplit(|b| *b == b'/').next() {
            Some(last) if !rel.is_empty() => sanitize_album(&bytes_to_os(last).to_string_lossy()),
            _ => watch.album.clone(),
        },
    }
}

impl Pipeline<'_> {
    /// Picks the first name in the slot's album that the store does not
    /// use and the destination was not found to hold: `base`, then
    /// `base (2)`, `base (3)`, … The destination itself is asked by the
    /// worker that claims the name (see [`Claim`]): a name found taken there
    /// is remembered and the file planned again. `None` when the
    /// destination says every name is taken (it is then marked down).
    pub(super) fn free_name(&mut self, slot: &Slot) -> Result<Option<String>> {
        let taken = self.taken.get(&slot.dest_id);
        let mut found_on_dest = 0;
        for n in 1u32.. {
            let name = if n == 1 {
                slot.base.clone()
            } else {
                numbered(&slot.base, n)
            };
            if taken.is_some_and(|t| t.contains(&name_key(&slot.album, &name))) {
                found_on_dest += 1;
                if found_on_dest > MAX_SUFFIX {
                    break;
                }
                continue;
            }
            if !self
                .store
                .entry_name_taken(slot.dest_id, &slot.album, &name)?
            {
                return Ok(Some(name));
            }
        }
        // No real album holds this many unknown files of one name: a
        // server that says every name exists is not storing files.
        let dest = self
            .dests
            .get(slot.dest_id)
            .expect("planned for an open destination")
            .name()
            .to_string();
        let e = crate::dest::http::not_behaving(
            &dest,
            "storage",
            format!(
                "it says {} and {MAX_SUFFIX} numbered variants of it all exist in {}",
                slot.base, slot.album
            ),
        );
        self.destination_down(slot.dest_id, &e)?;
        Ok(None)
    }
}
