//! Album and entry names: how a folder maps to albums (`single`,
//! `per-folder` or `by-date`), how names are made safe for every destination, and how a
//! name collision is resolved (`name (2).ext`).

use std::ffi::OsStr;
use std::fmt;
use std::str::FromStr;

/// How a watched folder maps to albums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlbumMode {
    /// Every file under the folder, at any depth, goes into one album.
    Single,
    /// Each folder that directly holds files is its own album.
    PerFolder,
    /// One album per capture month (or what the watch's [`DateFormat`]
    /// says), from each item's capture date (`crate::capture`).
    ByDate,
}

impl AlbumMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbumMode::Single => "single",
            AlbumMode::PerFolder => "per-folder",
            AlbumMode::ByDate => "by-date",
        }
    }
}

impl fmt::Display for AlbumMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlbumMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "single" => Ok(AlbumMode::Single),
            "per-folder" => Ok(AlbumMode::PerFolder),
            "by-date" => Ok(AlbumMode::ByDate),
            other => Err(format!(
                "unknown album mode {other:?}: use single, per-folder or by-date"
            )),
        }
    }
}

/// How `per-folder` names a folder's album.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlbumNames {
    /// After the folder (`100CANON`'s photos go to the card's album: the
    /// folders cameras make are passed over).
    #[default]
    Leaf,
    /// After the folder's path below the watched folder (`card-2024-06 ›
    /// 100CANON`), without `DCIM` and the folders of a video card's tree.
    Path,
}

impl AlbumNames {
    pub fn as_str(self) -> &'static str {
        match self {
            AlbumNames::Leaf => "leaf",
            AlbumNames::Path => "path",
        }
    }
}

impl fmt::Display for AlbumNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlbumNames {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "leaf" => Ok(AlbumNames::Leaf),
            "path" => Ok(AlbumNames::Path),
            other => Err(format!("unknown album naming {other:?}: use leaf or path")),
        }
    }
}

/// How `by-date` names an album after a capture date: a strftime pattern
/// (chrono's fields: `%Y` year, `%m` month, `%d` day, `%B` month name …),
/// `%Y-%m` by default. The name is made safe like any album name, so a `/`
/// becomes `_`: albums are never nested.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DateFormat(String);

impl Default for DateFormat {
    fn default() -> Self {
        DateFormat("%Y-%m".into())
    }
}

impl DateFormat {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The album of a capture date.
    pub fn album(&self, at: &chrono::NaiveDateTime) -> String {
        sanitize_album(&at.format(&self.0).to_string())
    }
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DateFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use chrono::format::{Item, StrftimeItems};
        let items = StrftimeItems::new(s).parse().map_err(|_| {
            format!(
                "the date format {s:?} is not a valid pattern: use strftime fields such as \
                 %Y (year), %m (month), %d (day) or %B (month name), for example %Y-%m"
            )
        })?;
        if !items
            .iter()
            .any(|i| matches!(i, Item::Numeric(..) | Item::Fixed(..)))
        {
            return Err(format!(
                "the date format {s:?} has no date field, so every photo would go to one \
                 album: use strftime fields such as %Y (year) and %m (month), for example %Y-%m"
            ));
        }
        Ok(DateFormat(s.to_string()))
    }
}

/// The folders of a memory card's layout (DCF's `DCIM`, and AVCHD's and
/// XAVC's video trees), which say nothing about what is in them.
const CARD_LAYOUT: &[&str] = &[
    "dcim", "private", "avchd", "bdmv", "stream", "clipinf", "playlist", "backup", "auxdata",
    "m4root", "clip", "sub", "thmbnl", "general", "misc",
];

/// A DCF camera folder: three digits and five letters, digits or
/// underscores (`100CANON`, `101APPLE`, `100_PANA`, `100MSDCF`).
fn is_dcf_folder(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 8
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn is_card_layout(name: &str) -> bool {
    CARD_LAYOUT.contains(&name.to_ascii_lowercase().as_str())
}

/// The separator of the folders in a `path` album name.
pub const PATH_SEPARATOR: &str = " › ";

/// The album of a file in the folder `folders` (the names from the
/// watched folder down, empty for the watched folder itself) of a
/// `per-folder` watch whose own album is `root_album`.
pub(crate) fn folder_album(folders: &[String], names: AlbumNames, root_album: &str) -> String {
    let kept: Vec<&str> = folders
        .iter()
        .map(String::as_str)
        .filter(|f| !is_card_layout(f))
        .collect();
    let name = match names {
        AlbumNames::Leaf => kept
            .iter()
            .rev()
            .find(|f| !is_dcf_folder(f))
            .map(|f| f.to_string()),
        AlbumNames::Path => (!kept.is_empty()).then(|| kept.join(PATH_SEPARATOR)),
    };
    match name {
        Some(n) => sanitize_album(&n),
        None => root_album.to_string(),
    }
}

const MAX_NAME_BYTES: usize = 200;

const RESERVED_WINDOWS: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn truncate_on_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Makes an album name that is one safe path component on every destination
/// (local on any OS, S3, WebDAV): no separators, no control or
/// Windows-invalid characters, no leading dots (so never `..` nor hidden), no
/// trailing dots or spaces, no reserved Windows device names, bounded length.
pub fn sanitize_album(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    s = s
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_string();
    let stem = s.split('.').next().unwrap_or("").trim_end();
    if RESERVED_WINDOWS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        s.insert(0, '_');
    }
    truncate_on_char(&mut s, MAX_NAME_BYTES);
    if s.chars().all(|c| c == '_' || c == ' ') && s.len() <= 2 {
        // Nothing meaningful survived ("..", "/", "").
        s = format!("Album{s}").trim_end().to_string();
    }
    s
}

/// The look-alike a character takes in a file name where some destination
/// (exFAT and FAT drives, NTFS, SMB shares, Windows and macOS disks) would
/// refuse it: the full-width form, as rclone and OneDrive map them, so the
/// name still reads the same.
fn portable_char(c: char) -> char {
    match c {
        ':' => '\u{FF1A}',
        '*' => '\u{FF0A}',
        '?' => '\u{FF1F}',
        '"' => '\u{FF02}',
        '<' => '\u{FF1C}',
        '>' => '\u{FF1E}',
        '|' => '\u{FF5C}',
        c => c,
    }
}

/// Makes a file name safe to store as one path component on any
/// destination, keeping it as close to the original as possible: lossy UTF-8
/// (the store keeps the original bytes), separators and control characters
/// replaced, characters that FAT, exFAT, NTFS or SMB refuse replaced by
/// their full-width look-alikes, and a trailing dot or space (which Windows
/// and exFAT drop) replaced likewise, so that the backup stays valid when
/// copied to any disk.
pub fn sanitize_file_name(raw: &OsStr) -> String {
    let mut s: String = raw
        .to_string_lossy()
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => portable_char(c),
        })
        .collect();
    if s.len() > 2 || !s.chars().all(|c| c == '.') {
        match s.pop() {
            Some('.') => s.push('\u{FF0E}'),
            Some(' ') => s.push('\u{2420}'),
            Some(c) => s.push(c),
            None => {}
        }
    }
    if s == "." || s == ".." || s.is_empty() {
        s = format!("_{s}");
    }
    if s.len() > 255 {
        // Keep the extension so the file still opens as what it is.
        let ext = s
            .rsplit_once('.')
            .map(|(_, e)| e.to_string())
            .filter(|e| e.len() <= 16);
        let keep = 255 - ext.as_ref().map_or(0, |e| e.len() + 1);
        truncate_on_char(&mut s, keep);
        if let Some(e) = ext {
            s.push('.');
            s.push_str(&e);
        }
    }
    s
}

/// The key under which a destination sees `album/name`: names are compared
/// the way the strictest destination compares them, case-insensitively and
/// after Unicode normalisation (exFAT, FAT, NTFS, SMB and macOS disks treat
/// `IMG_0001.JPG` and `img_0001.jpg`, or an NFC and an NFD `é`, as one
/// file). Two entries with the same key never coexist in an album, so a
/// backup stays whole when it is copied to any disk.
pub fn name_key(album: &str, name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let fold = |s: &str| s.nfc().collect::<String>().to_lowercase();
    format!("{}/{}", fold(album), fold(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn album_names_cannot_escape_the_destination() {
        for (raw, want) in [
            ("..", "Album"),
            ("../../etc", "_.._etc"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("/", "Album_"),
            ("", "Album"),
            (".hidden", "hidden"),
            ("tab\there", "tab_here"),
            ("nul\0byte", "nul_byte"),
            ("CON", "_CON"),
            ("com1.txt", "_com1.txt"),
            ("Trip. ", "Trip"),
            ("Holidays 2024", "Holidays 2024"),
            ("Été à Paris 🌞", "Été à Paris 🌞"),
        ] {
            let got = sanitize_album(raw);
            assert_eq!(got, want, "sanitize_album({raw:?})");
            assert!(
                !got.contains(['/', '\\', '\0']) && !got.starts_with('.'),
                "{got:?} must be one safe component"
            );
        }
    }

    #[test]
    fn long_album_names_are_cut_on_a_char_boundary() {
        let s = sanitize_album(&"é".repeat(300));
        assert!(s.len() <= MAX_NAME_BYTES && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn file_names_lose_only_what_no_destination_can_hold() {
        assert_eq!(sanitize_file_name(OsStr::new("IMG 1.jpg")), "IMG 1.jpg");
        assert_eq!(sanitize_file_name(OsStr::new("a\nb.jpg")), "a_b.jpg");
        assert_eq!(sanitize_file_name(OsStr::new("a\\b.jpg")), "a_b.jpg");
        let long = format!("{}.jpg", "x".repeat(300));
        let s = sanitize_file_name(OsStr::new(&long));
        assert!(s.len() <= 255 && s.ends_with(".jpg"));
    }

    #[test]
    fn names_a_fat_or_windows_disk_refuses_get_look_alikes() {
        for (raw, want) in [
            ("12:30 lunch.jpg", "12\u{FF1A}30 lunch.jpg"),
            ("what?.jpg", "what\u{FF1F}.jpg"),
            (
                "a*b|c<d>\"e\".jpg",
                "a\u{FF0A}b\u{FF5C}c\u{FF1C}d\u{FF1E}\u{FF02}e\u{FF02}.jpg",
            ),
            ("ends with dot.", "ends with dot\u{FF0E}"),
            ("ends with space ", "ends with space\u{2420}"),
            ("..", "_.."),
        ] {
            assert_eq!(sanitize_file_name(OsStr::new(raw)), want, "{raw:?}");
        }
    }

    #[test]
    fn names_that_differ_only_in_case_or_normalisation_share_a_key() {
        assert_eq!(
            name_key("Trip", "IMG_0001.JPG"),
            name_key("trip", "img_0001.jpg")
        );
        assert_eq!(
            name_key("Été", "caf\u{e9}.jpg"),
            name_key("E\u{301}te\u{301}", "cafe\u{301}.jpg"),
            "NFC and NFD spellings are one name"
        );
        assert_ne!(
            name_key("Trip", "IMG_0001.jpg"),
            name_key("Trip", "IMG_0002.jpg")
        );
    }
}

/// An album the current tree of a folder would produce, and how many files
/// it would take now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlbumPreview {
    pub album: String,
    pub files: u64,
}

/// Previews the albums a watch of `root` in `mode` (with `names`, or
/// `date_format` for `by-date`) would produce, looking at no more than
/// `max_entries` directory entries (a preview, not a scan). A `by-date`
/// preview dates each file alone, as if it had no companions.
pub fn preview(
    root: &std::path::Path,
    (mode, names, date_format): (AlbumMode, AlbumNames, &DateFormat),
    album: &str,
    takes: crate::filter::Takes,
    max_entries: usize,
) -> Vec<AlbumPreview> {
    use crate::filter::{Verdict, ignore_dir, judge_file, media_file};
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !e.file_type().is_dir() || ignore_dir(e.file_name()).is_none()
        })
        .take(max_entries);
    for e in walker.flatten() {
        let taken = e.file_type().is_file()
            && match judge_file(e.file_name(), takes) {
                Verdict::Take => true,
                Verdict::Ignore(_) => false,
                Verdict::ByContent => media_file(e.path()),
            };
        if !taken {
            continue;
        }
        let name = match mode {
            AlbumMode::Single => album.to_string(),
            AlbumMode::PerFolder => {
                let folders: Vec<String> = e
                    .path()
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(|rel| {
                        rel.components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                folder_album(&folders, names, album)
            }
            AlbumMode::ByDate => match crate::capture::capture_date(e.path(), None) {
                Some(c) => date_format.album(&c.at),
                None => continue,
            },
        };
        *counts.entry(name).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(album, files)| AlbumPreview { album, files })
        .collect()
}

#[cfg(test)]
mod preview_tests {
    use super::*;

    #[test]
    fn preview_lists_the_albums_each_mode_would_make() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            "a.jpg",
            "Trip/b.jpg",
            "Trip/c.mov",
            "x/Trip/d.jpg",
            "Empty/notes.txt",
            ".hidden/e.jpg",
        ] {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let per = preview(
            root,
            (
                AlbumMode::PerFolder,
                AlbumNames::Leaf,
                &DateFormat::default(),
            ),
            "Root",
            crate::filter::Takes::MediaAndSidecars,
            1000,
        );
        assert_eq!(
            per,
            vec![
                AlbumPreview {
                    album: "Root".into(),
                    files: 1
                },
                AlbumPreview {
                    album: "Trip".into(),
                    files: 3
                },
            ]
        );
        let single = preview(
            root,
            (AlbumMode::Single, AlbumNames::Leaf, &DateFormat::default()),
            "Root",
            crate::filter::Takes::MediaAndSidecars,
            1000,
        );
        assert_eq!(
            single,
            vec![AlbumPreview {
                album: "Root".into(),
                files: 4
            }]
        );
        std::fs::write(root.join("IMG_20230704_101010.jpg"), b"x").unwrap();
        let by_year = preview(
            root,
            (AlbumMode::ByDate, AlbumNames::Leaf, &"%Y".parse().unwrap()),
            "Root",
            crate::filter::Takes::MediaAndSidecars,
            1000,
        );
        assert!(
            by_year.contains(&AlbumPreview {
                album: "2023".into(),
                files: 1
            }),
            "the date in a name decides when nothing else does: {by_year:?}"
        );
        assert_eq!(by_year.iter().map(|p| p.files).sum::<u64>(), 5);
    }

    #[test]
    fn date_formats_name_albums_and_bad_ones_are_refused() {
        let at = chrono::NaiveDate::from_ymd_opt(2024, 6, 15)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(DateFormat::default().album(&at), "2024-06");
        let f: DateFormat = "%Y/%m %B".parse().unwrap();
        assert_eq!(f.album(&at), "2024_06 June", "albums are never nested");
        let e = "%Q".parse::<DateFormat>().unwrap_err();
        assert!(e.contains("not a valid pattern"), "{e}");
        let e = "Photos".parse::<DateFormat>().unwrap_err();
        assert!(e.contains("no date field"), "{e}");
        assert_eq!("by-date".parse::<AlbumMode>(), Ok(AlbumMode::ByDate));
    }

    #[test]
    fn a_card_s_folders_are_passed_over_when_albums_are_named() {
        let album = |path: &str, names| {
            let folders: Vec<String> = path
                .split('/')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect();
            folder_album(&folders, names, "Cards")
        };
        use AlbumNames::{Leaf, Path};
        for (path, leaf, full) in [
            ("", "Cards", "Cards"),
            ("Trip", "Trip", "Trip"),
            (
                "card-2024-06/DCIM/100CANON",
                "card-2024-06",
                "card-2024-06 › 100CANON",
            ),
            (
                "card-2024-06/DCIM/101CANON",
                "card-2024-06",
                "card-2024-06 › 101CANON",
            ),
            ("DCIM/100APPLE", "Cards", "100APPLE"),
            ("sony/PRIVATE/AVCHD/BDMV/STREAM", "sony", "sony"),
            ("sony/PRIVATE/M4ROOT/CLIP", "sony", "sony"),
            ("2024/Summer", "Summer", "2024 › Summer"),
        ] {
            assert_eq!(album(path, Leaf), leaf, "leaf {path}");
            assert_eq!(album(path, Path), full, "path {path}");
        }
        assert_eq!("path".parse::<AlbumNames>(), Ok(Path));
        assert!(
            "tree"
                .parse::<AlbumNames>()
                .unwrap_err()
                .contains("leaf or path")
        );
    }
}
