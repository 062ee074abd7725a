//! The command-line contract that scripts and other tools rely on.

use std::ffi::OsStr;
use std::fs;

use crate::support::*;

#[test]
fn the_library_destination_always_exists() {
    let env = Env::new();
    let list = env.run(["dest", "list", "--json"]).ok().json();
    assert_eq!(list[0]["name"], "library");
    assert_eq!(list[0]["kind"], "local");
    let path = list[0]["path"].as_str().unwrap();
    assert_eq!(
        path,
        fs::canonicalize(&env.home)
            .unwrap()
            .join("Library")
            .to_str()
            .unwrap()
    );
}

#[test]
fn a_local_destination_can_be_added_used_and_removed_only_when_unused() {
    let env = Env::new();
    let nas = env.tmp.path().join("nas");
    fs::create_dir(&nas).unwrap();
    env.run([
        OsStr::new("dest"),
        OsStr::new("add"),
        OsStr::new("nas"),
        OsStr::new("local"),
        OsStr::new("--path"),
        nas.as_os_str(),
    ])
    .ok();
    let list = env.run(["dest", "list", "--json"]).ok().json();
    assert_eq!(list[1]["name"], "nas");
    env.write("IMG.jpg", &bytes("x", 100));
    env.watch(&["--dest", "nas"]);
    env.sync().ok();
    assert!(
        nas.join("Photos/IMG.jpg").exists(),
        "the file went to the chosen destination"
    );
    let r = env.run(["dest", "remove", "nas"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("used by the watch"), "{}", r.stderr);
    env.run([
        OsStr::new("watch"),
        OsStr::new("remove"),
        env.src.as_os_str(),
    ])
    .ok();
    env.run(["dest", "remove", "nas"]).ok();
    assert!(
        nas.join("Photos/IMG.jpg").exists(),
        "removing a destination deletes no files"
    );
}

#[test]
fn an_unplugged_destination_is_reported_and_nothing_is_lost() {
    let env = Env::new();
    let nas = env.tmp.path().join("nas");
    fs::create_dir(&nas).unwrap();
    env.run([
        OsStr::new("dest"),
        OsStr::new("add"),
        OsStr::new("nas"),
        OsStr::new("local"),
        OsStr::new("--path"),
        nas.as_os_str(),
    ])
    .ok();
    env.write("IMG.jpg", &bytes("x", 100));
    env.watch(&["--dest", "nas"]);
    fs::remove_dir(&nas).unwrap();
    let r = env.sync();
    assert_eq!(r.code, 1);
    let s = r.json();
    assert!(
        s["unavailable_destinations"][0]
            .as_str()
            .unwrap()
            .contains("connect it"),
        "{s}"
    );
    assert!(
        !nas.exists(),
        "a missing destination folder is not created (it may be an unplugged drive)"
    );
    assert_eq!(env.status()["watches"][0]["pending"], 1, "the file waits");
    fs::create_dir(&nas).unwrap();
    env.sync().ok();
    assert!(nas.join("Photos/IMG.jpg").exists());
}

#[test]
fn watch_add_refuses_missing_folders_files_and_overlaps() {
    let env = Env::new();
    fs::create_dir_all(env.src.join("inner")).unwrap();
    let missing = env.run([
        OsStr::new("watch"),
        OsStr::new("add"),
        env.tmp.path().join("nope").as_os_str(),
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("cannot watch") && missing.stderr.contains("No such file"),
        "{}",
        missing.stderr
    );
    let file = env.write("IMG.jpg", b"x");
    let r = env.run([OsStr::new("watch"), OsStr::new("add"), file.as_os_str()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a folder"), "{}", r.stderr);

    env.watch(&[]);
    let inner = env.run([
        OsStr::new("watch"),
        OsStr::new("add"),
        env.src.join("inner").as_os_str(),
    ]);
    assert_eq!(inner.code, 2);
    assert!(
        inner.stderr.contains("overlaps the watched folder"),
        "{}",
        inner.stderr
    );
    let outer = env.run([
        OsStr::new("watch"),
        OsStr::new("add"),
        env.tmp.path().as_os_str(),
    ]);
    assert_eq!(outer.code, 2, "a folder containing a watch is refused too");
    let again = env.run([OsStr::new("watch"), OsStr::new("add"), env.src.as_os_str()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already watched"));
}

#[test]
fn watch_paths_are_canonicalised_and_listed() {
    let env = Env::new();
    let weird = env.src.join("inner/../");
    fs::create_dir_all(env.src.join("inner")).unwrap();
    env.run([
        OsStr::new("watch"),
        OsStr::new("add"),
        weird.as_os_str(),
        OsStr::new("--mode"),
        OsStr::new("per-folder"),
        OsStr::new("--on-delete"),
        OsStr::new("remove"),
    ])
    .ok();
    let list = env.run(["watch", "list", "--json"]).ok().json();
    let w = &list[0];
    assert_eq!(
        w["folder"],
        fs::canonicalize(&env.src).unwrap().to_str().unwrap()
    );
    assert_eq!(w["mode"], "per-folder");
    assert_eq!(w["album"], "Photos");
    assert_eq!(w["dest"], "library");
    assert_eq!(w["on_delete"], "remove");
    assert_eq!(w["all_files"], false);
}

#[test]
fn watch_remove_stops_watching_and_deletes_nothing() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("x", 100));
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    env.run([
        OsStr::new("watch"),
        OsStr::new("remove"),
        env.src.as_os_str(),
    ])
    .ok();
    assert!(env.src.join("IMG.jpg").exists());
    assert!(env.library_files().contains_key("Photos/IMG.jpg"));
    assert_eq!(
        env.run(["watch", "list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    // Added again: the content is recognised, nothing is sent twice.
    env.watch(&[]);
    let s = env.sync().ok().json();
    assert_eq!(s["bytes_uploaded"], 0);
    assert_eq!(s["linked"], 1);
}

#[test]
fn status_json_has_the_documented_fields() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("x", 100));
    env.watch(&[]);
    let st = env.status();
    let w = &st["watches"][0];
    assert_eq!(w["state"], "new", "never synced yet");
    for key in [
        "folder",
        "mode",
        "album",
        "dest",
        "on_delete",
        "state",
        "files",
        "uploaded",
        "pending",
        "failed",
    ] {
        assert!(w.get(key).is_some(), "watch field {key} missing: {w}");
    }
    for key in ["pending", "in_progress", "failed"] {
        assert!(st["queue"].get(key).is_some(), "queue field {key} missing");
    }
    env.sync().ok();
    let w = &env.status()["watches"][0];
    assert_eq!(
        (
            w["files"].as_u64(),
            w["uploaded"].as_u64(),
            w["state"].as_str()
        ),
        (Some(1), Some(1), Some("up_to_date"))
    );
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let env = Env::new();
    let r = env.run(["watch", "add", "/tmp", "--mode", "sideways"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("single, per-folder or by-date"),
        "{}",
        r.stderr
    );
    let r = env.run(["sync", "--workers", "0"]);
    assert_eq!(r.code, 2);
    let r = env.run(["frobnicate"]);
    assert_eq!(r.code, 2);
}

#[test]
fn shoebox_home_env_is_honoured() {
    let env = Env::new();
    let out = std::process::Command::new(BIN)
        .env("SHOEBOX_HOME", &env.home)
        .args(["dest", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        env.home.join("shoebox.db").exists(),
        "the store lives in SHOEBOX_HOME"
    );
    assert!(env.home.join("logs").is_dir(), "so do the logs");
}

#[test]
fn a_plain_sync_prints_a_readable_summary() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("x", 100));
    env.watch(&[]);
    let r = env.run(["sync"]).ok();
    assert!(r.stdout.contains("1 uploaded"), "{}", r.stdout);
    assert!(
        r.stdout.contains("every file is in its album"),
        "{}",
        r.stdout
    );
}
