//! `shoebox verify`: an object deleted on the destination, one truncated,
//! one with a flipped byte (found with `--deep`) and one nobody recorded,
//! on the library, an SFTP server and Garage; `--repair` sends them again.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::sshd::SshServer;
use crate::support::*;

/// The album `Photos` on a destination, as the test changes it behind
/// Shoebox's back.
trait Album {
    fn read(&self, name: &str) -> Vec<u8>;
    /// The photo the object holds (decrypted, for an encrypted one).
    fn content(&self, name: &str) -> Vec<u8> {
        self.read(name)
    }
    fn write(&self, name: &str, data: &[u8]);
    fn remove(&self, name: &str);
    fn exists(&self, name: &str) -> bool;
}

/// An album that is a folder on this machine.
struct Folder(PathBuf);

impl Album for Folder {
    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.0.join(name)).unwrap()
    }
    fn write(&self, name: &str, data: &[u8]) {
        fs::write(self.0.join(name), data).unwrap();
    }
    fn remove(&self, name: &str) {
        fs::remove_file(self.0.join(name)).unwrap();
    }
    fn exists(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

/// Runs the whole check against a destination whose album `Photos` is
/// `album`; `shoebox` runs a command with whatever the destination needs.
fn verify_scenario(env: &Env, album: &dyn Album, shoebox: &dyn Fn(&[&str]) -> Run) {
    let mut want = BTreeMap::new();
    for name in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
        let data = bytes(name, 30_000);
        env.write(name, &data);
        want.insert(name.to_string(), hash(&data));
    }
    let s = shoebox(&["sync", "--json", "--settle", "100ms"])
        .ok()
        .json();
    assert_eq!(s["uploaded"], 4, "{s}");
    let r = shoebox(&["verify"]).ok();
    assert!(
        r.stdout
            .contains("checked 4 file(s): 0 missing, 0 damaged, 0 unexpected"),
        "{}",
        r.stdout
    );

    // d.jpg is deleted from the folder (its copy is kept), then from the
    // destination too: nothing can send it again.
    fs::remove_file(env.src.join("d.jpg")).unwrap();
    shoebox(&["sync", "--json", "--settle", "100ms"]).ok();
    album.remove("d.jpg");
    // a.jpg deleted, b.jpg cut short, one byte of c.jpg changed, a stray.
    album.remove("a.jpg");
    album.write("b.jpg", &album.read("b.jpg")[..10_000]);
    let mut flipped = album.read("c.jpg");
    flipped[12_345] ^= 0x01;
    album.write("c.jpg", &flipped);
    album.write("stray.jpg", b"not Shoebox's");

    let found = |r: &Run| -> BTreeMap<String, String> {
        r.lines()
            .iter()
            .filter(|l| l.get("finding").is_some())
            .map(|l| {
                (
                    l["name"].as_str().unwrap().to_string(),
                    l["finding"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let r = shoebox(&["verify", "--json"]);
    assert_eq!(r.code, 1, "missing and damaged files fail it: {}", r.stdout);
    assert_eq!(
        found(&r),
        BTreeMap::from([
            ("a.jpg".into(), "missing".into()),
            ("b.jpg".into(), "damaged".into()),
            ("d.jpg".into(), "missing".into()),
            ("stray.jpg".into(), "unexpected".into()),
        ]),
        "presence and size, from the album's listing: {}",
        r.stdout
    );
    let r = shoebox(&["verify", "--deep"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("damaged    Photos/c.jpg") && r.stdout.contains("content differs"),
        "--deep reads the content back: {}",
        r.stdout
    );

    let r = shoebox(&["verify", "--deep", "--repair", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let summary: Value = r.json();
    assert_eq!(
        (
            summary["queued_again"].as_u64(),
            summary["cannot_repair"].as_u64()
        ),
        (Some(3), Some(1)),
        "{summary}"
    );
    let s = shoebox(&["sync", "--json", "--settle", "100ms"])
        .ok()
        .json();
    assert_eq!(s["uploaded"], 3, "{s}");
    let on_dest = |name: &str| hash(&album.content(name));
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        assert_eq!(
            on_dest(name),
            want[name],
            "{name} is whole again, under its name"
        );
    }
    assert!(!album.exists("a (2).jpg") && !album.exists("b (2).jpg"));
    // Only d.jpg, whose source is gone, is still missing; the stray stays.
    let r = shoebox(&["verify", "--deep", "--json"]);
    assert_eq!(
        found(&r),
        BTreeMap::from([
            ("d.jpg".into(), "missing".into()),
            ("stray.jpg".into(), "unexpected".into()),
        ]),
        "{}",
        r.stdout
    );
}

/// An album of an encrypted destination: each photo is `<name>.age`.
struct Sealed<'a, A> {
    album: A,
    key: &'a crate::encryption::Identity,
}

impl<A: Album> Album for Sealed<'_, A> {
    fn read(&self, name: &str) -> Vec<u8> {
        self.album.read(&format!("{name}.age"))
    }
    fn content(&self, name: &str) -> Vec<u8> {
        self.key.decrypt(&self.read(name))
    }
    fn write(&self, name: &str, data: &[u8]) {
        self.album.write(&format!("{name}.age"), data);
    }
    fn remove(&self, name: &str) {
        self.album.remove(&format!("{name}.age"));
    }
    fn exists(&self, name: &str) -> bool {
        self.album.exists(&format!("{name}.age"))
    }
}

#[test]
fn verify_finds_what_the_library_lost_and_repair_sends_it_again() {
    let env = Env::new();
    env.watch(&[]);
    let album = Folder(env.library().join("Photos"));
    verify_scenario(&env, &album, &|args| env.run(args));
}

#[test]
fn verify_finds_what_an_sftp_server_lost_and_repair_sends_it_again() {
    let env = Env::new();
    let server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = crate::sftp::add_dest(&env, &server);
    env.watch(&["--dest", "ssh"]);
    let album = Folder(server.served.join("photos/Photos"));
    verify_scenario(&env, &album, &|args| {
        run_within(
            crate::sftp::shoebox(&env, &key).args(args),
            SECS(120),
            &format!("shoebox {}", args.join(" ")),
        )
    });
}

/// The album as Garage keeps it, changed through rclone.
struct Bucket(u16);

impl Album for Bucket {
    fn read(&self, name: &str) -> Vec<u8> {
        let out = crate::s3::rclone(self.0, &["cat", &crate::s3::object("Photos", name)]);
        assert!(out.status.success(), "rclone cat {name}");
        out.stdout
    }
    fn write(&self, name: &str, data: &[u8]) {
        let mut child =
            crate::s3::rclone_command(self.0, &["rcat", &crate::s3::object("Photos", name)])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), data).unwrap();
        assert!(child.wait().unwrap().success(), "rclone rcat {name}");
    }
    fn remove(&self, name: &str) {
        let out = crate::s3::rclone(self.0, &["deletefile", &crate::s3::object("Photos", name)]);
        assert!(out.status.success(), "rclone deletefile {name}");
    }
    fn exists(&self, name: &str) -> bool {
        crate::s3::rclone(self.0, &["lsf", &crate::s3::object("Photos", name)])
            .stdout
            .starts_with(name.as_bytes())
    }
}

#[test]
fn verify_finds_what_garage_lost_by_listing_and_repair_sends_it_again() {
    let env = Env::new();
    let garage = crate::s3::Garage::start(&env.tmp.path().join("garage"));
    crate::s3::add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    env.watch(&["--dest", "garage"]);
    verify_scenario(&env, &Bucket(garage.s3_port), &|args| {
        run_within(
            env.cmd()
                .env("SHOEBOX_SECRET_GARAGE", crate::s3::SECRET)
                .args(args),
            SECS(120),
            &format!("shoebox {}", args.join(" ")),
        )
    });
}

#[test]
fn verify_refuses_while_an_engine_runs_and_names_an_unknown_destination() {
    let env = Env::new();
    let r = env.run(["verify", "--dest", "nowhere"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no destination named \"nowhere\""),
        "{}",
        r.stderr
    );
    env.write("a.jpg", &bytes("a", 100));
    env.watch(&[]);
    let _running = env.spawn_run(&[]);
    let r = env.run(["verify"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("another Shoebox engine is using"),
        "{}",
        r.stderr
    );
}

/// Apache's mod_dav, which serves its folder as it is (rclone's serve
/// keeps a listing cache that would hide the changes made behind it).
#[test]
fn verify_finds_what_a_webdav_server_lost_by_listing_and_repair_sends_it_again() {
    use crate::dav_servers::{DavServer, Server};
    let env = Env::new();
    let server = DavServer::start(Server::Apache, &env.tmp.path().join("apache"));
    crate::dav_servers::add_dest(&env, &server);
    env.watch(&["--dest", "dav"]);
    let album = Folder(server.root.join("photos/Photos"));
    verify_scenario(&env, &album, &|args| {
        run_within(
            env.cmd()
                .env("SHOEBOX_SECRET_DAV", crate::webdav::PASS)
                .args(args),
            SECS(120),
            &format!("shoebox {}", args.join(" ")),
        )
    });
}

#[test]
fn the_running_engine_checks_the_backup_on_its_schedule_and_status_says_what_it_found() {
    let env = Env::new();
    for name in ["a.jpg", "b.jpg"] {
        env.write(name, &bytes(name, 5000));
    }
    env.watch(&[]);
    env.sync().ok();
    assert!(
        env.status().get("last_check").is_none(),
        "nothing was checked yet"
    );
    fs::remove_file(env.library().join("Photos/a.jpg")).unwrap();

    // Checked one interval after the start, when nothing is queued.
    let run = env.spawn_run(&["--check-every", "2s"]);
    let checked = run.wait_for(0, SECS(60), |e| e["event"] == "backup_checked");
    assert_eq!(
        (
            checked["checked"].as_u64(),
            checked["missing"].as_u64(),
            checked["damaged"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{checked}"
    );
    let last = &env.status()["last_check"];
    assert_eq!(last["missing"], 1, "status keeps what it found: {last}");
    let text = env.run(["status"]).ok().stdout;
    assert!(
        text.contains("1 missing, 0 damaged of 2 files") && text.contains("verify --repair"),
        "{text}"
    );
}

/// Encrypted, the same: sizes from the listing, content by decrypting
/// (a flipped bit fails age's authentication), on the library and Garage.
#[test]
fn verify_and_repair_work_on_encrypted_destinations() {
    let env = Env::new();
    let key = crate::encryption::Identity::new(env.tmp.path());
    let with_key = |args: &[&str]| {
        run_within(
            env.cmd()
                .env("SHOEBOX_IDENTITY_LIBRARY", &key.secret)
                .args(args),
            SECS(120),
            &format!("shoebox {}", args.join(" ")),
        )
    };
    with_key(&[
        "dest",
        "encrypt",
        "library",
        "--identity",
        key.file.to_str().unwrap(),
    ])
    .ok();
    env.watch(&[]);
    let album = Sealed {
        album: Folder(env.library().join("Photos")),
        key: &key,
    };
    verify_scenario(&env, &album, &with_key);

    let env = Env::new();
    let garage = crate::s3::Garage::start(&env.tmp.path().join("garage"));
    crate::encryption::add_encrypted_garage(&env, garage.s3_port, &key, &key.file, None).ok();
    env.watch(&["--dest", "garage"]);
    let album = Sealed {
        album: Bucket(garage.s3_port),
        key: &key,
    };
    verify_scenario(&env, &album, &|args| {
        run_within(
            env.cmd()
                .env("SHOEBOX_SECRET_GARAGE", crate::s3::SECRET)
                .env("SHOEBOX_IDENTITY_GARAGE", &key.secret)
                .args(args),
            SECS(120),
            &format!("shoebox {}", args.join(" ")),
        )
    });
}
