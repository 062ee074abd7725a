//! Album modes, name collisions, duplicates and the file filters.

use std::fs;

use crate::support::*;

#[test]
fn single_mode_puts_every_file_at_any_depth_into_one_album_named_after_the_folder() {
    let env = Env::new();
    let a = env.write("IMG_0001.jpg", &bytes("a", 40_000));
    let b = env.write("2024/Trip/IMG_0002.HEIC", &bytes("b", 50_000));
    let c = env.write("2024/Trip/Day 2/clip.mov", &bytes("c", 60_000));
    env.watch(&["--mode", "single"]);
    let summary = env.sync().ok().json();
    assert_eq!(summary["uploaded"], 3, "three media files were new");
    assert_eq!(summary["complete"], true);
    let lib = env.library_files();
    let want = [
        ("Photos/IMG_0001.jpg", &a),
        ("Photos/IMG_0002.HEIC", &b),
        ("Photos/clip.mov", &c),
    ];
    assert_eq!(lib.len(), 3, "one album, flat: {lib:?}");
    for (rel, src) in want {
        assert_eq!(
            lib.get(rel),
            Some(&hash(&std::fs::read(src).unwrap())),
            "{rel} holds the source's content"
        );
    }
}

#[test]
fn single_mode_album_can_be_named() {
    let env = Env::new();
    env.write("x/IMG.jpg", &bytes("x", 1000));
    env.watch(&["--album", "Family 2024"]);
    env.sync().ok();
    assert!(env.library_files().contains_key("Family 2024/IMG.jpg"));
}

#[test]
fn per_folder_mode_makes_an_album_per_folder_that_holds_files() {
    let env = Env::new();
    env.write("root.jpg", &bytes("r", 1000));
    env.write("A/x/Camera/one.jpg", &bytes("1", 1000));
    env.write("B/y/Camera/two.jpg", &bytes("2", 1000));
    env.write("Summer/three.jpg", &bytes("3", 1000));
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(
        names,
        [
            // Folders with the same name share one album, as in Ente.
            "Camera/one.jpg",
            "Camera/two.jpg",
            // Files directly in the root go to the root's album ("Photos").
            "Photos/root.jpg",
            "Summer/three.jpg",
        ],
        "folders that only hold folders (A, A/x, B, B/y) make no album"
    );
}

#[test]
fn two_different_files_with_one_name_get_a_deterministic_suffix() {
    let env = Env::new();
    env.write("a/IMG_0001.jpg", &bytes("first", 1000));
    env.write("b/IMG_0001.jpg", &bytes("second", 1000));
    env.write("c/IMG_0001.jpg", &bytes("third", 1000));
    env.watch(&[]);
    env.sync().ok();
    let lib = env.library_files();
    // Queue order is by folder then name, so a/ wins the plain name.
    assert_eq!(
        lib.get("Photos/IMG_0001.jpg"),
        Some(&hash(&bytes("first", 1000)))
    );
    assert_eq!(
        lib.get("Photos/IMG_0001 (2).jpg"),
        Some(&hash(&bytes("second", 1000)))
    );
    assert_eq!(
        lib.get("Photos/IMG_0001 (3).jpg"),
        Some(&hash(&bytes("third", 1000)))
    );
}

#[test]
fn a_file_already_in_the_library_folder_is_never_overwritten() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("mine", 1000));
    std::fs::create_dir_all(env.library().join("Photos")).unwrap();
    std::fs::write(env.library().join("Photos/IMG.jpg"), b"put there by hand").unwrap();
    env.watch(&[]);
    env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib["Photos/IMG.jpg"],
        hash(b"put there by hand"),
        "the user's own file stays as it was"
    );
    assert_eq!(lib["Photos/IMG (2).jpg"], hash(&bytes("mine", 1000)));
}

#[test]
fn identical_content_is_sent_once_and_every_name_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let data = bytes("same", 30_000);
    env.write("a/IMG_1.jpg", &data);
    env.write("b/copy of IMG_1.jpg", &data);
    env.write("c/other.jpg", &bytes("other", 30_000));
    env.write("d/IMG_1.jpg", &data);
    env.watch(&[]);
    let summary = env.sync().ok().json();
    assert_eq!(summary["uploaded"], 2, "the copies' bytes are not sent");
    assert_eq!(
        summary["linked"], 2,
        "the copies are recorded as already in the album"
    );
    assert_eq!(summary["bytes_uploaded"], 60_000);
    let lib = env.library_files();
    assert_eq!(
        lib.keys().collect::<Vec<_>>(),
        [
            "Photos/IMG_1.jpg",
            "Photos/copy of IMG_1.jpg",
            "Photos/other.jpg"
        ],
        "every name the user had is in the album, the same name once"
    );
    let inode = |n: &str| {
        fs::metadata(env.library().join("Photos").join(n))
            .unwrap()
            .ino()
    };
    assert_eq!(
        inode("IMG_1.jpg"),
        inode("copy of IMG_1.jpg"),
        "a hard link: the content is stored once"
    );
    let st = env.status();
    assert_eq!(
        st["watches"][0]["uploaded"], 4,
        "all four files count as backed up"
    );
}

#[test]
fn identical_content_in_two_albums_is_stored_in_both() {
    let env = Env::new();
    let data = bytes("same", 3000);
    env.write("Paris/IMG.jpg", &data);
    env.write("Rome/IMG.jpg", &data);
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let lib = env.library_files();
    assert!(
        lib.contains_key("Paris/IMG.jpg") && lib.contains_key("Rome/IMG.jpg"),
        "{lib:?}"
    );
}

#[test]
fn hidden_junk_partial_and_non_media_files_are_ignored_and_counted() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("keep", 100));
    for junk in [
        ".DS_Store",
        "._IMG.jpg",
        "Thumbs.db",
        "desktop.ini",
        ".hidden.jpg",
        "video.mp4.part",
        "x.jpg.crdownload",
        "upload.tmp",
        "~$draft.docx",
        "notes.txt",
        ".git/objects/ab.jpg",
    ] {
        env.write(junk, b"junk");
    }
    env.watch(&[]);
    let summary = env.sync().ok().json();
    assert_eq!(summary["uploaded"], 1);
    assert_eq!(summary["failed"], 0, "ignored files are never failures");
    assert_eq!(
        summary["ignored"], 11,
        "ten files plus the hidden .git folder"
    );
    assert_eq!(
        env.library_files().into_keys().collect::<Vec<_>>(),
        ["Photos/IMG.jpg"]
    );
    let w = &env.status()["watches"][0];
    assert_eq!(w["ignored"], 11, "ignored entries are visible in status");
    assert_eq!(w["pending"], 0, "and never queued");
    // A second sync does not retry them either.
    assert_eq!(env.sync().ok().json()["uploaded"], 0);
}

#[test]
fn all_files_takes_every_regular_file_but_still_no_junk() {
    let env = Env::new();
    env.write("IMG.jpg", b"photo");
    env.write("notes.txt", b"text");
    env.write("scan.pdf", b"pdf");
    env.write(".DS_Store", b"junk");
    env.write("big.iso.part", b"partial");
    env.watch(&["--all-files"]);
    env.sync().ok();
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(
        names,
        ["Photos/IMG.jpg", "Photos/notes.txt", "Photos/scan.pdf"]
    );
}

#[test]
fn per_folder_albums_pass_over_a_camera_card_s_own_folders() {
    let env = Env::new();
    env.write("card-2024-06/DCIM/100CANON/IMG_1.JPG", &bytes("1", 100));
    env.write("card-2024-06/DCIM/101CANON/IMG_2.JPG", &bytes("2", 100));
    env.write(
        "handycam/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS",
        &bytes("3", 100),
    );
    env.write("Summer/IMG_3.JPG", &bytes("4", 100));
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib.keys().collect::<Vec<_>>(),
        [
            "Summer/IMG_3.JPG",
            "card-2024-06/IMG_1.JPG",
            "card-2024-06/IMG_2.JPG",
            "handycam/00000.MTS",
        ],
        "one album per card, named after the card"
    );
    let listed = env.run(["watch", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["album_names"], "leaf");
}

#[test]
fn per_folder_albums_can_be_named_after_the_folder_path() {
    let env = Env::new();
    env.write("card-2024-06/DCIM/100CANON/IMG_1.JPG", &bytes("1", 100));
    env.write("2024/Summer/IMG_2.JPG", &bytes("2", 100));
    env.watch(&["--mode", "per-folder", "--album-names", "path"]);
    env.sync().ok();
    let lib = env.library_files();
    assert_eq!(
        lib.keys().collect::<Vec<_>>(),
        [
            "2024 › Summer/IMG_2.JPG",
            "card-2024-06 › 100CANON/IMG_1.JPG"
        ]
    );
    let bad = env.run(["watch", "add", "x", "--album-names", "tree"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("leaf") && bad.stderr.contains("path"),
        "{}",
        bad.stderr
    );
}
