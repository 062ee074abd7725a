//! Real media for the tests, made with the tools a photographer's files
//! come from: ImageMagick, exiftool, ffmpeg and heif-enc (installed by
//! scripts/install-deps). Each tool runs to completion within a minute or
//! the test fails naming the command. Shared by the CLI and app suites and
//! the thumbnail crate's tests; it needs `bounded.rs` beside it as the
//! including crate's `bounded` module.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs a media tool to its end; the test fails naming it if it fails or
/// takes more than a minute.
#[track_caller]
pub fn run(tool: &str, args: &[&str]) {
    let what = format!("{tool} {args:?}");
    let out = crate::bounded::output_within(
        Command::new(tool).args(args),
        Duration::from_secs(60),
        &what,
    );
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test path as the tools' arguments take it.
pub fn text(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Runs ImageMagick's `convert`.
pub fn convert(args: &[&str]) {
    run("convert", args);
}

/// A small image of one colour, in the format `path`'s extension says,
/// with no date in it (ImageMagick writes none into a JPEG).
pub fn image(path: &Path, colour: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    convert(&["-size", "16x16", &format!("xc:{colour}"), text(path)]);
}

/// Sets EXIF `DateTimeOriginal` (`2021:03:31 23:30:00`) with exiftool.
pub fn set_taken(path: &Path, exif_date: &str) {
    run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            &format!("-DateTimeOriginal={exif_date}"),
            text(path),
        ],
    );
}

/// A HEIC still encoded by heif-enc, taken at `exif_date`.
pub fn heic(path: &Path, colour: &str, exif_date: &str) {
    let jpeg = path.with_extension("source.jpg");
    image(&jpeg, colour);
    run("heif-enc", &["-q", "50", "-o", text(path), text(&jpeg)]);
    std::fs::remove_file(&jpeg).unwrap();
    set_taken(path, exif_date);
}

/// Two seconds of a plain blue 320×240 video (4:2:0, the codec ffmpeg
/// picks for the extension): one whose poster frame a thumbnailer can make.
pub fn blue_video(path: &Path) {
    run(
        "ffmpeg",
        &[
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=320x240:d=2",
            "-pix_fmt",
            "yuv420p",
            text(path),
        ],
    );
}

/// An MP4's first box (`ftyp`) and 5,000 bytes no decoder reads: sniffed as
/// a video, shown by nothing.
pub fn unreadable_mp4() -> Vec<u8> {
    let mut mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    mp4.extend(std::iter::repeat_n(0x5a, 5000));
    mp4
}

/// A fifth of a second of video made by ffmpeg, whose QuickTime header
/// says it was created at `utc` (`2021-04-02T12:00:00Z`).
pub fn video(path: &Path, utc: &str) {
    movie(path, utc, &[]);
}

/// [`video`], with more of ffmpeg's output options.
fn movie(path: &Path, utc: &str, options: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let created = format!("creation_time={utc}");
    let mut args = vec![
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=16x16:d=0.2",
        "-metadata",
        &created,
    ];
    args.extend_from_slice(options);
    args.extend_from_slice(&["-c:v", "mpeg4", text(path)]);
    run("ffmpeg", &args);
}

/// A Live Photo's still: a HEIC taken at `exif_date` whose Apple MakerNote
/// carries the Live Photo identifier `id` (tag 0x0011, which exiftool calls
/// `MediaGroupUUID`), as an iPhone writes it: big-endian, offsets counted
/// from the note's start. exiftool writes the note.
pub fn live_still(path: &Path, colour: &str, exif_date: &str, id: &str) {
    heic(path, colour, exif_date);
    let text_id = format!("{id}\0");
    let mut note = b"Apple iOS\0\0\x01MM".to_vec();
    note.extend(1u16.to_be_bytes());
    note.extend(0x0011u16.to_be_bytes());
    note.extend(2u16.to_be_bytes()); // ASCII
    note.extend((text_id.len() as u32).to_be_bytes());
    note.extend(((14 + 2 + 12 + 4) as u32).to_be_bytes());
    note.extend(0u32.to_be_bytes());
    note.extend(text_id.as_bytes());
    let blob = path.with_extension("makernote");
    std::fs::write(&blob, note).unwrap();
    run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-Make=Apple",
            &format!("-MakerNoteApple<={}", text(&blob)),
            text(path),
        ],
    );
    std::fs::remove_file(&blob).unwrap();
}

/// A Live Photo's motion half: a QuickTime movie created at `utc` whose
/// metadata carries the Live Photo identifier `id`
/// (`com.apple.quicktime.content.identifier`, in the `mdta` keys as an
/// iPhone writes them). ffmpeg writes it.
pub fn live_motion(path: &Path, utc: &str, id: &str) {
    let key = format!("com.apple.quicktime.content.identifier={id}");
    movie(
        path,
        utc,
        &["-metadata", &key, "-movflags", "use_metadata_tags"],
    );
}

/// An Android motion photo (Google's `MicroVideo` form): the JPEG at
/// `path` marked in its XMP, with the movie `video` appended.
pub fn motion_photo(path: &Path, video: &[u8]) {
    run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-XMP-GCamera:MicroVideo=1",
            &format!("-XMP-GCamera:MicroVideoOffset={}", video.len()),
            text(path),
        ],
    );
    let mut whole = std::fs::read(path).unwrap();
    whole.extend_from_slice(video);
    std::fs::write(path, whole).unwrap();
}
