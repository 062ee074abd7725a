//! Naming: which album a file belongs to, and the free names in it
//! (`base`, `base (2)`, …), one number per item: the members of an item
//! (`crate::item`) take the same number, so that a Live Photo's halves, a
//! RAW and its JPEG and their sidecars stay paired by name. See
//! docs/ARCHITECTURE.md.

use std::path::Path;

use super::{Pipeline, Slot};
use crate::album::{AlbumMode, folder_album, name_key, sanitize_file_name};
use crate::capture::Captured;
use crate::error::Result;
use crate::filter::media_kind;
use crate::item::{Member, member};
use crate::platform::bytes_to_os;
use crate::store::{EntryRow, EntryState, FolderMate, QueuedFile, WatchRow};
use crate::transfer::Dating;

/// Whether a name can be given in an album.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameState {
    Free,
    /// The store gives it to another entry.
    Used,
    /// The destination was found to hold something else under it.
    FoundOnDest,
}

/// The other members of a file's item in its folder, each with its entry
/// in the file's album when it has one.
type Mates = Vec<(Member, Option<EntryRow>)>;

/// The `by-date` album of a file whose date could not be read.
const UNDATED_ALBUM: &str = "Undated";

/// Past this number, a file takes the first name free for itself alone.
const MAX_ITEM_NUMBER: u32 = 10_000;

/// How many names (`base`, `base (2)` … ) the destination may be found to
/// hold, beyond those this engine put there, before it is taken for one
/// that does not behave.
const MAX_SUFFIX: u32 = 1000;

/// The album of a file in the folder `rel` of `watch`. A `by-date` watch
/// needs the file's capture date, known once it is hashed; a file that has
/// none (it could not be read) goes to [`UNDATED_ALBUM`].
pub(super) fn album_for(watch: &WatchRow, rel: &[u8], captured: Option<&Captured>) -> String {
    match watch.mode {
        AlbumMode::Single => watch.album.clone(),
        AlbumMode::ByDate => match captured {
            Some(c) => watch.date_format.album(&c.at),
            None => UNDATED_ALBUM.to_string(),
        },
        AlbumMode::PerFolder => {
            let folders: Vec<String> = rel
                .split(|b| *b == b'/')
                .filter(|c| !c.is_empty())
                .map(|c| bytes_to_os(c).to_string_lossy().into_owned())
                .collect();
            folder_album(&folders, watch.album_names, &watch.album)
        }
    }
}

impl Pipeline<'_> {
    /// Picks the first name in the slot's album that the store does not
    /// use and the destination was not found to hold: `base`, then
    /// `base (2)`, `base (3)`, …, with one number for the whole item: the
    /// number a member already has in the album, else the first that is
    /// free for every member still to be named. The destination itself is
    /// asked by the worker that claims the name (see [`Claim`]): a name
    /// found taken there is remembered and the file planned again. `None`
    /// when the destination says every name is taken (it is then marked
    /// down).
    pub(super) fn free_name(&mut self, slot: &Slot) -> Result<Option<String>> {
        let (me, mates) = self.item_of(slot)?;
        let mut chosen: Vec<u32> = mates
            .iter()
            .filter_map(|(m, e)| e.as_ref().and_then(|e| m.number_of(&e.name)))
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        for n in chosen {
            let name = me.numbered(n);
            if self.name_state(slot, &name)? == NameState::Free {
                return Ok(Some(name));
            }
        }
        let mut found_on_dest = 0;
        for n in 1u32.. {
            let name = me.numbered(n);
            match self.name_state(slot, &name)? {
                NameState::FoundOnDest => {
                    found_on_dest += 1;
                    if found_on_dest > MAX_SUFFIX {
                        break;
                    }
                    continue;
                }
                NameState::Used => continue,
                NameState::Free => {}
            }
            if n > MAX_ITEM_NUMBER || self.free_for_mates(slot, &mates, n)? {
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

    fn name_state(&self, slot: &Slot, name: &str) -> Result<NameState> {
        let key = name_key(&slot.album, name);
        if self
            .taken
            .get(&slot.dest_id)
            .is_some_and(|t| t.contains(&key))
        {
            return Ok(NameState::FoundOnDest);
        }
        Ok(
            if self
                .store
                .entry_name_taken(slot.dest_id, &slot.album, name)?
            {
                NameState::Used
            } else {
                NameState::Free
            },
        )
    }

    /// True when number `n` is free for every member still to be named.
    fn free_for_mates(&self, slot: &Slot, mates: &Mates, n: u32) -> Result<bool> {
        for (m, entry) in mates {
            if entry.is_none() && self.name_state(slot, &m.numbered(n))? != NameState::Free {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The slot's file as a member of its item, and the item's other
    /// members in its folder. Only names that could belong are read: those
    /// sharing the name's start (and, for iOS edits, `IMG_E1234` with
    /// `IMG_1234`).
    fn item_of(&self, slot: &Slot) -> Result<(Member, Mates)> {
        let (me, found) = self.mates_of(&slot.file, &slot.base)?;
        let mut mates = Vec::new();
        for (mate, m) in found {
            // Its recorded entry, or the name an upload under way reserved.
            let entry = match mate.entry_id {
                Some(id) => self.store.entry(id)?,
                None => None,
            }
            .filter(|e| e.dest_id == slot.dest_id);
            let entry = match entry {
                Some(e) => Some(e),
                None => self.store.reservation_for(mate.id, slot.dest_id)?,
            }
            .filter(|e| e.album == slot.album && e.state != EntryState::Deleting);
            mates.push((m, entry));
        }
        Ok((me, mates))
    }

    /// The file (whose name is made safe as `base`) as a member of its
    /// item, and the other members in its folder.
    fn mates_of(
        &self,
        file: &QueuedFile,
        base: &str,
    ) -> Result<(Member, Vec<(FolderMate, Member)>)> {
        let raw = &file.name;
        let first_dot = raw.iter().skip(1).position(|b| *b == b'.').map(|i| i + 1);
        let prefix = &raw[..first_dot.unwrap_or(raw.len())];
        let mut found = self.store.folder_mates(file.id, prefix)?;
        if let Some(other) = edit_counterpart(prefix) {
            found.extend(self.store.folder_mates(file.id, &other)?);
        }
        // Takeout's `IMG_1(1).jpg` has its JSON as `IMG_1.jpg(1).json`.
        if let Some(unnumbered) = without_takeout_number(prefix) {
            let more = self.store.folder_mates(file.id, unnumbered)?;
            let seen: std::collections::HashSet<i64> = found.iter().map(|f| f.id).collect();
            found.extend(more.into_iter().filter(|f| !seen.contains(&f.id)));
        }
        let bases: Vec<String> = found
            .iter()
            .map(|f| sanitize_file_name(&bytes_to_os(&f.name)))
            .collect();
        let mut folder: Vec<&str> = bases.iter().map(String::as_str).collect();
        folder.push(base);
        let me = member(base, &folder);
        let mates = found
            .into_iter()
            .zip(&bases)
            .map(|(f, b)| (f, member(b, &folder)))
            .filter(|(_, m)| m.key == me.key)
            .collect();
        Ok((me, mates))
    }

    /// Where the item of the file at `path` gets its capture date: its
    /// first photo by name, else its first video, else the file itself;
    /// with the Takeout JSON named after that member, if there is one.
    pub(super) fn dating_of(&self, file: &QueuedFile, base: &str, path: &Path) -> Result<Dating> {
        let (_, mates) = self.mates_of(file, base)?;
        let mut members: Vec<&[u8]> = mates.iter().map(|(f, _)| f.name.as_slice()).collect();
        members.push(&file.name);
        let text = |raw: &[u8]| bytes_to_os(raw).to_string_lossy().into_owned();
        let dating = members
            .iter()
            .min_by_key(|raw| (media_kind(&text(raw)), **raw))
            .copied()
            .unwrap_or(&file.name);
        // The JSON named after the dating member, else (Takeout's form for
        // a numbered photo, `IMG_1.jpg(1).json`) any of the item's.
        let dating_name = text(dating).to_lowercase();
        let json = |raw: &&&[u8]| text(raw).to_lowercase().ends_with(".json");
        let takeout = members
            .iter()
            .filter(json)
            .find(|raw| text(raw).to_lowercase().starts_with(&dating_name))
            .or_else(|| members.iter().find(json));
        let dir = path.parent().unwrap_or(path);
        Ok(Dating {
            member: dir.join(bytes_to_os(dating)),
            takeout: takeout.map(|raw| dir.join(bytes_to_os(raw))),
        })
    }
}

/// `IMG_1` for Takeout's numbered `IMG_1(1)`.
fn without_takeout_number(prefix: &[u8]) -> Option<&[u8]> {
    let inner = prefix.strip_suffix(b")")?;
    let open = inner.iter().rposition(|b| *b == b'(')?;
    let digits = &inner[open + 1..];
    (open > 0 && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
        .then(|| &prefix[..open])
}

/// The start of the name an iOS edit and its original share the other
/// way round: `IMG_1234` for `IMG_E1234`, and `IMG_E1234` for `IMG_1234`.
fn edit_counterpart(prefix: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(prefix).ok()?;
    let (head, digits) = text.rsplit_once('_')?;
    if let Some(d) = digits.strip_prefix('E')
        && !d.is_empty()
        && d.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(format!("{head}_{d}").into_bytes());
    }
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{head}_E{digits}").into_bytes())
}
