//! Security promises, attacked: secrets never leave the keyring path, names
//! never escape a destination, TLS is verified, and the engine never writes
//! inside a watched folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bounded::self_signed;
use crate::support::*;
use crate::webdav::{Dav, PASS, USER, add_dest, add_dest_with, setup, sync_with_secret};

/// Every output of a command, for grepping.
fn all_output(r: &Run) -> String {
    format!("{}\n{}", r.stdout, r.stderr)
}

#[test]
fn a_password_never_reaches_the_store_the_logs_any_output_or_a_crash() {
    let (env, dav) = setup();
    let wrong = "Wr0ng-Passw0rd-42";
    let basic = base64_of(&format!("{USER}:{PASS}"));
    let mut outputs = vec![all_output(&add_dest(&env, &dav, PASS).ok())];
    for i in 0..200 {
        env.write(&format!("IMG_{i:03}.jpg"), &bytes(&i.to_string(), 20_000));
    }
    env.watch(&["--dest", "dav"]);
    let traced = |args: &[&str], secret: &str| {
        let mut c = env.cmd();
        c.env("SHOEBOX_LOG", "trace")
            .env("SHOEBOX_SECRET_DAV", secret)
            .arg("-v")
            .args(args);
        c
    };
    // A crash: SIGKILL in the middle of uploads, with every log level on.
    let mut child = traced(&["sync", "--json", "--settle", "100ms"], PASS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its log (every level) is read as it comes, so that the engine never
    // blocks writing it; its uploads are counted on a thread of their own,
    // so that the wait for them has a bound.
    let mut err = child.stderr.take().unwrap();
    let crash_log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let out = child.stdout.take().unwrap();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("\"file_done\"") && done_tx.send(()).is_err() {
                return;
            }
        }
    });
    let uploaded = (0..20).all(|_| done.recv_timeout(SECS(120)).is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(uploaded, "20 uploads within 2 minutes each");
    let crash = crash_log.join().unwrap();
    assert!(
        crash.contains("TRACE") || crash.contains("DEBUG"),
        "logging was on"
    );
    outputs.push(crash);
    for (args, secret) in [
        (&["sync", "--json", "--settle", "100ms"][..], wrong),
        (&["sync", "--json", "--settle", "100ms"], PASS),
        (&["dest", "test", "dav"], PASS),
        (&["dest", "list", "--json"], PASS),
        (&["status", "--json"], PASS),
        (&["watch", "list", "--json"], PASS),
    ] {
        outputs.push(all_output(&Run::from(
            traced(args, secret).output().unwrap(),
        )));
    }
    assert_eq!(dav.albums().len(), 200, "the run really used the password");
    for (i, text) in outputs.iter().enumerate() {
        for secret in [PASS, wrong, basic.as_str()] {
            assert!(
                !text.contains(secret),
                "output {i} contains {secret:?}: {text:.2000}"
            );
        }
    }
    for secret in [PASS, wrong, basic.as_str()] {
        assert_nowhere_in(&env.home, secret);
    }
}

/// Reads JSON lines until `n` files are done.
fn base64_of(s: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Names that try to climb out of the album or smuggle in a separator.
const HOSTILE: &[&str] = &[
    "x\\..\\..\\y.jpg",
    "%2e%2e%2fy.jpg",
    "a%2Fb.jpg",
    "q?x=1#frag.jpg",
    "~root.jpg",
];

fn write_hostile(env: &Env) {
    for (i, name) in HOSTILE.iter().enumerate() {
        env.write(name, &bytes(&i.to_string(), 100));
    }
}

/// Every file below `dir` (relative paths), for before/after comparisons.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk_all(dir, &mut out);
    let mut rel: Vec<PathBuf> = out
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    rel.sort();
    rel
}

#[test]
fn hostile_album_and_file_names_stay_inside_the_library_and_the_webdav_root() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    write_hostile(&env);
    // Two watches of one folder are refused, so one per destination kind,
    // each with an album name that tries to climb out.
    let other = env.tmp.path().join("Phone");
    fs::create_dir_all(&other).unwrap();
    for (i, name) in HOSTILE.iter().enumerate() {
        fs::write(other.join(name), bytes(&i.to_string(), 100)).unwrap();
    }
    env.watch(&["--album", "../../../escape"]);
    env.run([
        "watch",
        "add",
        other.to_str().unwrap(),
        "--album",
        "../../../escape",
        "--dest",
        "dav",
    ])
    .ok();
    let outside_before = all_files(env.tmp.path());
    sync_with_secret(&env, PASS).ok();
    let new: Vec<PathBuf> = all_files(env.tmp.path())
        .into_iter()
        .filter(|p| !outside_before.contains(p))
        .collect();
    let lib = Path::new("home/Library/_.._.._escape");
    let served = Path::new("server/photos/_.._.._escape");
    assert!(!new.is_empty());
    for p in &new {
        // The data folder's own files, and the library's identity marker.
        let own_files = p.starts_with("home") && !p.starts_with("home/Library")
            || p == Path::new("home/Library/.shoebox-destination");
        assert!(
            p.starts_with(lib) || p.starts_with(served) || own_files,
            "{} was written outside the destinations' albums",
            p.display()
        );
    }
    let in_lib = new.iter().filter(|p| p.starts_with(lib)).count();
    let on_server = new.iter().filter(|p| p.starts_with(served)).count();
    assert_eq!(
        (in_lib, on_server),
        (HOSTILE.len(), HOSTILE.len()),
        "{new:?}"
    );
}

#[test]
fn tls_is_verified_and_a_self_signed_server_works_only_with_its_certificate_pinned() {
    let env = Env::new();
    let (cert, key) = self_signed(env.tmp.path());
    let served = env.tmp.path().join("server");
    fs::create_dir_all(served.join("photos")).unwrap();
    let dav = Dav::start_tls(&served, &cert, &key);
    add_dest_with(&env, &dav, Some(PASS), &[]).ok();
    env.write("a.jpg", &bytes("a", 100));
    env.watch(&["--dest", "dav"]);
    let with_secret = |args: &[&str]| {
        Run::from(
            env.cmd()
                .env("SHOEBOX_SECRET_DAV", PASS)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let t = with_secret(&["dest", "test", "dav"]);
    assert_eq!(t.code, 1, "{}{}", t.stdout, t.stderr);
    assert!(
        t.stdout.contains("certificate is not trusted") && t.stdout.contains("--trust-certificate"),
        "the failed check says why and what to do: {}",
        t.stdout
    );
    let r = sync_with_secret(&env, PASS);
    assert_eq!(r.code, 1);
    let s = r.json();
    assert!(
        s["unavailable_destinations"][0]
            .as_str()
            .is_some_and(|m| m.contains("certificate")),
        "{s}"
    );
    assert!(
        dav.albums().is_empty(),
        "nothing was sent to an unverified server"
    );

    // The user pins the server's own certificate: now it is trusted.
    let cert_arg = cert.to_str().unwrap();
    with_secret(&["dest", "edit", "dav", "--trust-certificate", cert_arg]).ok();
    let list = with_secret(&["dest", "list", "--json"]).ok().json();
    assert_eq!(list[1]["pinned_certificate"], true, "{list}");
    sync_with_secret(&env, PASS).ok();
    assert_eq!(dav.albums().len(), 1, "uploaded over verified TLS");

    // Another certificate (a server that is not the one pinned) is refused.
    let other = env.tmp.path().join("other");
    fs::create_dir_all(&other).unwrap();
    let (other_cert, _) = self_signed(&other);
    with_secret(&[
        "dest",
        "edit",
        "dav",
        "--trust-certificate",
        other_cert.to_str().unwrap(),
    ])
    .ok();
    env.write("b.jpg", &bytes("b", 100));
    assert_eq!(
        sync_with_secret(&env, PASS).code,
        1,
        "a different certificate is refused"
    );
    assert_eq!(dav.albums().len(), 1);

    // A file that is not a certificate is refused before anything changes.
    let junk = env.tmp.path().join("junk.pem");
    fs::write(&junk, "not a certificate").unwrap();
    let r = with_secret(&[
        "dest",
        "edit",
        "dav",
        "--trust-certificate",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no PEM certificate"), "{}", r.stderr);
}

/// Size, mtime (s, ns), ctime (s, ns), inode and mode of one entry.
type Stamp = (u64, i64, i64, i64, i64, u64, u32);

/// Path → (size, mtime, ctime, inode, mode) of everything below `dir`,
/// folders included: any write, rename, chmod or new file changes it.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Stamp> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.ino(),
                m.mode(),
            ),
        );
        if m.is_dir() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                todo.push(e.path());
            }
        }
    }
    out
}

#[test]
fn the_engine_never_writes_inside_a_watched_folder() {
    let env = Env::new();
    for i in 0..50 {
        env.write(
            &format!("Trip {}/IMG_{i}.jpg", i % 3),
            &bytes(&i.to_string(), 5000),
        );
    }
    env.write("notes.txt", b"not a photo");
    env.write("tiny.jpg", b"x");
    let before = snapshot(&env.src);
    env.watch(&["--mode", "per-folder", "--on-delete", "remove"]);
    env.sync().ok();
    let run = env.spawn_run(&[]);
    env.run(["pause"]).ok();
    env.run(["resume"]).ok();
    env.run(["status", "--json"]).ok();
    drop(run);
    env.run(["doctor"]).ok();
    env.sync().ok();
    assert_eq!(env.library_files().len(), 51);
    assert_eq!(
        snapshot(&env.src),
        before,
        "no file or folder in the watched tree was created, changed, renamed or chmodded"
    );
}
