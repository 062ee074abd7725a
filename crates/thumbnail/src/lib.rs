//! Thumbnails of backed-up photos and videos, for the app's Activity view.
//!
//! A thumbnail is a JPEG of at most [`SIZE`] pixels a side (a few
//! kilobytes), kept in `<data folder>/thumbnails/` under a key of the
//! source's path, size and modification time, as the freedesktop thumbnail
//! cache keys them: a file edited since gets a new one. Nothing is ever
//! written beside the source.
//!
//! JPEG, PNG and WebP are decoded here and turned upright by their EXIF
//! orientation. Anything else (HEIC, video poster frames, RAW) goes to the
//! system's own thumbnailer: the desktop's thumbnailers on Linux and the
//! BSDs (`desktop.rs`), Quick Look on macOS (`quicklook.rs`), the shell on
//! Windows (`shell.rs`).
//! What nothing can decode gets no picture, and that is remembered so that
//! it is not tried again; the view then shows a neutral icon of its kind.
//!
//! One thumbnail is made at a time (decoding a 24-megapixel photo takes
//! about 70 MB for a moment); cached ones are read without waiting.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};

#[cfg(unix)]
mod run;

/// The system's own thumbnailer for what is not decoded here: the desktop's
/// thumbnailers on Linux and the BSDs, Quick Look on macOS, the shell on
/// Windows.
#[cfg(all(unix, not(target_os = "macos")))]
#[path = "desktop.rs"]
mod system;
#[cfg(target_os = "macos")]
#[path = "quicklook.rs"]
mod system;
#[cfg(windows)]
#[path = "shell.rs"]
mod system;
#[cfg(not(any(unix, windows)))]
mod system {
    //! No system thumbnailer here: HEIC and videos get the neutral icon.
    use std::path::Path;

    pub(crate) fn make(
        _source: &Path,
        _mime: &str,
        _size: u32,
        _scratch: &Path,
    ) -> Option<image::DynamicImage> {
        None
    }
}

/// The longest side of a thumbnail, in pixels: sharp at 64 CSS pixels on a
/// 2× display.
pub const SIZE: u32 = 128;

/// Bumped when thumbnails are made differently, so old ones are not used.
const FORMAT: &[u8] = b"shoebox-thumbnail 1";

/// A thumbnail not shown for this long is removed when the cache opens.
const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a file is, as far as the view cares: which icon stands in for it,
/// and whether its picture is a video's poster frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Photo,
    Video,
    Other,
}

impl Kind {
    fn of(mime: Option<&str>) -> Kind {
        match mime {
            Some(m) if m.starts_with("image/") => Kind::Photo,
            Some(m) if m.starts_with("video/") => Kind::Video,
            _ => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Video => "video",
            Kind::Other => "other",
        }
    }
}

/// A file's thumbnail: its kind, and a JPEG when one could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub kind: Kind,
    pub jpeg: Option<Vec<u8>>,
}

/// The thumbnail cache of one data folder.
#[derive(Debug)]
pub struct Thumbnails {
    dir: PathBuf,
    making: Mutex<()>,
}

impl Thumbnails {
    /// Opens (and creates) `<data_dir>/thumbnails`, and removes thumbnails
    /// not shown for a month and scratch files a crash left.
    pub fn open(data_dir: &Path) -> io::Result<Thumbnails> {
        let dir = data_dir.join("thumbnails");
        fs::create_dir_all(&dir)?;
        prune(&dir);
        Ok(Thumbnails {
            dir,
            making: Mutex::new(()),
        })
    }

    /// The thumbnail of `source`, from the cache or made now. A file that
    /// cannot be read gets none (and is tried again next time: it may be
    /// back); one that cannot be decoded gets none for good.
    pub fn get(&self, source: &Path) -> Thumbnail {
        let Some((mime, key)) = identify(source) else {
            return Thumbnail {
                kind: Kind::Other,
                jpeg: None,
            };
        };
        let kind = Kind::of(mime);
        let (made, none) = (
            self.dir.join(format!("{key}.jpg")),
            self.dir.join(format!("{key}.none")),
        );
        if let Some(jpeg) = cached(&made, &none) {
            return Thumbnail { kind, jpeg };
        }
        let _one_at_a_time = self.making.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(jpeg) = cached(&made, &none) {
            return Thumbnail { kind, jpeg }; // made while this one waited
        }
        let jpeg = self.make(source, mime).and_then(|image| encode(&image));
        let kept = match &jpeg {
            Some(jpeg) => keep(&self.dir, &made, jpeg),
            None => keep(&self.dir, &none, b""),
        };
        if let Err(e) = kept {
            tracing::warn!("cannot keep a thumbnail in {}: {e}", self.dir.display());
        }
        Thumbnail { kind, jpeg }
    }

    fn make(&self, source: &Path, mime: Option<&str>) -> Option<DynamicImage> {
        let here = matches!(mime, Some("image/jpeg" | "image/png" | "image/webp"));
        if here {
            match decode(source) {
                Ok(image) => return Some(image),
                Err(e) => tracing::debug!("{}: {e}; asking the system", source.display()),
            }
        }
        // What no sniffing recognises, no thumbnailer takes either.
        let mime = mime?;
        let scratch = tempfile::tempdir_in(&self.dir)
            .inspect_err(|e| tracing::warn!("no scratch folder in {}: {e}", self.dir.display()))
            .ok()?;
        system::make(source, mime, SIZE, scratch.path()).map(|image| image.thumbnail(SIZE, SIZE))
    }
}

/// The file's type sniffed from its first bytes, and its cache key; `None`
/// when it cannot be read.
fn identify(source: &Path) -> Option<(Option<&'static str>, String)> {
    let meta = fs::metadata(source).ok().filter(|m| m.is_file())?;
    let mut head = Vec::with_capacity(8192);
    fs::File::open(source)
        .and_then(|f| f.take(8192).read_to_end(&mut head))
        .ok()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default();
    let mut key = blake3::Hasher::new();
    key.update(FORMAT);
    key.update(source.as_os_str().as_encoded_bytes());
    key.update(&meta.len().to_le_bytes());
    key.update(&modified.as_nanos().to_le_bytes());
    let mime = infer::get(&head).map(|t| t.mime_type());
    Some((mime, key.finalize().to_hex()[..32].to_string()))
}

/// What the cache holds for a key: a JPEG, or `Some(None)` when making
/// one failed before.
fn cached(made: &Path, none: &Path) -> Option<Option<Vec<u8>>> {
    if let Ok(jpeg) = fs::read(made) {
        mark_used(made);
        return Some(Some(jpeg));
    }
    none.exists().then(|| {
        mark_used(none);
        None
    })
}

/// Keeps a thumbnail in use from the monthly clean-up: its modification
/// time is moved on at most once a day.
fn mark_used(path: &Path) {
    let now = SystemTime::now();
    let stale = fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > Duration::from_secs(86_400));
    if stale && let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_modified(now);
    }
}

/// Decodes a JPEG, PNG or WebP to [`SIZE`], upright.
fn decode(source: &Path) -> image::ImageResult<DynamicImage> {
    let mut decoder = ImageReader::open(source)?
        .with_guessed_format()?
        .into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?.thumbnail(SIZE, SIZE);
    image.apply_orientation(orientation);
    Ok(image)
}

/// The thumbnail as a JPEG, with any transparency laid on white.
fn encode(image: &DynamicImage) -> Option<Vec<u8>> {
    let rgba = image.to_rgba8();
    let flat = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([over_white(r), over_white(g), over_white(b)])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&flat)
        .inspect_err(|e| tracing::warn!("cannot encode a thumbnail: {e}"))
        .ok()?;
    Some(jpeg)
}

/// Writes a cache entry whole or not at all.
fn keep(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut file, bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes thumbnails unused for [`UNUSED_FOR`], and scratch files and
/// folders (`.tmp…`) older than an hour: a crash's leftovers.
fn prune(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let path = entry.path();
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default())
            .unwrap_or_default();
        let scratch = entry.file_name().as_encoded_bytes().starts_with(b".tmp");
        let removed = if scratch && age > Duration::from_secs(3600) {
            fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path))
        } else if !scratch && age > UNUSED_FOR {
            fs::remove_file(&path)
        } else {
            continue;
        };
        if let Err(e) = removed {
            tracing::debug!("cannot remove {}: {e}", path.display());
        }
    }
}
