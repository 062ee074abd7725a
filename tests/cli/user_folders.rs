//! The worst days of the user's own disks: a destination that fills up, and
//! watched folders whose files and permissions change under the engine.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A tmpfs of `size` mounted at `dir` for the test's lifetime. Mounting
/// needs root (CI runs as root); without it the test fails and says so.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn add_local_dest(env: &Env, name: &str, path: &Path) {
    env.run([
        OsStr::new("dest"),
        OsStr::new("add"),
        OsStr::new(name),
        OsStr::new("local"),
        OsStr::new("--path"),
        path.as_os_str(),
    ])
    .ok();
}

#[test]
fn a_full_destination_disk_pauses_that_destination_and_resumes_when_space_returns() {
    let env = Env::new();
    let nas = Tmpfs::mount(&env.tmp.path().join("nas"), "3m");
    add_local_dest(&env, "nas", &nas.0);
    env.watch(&["--dest", "nas"]);
    let run = env.spawn_run(&[]);
    let mark = run.mark();
    let mut want = std::collections::BTreeMap::new();
    for i in 0..8 {
        let data = bytes(&format!("big{i}"), 1 << 20);
        env.write(&format!("IMG_{i}.jpg"), &data);
        want.insert(format!("Photos/IMG_{i}.jpg"), hash(&data));
    }
    let full = run.wait_for(mark, SECS(30), |v| v["event"] == "destination_unavailable");
    let why = full["error"].as_str().unwrap();
    assert!(
        why.contains("is full") && why.contains("Free some space"),
        "the message says what happened and what to do: {why}"
    );
    let st = env.status();
    assert_eq!(
        st["watches"][0]["failed"], 0,
        "a full disk fails no file: {st}"
    );
    assert!(
        files_below(&nas.0).len() < 8,
        "the disk really was too small for everything"
    );
    // Hosts are told, and `status` says so, with a code a window reads.
    let health = run.wait_for(mark, SECS(30), |v| v["event"] == "destination_health");
    assert_eq!(health["down"][0]["code"], "dest_full", "{health}");
    let st = env.status();
    assert_eq!(st["destinations_down"][0]["dest"], "nas", "{st}");
    assert_eq!(st["destinations_down"][0]["code"], "dest_full", "{st}");
    // Space comes back: the engine finds out by itself.
    let back = run.mark();
    nas.resize("64m");
    run.wait_until(SECS(60), || files_below(&nas.0) == want);
    run.wait_for(back, SECS(30), |v| {
        v["event"] == "destination_health" && v["down"].as_array().is_some_and(|d| d.is_empty())
    });
    assert_eq!(env.status()["destinations_down"], serde_json::json!([]));
    let mut staged = Vec::new();
    walk_all(&nas.0.join(".shoebox-staging"), &mut staged);
    assert_eq!(staged.len(), 0, "no half-written file is left on the disk");
}

#[test]
fn a_folder_whose_permissions_are_removed_loses_nothing_and_catches_up_when_restored() {
    let env = Env::new();
    env.write("Trip/a.jpg", &bytes("a", 1000));
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    let trip = env.src.join("Trip");
    fs::set_permissions(&trip, fs::Permissions::from_mode(0o000)).unwrap();
    env.write("b.jpg", &bytes("b", 1000));
    // Root reads through permission bits; drop that power like a user has none.
    let r = Run::from(
        Command::new("setpriv")
            .args(["--inh-caps=-all", "--bounding-set=-all", BIN, "--home"])
            .arg(&env.home)
            .args(["sync", "--json", "--settle", "100ms"])
            .output()
            .unwrap(),
    );
    let lib = env.library_files();
    assert!(
        lib.contains_key("Photos/a.jpg"),
        "an unreadable folder is not a deleted folder: its files stay in the album ({})",
        r.stdout
    );
    assert!(lib.contains_key("Photos/b.jpg"), "the rest is backed up");
    fs::set_permissions(&trip, fs::Permissions::from_mode(0o755)).unwrap();
    env.write("Trip/c.jpg", &bytes("c", 1000));
    env.sync().ok();
    assert_eq!(env.library_files().len(), 3, "{:?}", env.library_files());
}

#[test]
fn a_file_replaced_by_a_folder_of_the_same_name_is_handled_as_two_changes() {
    let env = Env::new();
    env.write("Scan.jpg", &bytes("scan", 1000));
    env.watch(&[]);
    env.sync().ok();
    fs::remove_file(env.src.join("Scan.jpg")).unwrap();
    env.write("Scan.jpg/page1.jpg", &bytes("p1", 1000));
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    let lib = env.library_files();
    assert!(lib.contains_key("Photos/page1.jpg"));
    assert!(
        lib.contains_key("Photos/Scan.jpg"),
        "the old file stays in the album (policy keep)"
    );
}

#[test]
fn a_file_edited_with_an_older_timestamp_is_still_seen_as_edited() {
    // The clock jumped backwards: the new version's mtime is older than the
    // one the index holds. Size, mtime, ctime and inode are compared for
    // equality, never for order, so this is a change.
    let env = Env::new();
    let p = env.write("a.jpg", &bytes("v1", 1000));
    env.watch(&[]);
    env.sync().ok();
    fs::write(&p, bytes("v2", 1000)).unwrap();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400 * 365);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "the edit is sent: {s}");
    assert_eq!(
        env.library_files()["Photos/a.jpg"],
        hash(&bytes("v2", 1000))
    );
}

#[test]
fn a_file_that_vanishes_between_scan_and_upload_fails_nothing_else() {
    let env = Env::new();
    for i in 0..300 {
        env.write(&format!("f{i:03}.jpg"), &bytes(&format!("{i}"), 20_000));
    }
    env.watch(&[]);
    let (mut child, mut out) = env.spawn_sync();
    read_until(&mut out, 1, |v| v["event"] == "file_done");
    // Remove files the sync has listed but not yet sent.
    for i in 200..300 {
        fs::remove_file(env.src.join(format!("f{i:03}.jpg"))).unwrap();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(
        !rest.contains("\"file_failed\""),
        "a vanished file is not a failure: {rest}"
    );
    assert!(status.success(), "the sync completes");
    let lib = env.library_files();
    for i in 0..200 {
        assert!(lib.contains_key(&format!("Photos/f{i:03}.jpg")), "f{i:03}");
    }
    assert!(
        lib.keys().all(|k| {
            let n: usize = k[8..11].parse().unwrap();
            n < 200 || lib[k] == hash(&bytes(&format!("{n}"), 20_000))
        }),
        "whatever of the vanished files was sent is whole"
    );
}

#[test]
fn a_100k_file_deletion_under_remove_policy_is_held_not_executed() {
    // On a tmpfs: creating 100,000 files on this machine's ext4 takes
    // longer than the whole rest of the test.
    let mut env = Env::new();
    let fast = Tmpfs::mount(&env.tmp.path().join("fast"), "1g");
    env.home = fast.0.join("home");
    env.src = fast.0.join("Photos");
    fs::create_dir_all(&env.src).unwrap();
    for d in 0..100 {
        let dir = env.src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..1000 {
            fs::write(dir.join(format!("{i}.jpg")), b"x").unwrap();
        }
    }
    // Identical content is sent once per album and kept under every name
    // (hard links): 100,000 album names, each of which would be removed
    // with its file.
    env.watch(&["--on-delete", "remove", "--mode", "per-folder"]);
    env.run(["sync", "--settle", "0s"]).ok();
    let before = env.library_files();
    assert_eq!(before.len(), 100_000);
    for d in 0..100 {
        fs::remove_dir_all(env.src.join(format!("d{d:02}"))).unwrap();
    }
    let s = env.run(["sync", "--json", "--settle", "0s"]).json();
    assert_eq!(
        s["removed"], 0,
        "nothing is removed without confirmation: {s}"
    );
    assert_eq!(
        env.library_files(),
        before,
        "every album copy is still there"
    );
    assert!(
        s["deletions_held"][0]
            .as_str()
            .unwrap()
            .contains("100000 files vanished"),
        "the summary says what is held and why: {s}"
    );
    let w = &env.status()["watches"][0];
    assert_eq!(w["state"], "deletions_held");
    assert_eq!(w["deletions_held"], 100_000);
}

#[test]
fn an_unmounted_drive_removes_nothing_and_resumes_when_mounted_again() {
    let env = Env::new();
    let card = env.tmp.path().join("card");
    fs::create_dir_all(&card).unwrap();
    for i in 0..3 {
        fs::write(
            card.join(format!("IMG_{i}.jpg")),
            bytes(&i.to_string(), 1000),
        )
        .unwrap();
    }
    let mount = BindMount::mount(&card, &env.src);
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    assert_eq!(env.library_files().len(), 3);

    drop(mount); // unplugged: the mount point is an empty folder again
    assert_eq!(fs::read_dir(&env.src).unwrap().count(), 0);
    let r = env.sync();
    assert_eq!(r.code, 1, "not complete while the drive is away");
    let s = r.json();
    assert_eq!(s["removed"], 0, "an empty mount point deletes nothing: {s}");
    assert_eq!(env.library_files().len(), 3);
    assert_eq!(env.status()["watches"][0]["state"], "folder_missing");

    fs::write(card.join("IMG_new.jpg"), bytes("new", 1000)).unwrap();
    let _mount = BindMount::mount(&card, &env.src);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "only the new photo is sent: {s}");
    assert_eq!(env.library_files().len(), 4);
    assert_eq!(env.status()["watches"][0]["state"], "up_to_date");
}

#[test]
fn a_full_data_disk_makes_run_wait_and_carry_on_instead_of_exiting() {
    let env = Env::new();
    // The data folder on a small disk of its own.
    // (16 MiB: the store's write-ahead log alone grows to 4 MiB.)
    let _disk = Tmpfs::mount(&env.home, "16m");
    let backup = env.tmp.path().join("backup");
    fs::create_dir_all(&backup).unwrap();
    env.run([
        "dest",
        "add",
        "usb",
        "local",
        "--path",
        backup.to_str().unwrap(),
    ])
    .ok();
    env.watch(&["--dest", "usb", "--album", "A"]);
    env.write("first.jpg", &bytes("first", 1000));
    let run = env.spawn_run(&[]);
    run.wait_for(0, SECS(30), done_for("first.jpg"));
    // Fill the data disk to the last byte.
    let filler = env.home.join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0xA5u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mark = run.mark();
    for i in 0..300 {
        env.write(&format!("burst/{i:03}.jpg"), &bytes(&i.to_string(), 500));
    }
    let waiting = run.wait_for(mark, SECS(60), |v| v["event"] == "engine_waiting");
    assert!(
        waiting["reason"]
            .as_str()
            .is_some_and(|r| r.contains("is full")),
        "it says why: {waiting}"
    );
    let mut run = run;
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the engine waits, it does not exit"
    );
    fs::remove_file(&filler).unwrap();
    run.wait_until(SECS(120), || files_below(&backup).len() == 301);
    assert!(run.child.try_wait().unwrap().is_none());
}
