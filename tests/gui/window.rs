//! The window, driven through WebDriver in the real WebKit: adding a folder
//! (the native picker is bypassed by typing the path; everything after it
//! is real), progress and counts, pause and resume, removing a watch, a
//! failed file's reason, and the thumbnails of recent uploads.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use shoebox_core::{AlbumMode, EngineLock, Home, OnDelete, SyncOptions, WatchSpec};

use crate::media::{self, text};
use crate::support::*;

#[test]
fn a_folder_added_in_the_window_is_backed_up_and_its_counts_update() {
    let sb = Sandbox::new();
    for i in 0..30 {
        sb.write(
            &format!("Summer/IMG_{i:02}.jpg"),
            &bytes(&i.to_string(), 50_000),
        );
    }
    sb.write("Winter/IMG_99.jpg", &bytes("w", 50_000));
    let wd = WebDriver::start(&sb, &[]);
    assert!(wd.text("#no-folders").contains("No folders yet"));
    wd.screenshot("empty");

    wd.click("#add-btn");
    wd.type_into("#add-folder", sb.photos.to_str().unwrap());
    wd.click("input[name=mode][value='per-folder']");
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("Summer") && t.contains("30 files") && t.contains("Winter")
    });
    wd.screenshot("add-folder");
    wd.click("#add-confirm");

    // Asked once, after the first folder: launch at login?
    // The title is in the page from the start: wait for the dialog itself
    // to open (it opens once the watch is added, later under load).
    wait_until(secs(30), "the autostart question to open", || {
        wd.displayed("#autostart-dialog")
    });
    assert!(wd.text("#autostart-title").contains("restart"));
    wd.click("#autostart-no");

    let row = format!(".watch-row[data-folder='{}']", sb.photos.display());
    wd.find(&row);
    wd.wait_text(&format!("{row} .uploaded"), secs(30), |t| t == "31");
    assert_eq!(wd.text(&format!("{row} .pending")), "0");
    assert_eq!(wd.text(&format!("{row} .state")), "up to date");
    wd.wait_text("#status-line", secs(10), |t| t == "Up to date");
    let lib = sb.library_files();
    assert_eq!(lib.len(), 31, "every photo reached its album");
    assert!(lib.contains_key("Summer/IMG_00.jpg") && lib.contains_key("Winter/IMG_99.jpg"));
    wd.screenshot("folders");

    wd.click("#tab-activity");
    wd.wait_text("#recent", secs(10), |t| t.contains("Summer/IMG_"));
    wd.screenshot("activity");
    assert!(!sb.engine().status().unwrap().paused);
    assert!(
        sb.engine()
            .store()
            .setting("app.autostart_asked")
            .unwrap()
            .is_some(),
        "asked only once"
    );
}

#[test]
fn adding_a_missing_folder_says_why_in_the_dialog() {
    let sb = Sandbox::new();
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#add-btn");
    wd.type_into("#add-folder", "/nonexistent/shoebox/folder");
    wd.click("#add-confirm");
    let msg = wd.wait_text("#add-error", secs(10), |t| !t.is_empty());
    assert!(
        msg.contains("cannot watch") && msg.contains("No such file"),
        "{msg}"
    );
    assert!(sb.status().watches.is_empty());
    // The window read the error's code (folder_missing): the folder field
    // is marked for a new choice.
    assert_eq!(
        wd.exec("return document.querySelector('#add-folder').getAttribute('aria-invalid')"),
        serde_json::json!("true")
    );
}

#[test]
fn pause_and_resume_from_the_window() {
    let sb = Sandbox::new();
    sb.watch(&sb.photos);
    let wd = WebDriver::start(&sb, &[]);
    wd.wait_text("#pause-btn", secs(10), |t| t == "Pause syncing");
    wd.click("#pause-btn");
    wd.wait_text("#pause-btn", secs(10), |t| t == "Resume syncing");
    wd.wait_text("#status-line", secs(10), |t| t == "Paused");
    assert!(sb.status().paused, "the engine is told");
    sb.write("IMG.jpg", &bytes("x", 1000));
    std::thread::sleep(secs(4)); // nothing signals "did not upload"
    assert!(sb.library_files().is_empty(), "paused: nothing uploaded");
    wd.click("#pause-btn");
    wd.wait_text("#pause-btn", secs(10), |t| t == "Pause syncing");
    wait_until(secs(15), "the file to arrive after resume", || {
        sb.library_files().len() == 1
    });
}

/// Outside the upload hours the window says until when and offers to
/// back up now anyway; doing so uploads through the quiet hours.
#[test]
fn quiet_hours_are_shown_and_back_up_now_anyway_lifts_them() {
    let sb = Sandbox::new();
    let from = sb.photo_in_quiet_hours();
    let wd = WebDriver::start(&sb, &[]);
    wd.wait_text("#status-line", secs(30), |t| {
        t == format!("Quiet hours until {from}")
    });
    assert!(wd.displayed("#anyway-btn"));
    assert!(
        sb.library_files().is_empty(),
        "nothing uploaded in quiet hours"
    );
    wd.click("#anyway-btn");
    wait_until(secs(15), "the photo to arrive", || {
        sb.library_files().len() == 1
    });
    wd.wait_text("#status-line", secs(10), |t| !t.starts_with("Quiet hours"));
    assert!(!wd.displayed("#anyway-btn"));
}

#[test]
fn removing_a_watch_asks_first_and_deletes_nothing() {
    let sb = Sandbox::new();
    sb.write("IMG.jpg", &bytes("x", 1000));
    sb.watch(&sb.photos);
    let wd = WebDriver::start(&sb, &[]);
    let row = format!(".watch-row[data-folder='{}']", sb.photos.display());
    wd.wait_text(&format!("{row} .uploaded"), secs(30), |t| t == "1");
    wd.click(&format!("{row} .remove-btn"));
    let text = wd.text("#remove-dialog");
    assert!(
        text.contains("Nothing will be deleted"),
        "the confirmation says nothing is deleted: {text}"
    );
    wd.click("#remove-ok");
    wait_until(secs(10), "the row to go", || wd.try_find(&row).is_none());
    assert!(sb.status().watches.is_empty());
    assert!(
        sb.photos.join("IMG.jpg").exists(),
        "the folder is untouched"
    );
    assert_eq!(sb.library_files().len(), 1, "the album is untouched");
}

#[test]
fn a_failed_file_shows_its_reason_and_can_be_retried() {
    let sb = Sandbox::new();
    sb.write("ok.jpg", &bytes("ok", 1000));
    let locked = sb.write("locked.jpg", &bytes("locked", 1000));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    sb.watch(&sb.photos);
    // As root, permission bits do not stop reads: run the app without the
    // capabilities that bypass them, as for a normal user.
    let wd = WebDriver::start(
        &sb,
        &["setpriv", "--bounding-set=-dac_override,-dac_read_search"],
    );
    let row = format!(".watch-row[data-folder='{}']", sb.photos.display());
    wd.wait_text(&format!("{row} .failed"), secs(30), |t| t == "1");
    wd.wait_text("#status-line", secs(10), |t| t == "1 file needs attention");
    wd.click("#tab-activity");
    let reason = wd.wait_text(".failure .reason", secs(10), |t| !t.is_empty());
    assert!(
        reason.contains("ermission denied") && reason.contains("readable"),
        "{reason}"
    );
    assert!(wd.text(".failure .path").ends_with("locked.jpg"));

    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    wd.click("#retry-failed");
    wait_until(secs(20), "the retried file to arrive", || {
        sb.library_files().len() == 2
    });
    wd.wait_text("#no-failures", secs(10), |t| t == "Nothing failed.");
}

#[test]
fn a_destination_that_cannot_be_used_is_marked_with_its_reason_until_it_is_back() {
    let sb = Sandbox::new();
    let nas = sb.tmp.path().join("nas");
    let away = sb.tmp.path().join("nas-unplugged");
    fs::create_dir_all(&nas).unwrap();
    sb.engine().add_local_destination("nas", &nas).unwrap();
    sb.engine()
        .add_watch(&WatchSpec {
            folder: sb.photos.clone(),
            mode: AlbumMode::Single,
            album_names: shoebox_core::AlbumNames::Leaf,
            date_format: Default::default(),
            album: Some("Phone".into()),
            dest: "nas".into(),
            on_delete: OnDelete::Keep,
            all_files: false,
        })
        .unwrap();
    sb.write("IMG_1.jpg", &bytes("1", 1000));
    // A first backup marks the folder as this backup's; then the drive is
    // "unplugged" before the app starts.
    {
        let home = Home::open(Some(sb.data.clone())).unwrap();
        let lock = EngineLock::acquire(&home, "the test").unwrap();
        let report = sb
            .engine()
            .sync(&lock, &SyncOptions::default(), &|_| {})
            .unwrap();
        assert_eq!(report.uploaded, 1);
    }
    fs::rename(&nas, &away).unwrap();

    let wd = WebDriver::start(&sb, &[]);
    let row = format!(".watch-row[data-folder='{}']", sb.photos.display());
    wd.wait_text(&format!("{row} .state"), secs(30), |t| {
        t == "destination unreachable"
    });
    let why = wd.text(&format!("{row} .dest-down"));
    assert!(why.contains("is the drive mounted"), "{why}");
    wd.wait_text("#status-line", secs(10), |t| t == "Cannot reach nas");
    wd.click("#tab-destinations");
    let dest = ".dest-row[data-name='nas']";
    wd.wait_text(&format!("{dest} .state.dest-down"), secs(10), |t| {
        t == "destination unreachable"
    });
    assert!(
        wd.text(&format!("{dest} .detail.dest-down"))
            .contains("is the drive mounted")
    );

    // Plugged back in: the engine's next probe finds it, the marks go and
    // what waited is backed up.
    sb.write("IMG_2.jpg", &bytes("2", 1000));
    fs::rename(&away, &nas).unwrap();
    wd.wait_text(&format!("{dest} .watch-head"), secs(90), |t| {
        !t.contains("unreachable")
    });
    wait_until(
        secs(30),
        "the waiting photo to reach the destination",
        || nas.join("Phone/IMG_2.jpg").exists(),
    );
    wd.click("#tab-folders");
    wd.wait_text(&format!("{row} .state"), secs(10), |t| t == "up to date");
    assert!(wd.text(&format!("{row} .dest-down")).is_empty());
    wd.wait_text("#status-line", secs(10), |t| t == "Up to date");
}

#[test]
fn a_camera_card_s_albums_are_previewed_and_named_after_the_card_or_its_path() {
    let sb = Sandbox::new();
    sb.write("card-2024-06/DCIM/100CANON/IMG_1.JPG", &bytes("1", 2000));
    sb.write("card-2024-06/DCIM/101CANON/IMG_2.JPG", &bytes("2", 2000));
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#add-btn");
    wd.type_into("#add-folder", sb.photos.to_str().unwrap());
    wd.click("input[name=mode][value='per-folder']");
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("card-2024-06") && t.contains("2 files") && !t.contains("CANON")
    });
    // The same card, named by path: a select's change, as a user makes it.
    wd.exec(
        "const s = document.querySelector('#add-album-names'); s.value = 'path'; \
         s.dispatchEvent(new Event('change'));",
    );
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("card-2024-06 › 100CANON") && t.contains("card-2024-06 › 101CANON")
    });
    // By the month taken: these photos carry no date but their file time.
    let july_2017 = std::time::UNIX_EPOCH + secs(1_500_000_000);
    for f in ["100CANON/IMG_1.JPG", "101CANON/IMG_2.JPG"] {
        let path = sb.photos.join("card-2024-06/DCIM").join(f);
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(july_2017).unwrap();
    }
    wd.click("input[name=mode][value='by-date']");
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("2017-07") && t.contains("2 files") && !t.contains("card")
    });
    wd.exec(
        "const s = document.querySelector('#add-date-format'); s.value = '%Y'; \
         s.dispatchEvent(new Event('change'));",
    );
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("2017") && !t.contains("2017-07")
    });
    wd.click("input[name=mode][value='per-folder']");
    wd.wait_text("#preview", secs(10), |t| {
        t.contains("card-2024-06 › 100CANON")
    });
    wd.click("#add-confirm");
    wait_until(secs(30), "the autostart question to open", || {
        wd.displayed("#autostart-dialog")
    });
    wd.click("#autostart-no");
    wait_until(secs(30), "the card's photos to reach their albums", || {
        let lib = sb.library_files();
        lib.contains_key("card-2024-06 › 100CANON/IMG_1.JPG")
            && lib.contains_key("card-2024-06 › 101CANON/IMG_2.JPG")
    });
}

#[test]
fn what_the_scan_left_out_is_listed_with_its_reason() {
    let sb = Sandbox::new();
    sb.write("IMG_1.jpg", &bytes("1", 1000));
    sb.write("notes.txt", b"a shopping list");
    sb.write("clip.mp4.part", b"half a video");
    sb.watch(&sb.photos);
    let wd = WebDriver::start(&sb, &[]);
    wait_until(secs(30), "the photo to be backed up", || {
        sb.library_files().len() == 1
    });
    wd.click("#tab-activity");
    // The upload says when the photo was taken: here only its file date.
    wd.wait_text("#recent", secs(20), |t| {
        t.contains("IMG_1.jpg") && t.contains("taken") && t.contains("(file date)")
    });
    let listed = wd.wait_text("#ignored", secs(20), |t| {
        t.contains("notes.txt") && t.contains("clip.mp4.part")
    });
    assert!(listed.contains("not a photo or video"), "{listed}");
    assert!(listed.contains("unfinished download"), "{listed}");
    assert!(!wd.displayed("#no-ignored"));
}

#[test]
fn the_activity_view_shows_thumbnails_of_recent_uploads_and_an_icon_where_none_can_be_made() {
    let sb = Sandbox::new();
    let made = sb.home.join("made");
    fs::create_dir_all(&made).unwrap();
    let png = made.join("red.png");
    // Truecolour: heif-enc 1.15 misreads a palette PNG's colours.
    media::convert(&[
        "-size",
        "600x400",
        "xc:red",
        "-define",
        "png:color-type=2",
        text(&png),
    ]);
    let jpeg = sb.photos.join("IMG_0001.jpg");
    media::convert(&[text(&png), text(&jpeg)]);
    let heic = sb.photos.join("IMG_0002.HEIC");
    media::run("heif-enc", &[text(&png), "-o", text(&heic)]);
    media::blue_video(&sb.photos.join("IMG_0003.MOV"));
    // A video no decoder reads: its icon stands in.
    sb.write("broken.mp4", &media::unreadable_mp4());
    let listing = || {
        let mut names: Vec<_> = fs::read_dir(&sb.photos)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    sb.watch(&sb.photos);
    let wd = WebDriver::start(&sb, &[]);
    wait_until(secs(30), "the four files to be backed up", || {
        sb.library_files().len() == 4
    });
    wd.click("#tab-activity");
    wd.wait_text("#recent", secs(20), |t| {
        ["IMG_0001", "IMG_0002", "IMG_0003", "broken"]
            .iter()
            .all(|n| t.contains(n))
    });
    // Each row: its name, its thumbnail's classes, and the size WebKit
    // decoded the picture at (0 × 0 with no picture).
    let rows = || {
        wd.exec(
            "return [...document.querySelectorAll('#recent li')].map((li) => {
               const img = li.querySelector('.thumb img');
               return [li.querySelector('.path').textContent, li.querySelector('.thumb').className,
                       img ? img.naturalWidth : 0, img ? img.naturalHeight : 0];
             });",
        )
    };
    let shown = |name: &str, rows: &serde_json::Value| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r[0].as_str().unwrap().contains(name))
            .cloned()
            .unwrap_or_else(|| panic!("no row of {name}: {rows}"))
    };
    wait_until(secs(60), "three thumbnails and one icon", || {
        let rows = rows();
        ["IMG_0001", "IMG_0002", "IMG_0003"]
            .iter()
            .all(|n| shown(n, &rows)[2].as_u64() > Some(0))
            && shown("broken", &rows)[1] == "thumb video"
    });
    let rows = rows();
    for (name, class, size) in [
        ("IMG_0001", "thumb photo picture", (128, 85)),
        ("IMG_0002", "thumb photo picture", (128, 85)),
        ("IMG_0003", "thumb video picture", (128, 96)),
    ] {
        let row = shown(name, &rows);
        assert_eq!(row[1], class, "{row}");
        assert_eq!(
            (row[2].as_u64().unwrap(), row[3].as_u64().unwrap()),
            size,
            "{row}"
        );
    }
    wd.screenshot("activity-thumbnails");

    // Made small into the data folder, never beside the photos.
    assert_eq!(listing(), before, "nothing written into the watched folder");
    let mut cached: Vec<String> = fs::read_dir(sb.data.join("thumbnails"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.rsplit('.').next().unwrap().to_string()
        })
        .collect();
    cached.sort();
    assert_eq!(cached, ["jpg", "jpg", "jpg", "none"]);
}
