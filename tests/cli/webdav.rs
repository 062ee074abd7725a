//! The WebDAV destination against a real server (`rclone serve webdav`,
//! started on loopback by the test). The served folder on disk is the
//! ground truth. No keyring service runs here, so secrets take the
//! documented environment-variable path.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;

pub const USER: &str = "alice";
pub const PASS: &str = "s3cret-Passw0rd";

pub struct Dav {
    child: Child,
    port: u16,
    pub root: PathBuf,
    tls: bool,
}

impl Dav {
    fn start(root: &Path, port: Option<u16>) -> Dav {
        Dav::start_with(root, port, None)
    }

    /// Serves HTTPS with this certificate and key (PEM files).
    pub fn start_tls(root: &Path, cert: &Path, key: &Path) -> Dav {
        Dav::start_with(root, None, Some((cert, key)))
    }

    fn start_with(root: &Path, port: Option<u16>, tls: Option<(&Path, &Path)>) -> Dav {
        let port = port.unwrap_or_else(free_port);
        let child = Command::new("rclone")
            .args([
                "serve",
                "webdav",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--user",
                USER,
                "--pass",
                PASS,
            ])
            .args(tls.iter().flat_map(|(c, k)| {
                [
                    OsStr::new("--cert"),
                    c.as_os_str(),
                    OsStr::new("--key"),
                    k.as_os_str(),
                ]
            }))
            .arg(root)
            .env("RCLONE_CONFIG", "/dev/null")
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclone is installed (scripts/install-deps)");
        let deadline = std::time::Instant::now() + SECS(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rclone serve webdav did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Dav {
            child,
            port,
            root: root.to_path_buf(),
            tls: tls.is_some(),
        }
    }

    /// Serves `root` over plain HTTP on a free port.
    pub fn start_plain(root: &Path) -> Dav {
        Dav::start(root, None)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/photos", self.port)
    }

    /// Every file on the server below photos/ (staging included): path → hash.
    fn files(&self) -> BTreeMap<String, String> {
        let base = self.root.join("photos");
        let mut out = BTreeMap::new();
        let mut todo = vec![base.clone()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    let rel = e
                        .path()
                        .strip_prefix(&base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.insert(rel, hash(&fs::read(e.path()).unwrap()));
                }
            }
        }
        out
    }

    pub fn albums(&self) -> BTreeMap<String, String> {
        self.files()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".shoebox-staging"))
            .collect()
    }
}

impl Drop for Dav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test env whose shoebox commands see the destination secret.
pub fn setup() -> (Env, Dav) {
    let env = Env::new();
    let served = env.tmp.path().join("server");
    fs::create_dir_all(served.join("photos")).unwrap();
    let dav = Dav::start(&served, None);
    (env, dav)
}

pub fn add_dest(env: &Env, dav: &Dav, password: &str) -> Run {
    add_dest_with(env, dav, Some(password), &["--allow-insecure-http"])
}

/// `dest add dav webdav --url URL --user alice --password-stdin EXTRA…`
/// with `stdin` as given (None: empty), and the secret in the environment.
pub fn add_dest_with(env: &Env, dav: &Dav, stdin: Option<&str>, extra: &[&str]) -> Run {
    let mut child = env
        .cmd()
        .env("SHOEBOX_SECRET_DAV", PASS)
        .args([
            "dest",
            "add",
            "dav",
            "webdav",
            "--url",
            &dav.url(),
            "--user",
            USER,
            "--password-stdin",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        writeln!(input, "{text}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn sync_with_secret(env: &Env, secret: &str) -> Run {
    let out = env
        .cmd()
        .env("SHOEBOX_SECRET_DAV", secret)
        .args(["sync", "--json", "--settle", "100ms"])
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn both_album_modes_reach_the_server_with_the_right_content() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    env.write("Paris/IMG_1.jpg", &bytes("p1", 300_000));
    env.write("Paris/IMG 2 (été).jpg", &bytes("p2", 1000));
    env.write("Rome/IMG_1.jpg", &bytes("r1", 1000));
    env.write("top.jpg", &bytes("t", 1000));
    env.watch(&["--mode", "per-folder", "--dest", "dav"]);
    let s = sync_with_secret(&env, PASS).ok().json();
    assert_eq!(s["uploaded"], 4, "{s}");
    let want: BTreeMap<String, String> = [
        ("Paris/IMG 2 (été).jpg", hash(&bytes("p2", 1000))),
        ("Paris/IMG_1.jpg", hash(&bytes("p1", 300_000))),
        ("Photos/top.jpg", hash(&bytes("t", 1000))),
        ("Rome/IMG_1.jpg", hash(&bytes("r1", 1000))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(dav.albums(), want);
    assert!(
        dav.files().keys().all(|k| !k.ends_with(".part")),
        "no staged leftovers: {:?}",
        dav.files()
    );
}

#[test]
fn single_mode_names_edits_renames_and_deletes_on_the_server() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    let a = env.write("a/IMG.jpg", &bytes("a1", 2000));
    env.write("b/IMG.jpg", &bytes("b1", 2000));
    env.watch(&["--dest", "dav", "--on-delete", "remove"]);
    sync_with_secret(&env, PASS).ok();
    let names: Vec<_> = dav.albums().into_keys().collect();
    assert_eq!(
        names,
        ["Photos/IMG (2).jpg", "Photos/IMG.jpg"],
        "same name, different files: a suffix"
    );

    fs::write(&a, bytes("a2", 3000)).unwrap();
    let s = sync_with_secret(&env, PASS).ok().json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(
        dav.albums()["Photos/IMG.jpg"],
        hash(&bytes("a2", 3000)),
        "the edit replaced the server copy"
    );

    fs::rename(&a, env.src.join("a/Beach.jpg")).unwrap();
    let s = sync_with_secret(&env, PASS).ok().json();
    assert_eq!(s["moved"], 1);
    assert_eq!(
        s["bytes_uploaded"], 0,
        "a rename is a MOVE on the server, no bytes sent"
    );
    assert_eq!(dav.albums()["Photos/Beach.jpg"], hash(&bytes("a2", 3000)));

    fs::remove_file(env.src.join("a/Beach.jpg")).unwrap();
    let s = sync_with_secret(&env, PASS).ok().json();
    assert_eq!(s["removed"], 1);
    let names: Vec<_> = dav.albums().into_keys().collect();
    assert_eq!(names, ["Photos/IMG (2).jpg"]);
}

#[test]
fn wrong_credentials_give_a_clear_message_and_no_retry_loop() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    env.write("IMG.jpg", &bytes("x", 1000));
    env.watch(&["--dest", "dav"]);
    let started = std::time::Instant::now();
    let r = sync_with_secret(&env, "wrong-password");
    assert_eq!(r.code, 1);
    let s = r.json();
    let msg = s["unavailable_destinations"][0].as_str().unwrap();
    assert!(
        msg.contains("refused the credentials") && msg.contains("SHOEBOX_SECRET_DAV"),
        "{msg}"
    );
    assert!(
        started.elapsed() < SECS(10),
        "gives up at once instead of retrying"
    );
    assert_eq!(s["failed"], 0, "the file is not blamed: it waits");
    assert!(dav.albums().is_empty());
    // dest test says the same, one line per check.
    let out = env
        .cmd()
        .env("SHOEBOX_SECRET_DAV", "wrong-password")
        .args(["dest", "test", "dav"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ok   reachable") && text.contains("FAIL credentials"),
        "{text}"
    );
}

#[test]
fn dest_test_passes_against_a_working_server() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    let out = env
        .cmd()
        .env("SHOEBOX_SECRET_DAV", PASS)
        .args(["dest", "test", "dav"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for check in ["reachable", "credentials", "write permission"] {
        assert!(text.contains(&format!("ok   {check}")), "{check}: {text}");
    }
    assert!(
        dav.albums().is_empty(),
        "the write test leaves nothing behind"
    );
}

#[test]
fn a_server_that_is_down_makes_files_wait_until_it_is_back() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    env.write("IMG.jpg", &bytes("x", 1000));
    env.watch(&["--dest", "dav"]);
    let (port, root) = (dav.port, dav.root.clone());
    drop(dav);
    let r = sync_with_secret(&env, PASS);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["unavailable_destinations"][0]
            .as_str()
            .unwrap()
            .contains("cannot reach")
    );
    assert_eq!(
        env.status()["watches"][0]["pending"],
        1,
        "the file waits, it does not fail"
    );
    let dav = Dav::start(&root, Some(port));
    sync_with_secret(&env, PASS).ok();
    assert_eq!(dav.albums().len(), 1);
}

#[test]
fn plain_http_with_a_password_is_refused_without_the_explicit_flag() {
    let (env, dav) = setup();
    let r = add_dest_with(&env, &dav, None, &[]);
    assert_eq!(r.code, 2, "an empty stdin is no password: {}", r.stderr);
    assert!(r.stderr.contains("no password"), "{}", r.stderr);
    let r = add_dest_with(&env, &dav, Some(PASS), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("plain HTTP") && r.stderr.contains("--allow-insecure-http"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.run(["dest", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was added"
    );
    let r = env.run(["dest", "add", "x", "webdav", "--url", "not a url"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a valid URL"), "{}", r.stderr);
}

#[test]
fn the_password_is_never_written_to_the_store_or_the_logs() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    env.write("IMG.jpg", &bytes("x", 1000));
    env.watch(&["--dest", "dav"]);
    sync_with_secret(&env, PASS).ok();
    let status = env.run(["status", "--json"]).ok().stdout
        + &env.run(["dest", "list", "--json"]).ok().stdout;
    assert!(!status.contains(PASS));
    assert_nowhere_in(&env.home, PASS);
}

/// Every file arrives exactly once, with its content, through a proxy that
/// resets connections, answers 503 with Retry-After and stalls on a fifth
/// of the requests (PUTs, MOVEs, MKCOLs and lookups alike).
#[test]
fn every_file_arrives_exactly_once_through_resets_5xx_429_stalls_and_cut_answers() {
    use crate::proxy::{EVERY_FAULT, Proxy};
    let (env, dav) = setup();
    let proxy = Proxy::start(dav.port);
    let url = format!("http://127.0.0.1:{}/photos", proxy.port);
    let mut child = env
        .cmd()
        .args([
            "dest", "add", "dav", "webdav", "--url", &url, "--user", USER,
        ])
        .args(["--password-stdin", "--allow-insecure-http"])
        .env("SHOEBOX_SECRET_DAV", PASS)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASS}").unwrap();
    assert!(child.wait().unwrap().success());
    let mut want = BTreeMap::new();
    for i in 0..40 {
        let data = bytes(&format!("dav{i}"), 20_000 + i * 7_919);
        env.write(&format!("Trip {}/f{i:02}.jpg", i % 3), &data);
        want.insert(format!("Trip {}/f{i:02}.jpg", i % 3), hash(&data));
    }
    env.watch(&["--mode", "per-folder", "--dest", "dav"]);
    proxy.inject(25, EVERY_FAULT, std::time::Duration::from_secs(4));
    sync_until_clean(env.cmd().env("SHOEBOX_SECRET_DAV", PASS));
    assert!(
        proxy.faults_by_kind().len() == EVERY_FAULT.len(),
        "every kind of fault was injected: {:?}",
        proxy.faults_by_kind()
    );
    env.assert_retries_logged_and_bounded(proxy.faults());
    assert_exactly(&dav.albums(), &want);
}

#[test]
fn a_lost_store_set_up_again_adopts_what_the_server_holds() {
    let (env, dav) = setup();
    add_dest(&env, &dav, PASS).ok();
    env.write("a/IMG.jpg", &bytes("a", 2000));
    env.write("b/IMG.jpg", &bytes("b", 2000));
    env.watch(&["--dest", "dav"]);
    sync_with_secret(&env, PASS).ok();
    let before = dav.albums();
    fs::remove_dir_all(&env.home).unwrap();
    add_dest(&env, &dav, PASS).ok();
    env.watch(&["--dest", "dav"]);
    let s = sync_with_secret(&env, PASS).ok().json();
    assert_eq!(s["uploaded"], 0, "both read back and adopted: {s}");
    assert_eq!(
        dav.albums(),
        before,
        "no third copy: each file found its own name again"
    );
}
