//! Thumbnails of real media, made with ImageMagick, exiftool, heif-enc and
//! ffmpeg, through the desktop's real thumbnailers (heif-thumbnailer,
//! ffmpegthumbnailer: `scripts/install-deps` installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use shoebox_thumbnail::{Kind, SIZE, Thumbnail, Thumbnails};

// The suites' bounded runner and media makers.
#[allow(dead_code)]
#[path = "../../../tests/common/bounded.rs"]
mod bounded;
#[allow(dead_code)]
#[path = "../../../tests/common/media.rs"]
mod media;

use media::text;

struct Fixture {
    data: tempfile::TempDir,
    photos: tempfile::TempDir,
    thumbnails: Thumbnails,
}

impl Fixture {
    fn new() -> Fixture {
        let data = tempfile::tempdir().unwrap();
        let thumbnails = Thumbnails::open(data.path()).unwrap();
        Fixture {
            data,
            photos: tempfile::tempdir().unwrap(),
            thumbnails,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.photos.path().join(name)
    }

    /// An ImageMagick picture: `convert <spec…> <name>`.
    fn picture(&self, name: &str, spec: &[&str]) -> PathBuf {
        let path = self.path(name);
        let mut args = spec.to_vec();
        args.push(text(&path));
        media::convert(&args);
        path
    }

    fn cache(&self) -> Vec<String> {
        names(&self.data.path().join("thumbnails"))
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The thumbnail's size and the colour at a point (fractions of its size).
fn look(t: &Thumbnail, x: f32, y: f32) -> ((u32, u32), [u8; 3]) {
    let jpeg = t.jpeg.as_ref().expect("a thumbnail");
    let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("the thumbnail is a JPEG")
        .to_rgb8();
    let (w, h) = image.dimensions();
    let px = image.get_pixel(
        ((w as f32 * x) as u32).min(w - 1),
        ((h as f32 * y) as u32).min(h - 1),
    );
    ((w, h), px.0)
}

#[derive(Debug, PartialEq)]
enum Colour {
    Red,
    Green,
    Blue,
    White,
    Other([u8; 3]),
}

fn colour([r, g, b]: [u8; 3]) -> Colour {
    match (r > 180, g > 180, b > 180, r < 80, g < 80, b < 80) {
        (true, _, _, _, true, true) => Colour::Red,
        (_, true, _, true, _, true) => Colour::Green,
        (_, _, true, true, true, _) => Colour::Blue,
        (true, true, true, _, _, _) => Colour::White,
        _ => Colour::Other([r, g, b]),
    }
}

#[test]
fn jpeg_png_and_webp_are_made_small_and_upright_and_nothing_is_written_beside_them() {
    let f = Fixture::new();
    let wide = f.picture("wide.jpg", &["-size", "400x200", "xc:red"]);
    let tall = f.picture("tall.webp", &["-size", "200x400", "xc:blue"]);
    // Left half blue, right half transparent: laid on white.
    let half = f.picture(
        "half.png",
        &[
            "-size",
            "300x300",
            "xc:none",
            "-fill",
            "blue",
            "-draw",
            "rectangle 0,0 149,299",
        ],
    );
    // Stored 400×200 with its left half blue, shown turned a quarter
    // clockwise (EXIF orientation 6): 200×400 with the blue half on top.
    let turned = f.picture(
        "turned.jpg",
        &[
            "-size",
            "400x200",
            "xc:red",
            "-fill",
            "blue",
            "-draw",
            "rectangle 0,0 199,199",
        ],
    );
    media::run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-Orientation#=6",
            text(&turned),
        ],
    );
    let before = names(f.photos.path());

    let t = f.thumbnails.get(&wide);
    assert_eq!(t.kind, Kind::Photo);
    let (size, px) = look(&t, 0.5, 0.5);
    assert_eq!((size, colour(px)), ((SIZE, SIZE / 2), Colour::Red));
    assert!(
        t.jpeg.as_ref().unwrap().len() < 10_000,
        "a thumbnail is small"
    );

    let t = f.thumbnails.get(&tall);
    assert_eq!(t.kind, Kind::Photo);
    let (size, px) = look(&t, 0.5, 0.5);
    assert_eq!((size, colour(px)), ((SIZE / 2, SIZE), Colour::Blue));

    let t = f.thumbnails.get(&half);
    assert_eq!(colour(look(&t, 0.2, 0.5).1), Colour::Blue);
    assert_eq!(
        colour(look(&t, 0.8, 0.5).1),
        Colour::White,
        "transparency on white"
    );

    let t = f.thumbnails.get(&turned);
    let (size, top) = look(&t, 0.5, 0.2);
    assert_eq!(size, (SIZE / 2, SIZE), "upright: taller than wide");
    assert_eq!(colour(top), Colour::Blue);
    assert_eq!(colour(look(&t, 0.5, 0.8).1), Colour::Red);

    assert_eq!(
        names(f.photos.path()),
        before,
        "nothing written beside the photos"
    );
    assert_eq!(
        f.cache().iter().filter(|n| n.ends_with(".jpg")).count(),
        4,
        "{:?}",
        f.cache()
    );
}

#[test]
fn heic_photos_and_video_poster_frames_come_from_the_desktop_thumbnailers() {
    let f = Fixture::new();
    // Truecolour: heif-enc 1.15 misreads a palette PNG's colours.
    let png = f.picture(
        "red.png",
        &["-size", "320x240", "xc:red", "-define", "png:color-type=2"],
    );
    let heic = f.path("IMG_0001.HEIC");
    media::run("heif-enc", &["-q", "90", text(&png), "-o", text(&heic)]);
    fs::remove_file(&png).unwrap();
    let mut videos = Vec::new();
    for name in ["clip.mp4", "IMG_0002.MOV"] {
        let video = f.path(name);
        media::blue_video(&video);
        videos.push(video);
    }
    let before = names(f.photos.path());

    let t = f.thumbnails.get(&heic);
    assert_eq!(t.kind, Kind::Photo);
    assert!(
        t.jpeg.is_some(),
        "no thumbnail of a HEIC photo: is heif-thumbnailer installed (scripts/install-deps)?"
    );
    let (size, px) = look(&t, 0.5, 0.5);
    assert_eq!((size, colour(px)), ((SIZE, SIZE * 3 / 4), Colour::Red));

    for video in &videos {
        let t = f.thumbnails.get(video);
        assert_eq!(t.kind, Kind::Video, "{video:?}");
        assert!(
            t.jpeg.is_some(),
            "no poster frame of {video:?}: is ffmpegthumbnailer installed (scripts/install-deps)?"
        );
        let (size, px) = look(&t, 0.5, 0.5);
        assert_eq!(size.0.max(size.1), SIZE, "{video:?}");
        assert_eq!(colour(px), Colour::Blue, "{video:?}");
    }
    assert_eq!(
        names(f.photos.path()),
        before,
        "nothing written beside the media"
    );
    assert_eq!(
        f.cache().iter().filter(|n| n.ends_with(".jpg")).count(),
        3,
        "only thumbnails, no scratch left: {:?}",
        f.cache()
    );
}

fn set_modified(path: &Path, at: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

#[test]
fn a_thumbnail_is_kept_across_restarts_and_made_again_after_an_edit() {
    let f = Fixture::new();
    let photo = f.picture("photo.jpg", &["-size", "300x200", "xc:red"]);
    assert_eq!(
        colour(look(&f.thumbnails.get(&photo), 0.5, 0.5).1),
        Colour::Red
    );
    let kept = f.cache();
    assert_eq!(kept.len(), 1, "{kept:?}");

    // What is kept is what is shown, also after a restart: planted green,
    // it stays green.
    let green = f.picture("green.jpg", &["-size", "30x20", "xc:lime"]);
    let planted = f.data.path().join("thumbnails").join(&kept[0]);
    fs::write(&planted, fs::read(&green).unwrap()).unwrap();
    let again = Thumbnails::open(f.data.path()).unwrap();
    assert_eq!(colour(look(&again.get(&photo), 0.5, 0.5).1), Colour::Green);

    // An edit (a new modification time) makes a new one.
    f.picture("photo.jpg", &["-size", "300x200", "xc:blue"]);
    set_modified(&photo, SystemTime::now() + Duration::from_secs(10));
    assert_eq!(colour(look(&again.get(&photo), 0.5, 0.5).1), Colour::Blue);
    assert_eq!(f.cache().len(), 2, "{:?}", f.cache());
}

#[test]
fn what_cannot_be_decoded_gets_its_icon_and_is_not_tried_again() {
    let f = Fixture::new();
    let real = fs::read(f.picture("real.jpg", &["-size", "300x200", "xc:red"])).unwrap();

    // Not a picture at all, though named like one.
    let text = f.path("notes.jpg");
    fs::write(&text, vec![b'x'; real.len() + 100]).unwrap();
    assert_eq!(
        f.thumbnails.get(&text),
        Thumbnail {
            kind: Kind::Other,
            jpeg: None
        }
    );
    // A video no decoder can read.
    let broken = f.path("broken.mp4");
    fs::write(&broken, media::unreadable_mp4()).unwrap();
    assert_eq!(
        f.thumbnails.get(&broken),
        Thumbnail {
            kind: Kind::Video,
            jpeg: None
        }
    );
    assert_eq!(
        f.cache().iter().filter(|n| n.ends_with(".none")).count(),
        2,
        "{:?}",
        f.cache()
    );

    // Not tried again: the same path, size and time with a decodable JPEG
    // (padded after its end) still gets the icon.
    let at = fs::metadata(&text).unwrap().modified().unwrap();
    let mut padded = real.clone();
    padded.extend([0; 100]);
    fs::write(&text, &padded).unwrap();
    set_modified(&text, at);
    assert_eq!(f.thumbnails.get(&text).jpeg, None);
    // … while a new time has it made.
    set_modified(&text, at + Duration::from_secs(10));
    assert_eq!(
        colour(look(&f.thumbnails.get(&text), 0.5, 0.5).1),
        Colour::Red
    );

    // A file that is gone gets none, and nothing is remembered of it.
    let cached = f.cache();
    assert_eq!(
        f.thumbnails.get(&f.path("gone.jpg")),
        Thumbnail {
            kind: Kind::Other,
            jpeg: None
        }
    );
    assert_eq!(f.cache(), cached);
}

#[test]
fn thumbnails_unused_for_a_month_and_a_crash_s_scratch_go_when_the_cache_opens() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("thumbnails");
    fs::create_dir_all(dir.join(".tmpOLD")).unwrap();
    fs::create_dir_all(dir.join(".tmpNEW")).unwrap();
    for name in ["old.jpg", "old.none", "recent.jpg", ".tmpOLDFILE"] {
        fs::write(dir.join(name), b"x").unwrap();
    }
    let day = Duration::from_secs(86_400);
    for (name, age) in [
        ("old.jpg", 40 * day),
        ("old.none", 31 * day),
        ("recent.jpg", 20 * day),
        (".tmpOLDFILE", day),
    ] {
        set_modified(&dir.join(name), SystemTime::now() - age);
    }
    // A folder's time is set through a file handle too.
    fs::File::open(dir.join(".tmpOLD"))
        .unwrap()
        .set_modified(SystemTime::now() - day)
        .unwrap();
    Thumbnails::open(data.path()).unwrap();
    assert_eq!(names(&dir), [".tmpNEW", "recent.jpg"]);
}
