//! `shoebox restore`: the disaster case (a new data folder, only the
//! destination's address and credentials) from an SFTP server, Garage and
//! a folder; names and dates come back, nothing is overwritten, and a
//! restore killed in the middle continues without a partial file.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::sshd::SshServer;
use crate::support::*;

/// Files in two albums (one with an old date), backed up per folder.
pub fn photos(env: &Env) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    for (path, len) in [
        ("Trip one/a b.jpg", 20_000),
        ("Trip one/clip.mov", 1 << 20),
        ("Z\u{fc}rich/c.jpg", 30_000),
    ] {
        let data = bytes(path, len);
        let p = env.write(path, &data);
        set_mtime(&p, old_date());
        want.insert(path.to_string(), hash(&data));
    }
    want
}

fn old_secs() -> i64 {
    old_date()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Restores everything into `out` and checks names, content and dates;
/// then again (nothing is written twice); then with a different file in
/// the way (restored beside it under a number, and said).
pub fn restore_scenario(out: &Path, want: &BTreeMap<String, String>, restore: &dyn Fn() -> Run) {
    let r = restore().ok();
    let summary = r.json();
    assert_eq!(summary["restored"], 3, "{}", r.stdout);
    assert_eq!(&files_below(out), want, "every file, by name, whole");
    let dated = fs::metadata(out.join("Trip one/a b.jpg")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::mtime(&dated),
        old_secs(),
        "with its date"
    );

    let summary = restore().ok().json();
    assert_eq!(
        (
            summary["restored"].as_u64(),
            summary["already_there"].as_u64()
        ),
        (Some(0), Some(3)),
        "{summary}"
    );

    fs::write(out.join("Z\u{fc}rich/c.jpg"), b"my own file").unwrap();
    let r = restore().ok();
    let renamed: Vec<Value> = r
        .lines()
        .into_iter()
        .filter(|l| l["outcome"] == "renamed")
        .collect();
    assert_eq!(renamed.len(), 1, "{}", r.stdout);
    assert!(renamed[0]["path"].as_str().unwrap().ends_with("c (2).jpg"));
    assert_eq!(
        fs::read(out.join("Z\u{fc}rich/c.jpg")).unwrap(),
        b"my own file"
    );
    assert_eq!(
        hash(&fs::read(out.join("Z\u{fc}rich/c (2).jpg")).unwrap()),
        want["Z\u{fc}rich/c.jpg"],
        "nothing in the folder is overwritten"
    );
    // And again: the numbered copy is found, not made a third time.
    let summary = restore().ok().json();
    assert_eq!(summary["already_there"], 3, "{summary}");
    assert!(!out.join("Z\u{fc}rich/c (3).jpg").exists());
}

#[test]
fn a_new_laptop_restores_everything_from_an_sftp_server() {
    let env = Env::new();
    let server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = crate::sftp::add_dest(&env, &server);
    let want = photos(&env);
    env.watch(&["--mode", "per-folder", "--dest", "ssh"]);
    run_within(
        crate::sftp::shoebox(&env, &key).args(["sync", "--json", "--settle", "100ms"]),
        SECS(120),
        "shoebox sync",
    )
    .ok();

    // A new laptop: an empty data folder, the server's address and key.
    let laptop = Env::new();
    crate::sftp::add_dest(&laptop, &server);
    let out = laptop.tmp.path().join("Restored");
    // No --dest: the one destination besides the library.
    let restore = || {
        run_within(
            crate::sftp::shoebox(&laptop, &key)
                .args(["restore", "--json", "--to"])
                .arg(&out),
            SECS(120),
            "shoebox restore",
        )
    };
    restore_scenario(&out, &want, &restore);
    // With two, it asks which.
    let usb = laptop.tmp.path().join("usb");
    fs::create_dir_all(&usb).unwrap();
    laptop
        .run([
            "dest",
            "add",
            "usb",
            "local",
            "--path",
            usb.to_str().unwrap(),
        ])
        .ok();
    let r = restore();
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("say which destination to restore from with --dest: library, ")
            && r.stderr.contains("ssh")
            && r.stderr.contains("usb"),
        "{}",
        r.stderr
    );
}

#[test]
fn garage_restores_an_album_with_the_dates_kept_in_metadata() {
    let env = Env::new();
    let garage = crate::s3::Garage::start(&env.tmp.path().join("garage"));
    crate::s3::add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let want = photos(&env);
    env.watch(&["--mode", "per-folder", "--dest", "garage"]);
    crate::s3::sync_s3(&env, crate::s3::SECRET).ok();

    let laptop = Env::new();
    crate::s3::add_dest(&laptop, garage.s3_port, &["--allow-insecure-http"]).ok();
    let restore = |albums: &[&str], out: &Path| {
        let mut cmd = laptop.cmd();
        cmd.env("SHOEBOX_SECRET_GARAGE", crate::s3::SECRET)
            .args(["restore", "--dest", "garage", "--json", "--to"])
            .arg(out);
        for a in albums {
            cmd.args(["--album", a]);
        }
        run_within(&mut cmd, SECS(120), "shoebox restore")
    };
    // One album.
    let one = laptop.tmp.path().join("One album");
    let s = restore(&["Z\u{fc}rich"], &one).ok().json();
    assert_eq!(s["restored"], 1, "{s}");
    assert_eq!(
        files_below(&one).into_keys().collect::<Vec<_>>(),
        ["Z\u{fc}rich/c.jpg"],
        "only the album asked for"
    );
    // The files a pattern names, across albums.
    let picked = laptop.tmp.path().join("Picked");
    let mut cmd = laptop.cmd();
    cmd.env("SHOEBOX_SECRET_GARAGE", crate::s3::SECRET)
        .args([
            "restore", "--dest", "garage", "--json", "--path", "*/*.jpg", "--to",
        ])
        .arg(&picked);
    run_within(&mut cmd, SECS(120), "shoebox restore --path").ok();
    assert_eq!(
        files_below(&picked).into_keys().collect::<Vec<_>>(),
        ["Trip one/a b.jpg", "Z\u{fc}rich/c.jpg"],
        "the photos, not the video"
    );
    // Everything.
    let out = laptop.tmp.path().join("Restored");
    restore_scenario(&out, &want, &|| restore(&[], &out));
}

#[test]
fn a_restore_killed_in_the_middle_leaves_no_partial_file_and_continues() {
    let env = Env::new();
    let video: Vec<u8> = (0..96u32)
        .flat_map(|i| {
            let mut c = bytes("video", 1 << 20);
            c[..4].copy_from_slice(&i.to_le_bytes());
            c
        })
        .collect();
    env.write("clip.mov", &video);
    env.watch(&[]);
    env.sync().ok();

    // A new data folder, restoring from the old one's library folder.
    let laptop = Env::new();
    let library = env.library();
    laptop
        .run([
            "dest",
            "add",
            "old",
            "local",
            "--path",
            library.to_str().unwrap(),
        ])
        .ok();
    let out = laptop.tmp.path().join("Restored");
    let mut child = laptop
        .cmd()
        .args(["restore", "--dest", "old", "--to"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let album = out.join("Photos");
    poll_until(SECS(60), "a MiB of the video restored", || {
        fs::read_dir(&album)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".part")
                    && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
            })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !album.join("clip.mov").exists(),
        "no partial file under the final name"
    );

    let s = laptop
        .run([
            "restore",
            "--dest",
            "old",
            "--json",
            "--to",
            out.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(s["restored"], 1, "{s}");
    assert_eq!(
        hash(&fs::read(album.join("clip.mov")).unwrap()),
        hash(&video)
    );
    let names: Vec<String> = fs::read_dir(&album)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["clip.mov"], "nothing unfinished is left");
}

#[test]
fn wsgidav_restores_everything_with_the_dates_it_keeps() {
    use crate::dav_servers::{DavServer, Server};
    let env = Env::new();
    let server = DavServer::start(Server::WsgiDav, &env.tmp.path().join("wsgidav"));
    crate::dav_servers::add_dest(&env, &server);
    let want = photos(&env);
    env.watch(&["--mode", "per-folder", "--dest", "dav"]);
    let with_secret = |e: &Env| {
        let mut c = e.cmd();
        c.env("SHOEBOX_SECRET_DAV", crate::webdav::PASS);
        c
    };
    run_within(
        with_secret(&env).args(["sync", "--json", "--settle", "100ms"]),
        SECS(120),
        "shoebox sync",
    )
    .ok();

    let laptop = Env::new();
    crate::dav_servers::add_dest(&laptop, &server);
    let out = laptop.tmp.path().join("Restored");
    restore_scenario(&out, &want, &|| {
        run_within(
            with_secret(&laptop)
                .args(["restore", "--dest", "dav", "--json", "--to"])
                .arg(&out),
            SECS(120),
            "shoebox restore",
        )
    });
}
