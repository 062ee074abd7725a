//! Files and names that could break a backup tool: each handled with a clear
//! message and no effect on the other files.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Command;

use crate::support::*;

#[test]
fn an_unreadable_file_fails_with_a_reason_and_the_rest_is_backed_up() {
    let env = Env::new();
    env.write("ok.jpg", &bytes("ok", 1000));
    let locked = env.write("locked.jpg", &bytes("locked", 1000));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    env.watch(&[]);
    // As root, permission bits do not stop reads: drop the capabilities
    // that bypass them, as for a normal user.
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-dac_override,-dac_read_search", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .arg("--home")
        .arg(&env.home)
        .args(["sync", "--json", "--settle", "100ms"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed file makes sync exit 1"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["uploaded"], 1, "the readable file is backed up");
    assert_eq!(summary["failed"], 1);
    let f = &summary["failures"][0];
    assert!(f["path"].as_str().unwrap().ends_with("locked.jpg"));
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.contains("ermission denied") && reason.contains("readable"),
        "says what and what to do: {reason}"
    );
    assert_eq!(env.status()["watches"][0]["state"], "needs_attention");

    // Fixed by the user: the next sync takes it.
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(env.library_files().len(), 2);
}

#[test]
fn fifos_and_symlinks_are_skipped_with_reasons_and_never_read() {
    let env = Env::new();
    env.write("ok.jpg", &bytes("ok", 1000));
    let fifo = env.src.join("pipe.jpg");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    symlink("loop.jpg", env.src.join("loop.jpg")).unwrap();
    let outside = env.tmp.path().join("outside.jpg");
    fs::write(&outside, b"outside").unwrap();
    symlink(&outside, env.src.join("escape.jpg")).unwrap();
    symlink(env.src.join("ok.jpg"), env.src.join("alias.jpg")).unwrap();
    env.watch(&[]);
    // A FIFO that were opened would block forever; finishing proves it was not.
    let r = env.sync().ok();
    let s = r.json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(
        s["failed"], 0,
        "these are not failures: retrying cannot help"
    );
    assert_eq!(s["skipped"], 3, "{s}");
    let reasons: Vec<(String, String)> = s["skips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |name: &str| &reasons.iter().find(|(p, _)| p.ends_with(name)).unwrap().1;
    assert!(reason("pipe.jpg").contains("named pipe"));
    assert!(reason("loop.jpg").contains("loop"));
    assert!(reason("escape.jpg").contains("outside the watched folder"));
    assert!(
        !reasons.iter().any(|(p, _)| p.ends_with("alias.jpg")),
        "a link to a file inside the watch is simply not needed"
    );
    assert_eq!(env.library_files().len(), 1);
    assert_eq!(
        env.status()["watches"][0]["skipped"],
        3,
        "visible in status"
    );
}

#[test]
fn a_non_utf8_file_name_is_backed_up_under_a_readable_name() {
    let env = Env::new();
    let name = OsStr::from_bytes(b"caf\xe9.jpg");
    fs::write(env.src.join(name), bytes("cafe", 1000)).unwrap();
    env.write("plain.jpg", &bytes("plain", 1000));
    env.watch(&[]);
    let r = env.sync().ok();
    let done = r.events("file_done");
    let odd = done
        .iter()
        .find(|e| e["name"] == "caf\u{fffd}.jpg")
        .expect("stored with a replacement character");
    assert!(
        odd["note"].as_str().unwrap().contains("not valid UTF-8"),
        "the user is told: {odd}"
    );
    let lib = env.library_files();
    assert_eq!(lib["Photos/caf\u{fffd}.jpg"], hash(&bytes("cafe", 1000)));
    assert_eq!(lib.len(), 2);
    // Recognised as unchanged next time: the store keeps the exact bytes.
    assert_eq!(env.sync().ok().json()["uploaded"], 0);
}

#[test]
fn album_names_with_dots_and_slashes_stay_inside_the_library() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("x", 1000));
    let r = env.run([
        OsStr::new("watch"),
        OsStr::new("add"),
        env.src.as_os_str(),
        OsStr::new("--album"),
        OsStr::new("../../escape"),
    ]);
    let r = r.ok();
    assert!(
        r.stderr.contains("cannot be used as a folder name"),
        "the change is explained: {}",
        r.stderr
    );
    env.sync().ok();
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(names, ["_.._escape/IMG.jpg"]);
    assert!(!env.tmp.path().join("escape").exists() && !env.home.join("escape").exists());
}

#[test]
fn per_folder_album_names_from_odd_folder_names_are_safe() {
    let env = Env::new();
    env.write("..hidden-ish/a.jpg", &bytes("a", 100)); // a hidden folder: ignored
    env.write("back\\slash/b.jpg", &bytes("b", 100));
    env.write("CON/c.jpg", &bytes("c", 100));
    env.write("tab\there/d.jpg", &bytes("d", 100));
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(names, ["_CON/c.jpg", "back_slash/b.jpg", "tab_here/d.jpg"]);
}

#[test]
fn an_empty_file_and_a_file_with_a_newline_in_its_name_are_backed_up() {
    let env = Env::new();
    env.write("empty.jpg", b"");
    env.write("two\nlines.jpg", &bytes("nl", 100));
    env.write("-leading-dash.jpg", &bytes("dash", 100));
    env.write("emoji 🌅.jpg", &bytes("emoji", 100));
    env.watch(&[]);
    env.sync().ok();
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(
        names,
        [
            "Photos/-leading-dash.jpg",
            "Photos/emoji 🌅.jpg",
            "Photos/empty.jpg",
            "Photos/two_lines.jpg"
        ]
    );
}
