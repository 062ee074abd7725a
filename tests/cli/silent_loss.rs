//! Nothing is lost without a word: a destination is checked, not believed
//! (an unmounted drive's empty mount point, a deleted library, a
//! case-insensitive exFAT drive, a second computer writing into the same
//! folder), and a freed inode is not taken for a moved photo.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::*;

/// The content hashes of every file below `dir` (outside Shoebox's own
/// bookkeeping).
fn contents(dir: &Path) -> BTreeSet<String> {
    files_below(dir).into_values().collect()
}

/// `dest add NAME local --path DIR`, which must succeed.
fn add_folder_dest(env: &Env, name: &str, dir: &Path) {
    env.run([
        "dest",
        "add",
        name,
        "local",
        "--path",
        dir.to_str().unwrap(),
    ])
    .ok();
}

/// A "drive" (a folder of the test, `disk`) mounted at `mnt` and added as
/// the destination `usb`.
fn usb_drive(env: &Env) -> (PathBuf, PathBuf, BindMount) {
    let disk = env.tmp.path().join("disk");
    let mnt = env.tmp.path().join("media/usb");
    fs::create_dir_all(&disk).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    let mount = BindMount::mount(&disk, &mnt);
    add_folder_dest(env, "usb", &mnt);
    (disk, mnt, mount)
}

#[test]
fn an_empty_mount_point_where_the_destination_drive_was_is_never_written_into() {
    let env = Env::new();
    let (disk, mnt, mount) = usb_drive(&env);
    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--dest", "usb", "--album", "A"]);
    env.sync().ok();
    assert!(files_below(&disk).contains_key("A/a.jpg"));

    drop(mount); // the drive is away: its mount point is an empty folder
    env.write("b.jpg", &bytes("b", 1000));
    let r = env.sync();
    assert_eq!(r.code, 1, "a pass that could not back up b.jpg fails");
    let why = r.json()["unavailable_destinations"].to_string();
    assert!(
        why.contains("is the drive mounted"),
        "the message says what to do: {why}"
    );
    assert_eq!(
        fs::read_dir(&mnt).unwrap().count(),
        0,
        "nothing was written onto the system disk under the mount point"
    );

    let _mount = BindMount::mount(&disk, &mnt);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "the drive is back: b.jpg goes to it: {s}");
    assert!(files_below(&disk).contains_key("A/b.jpg"));
}

#[test]
fn a_drive_pulled_out_under_run_is_not_written_onto_the_system_disk() {
    let env = Env::new();
    let (disk, mnt, mount) = usb_drive(&env);
    env.watch(&["--dest", "usb", "--album", "A"]);
    let run = env.spawn_run(&["--poll-every", "2s"]);
    let mark = run.mark();
    env.write("a.jpg", &bytes("a", 1000));
    run.wait_for(mark, SECS(30), done_for("a.jpg"));

    drop(mount); // pulled out while the engine runs
    let mark = run.mark();
    env.write("b.jpg", &bytes("b", 1000));
    run.wait_for(mark, SECS(30), |v| v["event"] == "destination_unavailable");
    assert_eq!(
        fs::read_dir(&mnt).unwrap().count(),
        0,
        "nothing was written onto the system disk under the mount point"
    );
    let _mount = BindMount::mount(&disk, &mnt);
    run.wait_for(mark, SECS(60), done_for("b.jpg"));
    assert!(files_below(&disk).contains_key("A/b.jpg"));
}

#[test]
fn a_deleted_library_is_noticed_and_dest_reset_backs_everything_up_again() {
    let env = Env::new();
    for i in 0..3 {
        env.write(&format!("{i}.jpg"), &bytes(&i.to_string(), 1000));
    }
    env.watch(&["--album", "A"]);
    env.sync().ok();
    fs::remove_dir_all(env.library()).unwrap();

    let r = env.sync();
    assert_eq!(r.code, 1, "a library that vanished is not up to date");
    let why = r.json()["unavailable_destinations"].to_string();
    assert!(
        why.contains("dest reset library"),
        "the message names the way out: {why}"
    );
    assert!(env.library_files().is_empty(), "nothing half-restored");

    env.run(["dest", "reset", "library"]).ok();
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 3, "every file is backed up again: {s}");
    assert_eq!(env.library_files().len(), 3);
}

/// An exFAT file system on a loop device, mounted with exfat-fuse (the
/// kernel here has no exfat driver): case-insensitive, no hard links, and
/// it refuses `?` and `:` in names, as users' external drives do.
struct ExfatDrive {
    mnt: PathBuf,
    device: String,
}

impl ExfatDrive {
    fn mount(dir: &Path) -> ExfatDrive {
        let image = dir.join("exfat.img");
        let mnt = dir.join("exfat");
        fs::create_dir_all(&mnt).unwrap();
        fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let ok = |c: &mut Command| {
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "{c:?}: {} (needs root and exfatprogs, exfat-fuse: scripts/install-deps)",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        ok(Command::new("mkfs.exfat").arg(&image));
        let device = ok(Command::new("losetup").args(["-f", "--show"]).arg(&image));
        ok(Command::new("mount.exfat-fuse").arg(&device).arg(&mnt));
        ExfatDrive { mnt, device }
    }
}

impl Drop for ExfatDrive {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[test]
fn case_twins_and_names_the_drive_refuses_all_survive_on_an_exfat_drive() {
    let env = Env::new();
    let drive = ExfatDrive::mount(env.tmp.path());
    let mut want = BTreeSet::new();
    for i in 0..30 {
        for name in [format!("IMG_{i:04}.JPG"), format!("IMG_{i:04}.jpg")] {
            let data = bytes(&name, 2000);
            want.insert(hash(&data));
            env.write(&name, &data);
        }
    }
    for name in ["12:30 lunch.jpg", "what?.jpg", "Été.jpg"] {
        let data = bytes(name, 2000);
        want.insert(hash(&data));
        env.write(name, &data);
    }
    // The NFD spelling of "Été.jpg": another file to the user, one name to
    // a macOS disk.
    let nfd = bytes("nfd", 2000);
    want.insert(hash(&nfd));
    env.write("E\u{301}te\u{301}.jpg", &nfd);
    add_folder_dest(&env, "usb", &drive.mnt);
    env.watch(&["--dest", "usb", "--album", "Trip"]);
    let s = env.run(["sync", "--json", "--settle", "100ms", "--workers", "4"]);
    let s = s.ok().json();
    assert_eq!(s["uploaded"], want.len(), "{s}");
    assert_eq!(
        contents(&drive.mnt),
        want,
        "every photo is on the drive with its own content, none overwritten by its twin"
    );
    let again = env.sync().ok().json();
    assert_eq!(
        again["uploaded"], 0,
        "nothing fails or retries forever: {again}"
    );
}

#[test]
fn two_computers_backing_up_into_one_folder_both_end_complete() {
    let a = Env::new();
    let b = Env::new();
    let nas = a.tmp.path().join("nas");
    fs::create_dir_all(&nas).unwrap();
    let mut want = BTreeSet::new();
    for (env, who) in [(&a, "laptop"), (&b, "desktop")] {
        for i in 0..150 {
            let data = bytes(&format!("{who} {i}"), 3000);
            want.insert(hash(&data));
            env.write(&format!("IMG_{i:04}.jpg"), &data);
        }
        add_folder_dest(env, "nas", &nas);
        env.watch(&["--dest", "nas", "--album", "Family"]);
    }
    // Both at once, as two computers whose schedules meet.
    let sync = |env: &Env| {
        env.cmd()
            .args(["sync", "--json", "--settle", "100ms", "--workers", "4"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut ca, mut cb) = (sync(&a), sync(&b));
    assert!(ca.wait().unwrap().success() && cb.wait().unwrap().success());
    for env in [&a, &b] {
        let s = env.sync().ok().json();
        assert_eq!(s["uploaded"], 0, "the first pass was complete: {s}");
    }
    let got = files_below(&nas);
    assert_eq!(got.len(), 300, "{} files", got.len());
    assert_eq!(
        got.into_values().collect::<BTreeSet<_>>(),
        want,
        "neither computer overwrote the other's photos"
    );
}

/// A small ext4 file system of the test's own on a loop device, so that
/// nothing else on the machine takes the inode the test frees.
struct Ext4Disk(PathBuf);

impl Ext4Disk {
    fn mount(image: &Path, at: &Path) -> Ext4Disk {
        fs::create_dir_all(at).unwrap();
        fs::File::create(image).unwrap().set_len(32 << 20).unwrap();
        for c in [
            Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .arg(image)
                .output(),
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(image)
                .arg(at)
                .output(),
        ] {
            let out = c.unwrap();
            assert!(
                out.status.success(),
                "{} (needs root)",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ext4Disk(at.to_path_buf())
    }
}

impl Drop for Ext4Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_new_photo_that_takes_a_freed_inode_is_uploaded_not_taken_for_a_move() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let _disk = Ext4Disk::mount(&env.tmp.path().join("card.img"), &env.src);
    let first = bytes("first", 5000);
    let taken = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let p1 = env.write("IMG_0001.jpg", &first);
    fs::File::options()
        .write(true)
        .open(&p1)
        .unwrap()
        .set_modified(taken)
        .unwrap();
    env.watch(&["--album", "Burst"]);
    env.sync().ok();
    let inode = fs::metadata(&p1).unwrap().ino();
    fs::remove_file(&p1).unwrap();
    // The next photo of the burst, same size and time (`cp -p`): ext4
    // hands it the freed inode.
    let second = bytes("second", 5000);
    let p2 = env.src.join("IMG_0002.jpg");
    fs::write(&p2, &second).unwrap();
    assert_eq!(
        fs::metadata(&p2).unwrap().ino(),
        inode,
        "the file system gave the new photo the freed inode"
    );
    fs::File::options()
        .write(true)
        .open(&p2)
        .unwrap()
        .set_modified(taken)
        .unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "the new photo's bytes are sent: {s}");
    let lib = env.library_files();
    assert_eq!(lib.get("Burst/IMG_0002.jpg"), Some(&hash(&second)));
    assert_eq!(
        lib.get("Burst/IMG_0001.jpg"),
        Some(&hash(&first)),
        "the deleted photo stays in the album (the watch keeps deletions)"
    );
}

#[test]
fn the_systems_pseudo_file_systems_cannot_be_watched() {
    let env = Env::new();
    for dir in ["/proc", "/sys", "/dev", "/proc/self"] {
        let r = env.run(["watch", "add", dir]);
        assert_ne!(r.code, 0, "{dir} is refused");
        assert!(
            r.stderr.contains("not files to back up"),
            "{dir}: the message says why: {}",
            r.stderr
        );
    }
    let listed = env.run(["watch", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().map_or(0, Vec::len), 0, "{listed}");
}

/// A misbehaving server started for the test, added as the WebDAV
/// destination `name` (no account).
fn webdav_at(
    env: &Env,
    name: &str,
    behaviour: crate::hostile::Behaviour,
) -> crate::hostile::Hostile {
    let server = crate::hostile::Hostile::start(behaviour);
    env.run(["dest", "add", name, "webdav", "--url", &server.url()])
        .ok();
    server
}

#[test]
fn a_server_that_answers_200_to_everything_is_refused_not_believed() {
    use crate::hostile::Behaviour;
    let env = Env::new();
    let server = webdav_at(&env, "web", Behaviour::OkToEverything);
    let mut add_s3 = env.cmd();
    add_s3
        .args(["dest", "add", "bucket", "s3", "--endpoint"])
        .arg(format!("http://127.0.0.1:{}", server.port))
        .args([
            "--bucket",
            "photos",
            "--path-style",
            "--access-key-id",
            "key",
        ])
        .args(["--allow-insecure-http"])
        .env("SHOEBOX_SECRET_BUCKET", "secret");
    assert_eq!(run_within(&mut add_s3, SECS(30), "dest add").code, 0);
    for i in 0..3 {
        env.write(&format!("p{i}.jpg"), &bytes(&i.to_string(), 1000));
    }
    env.watch(&["--dest", "web", "--album", "A"]);
    let other = env.tmp.path().join("Phone");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("q.jpg"), bytes("q", 1000)).unwrap();
    env.run(["watch", "add", other.to_str().unwrap(), "--dest", "bucket"])
        .ok();

    let mut sync = env.cmd();
    sync.args(["sync", "--json", "--settle", "100ms"])
        .env("SHOEBOX_SECRET_BUCKET", "secret");
    let r = run_within(&mut sync, SECS(120), "a sync against a catch-all server");
    assert_eq!(r.code, 1, "nothing was backed up: {}", r.stdout);
    let why = r.json()["unavailable_destinations"].to_string();
    for protocol in ["WebDAV", "S3"] {
        assert!(
            why.contains(&format!("not behaving like a {protocol} server")),
            "the message says what is wrong: {why}"
        );
    }
    assert!(
        server.requests() < 50,
        "a handful of requests, not a suffix hunt: {}",
        server.requests()
    );
    for w in env.status()["watches"].as_array().unwrap() {
        assert_eq!(w["uploaded"], 0, "nothing is recorded as uploaded: {w}");
    }
    let mut test = env.cmd();
    test.args(["dest", "test", "web"]);
    let t = run_within(&mut test, SECS(60), "dest test");
    assert_eq!(t.code, 1, "dest test fails: {}", t.stdout);
    assert!(
        t.stdout.contains("not behaving like a WebDAV server"),
        "{}",
        t.stdout
    );
}

#[test]
fn a_stalled_server_delays_neither_another_destination_nor_a_stop() {
    use crate::hostile::Behaviour;
    let env = Env::new();
    let server = webdav_at(&env, "slow", Behaviour::NeverAnswers);
    let other = env.tmp.path().join("Phone");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("q.jpg"), bytes("q", 1000)).unwrap();
    env.run(["watch", "add", other.to_str().unwrap(), "--dest", "slow"])
        .ok();
    env.watch(&["--album", "Local"]);
    // The engine's requests would wait a minute for an answer.
    let mut run = env.spawn_run(&[]);
    let mark = run.mark();
    env.write("new.jpg", &bytes("new", 1000));
    run.wait_for(mark, SECS(20), done_for("new.jpg"));
    assert!(env.library_files().contains_key("Local/new.jpg"));
    assert!(
        server.requests() >= 1,
        "the stalled server was asked meanwhile"
    );
    run.signal(libc::SIGTERM);
    assert!(
        run.wait_exit(SECS(15)).is_some(),
        "SIGTERM is obeyed while a server stalls"
    );
}

#[test]
fn dest_test_against_a_server_that_never_answers_ends_and_says_so() {
    use crate::hostile::Behaviour;
    let env = Env::new();
    let _server = webdav_at(&env, "slow", Behaviour::NeverAnswers);
    // Every request is bounded (2 s of stall here, SHOEBOX_HTTP_TIMEOUT):
    // the first check's OPTIONS had no bound and waited for ever.
    let r = run_within(
        env.cmd()
            .env("SHOEBOX_HTTP_TIMEOUT", "2")
            .args(["dest", "test", "slow"]),
        SECS(30),
        "dest test against a server that never answers",
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("FAIL") && r.stdout.contains("reachable"),
        "{}",
        r.stdout
    );
}

#[test]
fn commands_racing_a_running_engine_never_crash_it() {
    use crate::webdav::{PASS, add_dest, setup};
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    let mut want = BTreeSet::new();
    for i in 0..40 {
        let data = bytes(&format!("race {i}"), 4_000_000);
        want.insert(hash(&data));
        env.write(&format!("IMG_{i:03}.jpg"), &data);
    }
    env.watch(&["--dest", "dav", "--album", "Race"]);
    // One upload at a time, so that the commands below meet uploads in flight.
    let mut run = env.spawn_run_with_env(&["--workers", "1"], &[("SHOEBOX_SECRET_DAV", PASS)]);
    let extra = env.tmp.path().join("Extra");
    fs::create_dir_all(&extra).unwrap();
    fs::write(extra.join("x.jpg"), bytes("x", 1000)).unwrap();
    let done = |run: &Running| {
        run.events_after(0)
            .iter()
            .filter(|v| v["event"] == "file_done")
            .count()
    };
    assert!(done(&run) < 40, "the commands meet uploads in flight");
    for _ in 0..5 {
        let mut edit = env.cmd();
        edit.env("SHOEBOX_SECRET_DAV", PASS)
            .args(["dest", "edit", "dav", "--url", &dav.url()]);
        let r = run_within(&mut edit, SECS(60), "dest edit");
        assert_eq!(r.code, 0, "dest edit: {}{}", r.stdout, r.stderr);
        env.run(["watch", "add", extra.to_str().unwrap()]).ok();
        env.run(["watch", "remove", extra.to_str().unwrap()]).ok();
        let mut test = env.cmd();
        test.env("SHOEBOX_SECRET_DAV", PASS)
            .args(["dest", "test", "dav"]);
        let r = run_within(&mut test, SECS(60), "dest test");
        assert_eq!(r.code, 0, "dest test: {}{}", r.stdout, r.stderr);
    }
    let photo_done = |v: &serde_json::Value| {
        v["event"] == "file_done" && v["path"].as_str().is_some_and(|p| p.contains("IMG_"))
    };
    run.wait_count(0, 40, SECS(120), photo_done);
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the engine is still running"
    );
    let albums = dav.albums();
    assert_eq!(albums.len(), 40, "every photo once: {albums:?}");
    assert_eq!(albums.into_values().collect::<BTreeSet<_>>(), want);
    let failed = env.status()["watches"][0]["failed"].clone();
    assert_eq!(failed, 0, "no upload failed because of the commands");
}

#[test]
fn a_path_too_long_to_open_is_named_with_its_reason_and_the_sync_fails() {
    let env = Env::new();
    env.write("ok.jpg", &bytes("ok", 1000));
    // 17 folders of 250 bytes: the photo's path is over 4,096 bytes, which
    // no system call takes. Made one level at a time from inside.
    let deep = Command::new("python3")
        .arg("-c")
        .arg(
            "import os\nfor _ in range(17):\n    os.mkdir('d' * 250)\n    os.chdir('d' * 250)\n\
             open('deep.jpg', 'w').write('photo')",
        )
        .current_dir(&env.src)
        .status()
        .unwrap();
    assert!(deep.success(), "the deep tree was made");
    env.watch(&["--album", "A"]);
    let r = env.sync();
    assert_eq!(r.code, 1, "not every file is in its album: {}", r.stdout);
    let s = r.json();
    assert_eq!(s["uploaded"], 1, "the rest is backed up: {s}");
    assert_eq!(s["unreadable_folders"], 1, "{s}");
    let skips = s["skips"].to_string();
    assert!(
        skips.contains("longer than this system allows"),
        "the true reason, not a permissions hint: {skips}"
    );
    let w = &env.status()["watches"][0];
    assert_eq!(w["skipped"], 1, "status counts it: {w}");
}

#[test]
fn overlaps_are_caught_through_bind_mounts_and_links() {
    let env = Env::new();
    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--album", "A"]);
    // The watched folder again, through a bind mount.
    let alias = env.tmp.path().join("alias");
    fs::create_dir_all(&alias).unwrap();
    let mount = BindMount::mount(&env.src, &alias);
    let r = env.run(["watch", "add", alias.to_str().unwrap()]);
    assert_ne!(r.code, 0, "the same folder is not watched twice");
    assert!(r.stderr.contains("already watched"), "{}", r.stderr);
    // A destination inside the watch, reached through the bind mount.
    let inside = alias.join("backup");
    fs::create_dir_all(&inside).unwrap();
    let r = env.run([
        "dest",
        "add",
        "inside",
        "local",
        "--path",
        inside.to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "a destination inside a watch is refused");
    assert!(r.stderr.contains("overlaps"), "{}", r.stderr);
    fs::remove_dir(&inside).unwrap();
    drop(mount);

    // A destination folder later replaced by a link into the watch.
    let usb = env.tmp.path().join("usb");
    fs::create_dir_all(&usb).unwrap();
    add_folder_dest(&env, "usb", &usb);
    let phone = env.tmp.path().join("Phone");
    fs::create_dir_all(&phone).unwrap();
    fs::write(phone.join("p.jpg"), bytes("p", 1000)).unwrap();
    env.run(["watch", "add", phone.to_str().unwrap(), "--dest", "usb"])
        .ok();
    env.sync().ok();
    fs::remove_dir_all(&usb).unwrap();
    std::os::unix::fs::symlink(&env.src, &usb).unwrap();
    let before = files_below(&env.src);
    fs::write(phone.join("q.jpg"), bytes("q", 1000)).unwrap();
    let r = env.sync();
    assert_eq!(r.code, 1, "q.jpg could not be backed up: {}", r.stdout);
    let why = r.json()["unavailable_destinations"].to_string();
    assert!(why.contains("leads into the watched folder"), "{why}");
    assert_eq!(
        files_below(&env.src),
        before,
        "nothing was written into the watched folder"
    );
}

#[test]
fn a_server_that_acknowledges_uploads_but_keeps_nothing_is_caught_at_once() {
    use crate::hostile::Behaviour;
    let env = Env::new();
    let _server = webdav_at(&env, "web", Behaviour::StoresNothing);
    for i in 0..3 {
        env.write(&format!("p{i}.jpg"), &bytes(&i.to_string(), 1000));
    }
    env.watch(&["--dest", "web", "--album", "A"]);
    let mut sync = env.cmd();
    sync.args(["sync", "--json", "--settle", "100ms"]);
    let r = run_within(
        &mut sync,
        SECS(120),
        "a sync against a server that keeps nothing",
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let s = r.json();
    assert_eq!(s["uploaded"], 0, "nothing is recorded as uploaded: {s}");
    let why = s["unavailable_destinations"].to_string();
    assert!(why.contains("but it is not there"), "{why}");
    assert_eq!(env.status()["watches"][0]["uploaded"], 0);
}

#[test]
fn a_redirect_is_reported_and_never_taken_for_accepted_credentials() {
    use crate::hostile::Behaviour;
    let env = Env::new();
    let _server = webdav_at(&env, "web", Behaviour::Redirects);
    let mut test = env.cmd();
    test.args(["dest", "test", "web"]);
    let t = run_within(&mut test, SECS(60), "dest test");
    assert_eq!(t.code, 1, "{}", t.stdout);
    assert!(!t.stdout.contains("accepted"), "{}", t.stdout);
    assert!(
        t.stdout.contains("http://127.0.0.1:9/login") && t.stdout.contains("instead of answering"),
        "it says where the server sends requests: {}",
        t.stdout
    );
}
