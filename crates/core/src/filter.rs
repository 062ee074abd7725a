//! Which directory entries a watch takes: hidden files, OS junk and partial
//! downloads are always ignored; by default only photos and videos are taken,
//! known by their extension (every type Immich accepts, and more RAW), or by
//! their content where the extension is missing or unknown.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;

/// Why an entry is left out without being an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Hidden,
    Junk,
    Partial,
    NotMedia,
    /// A link to a file inside the watch, which is backed up by its own name.
    LinkInside,
    /// A sidecar, for a destination that keeps photos and videos only.
    SidecarNotKept,
}

/// What a watch takes, beyond what is never taken (junk, hidden and
/// partial files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Photos and videos only, for a destination that keeps nothing else
    /// (Immich, where an XMP sidecar goes with its photo's upload).
    Media,
    /// Photos, videos and their sidecars: the default.
    MediaAndSidecars,
    /// Every regular file (`--all-files`).
    Everything,
}

impl Ignored {
    /// Why, for the user: what the file is and, where there is one, how to
    /// have it backed up after all.
    pub fn reason(self) -> &'static str {
        match self {
            Ignored::Hidden => "hidden (its name starts with a dot)",
            Ignored::Junk => "a file or folder the system keeps for itself, not a photo",
            Ignored::Partial => "an unfinished download or temporary file",
            Ignored::NotMedia => {
                "not a photo or video; add the folder with --all-files to back up every file"
            }
            Ignored::LinkInside => {
                "a link to a file inside the watched folder, which is backed up by its own name"
            }
            Ignored::SidecarNotKept => {
                "a sidecar: Immich keeps photos and videos only, so an XMP sidecar goes with its \
                 photo's upload and other sidecars stay here"
            }
        }
    }
}

/// What a file's name says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Take,
    Ignore(Ignored),
    /// No extension, or one that says nothing: its first bytes decide
    /// ([`media_by_content`]).
    ByContent,
}

const JUNK: &[&str] = &["thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"];
const PARTIAL_EXT: &[&str] = &["part", "crdownload", "tmp", "partial", "download", "!ut"];

/// Photo formats: every image type Immich's server accepts (PSD and SVG
/// included), HEIF/AVIF/WebP/JPEG XL and camera RAW.
const PHOTO_EXT: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "heif",
    "hif", "avif", "jxl", "jp2", "psd", "svg", "insp", // RAW
    "dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "orf", "ori", "rw2", "raf",
    "pef", "ptx", "srw", "x3f", "3fr", "fff", "iiq", "mos", "mef", "mrw", "rwl", "erf", "dcr",
    "kdc", "k25", "ari", "cap", "cin", "raw",
];
const VIDEO_EXT: &[&str] = &[
    "mp4", "m4v", "mov", "qt", "avi", "mkv", "webm", "mts", "m2ts", "ts", "3gp", "3gpp", "3g2",
    "wmv", "mpg", "mpeg", "mpe", "flv", "hevc", "insv", "vob", "ogv",
];
/// Extensions that say a file is something else: not worth reading to
/// find out (a folder of documents is rescanned without opening them).
const OTHER_EXT: &[&str] = &[
    "txt", "md", "pdf", "doc", "docx", "odt", "rtf", "xls", "xlsx", "ods", "csv", "ppt", "pptx",
    "odp", "json", "xml", "html", "htm", "css", "js", "log", "ini", "cfg", "conf", "db", "sqlite",
    "xmp", "aae", "thm", "lrv", "zip", "7z", "rar", "gz", "tar", "bz2", "xz", "exe", "dll", "so",
    "dylib", "iso", "dmg", "mp3", "wav", "flac", "aac", "m4a", "ogg", "opus", "url", "lnk", "pp3",
    "dop", "xcf", "kra", "afphoto",
];

/// Sidecars, taken by default with their photo (or alone): darktable's,
/// Lightroom's and digiKam's XMP, and iOS edit instructions.
const SIDECAR_EXT: &[&str] = &["xmp", "aae"];

fn is_media_ext(ext: &str) -> bool {
    PHOTO_EXT.contains(&ext) || VIDEO_EXT.contains(&ext)
}

/// Google Takeout's metadata beside a photo: `IMG_1.jpg.json`,
/// `IMG_1.jpg.supplemental-metadata.json` (cut short on long names, as
/// `IMG_1.jpg.supplemental-metad.json`), and the `IMG_1.jpg(1).json` form.
fn is_takeout_sidecar(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower.strip_suffix(".json") else {
        return false;
    };
    let media = |r: &str| {
        extension_lower(r).is_some_and(|e| {
            let e = e.trim_end_matches(|c: char| c.is_ascii_digit() || c == '(' || c == ')');
            is_media_ext(e)
        })
    };
    if media(rest) {
        return true;
    }
    match rest.rsplit_once('.') {
        Some((photo, cut)) => {
            cut.len() >= 4 && "supplemental-metadata".starts_with(cut) && media(photo)
        }
        None => false,
    }
}

/// What a file is by its name, best dating member first (see
/// `crate::capture`): a photo, a video, anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MediaKind {
    Photo,
    Video,
    Other,
}

pub(crate) fn media_kind(name: &str) -> MediaKind {
    match extension_lower(name).as_deref() {
        Some(e) if PHOTO_EXT.contains(&e) => MediaKind::Photo,
        Some(e) if VIDEO_EXT.contains(&e) => MediaKind::Video,
        _ => MediaKind::Other,
    }
}

/// How many first bytes decide a file's type by content.
pub const SNIFF_BYTES: usize = 8192;

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

/// Decides for a regular file, by its name alone: `Some` when it is
/// certainly not backed up (one whose type its content decides may be).
pub fn ignore_file(name: &OsStr, takes: Takes) -> Option<Ignored> {
    match judge_file(name, takes) {
        Verdict::Ignore(why) => Some(why),
        Verdict::Take | Verdict::ByContent => None,
    }
}

/// Decides for a regular file by its name.
pub fn judge_file(name: &OsStr, takes: Takes) -> Verdict {
    match judge_name(name) {
        Some(why) => Verdict::Ignore(why),
        None if takes == Takes::Everything => Verdict::Take,
        None => {
            let name = name.to_string_lossy();
            let sidecar = match takes {
                Takes::Media => Verdict::Ignore(Ignored::SidecarNotKept),
                _ => Verdict::Take,
            };
            match extension_lower(&name).as_deref() {
                Some(e) if is_media_ext(e) => Verdict::Take,
                Some(e) if SIDECAR_EXT.contains(&e) => sidecar,
                Some("json") if is_takeout_sidecar(&name) => sidecar,
                Some(e) if OTHER_EXT.contains(&e) => Verdict::Ignore(Ignored::NotMedia),
                _ => Verdict::ByContent,
            }
        }
    }
}

/// True when a file's first bytes are those of a photo or video (a
/// scanner's JPEG without extension, a photo renamed `.bin`).
pub fn media_by_content(head: &[u8]) -> bool {
    infer::is_image(head) || infer::is_video(head)
}

/// Reads the first bytes of `path` and decides by them. A file that cannot
/// be read is taken: its upload then says why it cannot be backed up,
/// rather than it vanishing without a word.
pub fn media_file(path: &Path) -> bool {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    match std::fs::File::open(path).and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
    {
        Ok(_) => media_by_content(&head),
        Err(_) => true,
    }
}

/// The name rules: junk, hidden and partial files, whatever a watch takes.
fn judge_name(name: &OsStr) -> Option<Ignored> {
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
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Option<Ignored> {
        ignore_file(OsStr::new(name), Takes::MediaAndSidecars)
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
            assert_eq!(
                ignore_file(OsStr::new(n), Takes::Everything),
                Some(why),
                "{n}"
            );
        }
    }

    #[test]
    fn non_media_needs_all_files() {
        assert_eq!(file("notes.txt"), Some(Ignored::NotMedia));
        assert_eq!(
            judge_file(OsStr::new("README"), Takes::MediaAndSidecars),
            Verdict::ByContent,
            "no extension: the content decides"
        );
        assert_eq!(
            judge_file(OsStr::new("scan.0001"), Takes::MediaAndSidecars),
            Verdict::ByContent
        );
        assert_eq!(
            judge_file(OsStr::new("cover.PSD"), Takes::MediaAndSidecars),
            Verdict::Take
        );
        assert_eq!(
            judge_file(OsStr::new("logo.svg"), Takes::MediaAndSidecars),
            Verdict::Take
        );
        for sidecar in [
            "IMG_1.CR2.xmp",
            "IMG_1.xmp",
            "IMG_1.AAE",
            "IMG_1.jpg.json",
            "IMG_1.HEIC.supplemental-metadata.json",
            "IMG_1.jpg.supplemental-metad.json",
            "IMG_1.jpg(1).json",
        ] {
            assert_eq!(
                judge_file(OsStr::new(sidecar), Takes::MediaAndSidecars),
                Verdict::Take,
                "{sidecar}"
            );
        }
        for other in [
            "metadata.json",
            "print-subscriptions.json",
            "IMG_1.jpg.txt.json",
        ] {
            assert_eq!(
                judge_file(OsStr::new(other), Takes::MediaAndSidecars),
                Verdict::Ignore(Ignored::NotMedia),
                "{other}"
            );
        }
        assert_eq!(
            judge_file(OsStr::new("edit.xcf"), Takes::MediaAndSidecars),
            Verdict::Ignore(Ignored::NotMedia)
        );
    }

    #[test]
    fn media_only_takes_photos_and_videos_and_says_why_it_leaves_sidecars() {
        let immich = Takes::Media;
        for taken in ["a.HEIC", "b.mov", "c.CR3", "README"] {
            assert_ne!(
                ignore_file(OsStr::new(taken), immich),
                Some(Ignored::SidecarNotKept),
                "{taken}"
            );
        }
        for sidecar in ["IMG_1.xmp", "IMG_1.AAE", "IMG_1.jpg.json"] {
            assert_eq!(
                ignore_file(OsStr::new(sidecar), immich),
                Some(Ignored::SidecarNotKept),
                "{sidecar}"
            );
        }
        assert!(Ignored::SidecarNotKept.reason().contains("Immich"));
        assert_eq!(
            file(".jpg"),
            Some(Ignored::Hidden),
            "a bare extension is a hidden file"
        );
        assert_eq!(
            ignore_file(OsStr::new("notes.txt"), Takes::Everything),
            None
        );
    }

    #[test]
    fn content_decides_for_files_whose_name_says_nothing() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
        ];
        assert!(media_by_content(&jpeg));
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypmp42\0\0\0\0mp42isom");
        assert!(media_by_content(&mp4));
        assert!(!media_by_content(b"just some notes\n"));
        assert!(!media_by_content(b""));
    }

    #[test]
    fn hidden_and_system_dirs_are_not_descended() {
        assert_eq!(ignore_dir(OsStr::new(".git")), Some(Ignored::Hidden));
        assert_eq!(ignore_dir(OsStr::new("@eaDir")), Some(Ignored::Junk));
        assert_eq!(ignore_dir(OsStr::new("2024 Holidays")), None);
    }
}
