//! What edits, renames, moves and deletions in a watched folder do to the
//! albums, and that unchanged files are never read again.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::*;

#[test]
fn an_edited_file_replaces_its_album_copy() {
    let env = Env::new();
    let p = env.write("IMG.jpg", &bytes("v1", 20_000));
    env.watch(&[]);
    env.sync().ok();
    fs::write(&p, bytes("v2", 25_000)).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "the new version is sent");
    let lib = env.library_files();
    assert_eq!(lib.len(), 1, "replaced, not added beside: {lib:?}");
    assert_eq!(lib["Photos/IMG.jpg"], hash(&bytes("v2", 25_000)));
}

#[test]
fn an_editor_style_atomic_save_is_an_edit() {
    let env = Env::new();
    let p = env.write("IMG.jpg", &bytes("v1", 20_000));
    env.watch(&[]);
    env.sync().ok();
    let tmp = env.write(".IMG.jpg.swp", &bytes("v2", 20_000));
    fs::rename(&tmp, &p).unwrap();
    env.sync().ok();
    let lib = env.library_files();
    assert_eq!(lib.len(), 1, "{lib:?}");
    assert_eq!(lib["Photos/IMG.jpg"], hash(&bytes("v2", 20_000)));
}

#[test]
fn a_touched_but_unchanged_file_is_not_sent_again() {
    let env = Env::new();
    let p = env.write("IMG.jpg", &bytes("v1", 20_000));
    env.watch(&[]);
    env.sync().ok();
    let f = fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let s = env.sync().ok().json();
    assert_eq!(
        s["unchanged"], 1,
        "the new mtime makes Shoebox look, the hash says unchanged"
    );
    assert_eq!(s["bytes_uploaded"], 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_rename_sends_no_bytes_and_the_album_entry_follows() {
    let env = Env::new();
    env.write("IMG_0001.jpg", &bytes("a", 200_000));
    env.write("sub/other.jpg", &bytes("b", 1000));
    env.watch(&[]);
    env.sync().ok();
    let before = fs::metadata(env.library().join("Photos/IMG_0001.jpg"))
        .unwrap()
        .ino();
    fs::rename(env.src.join("IMG_0001.jpg"), env.src.join("sub/Beach.jpg")).unwrap();

    let mut probe = ReadProbe::new(&env.src);
    let s = env.sync().ok().json();
    let touched = probe.files_touched();

    assert_eq!(s["moved"], 1, "{s}");
    assert_eq!(s["bytes_uploaded"], 0, "a rename sends no bytes");
    assert!(
        touched.is_empty(),
        "a rename reads no file data, but these were opened: {touched:?}"
    );
    let lib = env.library_files();
    assert_eq!(lib.len(), 2, "no second copy: {lib:?}");
    assert_eq!(lib["Photos/Beach.jpg"], hash(&bytes("a", 200_000)));
    let after = fs::metadata(env.library().join("Photos/Beach.jpg"))
        .unwrap()
        .ino();
    assert_eq!(
        before, after,
        "the album file was moved in place, not copied"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_move_between_folders_in_per_folder_mode_moves_the_album_entry() {
    let env = Env::new();
    env.write("Inbox/IMG_7.jpg", &bytes("7", 50_000));
    env.write("Paris/keep.jpg", &bytes("k", 1000));
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    fs::rename(
        env.src.join("Inbox/IMG_7.jpg"),
        env.src.join("Paris/IMG_7.jpg"),
    )
    .unwrap();
    let mut probe = ReadProbe::new(&env.src);
    let s = env.sync().ok().json();
    assert!(
        probe.files_touched().is_empty(),
        "no file is read for a move"
    );
    assert_eq!(s["moved"], 1);
    assert_eq!(s["bytes_uploaded"], 0);
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(
        names,
        ["Paris/IMG_7.jpg", "Paris/keep.jpg"],
        "the entry left the Inbox album"
    );
    assert!(
        !env.library().join("Inbox").exists(),
        "an album left empty is removed"
    );
}

#[test]
fn a_deleted_file_stays_in_the_album_by_default() {
    let env = Env::new();
    let p = env.write("IMG.jpg", &bytes("x", 1000));
    env.watch(&[]);
    env.sync().ok();
    fs::remove_file(p).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["removed"], 0);
    assert!(
        env.library_files().contains_key("Photos/IMG.jpg"),
        "keep is the default policy"
    );
    assert_eq!(
        env.status()["watches"][0]["files"],
        0,
        "the file is no longer counted in the watch"
    );
}

#[test]
fn a_deleted_file_is_removed_from_the_album_with_remove_policy() {
    let env = Env::new();
    let p = env.write("IMG.jpg", &bytes("x", 1000));
    env.write("other.jpg", &bytes("y", 1000));
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    fs::remove_file(p).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["removed"], 1);
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(names, ["Photos/other.jpg"]);
}

#[test]
fn a_deleted_duplicate_does_not_remove_the_content_its_twin_still_needs() {
    let env = Env::new();
    let data = bytes("twin", 1000);
    let a = env.write("a/IMG.jpg", &data);
    env.write("b/IMG.jpg", &data);
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    fs::remove_file(a).unwrap();
    env.sync().ok();
    assert_eq!(
        env.library_files().len(),
        1,
        "the twin still needs the album copy"
    );
}

#[test]
fn a_missing_root_removes_nothing_and_recovers_when_it_returns() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("x", 1000));
    env.write("sub/IMG2.jpg", &bytes("y", 1000));
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    let parked = env.tmp.path().join("unplugged");
    fs::rename(&env.src, &parked).unwrap();

    let r = env.sync();
    assert_eq!(
        r.code, 1,
        "not everything is backed up while a folder is missing"
    );
    let s = r.json();
    assert_eq!(s["removed"], 0, "a missing root never causes deletions");
    assert!(
        s["missing_watches"][0]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{s}"
    );
    assert_eq!(env.library_files().len(), 2);
    let w = &env.status()["watches"][0];
    assert_eq!(w["state"], "folder_missing");
    assert_eq!(w["uploaded"], 2, "the index still knows the files");

    // An empty folder in its place (an unmounted mount point) is not it either.
    fs::create_dir(&env.src).unwrap();
    let r = env.sync();
    assert_eq!(r.code, 1);
    assert!(
        r.json()["missing_watches"][0]
            .as_str()
            .unwrap()
            .contains("not the folder that was added")
    );
    assert_eq!(
        env.library_files().len(),
        2,
        "an empty stand-in removes nothing"
    );
    fs::remove_dir(&env.src).unwrap();

    fs::rename(&parked, &env.src).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(
        s["uploaded"], 0,
        "nothing is sent again when the folder comes back"
    );
    assert_eq!(env.status()["watches"][0]["state"], "up_to_date");
}

#[cfg(target_os = "linux")]
#[test]
fn a_second_sync_of_an_unchanged_tree_reads_no_file_data() {
    let env = Env::new();
    for i in 0..50 {
        env.write(
            &format!("d{}/IMG_{i}.jpg", i % 5),
            &bytes(&i.to_string(), 10_000),
        );
    }
    env.watch(&[]);
    let mut probe = ReadProbe::new(&env.src);
    env.sync().ok();
    assert!(
        probe.files_touched().len() >= 50,
        "the probe sees the first sync read every file"
    );

    let mut probe = ReadProbe::new(&env.src);
    let s = env.sync().ok().json();
    let touched = probe.files_touched();
    assert!(
        touched.is_empty(),
        "the second sync opened files: {touched:?}"
    );
    assert_eq!(s["bytes_read"], 0);
    assert_eq!(s["uploaded"], 0);
}

#[test]
fn a_new_file_after_the_first_sync_is_uploaded_by_the_next() {
    let env = Env::new();
    env.write("IMG_1.jpg", &bytes("1", 1000));
    env.watch(&[]);
    env.sync().ok();
    env.write("later/IMG_2.jpg", &bytes("2", 1000));
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(env.library_files().len(), 2);
}
