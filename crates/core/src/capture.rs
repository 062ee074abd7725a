//! Capture dates: when a photo or video was taken, as the local wall-clock
//! time a user reads on it. An item (`crate::item`) has one date, read from
//! its dating member (its still photo, else its video, else the file
//! itself), so that a Live Photo's halves, a RAW and its JPEG and their
//! sidecars land in one `by-date` album. The sources, best first:
//!
//! 1. the file's own metadata: EXIF `DateTimeOriginal` (else `CreateDate`)
//!    in JPEG, HEIF, TIFF and the RAW formats built on them; QuickTime's
//!    `com.apple.quicktime.creationdate` (the wall time where it was shot),
//!    else the movie header's creation time (UTC, shown in local time);
//! 2. Google Takeout's JSON beside the photo (`photoTakenTime`);
//! 3. a date in the file's name, as phones and apps write it
//!    (`IMG_20240101_120000`, `PXL_20240101_120000123`,
//!    `IMG-20240101-WA0001`, `Screenshot_2024-01-01-12-00-00`,
//!    `Screenshot 2024-01-01 at 12.00.00`);
//! 4. the file's modification time.
//!
//! See docs/ARCHITECTURE.md.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use nom_exif::{EntryValue, Exif, ExifIter, ExifTag, MediaParser, MediaSource, TrackInfo};

use crate::store::codes::stored_as_text;

/// Where a capture date was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateSource {
    /// EXIF or QuickTime metadata in the file.
    Metadata,
    /// Google Takeout's JSON beside the photo.
    Takeout,
    /// A date in the file's name.
    FileName,
    /// The file's modification time.
    Modified,
}

stored_as_text!(DateSource, "date source", {
    Metadata => "metadata",
    Takeout => "takeout",
    FileName => "file-name",
    Modified => "modified",
});

/// A capture date: local wall-clock time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured {
    pub at: NaiveDateTime,
    pub from: DateSource,
}

/// `{"at": "2024-06-15T12:00:00", "from": "metadata"}`.
impl serde::Serialize for Captured {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Captured", 2)?;
        st.serialize_field("at", &self.text())?;
        st.serialize_field("from", &self.from)?;
        st.end()
    }
}

/// Reads what `Serialize` wrote (a running engine's events, followed).
impl<'de> serde::Deserialize<'de> for Captured {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Written {
            at: String,
            from: DateSource,
        }
        let w = Written::deserialize(d)?;
        Captured::parse(&w.at, w.from)
            .ok_or_else(|| serde::de::Error::custom(format!("not a capture date: {}", w.at)))
    }
}

impl Captured {
    /// The date as the store and `status --json` keep it:
    /// `2024-06-15T12:00:00`.
    pub fn text(&self) -> String {
        self.at.format("%Y-%m-%dT%H:%M:%S").to_string()
    }

    pub fn parse(text: &str, from: DateSource) -> Option<Captured> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|at| Captured { at, from })
    }
}

/// The date of the item whose dating member is `dating`, with its Takeout
/// JSON if it has one. `None` only when `dating` cannot even be read for
/// its modification time.
pub(crate) fn capture_date(dating: &Path, takeout: Option<&Path>) -> Option<Captured> {
    let found = from_metadata(dating)
        .map(|at| (at, DateSource::Metadata))
        .or_else(|| {
            takeout
                .and_then(from_takeout)
                .map(|at| (at, DateSource::Takeout))
        })
        .or_else(|| {
            let name = dating.file_name()?.to_string_lossy();
            from_file_name(&name).map(|at| (at, DateSource::FileName))
        })
        .or_else(|| {
            let modified = std::fs::metadata(dating).ok()?.modified().ok()?;
            Some((
                DateTime::<Local>::from(modified).naive_local(),
                DateSource::Modified,
            ))
        })?;
    Some(Captured {
        at: found.0.with_nanosecond(0).unwrap_or(found.0),
        from: found.1,
    })
}

/// The date in a photo's EXIF or a video's QuickTime metadata.
fn from_metadata(path: &Path) -> Option<NaiveDateTime> {
    let file = File::open(path).ok()?;
    let source = MediaSource::file(file).ok()?;
    let mut parser = MediaParser::new();
    let at = if source.has_exif() {
        let exif: Exif = parser.parse::<_, _, ExifIter>(source).ok()?.into();
        [ExifTag::DateTimeOriginal, ExifTag::CreateDate]
            .into_iter()
            .find_map(|tag| exif.get(tag).and_then(wall_time))
    } else if source.has_track() {
        let track: TrackInfo = parser.parse(source).ok()?;
        match track.get(nom_exif::TrackInfoTag::CreateDate)? {
            // The movie header's time is UTC; Apple's own key carries the
            // offset of where it was shot.
            EntryValue::Time(t) if t.offset().local_minus_utc() == 0 => {
                Some(t.with_timezone(&Local).naive_local())
            }
            other => wall_time(other),
        }
    } else {
        None
    }?;
    plausible(at)
}

fn wall_time(value: &EntryValue) -> Option<NaiveDateTime> {
    value.as_time_components().map(|(at, _offset)| at)
}

/// Cameras with an unset clock write 0000:00:00 or 1970; QuickTime's zero
/// is 1904.
fn plausible(at: NaiveDateTime) -> Option<NaiveDateTime> {
    use chrono::Datelike;
    (1971..=2200).contains(&at.year()).then_some(at)
}

/// `photoTakenTime.timestamp` (seconds since 1970, as a string) from a
/// Takeout JSON.
fn from_takeout(path: &Path) -> Option<NaiveDateTime> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Takeout {
        photo_taken_time: Stamp,
    }
    #[derive(serde::Deserialize)]
    struct Stamp {
        timestamp: String,
    }
    // A Takeout JSON is small: a file of that name that is not is not read
    // whole.
    let file = File::open(path).ok()?.take(1 << 20);
    let json: Takeout = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    let secs: i64 = json.photo_taken_time.timestamp.trim().parse().ok()?;
    let utc = Utc.timestamp_opt(secs, 0).single()?;
    plausible(utc.with_timezone(&Local).naive_local())
}

/// The first date (and time, when one follows it) in a file name:
/// `YYYYMMDD` or `YYYY-MM-DD` (`_` and `.` also separate), not inside a
/// longer run of digits, then optionally a separator and `HHMMSS` or
/// `HH-MM-SS` / `HH.MM.SS`.
pub(crate) fn from_file_name(name: &str) -> Option<NaiveDateTime> {
    let b = name.as_bytes();
    (0..b.len())
        .filter(|&i| i == 0 || !b[i - 1].is_ascii_digit())
        .find_map(|i| date_at(&b[i..]))
}

fn date_at(b: &[u8]) -> Option<NaiveDateTime> {
    let (date, rest) = digits_with_separators(b, &[4, 2, 2])?;
    let date = NaiveDate::from_ymd_opt(date[0] as i32, date[1], date[2])?;
    // `_120000`, `-12-00-00`, `T12:00:00` … and macOS's ` at 12.00.00`.
    let after = rest
        .strip_prefix(b" at ")
        .or_else(|| match rest.split_first() {
            Some((sep, after)) if b"_- T.".contains(sep) => Some(after),
            _ => None,
        });
    let time = after
        .and_then(|a| digits_with_separators(a, &[2, 2, 2]))
        .and_then(|(t, _)| NaiveTime::from_hms_opt(t[0], t[1], t[2]));
    plausible(date.and_time(time.unwrap_or(NaiveTime::MIN)))
}

/// Reads groups of exactly `widths` digits, either all joined or all
/// separated by one of `-`, `_`, `.`; the group after the last must not
/// be a digit. Returns the numbers and what follows.
fn digits_with_separators<'a>(b: &'a [u8], widths: &[usize]) -> Option<(Vec<u32>, &'a [u8])> {
    let joined = group(b, widths, None);
    joined.or_else(|| {
        let sep = *b.get(widths[0])?;
        b"-_.".contains(&sep).then(|| group(b, widths, Some(sep)))?
    })
}

fn group<'a>(mut b: &'a [u8], widths: &[usize], sep: Option<u8>) -> Option<(Vec<u32>, &'a [u8])> {
    let mut out = Vec::with_capacity(widths.len());
    for (i, &w) in widths.iter().enumerate() {
        if i > 0
            && let Some(s) = sep
        {
            b = b.strip_prefix(&[s])?;
        }
        let digits = b.get(..w)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        out.push(std::str::from_utf8(digits).ok()?.parse().ok()?);
        b = &b[w..];
    }
    if b.first().is_some_and(u8::is_ascii_digit) && sep.is_some() {
        return None;
    }
    Some((out, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn dates_in_the_names_phones_and_apps_write() {
        for (name, want) in [
            ("IMG_20240101_120000.jpg", "2024-01-01 12:00:00"),
            ("VID_20230615_081502.mp4", "2023-06-15 08:15:02"),
            ("PXL_20240229_235959123.jpg", "2024-02-29 23:59:59"),
            ("IMG-20240101-WA0001.jpg", "2024-01-01 00:00:00"),
            ("Screenshot_2024-01-01-12-00-00.png", "2024-01-01 12:00:00"),
            (
                "Screenshot_20240101-120000_Chrome.png",
                "2024-01-01 12:00:00",
            ),
            (
                "Screenshot 2024-01-01 at 12.00.00.png",
                "2024-01-01 12:00:00",
            ),
            ("20240101_120000.jpg", "2024-01-01 12:00:00"),
            ("signal-2024-03-04-101112.jpg", "2024-03-04 10:11:12"),
            ("PHOTO-2024-05-06-07-08-09.jpg", "2024-05-06 07:08:09"),
        ] {
            assert_eq!(from_file_name(name), Some(at(want)), "{name}");
        }
    }

    #[test]
    fn names_without_a_real_date_have_none() {
        for name in [
            "IMG_1234.jpg",
            "DSC01234.ARW",
            "IMG_20241301_120000.jpg", // month 13
            "IMG_20230229_120000.jpg", // not a leap year
            "photo_120240101.jpg",     // inside a longer number
            "00000000.jpg",
            "2024-1-1.jpg",
        ] {
            assert_eq!(from_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn a_bad_time_keeps_the_date() {
        assert_eq!(
            from_file_name("IMG_20240101_256161.jpg"),
            Some(at("2024-01-01 00:00:00"))
        );
    }

    #[test]
    fn takeout_json_gives_the_time_the_photo_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("a.jpg.json");
        std::fs::write(
            &json,
            r#"{"title":"a.jpg","creationTime":{"timestamp":"1700000000"},
                "photoTakenTime":{"timestamp":"1560000000","formatted":"…"}}"#,
        )
        .unwrap();
        let want = Utc
            .timestamp_opt(1_560_000_000, 0)
            .unwrap()
            .with_timezone(&Local)
            .naive_local();
        assert_eq!(from_takeout(&json), Some(want));
        std::fs::write(&json, r#"{"title":"a.jpg"}"#).unwrap();
        assert_eq!(from_takeout(&json), None, "no photoTakenTime");
    }

    #[test]
    fn sources_are_tried_best_first() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("IMG_20200102_030405.jpg");
        std::fs::write(&photo, b"not really a jpeg").unwrap();
        let json = dir.path().join("IMG_20200102_030405.jpg.json");
        std::fs::write(&json, r#"{"photoTakenTime":{"timestamp":"1560000000"}}"#).unwrap();
        let c = capture_date(&photo, Some(&json)).unwrap();
        assert_eq!(c.from, DateSource::Takeout);
        let c = capture_date(&photo, None).unwrap();
        assert_eq!(
            (c.at, c.from),
            (at("2020-01-02 03:04:05"), DateSource::FileName)
        );
        let plain = dir.path().join("IMG_1.jpg");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(
            capture_date(&plain, None).unwrap().from,
            DateSource::Modified
        );
        assert_eq!(capture_date(&dir.path().join("gone.jpg"), None), None);
    }

    #[test]
    fn the_stored_text_reads_back() {
        let c = Captured {
            at: at("2024-06-15 12:00:00"),
            from: DateSource::Metadata,
        };
        assert_eq!(c.text(), "2024-06-15T12:00:00");
        assert_eq!(Captured::parse(&c.text(), c.from), Some(c));
    }
}
