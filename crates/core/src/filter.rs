//! Which directory entries a watch takes: hidden files, OS junk and partial
//! downloads are always ignored; by default only photos and videos are taken.

use std::ffi::OsStr;

/// Why an entry is left out without being an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Hidden,
    Junk,
    Partial,
    NotMedia,
}

const JUNK: &[&str] = &["thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"];
const PARTIAL_EXT: &[&str] = &["part", "crdownload", "tmp", "partial", "download", "!ut"];

/// Photo formats, including HEIF/AVIF/WebP/JPEG XL and camera RAW.
const PHOTO_EXT: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "heif",
    "hif", "avif", "jxl", "jp2", // RAW
    "dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "orf", "rw2", "raf", "pef",
    "ptx", "srw", "x3f", "3fr", "fff", "iiq", "mos", "mef", "mrw", "rwl", "erf", "dcr", "kdc",
    "raw",
];
const VIDEO_EXT: &[&str] = &[
    "mp4", "m4v", "mov", "qt", "avi", "mkv", "webm", "mts", "m2ts", "ts", "3gp", "3g2", "wmv",
    "mpg", "mpeg", "flv", "hevc", "insv", "vob", "ogv",
];

fn extension_lower(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Decides for a directory: `Some` when it is not descended into.
pub fn ignore_dir(name: &OsStr) -> Option<Ignored> {
    let name = name.to_string_lossy();
    if name.starts_with('.') {
        return Some(Ignored::Hidden);
    }
    let lower = name.to_ascii_lowercase();
    if lower == "$recycle.bin" || lower == "system volume information" || lower == "@eadir" {
        return Some(Ignored::Junk);
    }
    None
}

/// Decides for a regular file: `Some` when it is not backed up.
pub fn ignore_file(name: &OsStr, all_files: bool) -> Option<Ignored> {
    let name = name.to_string_lossy();
    if name.starts_with("._") || name.eq_ignore_ascii_case(".DS_Store") {
        return Some(Ignored::Junk);
    }
    if name.starts_with('.') {
        return Some(Ignored::Hidden);
    }
    let lower = name.to_ascii_lowercase();
    if JUNK.contains(&lower.as_str()) {
        return Some(Ignored::Junk);
    }
    if name.starts_with("~$") || name.ends_with('~') {
        return Some(Ignored::Partial);
    }
    let ext = extension_lower(&name);
    if ext.as_deref().is_some_and(|e| PARTIAL_EXT.contains(&e)) {
        return Some(Ignored::Partial);
    }
    if all_files {
        return None;
    }
    match ext.as_deref() {
        Some(e) if PHOTO_EXT.contains(&e) || VIDEO_EXT.contains(&e) => None,
        _ => Some(Ignored::NotMedia),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Option<Ignored> {
        ignore_file(OsStr::new(name), false)
    }

    #[test]
    fn photos_videos_and_raw_are_taken_in_any_case() {
        for n in [
            "a.jpg", "B.JPEG", "c.HEIC", "d.avif", "e.webp", "f.cr3", "g.NEF", "h.mov", "i.mp4",
        ] {
            assert_eq!(
                file(n),
                None,
                "{n} is a photo or video and must be backed up"
            );
        }
    }

    #[test]
    fn junk_hidden_and_partial_files_are_ignored_even_with_all_files() {
        let cases = [
            (".DS_Store", Ignored::Junk),
            ("._IMG_1.jpg", Ignored::Junk),
            ("Thumbs.db", Ignored::Junk),
            ("desktop.ini", Ignored::Junk),
            (".hidden.jpg", Ignored::Hidden),
            ("video.mp4.part", Ignored::Partial),
            ("x.jpg.crdownload", Ignored::Partial),
            ("a.tmp", Ignored::Partial),
            ("~$report.docx", Ignored::Partial),
        ];
        for (n, why) in cases {
            assert_eq!(ignore_file(OsStr::new(n), true), Some(why), "{n}");
        }
    }

    #[test]
    fn non_media_needs_all_files() {
        assert_eq!(file("notes.txt"), Some(Ignored::NotMedia));
        assert_eq!(file("README"), Some(Ignored::NotMedia));
        assert_eq!(
            file(".jpg"),
            Some(Ignored::Hidden),
            "a bare extension is a hidden file"
        );
        assert_eq!(ignore_file(OsStr::new("notes.txt"), true), None);
    }

    #[test]
    fn hidden_and_system_dirs_are_not_descended() {
        assert_eq!(ignore_dir(OsStr::new(".git")), Some(Ignored::Hidden));
        assert_eq!(ignore_dir(OsStr::new("@eaDir")), Some(Ignored::Junk));
        assert_eq!(ignore_dir(OsStr::new("2024 Holidays")), None);
    }
}
