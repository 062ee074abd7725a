//! Photos, not files: what a copy keeps besides its bytes (its date, and
//! permissions a media server running as another user can read).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::media::{self, convert};
use crate::support::*;

#[test]
fn copies_keep_the_source_date_and_are_readable_like_cp_makes_them() {
    let env = Env::new();
    let a = env.write("Trip/IMG_1.jpg", &bytes("1", 5000));
    let b = env.write("Home/IMG_2.jpg", &bytes("2", 5000));
    set_mtime(&a, old_date());
    set_mtime(&b, old_date());
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let lib = env.library();
    let copy = lib.join("Trip/IMG_1.jpg");
    assert_eq!(mtime(&copy), old_date(), "the copy keeps the source's date");
    let mode = fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o666 & !umask(),
        "readable by others like a copy made with cp: {mode:o}"
    );

    // A move to another album sends no bytes and keeps the date.
    fs::rename(&a, env.src.join("Home/IMG_1.jpg")).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["moved"], 1);
    assert_eq!(mtime(&lib.join("Home/IMG_1.jpg")), old_date());

    // An edit brings the edit's date.
    fs::write(&b, bytes("2 edited", 6000)).unwrap();
    let edited = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    set_mtime(&b, edited);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(mtime(&lib.join("Home/IMG_2.jpg")), edited);
}

#[test]
fn a_file_whose_name_says_nothing_is_typed_by_content_and_every_ignored_file_is_named() {
    let env = Env::new();
    fs::create_dir_all(&env.src).unwrap();
    let at = |name: &str| env.src.join(name).display().to_string();
    // A scanner's JPEG without extension, a Photoshop file, an SVG.
    convert(&[
        "-size",
        "16x16",
        "xc:red",
        &format!("jpg:{}", at("scan0001")),
    ]);
    convert(&[
        "-size",
        "16x16",
        "xc:blue",
        &format!("psd:{}", at("cover.psd")),
    ]);
    env.write(
        "logo.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>"#,
    );
    // Left out, each with its reason.
    env.write("notes", b"shopping list\n");
    env.write("edit.xcf", b"gimp xcf v011\0\0\0\0");
    env.write(".DS_Store", b"junk");
    env.write("clip.mp4.part", b"half a video");
    env.write(".thumbnails/a.jpg", &bytes("thumb", 100));
    env.watch(&[]);
    let run = env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib.keys().collect::<Vec<_>>(),
        ["Photos/cover.psd", "Photos/logo.svg", "Photos/scan0001"],
        "{lib:?}"
    );
    let ignored: std::collections::BTreeMap<String, String> = run
        .events("file_ignored")
        .iter()
        .map(|e| {
            let path = e["path"].as_str().unwrap();
            let name = path.rsplit('/').next().unwrap().to_string();
            (name, e["reason"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        ignored.keys().collect::<Vec<_>>(),
        [
            ".DS_Store",
            ".thumbnails",
            "clip.mp4.part",
            "edit.xcf",
            "notes"
        ],
        "every ignored file and folder is named: {ignored:?}"
    );
    assert!(ignored["notes"].contains("--all-files"), "{ignored:?}");
    assert!(ignored["clip.mp4.part"].contains("unfinished download"));
    assert_eq!(run.json()["ignored"], 5);

    // `status --ignored` lists them until they are gone.
    let listed = |env: &Env| -> Vec<String> {
        let v = env.run(["status", "--ignored", "--json"]).ok().json();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let p = e["path"].as_str().unwrap();
                let name = p.rsplit('/').next().unwrap();
                format!("{name}: {}", e["reason"].as_str().unwrap())
            })
            .collect()
    };
    let before = listed(&env);
    assert_eq!(before.len(), 5, "{before:?}");
    assert!(
        before.contains(&format!("notes: {}", ignored["notes"])),
        "{before:?}"
    );
    fs::remove_file(env.src.join("notes")).unwrap();
    fs::remove_dir_all(env.src.join(".thumbnails")).unwrap();
    env.sync().ok();
    let after = listed(&env);
    assert_eq!(
        after.len(),
        3,
        "what is gone is no longer listed: {after:?}"
    );
    let text = env.run(["status", "--ignored"]).ok().stdout;
    assert!(text.contains("edit.xcf: not a photo or video"), "{text}");
}

#[test]
fn live_photo_pairs_of_one_name_keep_one_number_per_pair() {
    let env = Env::new();
    let mut want = std::collections::BTreeMap::new();
    for (i, card) in ["100APPLE", "101APPLE", "102APPLE"].iter().enumerate() {
        let n = match i {
            0 => String::new(),
            i => format!(" ({})", i + 1),
        };
        for ext in ["HEIC", "MOV"] {
            let data = bytes(&format!("{card}{ext}"), 2000);
            env.write(&format!("{card}/IMG_1234.{ext}"), &data);
            want.insert(format!("Phone/IMG_1234{n}.{ext}"), hash(&data));
        }
    }
    env.watch(&["--album", "Phone"]);
    env.sync().ok();
    assert_eq!(env.library_files(), want, "each pair shares its number");
}

/// Where both halves carry Apple's Live Photo identifier, it decides
/// which files are one Live Photo for their date: a clip that only shares
/// a still's name is dated by itself, and a motion half under another name
/// is dated by its still. An Android motion photo (its video inside the
/// JPEG) is one file and travels whole.
#[test]
fn live_photo_identifiers_decide_which_halves_share_a_date() {
    let env = Env::new();
    let src = &env.src;
    let (a, b, c, d) = (
        "0A1B2C3D-0000-4000-8000-00000000000A",
        "0A1B2C3D-0000-4000-8000-00000000000B",
        "0A1B2C3D-0000-4000-8000-00000000000C",
        "0A1B2C3D-0000-4000-8000-00000000000D",
    );
    // Each motion half's own header says April; each still, March.
    let april = "2021-04-02T12:00:00Z";
    media::live_still(&src.join("IMG_0001.HEIC"), "red", "2021:03:31 23:30:00", a);
    media::live_motion(&src.join("IMG_0001.MOV"), april, a);
    // A clip that only shares its name with a still.
    media::live_still(
        &src.join("IMG_0002.HEIC"),
        "green",
        "2021:03:31 22:00:00",
        b,
    );
    media::live_motion(&src.join("IMG_0002.MOV"), april, c);
    // A motion half whose name is not its still's.
    media::live_still(&src.join("IMG_0003.HEIC"), "blue", "2021:03:31 21:00:00", d);
    media::live_motion(&src.join("IMG_0003_motion.MOV"), april, d);
    // An Android motion photo: a JPEG with its video appended, marked in
    // its XMP as Google's camera writes it.
    let motion = src.join("MVIMG_20240101_120000.jpg");
    media::image(&motion, "white");
    let clip = env.tmp.path().join("clip.mp4");
    media::video(&clip, "2024-01-01T12:00:00Z");
    media::motion_photo(&motion, &fs::read(&clip).unwrap());
    let whole = fs::read(&motion).unwrap();

    env.watch(&["--mode", "by-date"]);
    env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "2021-03/IMG_0001.HEIC",
            "2021-03/IMG_0001.MOV",
            "2021-03/IMG_0002.HEIC",
            "2021-03/IMG_0003.HEIC",
            "2021-03/IMG_0003_motion.MOV",
            "2021-04/IMG_0002.MOV",
            "2024-01/MVIMG_20240101_120000.jpg",
        ],
        "{lib:?}"
    );
    assert_eq!(
        lib["2024-01/MVIMG_20240101_120000.jpg"],
        hash(&whole),
        "the motion photo arrives whole, its video inside"
    );
}

#[test]
fn a_raw_and_its_jpeg_take_one_number_and_sidecars_keep_their_photo_s_name() {
    let env = Env::new();
    let mut want = std::collections::BTreeMap::new();
    let mut put = |rel: &str, stored: &str| {
        let data = bytes(rel, 1500);
        env.write(rel, &data);
        want.insert(format!("Cards/{stored}"), hash(&data));
    };
    // May's card shot RAW only; June's shot RAW+JPEG with the same numbers.
    put("2024-05/IMG_0003.CR2", "IMG_0003.CR2");
    put("2024-06/IMG_0003.CR2", "IMG_0003 (2).CR2");
    put("2024-06/IMG_0003.JPG", "IMG_0003 (2).JPG");
    // Sidecars come by default, and follow their photo's number.
    put("2024-05/IMG_0001.CR2", "IMG_0001.CR2");
    put("2024-05/IMG_0001.CR2.xmp", "IMG_0001.CR2.xmp");
    put("2024-06/IMG_0001.CR2", "IMG_0001 (2).CR2");
    put("2024-06/IMG_0001.CR2.xmp", "IMG_0001 (2).CR2.xmp");
    put("2024-06/IMG_0001.xmp", "IMG_0001 (2).xmp");
    // Another item of that stem, whose names are all free: no number.
    put("Takeout/IMG_0001.jpg", "IMG_0001.jpg");
    put("Takeout/IMG_0001.jpg.json", "IMG_0001.jpg.json");
    put(
        "Takeout/IMG_0001.jpg.supplemental-metadata.json",
        "IMG_0001.jpg.supplemental-metadata.json",
    );
    // An orphan sidecar is backed up alone; other JSON is not a sidecar.
    put("2024-06/IMG_0009.AAE", "IMG_0009.AAE");
    env.write("Takeout/print-subscriptions.json", b"{}");
    env.watch(&["--album", "Cards"]);
    let s = env.sync().ok().json();
    assert_eq!(env.library_files(), want, "{s}");
    assert_eq!(s["ignored"], 1, "{s}");
}

#[test]
fn copies_made_before_dates_were_kept_get_them_at_the_upgrade_without_sending_bytes() {
    let env = Env::new();
    let a = env.write("IMG_1.jpg", &bytes("1", 5000));
    set_mtime(&a, old_date());
    env.watch(&[]);
    env.sync().ok();
    let copy = env.library().join("Photos/IMG_1.jpg");
    // As a release before dates were kept left it: the copy carries the
    // time it was made, and the store is at schema v9.
    let made = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    set_mtime(&copy, made);
    back_to_schema_v9(&env.home);
    let s = env.sync().ok().json();
    assert_eq!(s["bytes_uploaded"], 0, "nothing is sent again: {s}");
    assert_eq!(
        mtime(&copy),
        old_date(),
        "the copy now carries its photo's date"
    );
    // Once: a copy touched afterwards is left alone by later passes.
    set_mtime(&copy, made);
    env.sync().ok();
    assert_eq!(mtime(&copy), made);
}

#[test]
fn by_date_albums_come_from_exif_quicktime_takeout_and_file_names() {
    let env = Env::new();
    let src = &env.src;
    // A Live Photo shot on the last evening of March. Its motion half's
    // own header says April, and its AAE sorts before it: the item is
    // dated by its still, so all three stay together.
    media::heic(&src.join("IMG_0001.HEIC"), "red", "2021:03:31 23:30:00");
    media::video(&src.join("IMG_0001.MOV"), "2021-04-02T12:00:00Z");
    env.write("IMG_0001.AAE", b"<?xml version=\"1.0\"?><plist/>");
    // A clip alone, dated by its QuickTime header.
    media::video(&src.join("clip.mp4"), "2017-08-15T12:00:00Z");
    // An EXIF-less scan from Google Takeout, dated by its JSON.
    media::image(&src.join("Scan 3.png"), "green");
    env.write(
        "Scan 3.png.json",
        br#"{"title":"Scan 3.png","photoTakenTime":{"timestamp":"1550232000"}}"#,
    );
    // Takeout's second photo of that name, with its JSON in Takeout's
    // numbered form.
    media::image(&src.join("Scan 3(1).png"), "blue");
    env.write(
        "Scan 3.png(1).json",
        br#"{"title":"Scan 3.png","photoTakenTime":{"timestamp":"1458043200"}}"#,
    );
    // A WhatsApp image (WhatsApp strips EXIF), dated by its name.
    media::image(&src.join("IMG-20180512-WA0001.jpg"), "yellow");
    // Nothing but its file time.
    let plain = src.join("photo.jpg");
    media::image(&plain, "white");
    set_mtime(&plain, old_date());
    env.watch(&["--mode", "by-date"]);
    let run = env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "2016-03/Scan 3(1).png",
            "2016-03/Scan 3.png(1).json",
            "2017-07/photo.jpg",
            "2017-08/clip.mp4",
            "2018-05/IMG-20180512-WA0001.jpg",
            "2019-02/Scan 3.png",
            "2019-02/Scan 3.png.json",
            "2021-03/IMG_0001.AAE",
            "2021-03/IMG_0001.HEIC",
            "2021-03/IMG_0001.MOV",
        ],
        "{lib:?}"
    );
    // Each upload says when it was taken and where that was read.
    let taken: std::collections::BTreeMap<String, (String, String)> = run
        .events("file_done")
        .iter()
        .map(|e| {
            let t = &e["taken"];
            (
                e["name"].as_str().unwrap().to_string(),
                (
                    t["at"].as_str().unwrap().to_string(),
                    t["from"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let at = |name: &str| (taken[name].0.as_str(), taken[name].1.as_str());
    assert_eq!(at("IMG_0001.MOV"), ("2021-03-31T23:30:00", "metadata"));
    assert_eq!(at("IMG_0001.AAE"), ("2021-03-31T23:30:00", "metadata"));
    assert_eq!(at("Scan 3.png").1, "takeout");
    assert_eq!(at("Scan 3(1).png").1, "takeout");
    assert_eq!(
        at("IMG-20180512-WA0001.jpg"),
        ("2018-05-12T00:00:00", "file-name")
    );
    assert_eq!(at("photo.jpg").1, "modified");
    assert_eq!(at("clip.mp4").1, "metadata");
    // `status --files` keeps them: each file, its album and its date.
    let files = env.run(["status", "--files", "--json"]).ok().json();
    let listed: std::collections::BTreeMap<String, (String, String)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["state"], "uploaded", "{f}");
            let name = f["stored_as"].as_str().unwrap();
            assert_eq!(f["path"], src.join(name).display().to_string(), "{f}");
            assert!(lib.contains_key(&format!("{}/{name}", f["album"].as_str().unwrap())));
            let t = &f["taken"];
            (
                name.to_string(),
                (
                    t["at"].as_str().unwrap().to_string(),
                    t["from"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(listed, taken);
    let text = env.run(["status", "--files"]).ok().stdout;
    assert!(
        text.contains(
            "IMG-20180512-WA0001.jpg: uploaded as 2018-05/IMG-20180512-WA0001.jpg, \
             taken 2018-05-12T00:00:00 (file-name)"
        ),
        "{text}"
    );

    // Another pattern: one album a year. A pattern without a date field
    // is refused with what to write instead.
    let other = Env::new();
    media::heic(
        &other.src.join("IMG_0002.HEIC"),
        "red",
        "2020:06:15 12:00:00",
    );
    let refused = other.run([
        "watch".as_ref(),
        "add".as_ref(),
        other.src.as_os_str(),
        "--mode".as_ref(),
        "by-date".as_ref(),
        "--date-format".as_ref(),
        "Photos".as_ref(),
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("no date field") && refused.stderr.contains("%Y"),
        "{}",
        refused.stderr
    );
    other.watch(&["--mode", "by-date", "--date-format", "%Y"]);
    let listed = other.run(["watch", "list"]).ok().stdout;
    assert!(listed.contains("(by-date, %Y)"), "{listed}");
    other.sync().ok();
    assert_eq!(
        other.library_files().keys().collect::<Vec<_>>(),
        ["2020/IMG_0002.HEIC"]
    );
}

#[test]
fn renaming_a_photo_and_its_sidecar_moves_both_and_a_sidecar_edit_replaces_only_it() {
    let env = Env::new();
    let raw = bytes("june raw", 40_000);
    env.write("2024-05/IMG_0001.CR2", &bytes("may raw", 40_000));
    env.write("2024-06/IMG_0001.CR2", &raw);
    env.write("2024-06/IMG_0001.CR2.xmp", b"<x:xmpmeta rating=\"3\"/>");
    env.watch(&["--album", "Cards"]);
    env.sync().ok();
    let lib = env.library_files();
    assert!(lib.contains_key("Cards/IMG_0001 (2).CR2.xmp"), "{lib:?}");

    // darktable renames a photo with its sidecar.
    let june = env.src.join("2024-06");
    fs::rename(june.join("IMG_0001.CR2"), june.join("Wedding_0001.CR2")).unwrap();
    fs::rename(
        june.join("IMG_0001.CR2.xmp"),
        june.join("Wedding_0001.CR2.xmp"),
    )
    .unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["bytes_uploaded"], 0, "a rename sends nothing: {s}");
    let lib = env.library_files();
    assert_eq!(
        lib.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "Cards/IMG_0001.CR2",
            "Cards/Wedding_0001.CR2",
            "Cards/Wedding_0001.CR2.xmp"
        ],
        "the pair moved together, its number gone with the clash"
    );
    assert_eq!(lib["Cards/Wedding_0001.CR2"], hash(&raw));

    // A new rating rewrites the sidecar only.
    let edited = b"<x:xmpmeta rating=\"5\"/>";
    fs::write(june.join("Wedding_0001.CR2.xmp"), edited).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(
        (s["uploaded"].as_u64(), s["bytes_uploaded"].as_u64()),
        (Some(1), Some(edited.len() as u64)),
        "{s}"
    );
    let lib = env.library_files();
    assert_eq!(lib["Cards/Wedding_0001.CR2.xmp"], hash(edited));
    assert_eq!(lib["Cards/Wedding_0001.CR2"], hash(&raw));
}
