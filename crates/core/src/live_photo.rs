//! Apple's Live Photo identifier: the UUID an iPhone writes into both
//! halves of a Live Photo, in the still's Apple MakerNote (tag `0x0011`,
//! which exiftool calls `MediaGroupUUID` and formerly `ContentIdentifier`)
//! and in the motion half's QuickTime metadata
//! (`com.apple.quicktime.content.identifier`). It is read when a file is
//! hashed and kept in the index (`files.live_id`). Names are kept as the
//! source has them (`crate::item` pairs by name, as every photo tool
//! does); where both halves carry an identifier, it decides which files are
//! one Live Photo for its date: a still and a video of one stem with
//! different identifiers are dated each on its own
//! (`transfer::read_content`), and a video whose identifier is a still's
//! is dated by that still whatever its name (`upload::queue`), so the two
//! land in one `by-date` album. See docs/ARCHITECTURE.md.
//!
//! Android's motion photos need no pairing: the video is inside the JPEG
//! (marked in its XMP), so the one file travels whole.

use std::fs::File;
use std::path::Path;

use nom_exif::{EntryValue, Exif, ExifIter, ExifTag, MediaParser, MediaSource};

/// The QuickTime key of the motion half's identifier.
const QUICKTIME_KEY: &str = "com.apple.quicktime.content.identifier";

/// The Apple MakerNote tag of the still's identifier.
const MAKER_NOTE_TAG: u16 = 0x0011;

/// The Live Photo identifier a photo or video carries, if any.
pub(crate) fn live_photo_id(path: &Path) -> Option<String> {
    let source = MediaSource::file(File::open(path).ok()?).ok()?;
    let id = if source.has_exif() {
        let exif: Exif = MediaParser::new()
            .parse::<_, _, ExifIter>(source)
            .ok()?
            .into();
        match exif.get(ExifTag::MakerNote)? {
            EntryValue::Undefined(note) => apple_maker_note_id(note),
            _ => None,
        }
    } else if source.has_track() {
        // The only nom-exif call that gives QuickTime's keys by name. It
        // reads them where an iPhone writes them (`moov/meta`), and leaves
        // those a remux by ffmpeg moved to `moov/udta/meta` as bytes.
        #[allow(deprecated)]
        let entries = nom_exif::parse_metadata(File::open(path).ok()?).ok()?;
        entries
            .into_iter()
            .find_map(|(key, value)| match (key.as_str(), value) {
                (QUICKTIME_KEY, EntryValue::Text(t)) => Some(t),
                ("udta.meta", EntryValue::U8Array(meta)) => quicktime_key(&meta, QUICKTIME_KEY),
                _ => None,
            })
    } else {
        None
    }?;
    plausible(id)
}

/// An identifier as it is compared: trimmed, upper case, and not empty.
fn plausible(id: String) -> Option<String> {
    let id = id.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!id.is_empty() && id.len() <= 128).then(|| id.to_ascii_uppercase())
}

/// The text value of `wanted` in a QuickTime `meta` box's body (version and
/// flags, then `hdlr`, `keys` and `ilst`): `keys` lists the names, and
/// `ilst` holds each value in a box typed with its name's 1-based index.
fn quicktime_key(meta: &[u8], wanted: &str) -> Option<String> {
    let children = boxes(meta.get(4..)?);
    let (_, keys) = children.iter().find(|(kind, _)| kind == b"keys")?;
    let count = u32::from_be_bytes(keys.get(4..8)?.try_into().ok()?);
    let mut at = 8;
    let mut index = None;
    for i in 1..=count {
        let size = u32::from_be_bytes(keys.get(at..at + 4)?.try_into().ok()?) as usize;
        if size < 8 {
            return None;
        }
        let name = keys.get(at + 8..at.checked_add(size)?)?;
        if name == wanted.as_bytes() {
            index = Some(i);
            break;
        }
        at += size;
    }
    let index = index?.to_be_bytes();
    let (_, ilst) = children.iter().find(|(kind, _)| kind == b"ilst")?;
    let (_, item) = boxes(ilst).into_iter().find(|(kind, _)| *kind == index)?;
    let (_, data) = boxes(item).into_iter().find(|(kind, _)| kind == b"data")?;
    // Type 1 is UTF-8; then 4 bytes of locale.
    let text = data.get(8..)?;
    (data.get(..4)? == [0, 0, 0, 1]).then(|| String::from_utf8_lossy(text).into_owned())
}

/// The boxes in `body`, each as its type and contents; stops at the first
/// that does not fit.
fn boxes(mut body: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while body.len() >= 8 {
        let size = u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
        let kind: [u8; 4] = body[4..8].try_into().expect("4 bytes");
        let Some(contents) = body.get(8..size.max(8)).filter(|_| size >= 8) else {
            break;
        };
        out.push((kind, contents));
        body = &body[size..];
    }
    out
}

/// Tag `0x0011` of an Apple MakerNote: `Apple iOS\0`, a 2-byte version,
/// the byte order (`MM` or `II`), then an IFD whose offsets count from the
/// note's start.
fn apple_maker_note_id(note: &[u8]) -> Option<String> {
    const IFD: usize = 14;
    let big = match note.strip_prefix(b"Apple iOS\0")?.get(2..4)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let b: [u8; 2] = note.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = note.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        } as usize)
    };
    const ASCII: u16 = 2;
    for i in 0..usize::from(u16_at(IFD)?) {
        let entry = IFD + 2 + 12 * i;
        if u16_at(entry)? != MAKER_NOTE_TAG {
            continue;
        }
        if u16_at(entry + 2)? != ASCII {
            return None;
        }
        let len = u32_at(entry + 4)?;
        let text = if len <= 4 {
            note.get(entry + 8..entry + 8 + len)?
        } else {
            let at = u32_at(entry + 8)?;
            note.get(at..at.checked_add(len)?)?
        };
        return plausible(String::from_utf8_lossy(text).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Apple MakerNote holding `entries` (tag, type, text), as an
    /// iPhone writes it: big-endian, offsets from the note's start.
    fn note(entries: &[(u16, u16, &[u8])]) -> Vec<u8> {
        let mut out = b"Apple iOS\0\0\x01MM".to_vec();
        let n = entries.len();
        out.extend((n as u16).to_be_bytes());
        let mut data_at = 14 + 2 + 12 * n + 4;
        let mut data = Vec::new();
        for (tag, kind, text) in entries {
            out.extend(tag.to_be_bytes());
            out.extend(kind.to_be_bytes());
            out.extend((text.len() as u32).to_be_bytes());
            if text.len() <= 4 {
                let mut inline = text.to_vec();
                inline.resize(4, 0);
                out.extend(inline);
            } else {
                out.extend((data_at as u32).to_be_bytes());
                data.extend_from_slice(text);
                data_at += text.len();
            }
        }
        out.extend(0u32.to_be_bytes());
        out.extend(data);
        out
    }

    fn boxed(kind: &[u8; 4], contents: &[u8]) -> Vec<u8> {
        let mut out = ((contents.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend(kind);
        out.extend(contents);
        out
    }

    /// A `meta` box's body as ffmpeg writes it under `udta`: `hdlr`, then
    /// `keys` with `names`, then `ilst` with one UTF-8 value per name.
    fn meta(names: &[&str], values: &[&str]) -> Vec<u8> {
        let mut keys = vec![0, 0, 0, 0];
        keys.extend((names.len() as u32).to_be_bytes());
        for n in names {
            keys.extend(((n.len() + 8) as u32).to_be_bytes());
            keys.extend(b"mdta");
            keys.extend(n.as_bytes());
        }
        let mut ilst = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let mut data = vec![0, 0, 0, 1, 0, 0, 0, 0];
            data.extend(v.as_bytes());
            ilst.extend(boxed(&(i as u32 + 1).to_be_bytes(), &boxed(b"data", &data)));
        }
        let mut out = vec![0, 0, 0, 0];
        out.extend(boxed(b"hdlr", &[0; 25]));
        out.extend(boxed(b"keys", &keys));
        out.extend(boxed(b"ilst", &ilst));
        out
    }

    #[test]
    fn the_motion_half_s_identifier_is_read_from_quicktime_keys_under_udta() {
        let m = meta(
            &["creation_time", QUICKTIME_KEY, "encoder"],
            &["2021-04-02T12:00:00Z", "DA1A7EE8-0925", "Lavf59"],
        );
        assert_eq!(
            quicktime_key(&m, QUICKTIME_KEY).as_deref(),
            Some("DA1A7EE8-0925")
        );
        assert_eq!(
            quicktime_key(&meta(&["encoder"], &["Lavf59"]), QUICKTIME_KEY),
            None
        );
        for cut in 0..m.len() - 1 {
            let got = quicktime_key(&m[..cut], QUICKTIME_KEY);
            assert!(
                got.is_none() || got.as_deref() == Some("DA1A7EE8-0925"),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_still_s_identifier_is_read_from_apple_s_maker_note() {
        let id = b"da1a7ee8-0925-4c9f-9266-dda3f0bb80f0\0";
        let n = note(&[(0x000a, 9, b"\0\0\0\x03"), (0x0011, 2, id)]);
        assert_eq!(
            apple_maker_note_id(&n).as_deref(),
            Some("DA1A7EE8-0925-4C9F-9266-DDA3F0BB80F0")
        );
    }

    #[test]
    fn notes_without_it_or_from_other_makers_or_cut_short_give_none() {
        assert_eq!(
            apple_maker_note_id(&note(&[(0x000a, 9, b"\0\0\0\x03")])),
            None
        );
        assert_eq!(apple_maker_note_id(b"Nikon\0\x02\x10\0\0MM\0*"), None);
        let full = note(&[(0x0011, 2, b"DA1A7EE8-0925-4C9F-9266-DDA3F0BB80F0\0")]);
        for cut in 0..full.len() - 1 {
            assert_eq!(apple_maker_note_id(&full[..cut]), None, "cut at {cut}");
        }
        // A huge length, and an offset past the end.
        for field in [20..24, 24..28] {
            let mut bad = note(&[(0x0011, 2, b"ABCDEFGH")]);
            bad[field].copy_from_slice(&u32::MAX.to_be_bytes());
            assert_eq!(apple_maker_note_id(&bad), None);
        }
        assert_eq!(
            apple_maker_note_id(&note(&[(0x0011, 2, b"\0\0\0\0\0")])),
            None
        );
    }
}
