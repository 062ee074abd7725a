//! The Destinations tab, driven through WebDriver: adding a WebDAV server
//! (a real `rclone serve webdav` on loopback), testing it, editing it and
//! removing it. The password goes to a real Secret Service: gnome-keyring,
//! started in the test's private D-Bus session.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::bounded::self_signed;
use crate::support::*;

const PASS: &str = "Gui-Passw0rd-7";

/// Starts an unlocked gnome-keyring on the session bus, once for all the
/// tests of this process (a second daemon replacing the first comes up
/// without a default collection), with its files in a folder of its own.
fn start_keyring() {
    static KEYRING: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    KEYRING.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let run = home.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let mut child = Command::new("gnome-keyring-daemon")
            .args([
                "--replace",
                "--unlock",
                "--components=secrets",
                "--daemonize",
            ])
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring is installed (scripts/install-deps)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"unlock").unwrap();
        // It daemonizes: the first process ends once the keyring is up.
        let deadline = std::time::Instant::now() + secs(30);
        let started = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gnome-keyring-daemon did not start within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(started.success(), "gnome-keyring started");
        dir
    });
}

/// `rclone serve webdav` of `served/photos` for alice on a free loopback
/// port, over HTTPS with `tls` (certificate, key) if given; waits until it
/// listens.
fn serve_webdav(served: &Path, tls: Option<(&Path, &Path)>) -> (Proc, u16) {
    std::fs::create_dir_all(served.join("photos")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new("rclone");
    c.args(["serve", "webdav", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--user", "alice", "--pass", PASS]);
    if let Some((cert, key)) = tls {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    c.arg(served)
        .env("RCLONE_CONFIG", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let dav = Proc::spawn(c);
    wait_until(secs(20), "rclone serve webdav listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (dav, port)
}

fn keyring_lookup(dest: &str) -> String {
    let out = output_within(
        Command::new("secret-tool").args([
            "lookup",
            "service",
            "app.shoebox",
            "username",
            &format!("destination:{dest}"),
        ]),
        secs(30),
        "secret-tool lookup",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_webdav_destination_is_added_tested_edited_and_removed_in_the_window() {
    let sb = Sandbox::new();
    start_keyring();
    let (_dav, port) = serve_webdav(&sb.tmp.path().join("served"), None);

    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#dest-list", secs(10), |t| t.contains("library"));
    wd.click("#add-dest-btn");
    wd.type_into("#dest-name", "nas");
    let (path, url) = (wd.displayed("#dest-path"), wd.displayed("#dest-url"));
    assert!(
        path && !url,
        "a folder asks for a path: path {path}, url {url}"
    );
    wd.click("#dest-kind option[value='s3']");
    assert!(
        wd.displayed("#dest-bucket") && wd.displayed("#dest-path-style"),
        "S3 asks for a bucket and addressing"
    );
    wd.click("#dest-kind option[value='webdav']");
    assert!(
        wd.displayed("#dest-url") && !wd.displayed("#dest-bucket") && !wd.displayed("#dest-path"),
        "WebDAV asks for an address, not a bucket or a folder"
    );
    wd.type_into("#dest-url", &format!("http://127.0.0.1:{port}/photos"));
    wd.type_into("#dest-user", "alice");
    wd.type_into("#dest-secret", PASS);
    // Plain http with a password is refused until the user allows it.
    wd.click("#dest-confirm");
    wd.wait_text("#dest-error", secs(10), |t| t.contains("plain HTTP"));
    wd.click("#dest-insecure");
    wd.screenshot("add-destination");
    wd.click("#dest-confirm");
    let row = ".dest-row[data-name='nas']";
    wd.wait_text(row, secs(10), |t| t.contains("WebDAV"));
    assert_eq!(
        keyring_lookup("nas"),
        PASS,
        "the password is in the Secret Service"
    );

    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("✓ reachable") && t.contains("✓ credentials") && t.contains("✓ write permission")
    });
    wd.screenshot("destinations");

    // Edit: a wrong password now, and the test says so.
    wd.click(&format!("{row} .edit-dest-btn"));
    wd.type_into("#dest-secret", "not-the-password");
    wd.click("#dest-confirm");
    // The edit runs off the window's thread: wait for it to land.
    wait_until(secs(20), "the new password in the keyring", || {
        keyring_lookup("nas") == "not-the-password"
    });
    wd.wait_text("#dest-list", secs(10), |t| t.contains("nas"));
    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("✗ credentials") && t.contains("refused the credentials")
    });

    wd.click(&format!("{row} .remove-dest-btn"));
    wd.wait_text("#dest-list", secs(10), |t| !t.contains("nas"));
    assert_eq!(
        keyring_lookup("nas"),
        "",
        "removing it forgets the password"
    );
    // The password never reached the data folder (its files; the engine's
    // socket is not one).
    for entry in walk(&sb.data).into_iter().filter(|e| e.is_file()) {
        let data = std::fs::read(&entry).unwrap();
        assert!(
            !data.windows(PASS.len()).any(|w| w == PASS.as_bytes()),
            "the password is in {}",
            entry.display()
        );
    }
}

/// A server that takes the connection and never answers: the test runs
/// off the window's thread, so the window goes on answering at once; the
/// test can be cancelled, and left alone it ends at its time bound with
/// a message saying so.
#[test]
fn a_server_that_never_answers_leaves_the_window_responsive_and_its_test_times_out() {
    let sb = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Every connection is taken and held, unanswered.
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    sb.engine()
        .add_webdav_destination(
            "stuck",
            &format!("http://127.0.0.1:{port}/dav"),
            None,
            None,
            true,
        )
        .unwrap();
    let wd = WebDriver::start_with_env(&sb, &[], &[("SHOEBOX_HTTP_TIMEOUT", "5")]);
    wd.click("#tab-destinations");
    let row = ".dest-row[data-name='stuck']";
    wd.wait_text(row, secs(10), |t| t.contains("WebDAV"));

    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(10), |t| {
        t.contains("Testing")
    });
    // Another command answers while the test waits on the server.
    let took = wd.exec(
        "const t = performance.now();
         return window.__TAURI__.core.invoke('list_destinations')
           .then(() => performance.now() - t);",
    );
    let took = took
        .as_f64()
        .unwrap_or_else(|| panic!("a time in ms: {took}"));
    assert!(
        took < 1000.0,
        "list_destinations took {took} ms during the test"
    );
    wd.click(&format!("{row} .cancel-test-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(10), |t| {
        t.contains("Test cancelled")
    });

    // Left alone, the test ends at its time bound and says why.
    wd.click(&format!("{row} .test-dest-btn"));
    let said = wd.wait_text(&format!("{row} .checks"), secs(60), |t| {
        t.contains("✗ reachable")
    });
    assert!(said.contains("timed out"), "{said}");
}

/// SFTP in the window: the form asks for what SSH needs, a server seen
/// for the first time shows its fingerprint to confirm, and the password
/// goes to the Secret Service. Against a real sshd (tests/common/sshd.rs).
#[test]
fn an_sftp_server_is_added_once_its_host_key_is_confirmed_and_passes_its_test() {
    use crate::sshd::{PASSWORD, SshServer};
    let sb = Sandbox::new();
    start_keyring();
    let server = SshServer::start(&sb.tmp.path().join("sshd"));
    let fp = server.fingerprint();

    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#dest-list", secs(10), |t| t.contains("library"));
    wd.click("#add-dest-btn");
    wd.type_into("#dest-name", "nas");
    wd.click("#dest-kind option[value='sftp']");
    assert!(
        wd.displayed("#dest-port")
            && wd.displayed("#dest-remote-path")
            && wd.displayed("#dest-sign-in")
            && !wd.displayed("#dest-cert")
            && !wd.displayed("#dest-insecure")
            && !wd.displayed("#dest-key-file"),
        "SFTP asks for a port, a folder and a sign-in, not for HTTP settings"
    );
    wd.click("#dest-sign-in option[value='key']");
    assert!(wd.displayed("#dest-key-file"), "a key asks for its file");
    wd.click("#dest-sign-in option[value='password']");
    wd.type_into("#dest-url", "127.0.0.1");
    wd.type_into("#dest-port", &server.port.to_string());
    wd.type_into("#dest-user", "shoebox");
    wd.type_into(
        "#dest-remote-path",
        server.served.join("photos").to_str().unwrap(),
    );
    wd.type_into("#dest-secret", PASSWORD);
    wd.click("#dest-confirm");
    // Seen for the first time: the fingerprint is shown, nothing is added.
    wd.wait_text("#dest-host-key", secs(30), |t| {
        t.contains(&fp) && t.contains("127.0.0.1")
    });
    wd.screenshot("sftp-host-key");
    assert!(
        !wd.text("#dest-list").contains("nas"),
        "nothing is added before the key is trusted"
    );
    wd.click("#dest-trust");
    let row = ".dest-row[data-name='nas']";
    wd.wait_text(row, secs(30), |t| t.contains("SFTP") && t.contains(&fp));
    assert_eq!(
        keyring_lookup("nas"),
        PASSWORD,
        "the password is in the Secret Service"
    );
    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(30), |t| {
        t.contains("✓ reachable") && t.contains("✓ write permission")
    });
}

/// Restore… on a destination: the albums come back into the folder the
/// user names, with their dates, while the window shows the progress.
#[test]
fn a_destination_is_restored_into_a_folder_from_the_window() {
    let sb = Sandbox::new();
    // The library holds two albums (as a backup made before would).
    let library = sb.data.join("Library");
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    for (rel, data) in [("Trip/a.jpg", &b"photo a"[..]), ("Home/b.jpg", b"photo b")] {
        let p = library.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    let row = ".dest-row[data-name='library']";
    wd.wait_text(row, secs(10), |t| t.contains("library"));
    wd.click(&format!("{row} .restore-dest-btn"));
    let out = sb.tmp.path().join("Restored");
    wd.type_into("#restore-to", out.to_str().unwrap());
    wd.click("#restore-ok");
    wd.wait_text("#restore-progress", secs(30), |t| {
        t.contains("Done: restored 2 file(s)") && t.contains("0 failed")
    });
    assert_eq!(std::fs::read(out.join("Trip/a.jpg")).unwrap(), b"photo a");
    assert_eq!(
        std::fs::metadata(out.join("Home/b.jpg"))
            .unwrap()
            .modified()
            .unwrap(),
        when,
        "with its date"
    );
    // Again: nothing is overwritten or written twice.
    wd.click("#restore-ok");
    wd.wait_text("#restore-progress", secs(30), |t| {
        t.contains("restored 0 file(s)") && t.contains("2 already there")
    });
}

/// The last check of the backup is shown with the destinations, and a
/// problem stands out with what to do.
#[test]
fn the_last_check_of_the_backup_is_shown_with_the_destinations() {
    let sb = Sandbox::new();
    sb.write("a.jpg", &bytes("a", 4000));
    sb.write("b.jpg", &bytes("b", 4000));
    sb.watch(&sb.photos);
    let engine = sb.engine();
    let lock = engine.lock("test").unwrap();
    engine
        .sync(&lock, &shoebox_core::SyncOptions::default(), &|_| {})
        .unwrap();
    drop(lock);
    std::fs::remove_file(sb.data.join("Library/Photos/a.jpg")).unwrap();
    let report = engine
        .verify(&shoebox_core::VerifyOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.missing, 1);
    drop(engine);

    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#last-check", secs(10), |t| {
        t.contains("1 missing and 0 damaged of 2 files") && t.contains("verify --repair")
    });
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_server_with_its_own_certificate_is_refused_until_it_is_pinned_in_the_window() {
    let sb = Sandbox::new();
    start_keyring();
    let (cert, key) = self_signed(sb.tmp.path());
    let (_dav, port) = serve_webdav(&sb.tmp.path().join("served"), Some((&cert, &key)));

    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#dest-list", secs(10), |t| t.contains("library"));
    wd.click("#add-dest-btn");
    wd.type_into("#dest-name", "own-cert");
    wd.click("#dest-kind option[value='webdav']");
    wd.type_into("#dest-url", &format!("https://127.0.0.1:{port}/photos"));
    wd.type_into("#dest-user", "alice");
    wd.type_into("#dest-secret", PASS);
    wd.click("#dest-confirm");
    let row = ".dest-row[data-name='own-cert']";
    wd.wait_text(row, secs(10), |t| t.contains("WebDAV"));
    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("✗ reachable") && t.contains("certificate is not trusted")
    });

    // Pin the server's certificate: now every check passes.
    wd.click(&format!("{row} .edit-dest-btn"));
    wd.type_into("#dest-cert", cert.to_str().unwrap());
    wd.click("#dest-confirm");
    wd.wait_text(row, secs(10), |t| {
        t.contains("its own certificate is trusted")
    });
    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("✓ reachable") && t.contains("✓ credentials") && t.contains("✓ write permission")
    });

    // And it can be forgotten again.
    wd.click(&format!("{row} .edit-dest-btn"));
    assert!(
        wd.displayed("#dest-forget-cert"),
        "offered once a certificate is pinned"
    );
    wd.click("#dest-forget-cert");
    wd.click("#dest-confirm");
    wd.wait_text(row, secs(10), |t| !t.contains("its own certificate"));
    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("certificate is not trusted")
    });
}

/// An encrypted destination in the window: the switch in the form, the
/// key in the Secret Service, the warning before anything is backed up,
/// and the exported key file, which stock `age` opens with its passphrase.
#[test]
fn an_encrypted_destination_is_added_and_its_key_exported_in_the_window() {
    let sb = Sandbox::new();
    start_keyring();
    let folder = sb.tmp.path().join("Vault");
    std::fs::create_dir_all(&folder).unwrap();
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#dest-list", secs(10), |t| t.contains("library"));
    wd.click("#add-dest-btn");
    wd.type_into("#dest-name", "vault");
    wd.type_into("#dest-path", folder.to_str().unwrap());
    assert!(!wd.displayed("#dest-identity"), "no key file asked for yet");
    wd.click("#dest-encrypt");
    assert!(wd.displayed("#dest-identity"), "a key file may be given");
    wd.click("#dest-encrypt-names");
    wd.click("#dest-confirm");
    // At once: what losing the key means, and the way to keep it.
    wd.wait_text("#key-warning", secs(10), |t| {
        t.contains("vault") && t.contains("the backup is lost")
    });
    let identity = {
        let out = output_within(
            Command::new("secret-tool").args([
                "lookup",
                "service",
                "app.shoebox",
                "username",
                "identity:vault",
            ]),
            secs(30),
            "secret-tool lookup",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .map(str::to_string)
            .expect("the new key is in the Secret Service")
    };
    wd.screenshot("export-key");
    wd.click("#key-cancel");
    let row = ".dest-row[data-name='vault']";
    wd.wait_text(row, secs(10), |t| {
        t.contains("encrypted (age), names hidden") && t.contains("never exported")
    });

    wd.click(&format!("{row} .export-key-btn"));
    let key_file = sb.tmp.path().join("vault-key.age");
    wd.type_into("#key-out", key_file.to_str().unwrap());
    wd.type_into("#key-pass", "drawer passphrase");
    wd.type_into("#key-pass-again", "another one");
    wd.click("#key-ok");
    wd.wait_text("#key-error", secs(10), |t| t.contains("differ"));
    wd.type_into("#key-pass-again", "drawer passphrase");
    wd.click("#key-ok");
    wd.wait_text("#key-done", secs(10), |t| t.contains("age -d -i"));
    wd.click("#key-cancel");
    wd.wait_text(row, secs(10), |t| !t.contains("never exported"));

    // Stock age opens the key file with its passphrase (on a terminal, so
    // under `script`): it holds the key from the keyring.
    let plain = sb.tmp.path().join("key.txt");
    let mut script = Command::new("script")
        .args([
            "-qec",
            &format!("age -d -o '{}' '{}'", plain.display(), key_file.display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script and age are installed (scripts/install-deps)");
    use std::io::Write;
    script
        .stdin
        .take()
        .unwrap()
        .write_all(b"drawer passphrase\n")
        .unwrap();
    wait_until(secs(60), "age to decrypt the key file", || {
        script.try_wait().unwrap().is_some()
    });
    let text = std::fs::read_to_string(&plain).unwrap();
    assert!(text.lines().any(|l| l == identity), "{text}");
    // It says the names are hidden, so a new computer reads them too.
    assert!(
        text.lines().any(|l| l == "# shoebox: names hidden"),
        "{text}"
    );
}

/// Starts the fake Immich server (`tests/fake-immich/server.py`, as the CLI
/// suite runs it) of version 3 with `key`; waits until it listens.
fn serve_immich(key: &str) -> (Proc, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new("python3");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fake-immich/server.py"
    ))
    .arg(port.to_string())
    .args(["--version", "3.0.1", "--key", key])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let server = Proc::spawn(c);
    wait_until(secs(20), "the fake Immich server listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (server, port)
}

#[test]
fn an_immich_destination_asks_for_an_api_key_only_and_is_tested_in_the_window() {
    const KEY: &str = "gui-immich-key-41";
    let sb = Sandbox::new();
    start_keyring();
    let (_immich, port) = serve_immich(KEY);

    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-destinations");
    wd.wait_text("#dest-list", secs(10), |t| t.contains("library"));
    wd.click("#add-dest-btn");
    wd.type_into("#dest-name", "photos");
    assert!(
        wd.displayed("#dest-encrypt-row"),
        "a folder can be encrypted"
    );
    wd.click("#dest-kind option[value='immich']");
    assert!(
        wd.displayed("#dest-url") && !wd.displayed("#dest-user") && !wd.displayed("#dest-bucket"),
        "Immich asks for an address and a key, no user"
    );
    assert!(
        wd.text("#dest-secret-label").contains("API key"),
        "the secret is the API key"
    );
    assert!(
        !wd.displayed("#dest-encrypt-row"),
        "Immich shows photos: it is never encrypted"
    );
    wd.type_into("#dest-url", &format!("http://127.0.0.1:{port}"));
    wd.type_into("#dest-secret", KEY);
    wd.click("#dest-insecure");
    wd.click("#dest-confirm");
    let row = ".dest-row[data-name='photos']";
    wd.wait_text(row, secs(10), |t| t.contains("Immich"));
    assert_eq!(
        keyring_lookup("photos"),
        KEY,
        "the key is in the Secret Service"
    );

    wd.click(&format!("{row} .test-dest-btn"));
    wd.wait_text(&format!("{row} .checks"), secs(20), |t| {
        t.contains("✓ reachable") && t.contains("✓ permissions")
    });
}

/// A first backup to a server, under a bandwidth limit: the folder's row
/// shows its progress in files and bytes and, once files arrive, the time
/// left; the progress goes when the backup is done.
#[test]
fn a_first_backup_shows_its_progress_and_time_left_per_folder() {
    let sb = Sandbox::new();
    let served = sb.tmp.path().join("served");
    let (_dav, port) = serve_webdav(&served, None);
    let engine = sb.engine();
    engine
        .add_webdav_destination(
            "nas",
            &format!("http://127.0.0.1:{port}/photos"),
            Some("alice"),
            None,
            true,
        )
        .unwrap();
    // 1.2 MB at 200 kB/s: about 6 s of uploads.
    engine.config_set("bandwidth", "200kB/s").unwrap();
    for i in 0..12 {
        sb.write(&format!("IMG_{i:02}.jpg"), &bytes(&i.to_string(), 100_000));
    }
    engine
        .add_watch(&shoebox_core::WatchSpec {
            folder: sb.photos.clone(),
            mode: shoebox_core::AlbumMode::Single,
            album_names: shoebox_core::AlbumNames::Leaf,
            date_format: Default::default(),
            album: None,
            dest: "nas".into(),
            on_delete: shoebox_core::OnDelete::Keep,
            all_files: false,
        })
        .unwrap();
    let wd = WebDriver::start_with_env(&sb, &[], &[("SHOEBOX_SECRET_NAS", PASS)]);
    let row = format!(".watch-row[data-folder='{}']", sb.photos.display());
    let shown = wd.wait_text(&format!("{row} .progress-text"), secs(60), |t| {
        t.contains("left")
    });
    assert!(
        shown.contains(" of 12 files · ") && shown.contains(" of 1.2 MB · about "),
        "files, bytes and the time left: {shown}"
    );
    wd.screenshot("folder-progress");
    wd.wait_text(&format!("{row} .uploaded"), secs(60), |t| t == "12");
    wait_until(secs(10), "the progress to go once done", || {
        wd.try_find(&format!("{row} .folder-progress")).is_none()
    });
    let album = served.join("photos/Photos");
    assert_eq!(
        std::fs::read_dir(&album).map(|d| d.count()).unwrap_or(0),
        12,
        "every photo reached the server"
    );
}
