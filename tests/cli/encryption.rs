//! Encrypted destinations (age): a new key kept in a real Secret Service
//! keyring and exported, every object decrypted by the stock `age` command,
//! nothing plaintext on the wire to Garage (every request byte recorded by
//! the proxy), edits, renames and copies still server-side, a new computer
//! restoring with only the exported key file, adoption after a lost data
//! folder, and an encrypted multipart upload killed midway that resumes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proxy::Proxy;
use crate::s3::{BUCKET, Garage, KEY_ID, SECRET};
use crate::support::*;

/// A key made by stock `age-keygen`: its identity file and secret line.
pub struct Identity {
    pub file: PathBuf,
    pub secret: String,
}

impl Identity {
    pub fn new(dir: &Path) -> Identity {
        let file = dir.join("identity.txt");
        let r = run_within(
            Command::new("age-keygen").arg("-o").arg(&file),
            SECS(30),
            "age-keygen",
        );
        assert_eq!(r.code, 0, "age-keygen (scripts/install-deps): {}", r.stderr);
        let secret = fs::read_to_string(&file)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap()
            .to_string();
        Identity { file, secret }
    }

    /// Stock `age -d` of an age file's bytes.
    pub fn decrypt(&self, sealed: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.age");
        fs::write(&input, sealed).unwrap();
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&self.file)
            .arg(&input)
            .output()
            .expect("age is installed (scripts/install-deps)");
        assert!(
            out.status.success(),
            "stock age decrypts it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Stock `age -d -i KEY_FILE`, with a key file protected by a passphrase:
/// age asks for it on a terminal, so it runs under `script`.
fn age_decrypt_with_key_file(key_file: &Path, passphrase: &str, sealed: &Path) -> Vec<u8> {
    let out = sealed.with_extension("decrypted");
    let line = format!(
        "age -d -i '{}' -o '{}' '{}'",
        key_file.display(),
        out.display(),
        sealed.display()
    );
    let r = run_fed(
        Command::new("script").args(["-qec", &line, "/dev/null"]),
        Some(format!("{passphrase}\n").as_bytes()),
        SECS(60),
        "age -d under script",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    fs::read(&out).unwrap()
}

/// Every object's path below `dir`.
fn objects_below(dir: &Path) -> Vec<String> {
    files_below(dir).into_keys().collect()
}

/// A photo whose bytes carry a marker that must never leave the machine.
fn marked(marker: &str, len: usize) -> Vec<u8> {
    let mut data = bytes(marker, len);
    data[1000..1000 + marker.len()].copy_from_slice(marker.as_bytes());
    data
}

#[test]
fn a_new_key_lives_in_the_keyring_and_its_exported_file_decrypts_the_backup_with_stock_age() {
    let env = Env::new();
    let dest = env.tmp.path().join("Backup drive");
    fs::create_dir_all(&dest).unwrap();
    let photo = marked("MARKER-KEYRING-PHOTO", 70_000);
    let photo_path = env.write("Trip/a.jpg", &photo);
    set_mtime(&photo_path, old_date());
    let key_file = env.tmp.path().join("shoebox-key.age");
    let user_home = env.tmp.path().join("user");
    fs::create_dir_all(user_home.join("run")).unwrap();
    let script = r#"
        set -e
        chmod 700 "$XDG_RUNTIME_DIR"
        printf unlock | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
        "$SHOEBOX" --home "$SB_HOME" dest add drive local --path "$DEST" --encrypt
        "$SHOEBOX" --home "$SB_HOME" watch add "$SRC" --mode per-folder --dest drive
        "$SHOEBOX" --home "$SB_HOME" sync --settle 100ms
        printf 'a long passphrase\n' | "$SHOEBOX" --home "$SB_HOME" dest export-key drive \
            --out "$KEY_FILE" --passphrase-stdin
        "$SHOEBOX" --home "$SB_HOME" dest list
        printf 'keyring holds: %s\n' "$(secret-tool lookup service app.shoebox username identity:drive)"
        # The keyring loses the key: nothing is sent, and the key file puts it back.
        secret-tool clear service app.shoebox username identity:drive
        printf 'second photo' > "$SRC/Trip/b.jpg"
        if "$SHOEBOX" --home "$SB_HOME" sync --settle 100ms; then echo "SYNC WITHOUT A KEY PASSED"; fi
        test -z "$(find "$DEST" -name 'b.jpg*')"
        printf 'a long passphrase\n' | "$SHOEBOX" --home "$SB_HOME" dest encrypt drive \
            --identity "$KEY_FILE" --passphrase-stdin
        "$SHOEBOX" --home "$SB_HOME" sync --settle 100ms
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "bash", "-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &user_home)
        .env("XDG_RUNTIME_DIR", user_home.join("run"))
        .env("XDG_DATA_HOME", user_home.join("data"))
        .env("SHOEBOX", BIN)
        .env("SB_HOME", &env.home)
        .env("SRC", &env.src)
        .env("DEST", &dest)
        .env("KEY_FILE", &key_file)
        .output()
        .expect("dbus-run-session is installed (scripts/install-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the backup is lost") && stderr.contains("export-key drive"),
        "before the first upload, the user is told to export the key: {stderr}"
    );
    // `secret-tool` prints the identity file's text: the key is its line.
    let identity = stdout
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap_or_else(|| panic!("the key is in the Secret Service: {stdout}"))
        .to_string();
    assert!(
        !stdout.contains("key not exported"),
        "dest list knows the key was exported: {stdout}"
    );

    assert!(
        !stdout.contains("SYNC WITHOUT A KEY PASSED")
            && stderr.contains("dest encrypt drive --identity FILE")
            && stderr.contains("in the system keyring again"),
        "a lost key stops the destination and its key file puts it back:\n{stdout}\n{stderr}"
    );
    assert_eq!(objects_below(&dest), ["Trip/a.jpg.age", "Trip/b.jpg.age"]);
    let sealed = fs::read(dest.join("Trip/a.jpg.age")).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    assert!(
        !sealed
            .windows(b"MARKER-KEYRING-PHOTO".len())
            .any(|w| w == b"MARKER-KEYRING-PHOTO"),
        "the object holds no plaintext"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::mtime(&fs::metadata(dest.join("Trip/a.jpg.age")).unwrap()),
        std::os::unix::fs::MetadataExt::mtime(&fs::metadata(&photo_path).unwrap()),
        "the object keeps the photo's date"
    );
    // Stock age, the exported key file and its passphrase: the photo.
    assert_eq!(
        age_decrypt_with_key_file(&key_file, "a long passphrase", &dest.join("Trip/a.jpg.age")),
        photo
    );
    // The key is in the keyring and the exported file only.
    assert_nowhere_in(&env.home, &identity);
    assert_nowhere_in(&dest, &identity);
    let exported = fs::read(&key_file).unwrap();
    assert!(
        exported.starts_with(b"age-encryption.org/v1\n-> scrypt "),
        "the key file is protected by its passphrase"
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&key_file).unwrap().permissions())
            & 0o777,
        0o600
    );
}

#[test]
fn a_key_file_is_checked_before_a_destination_is_added_and_plain_backups_stay_plain() {
    let env = Env::new();
    let id = Identity::new(env.tmp.path());
    let dest = env.tmp.path().join("D");
    fs::create_dir_all(&dest).unwrap();
    let add = |env: &Env, key: &Path, in_env: Option<&str>| {
        let mut cmd = env.cmd();
        cmd.args([
            "dest",
            "add",
            "d",
            "local",
            "--path",
            dest.to_str().unwrap(),
        ])
        .arg("--identity")
        .arg(key);
        if let Some(secret) = in_env {
            cmd.env("SHOEBOX_IDENTITY_D", secret);
        }
        run_within(&mut cmd, SECS(60), "dest add --identity")
    };
    let listed = |env: &Env| env.run(["dest", "list"]).ok().stdout;

    // Without a keyring, the key must be in the environment: said, and
    // the destination is not added.
    let r = add(&env, &id.file, None);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("SHOEBOX_IDENTITY_D"), "{}", r.stderr);
    assert!(!listed(&env).contains("\nd "), "nothing is added");
    // A file that is not a key.
    let junk = env.tmp.path().join("junk.txt");
    fs::write(&junk, "not a key").unwrap();
    let r = add(&env, &junk, Some(&id.secret));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("holds no age identity"), "{}", r.stderr);
    assert!(!listed(&env).contains("\nd "), "nothing is added");
    // The right key: added, encrypted, and no warning (the user has the file).
    let r = add(&env, &id.file, Some(&id.secret)).ok();
    assert!(listed(&env).contains("(encrypted)"));
    assert!(!r.stderr.contains("the backup is lost"), "{}", r.stderr);
    // Another backup's key is not given back to it.
    let other_dir = env.tmp.path().join("other");
    fs::create_dir_all(&other_dir).unwrap();
    let other = Identity::new(&other_dir);
    let r = run_within(
        env.cmd()
            .args(["dest", "encrypt", "d", "--identity"])
            .arg(&other.file),
        SECS(60),
        "dest encrypt with another key",
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("but destination d is encrypted to age1"),
        "{}",
        r.stderr
    );

    // A passphrase too short to protect the key file is refused.
    let key_file = env.tmp.path().join("d.key");
    let r = run_fed(
        env.cmd()
            .env("SHOEBOX_IDENTITY_D", &id.secret)
            .args(["dest", "export-key", "d", "--passphrase-stdin", "--out"])
            .arg(&key_file),
        Some(b"short\n"),
        SECS(60),
        "export-key",
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("at least 8 characters"), "{}", r.stderr);
    assert!(!key_file.exists());

    // The library, once it holds plain backups, cannot be encrypted.
    env.write("a.jpg", b"plain photo");
    env.watch(&[]);
    env.sync().ok();
    let r = run_within(
        env.cmd()
            .env("SHOEBOX_IDENTITY_LIBRARY", &id.secret)
            .args(["dest", "encrypt", "library", "--identity"])
            .arg(&id.file),
        SECS(60),
        "dest encrypt library",
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("already holds files backed up without encryption"),
        "{}",
        r.stderr
    );
}

/// `dest add garage s3 …` through `port`, encrypted with the key file
/// `identity` (whose passphrase, if any, follows the secret on stdin).
pub fn add_encrypted_garage(
    env: &Env,
    port: u16,
    id: &Identity,
    key_file: &Path,
    passphrase: Option<&str>,
) -> Run {
    add_encrypted_garage_with(env, port, id, key_file, passphrase, &[])
}

/// `dest export-key garage` into `key_file`, protected by `passphrase`.
fn export_garage_key(env: &Env, id: &Identity, key_file: &Path, passphrase: &str) {
    run_fed(
        with_secrets(env, id)
            .args([
                "dest",
                "export-key",
                "garage",
                "--passphrase-stdin",
                "--out",
            ])
            .arg(key_file),
        Some(format!("{passphrase}\n").as_bytes()),
        SECS(60),
        "export-key",
    )
    .ok();
}

/// [`add_encrypted_garage`] with more arguments.
fn add_encrypted_garage_with(
    env: &Env,
    port: u16,
    id: &Identity,
    key_file: &Path,
    passphrase: Option<&str>,
    extra: &[&str],
) -> Run {
    let mut cmd = with_secrets(env, id);
    cmd.args([
        "dest",
        "add",
        "garage",
        "s3",
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--bucket",
        BUCKET,
        "--region",
        "garage",
        "--path-style",
        "--access-key-id",
        KEY_ID,
        "--secret-stdin",
        "--allow-insecure-http",
    ])
    .arg("--identity")
    .arg(key_file)
    .args(extra);
    let mut input = format!("{SECRET}\n");
    if let Some(p) = passphrase {
        cmd.arg("--passphrase-stdin");
        input.push_str(&format!("{p}\n"));
    }
    run_fed(
        &mut cmd,
        Some(input.as_bytes()),
        SECS(60),
        "dest add garage",
    )
}

/// A shoebox command with Garage's secret and the key in the environment.
pub fn with_secrets(env: &Env, id: &Identity) -> Command {
    let mut c = env.cmd();
    c.env("SHOEBOX_SECRET_GARAGE", SECRET)
        .env("SHOEBOX_IDENTITY_GARAGE", &id.secret);
    c
}

fn sync_encrypted(env: &Env, id: &Identity) -> serde_json::Value {
    run_within(
        with_secrets(env, id).args(["sync", "--json", "--settle", "100ms"]),
        SECS(180),
        "shoebox sync",
    )
    .ok()
    .json()
}

/// Every object of the bucket, decrypted with stock age: key → BLAKE3.
fn decrypted_objects(garage: &Garage, id: &Identity) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let r = crate::s3::rclone(
        garage.s3_port,
        &["copy", &format!("g:{BUCKET}"), dir.path().to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    files_below(dir.path())
        .into_keys()
        .map(|k| {
            let sealed = fs::read(dir.path().join(&k)).unwrap();
            (k, hash(&id.decrypt(&sealed)))
        })
        .collect()
}

#[test]
fn nothing_plaintext_reaches_s3_and_edits_renames_and_copies_stay_server_side() {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    let proxy = Proxy::start(garage.s3_port);
    proxy.record();
    let id = Identity::new(env.tmp.path());
    add_encrypted_garage(&env, proxy.port, &id, &id.file, None).ok();
    let a = marked("MARKER-ALPHA-7f3c", 40_000);
    let b = marked("MARKER-BRAVO-19ae", 20 << 20); // streamed, not buffered
    env.write("a.jpg", &a);
    env.write("b.mov", &b);
    env.watch(&["--album", "Holidays", "--dest", "garage"]);
    let s = sync_encrypted(&env, &id);
    assert_eq!(s["uploaded"], 2, "{s}");
    let want = |items: &[(&str, &[u8])]| -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| (format!("Holidays/{k}.age"), hash(v)))
            .collect()
    };
    assert_eq!(
        decrypted_objects(&garage, &id),
        want(&[("a.jpg", &a), ("b.mov", &b)])
    );

    // The same content under a second name: a server-side copy.
    let sent = proxy.body_bytes();
    env.write("copy of a.jpg", &a);
    let s = sync_encrypted(&env, &id);
    assert_eq!(
        (s["uploaded"].as_u64(), s["linked"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    assert!(
        proxy.body_bytes() - sent < 10_000,
        "the copy sends no content ({} bytes)",
        proxy.body_bytes() - sent
    );
    // A rename sends nothing; an edit replaces the object.
    let sent = proxy.body_bytes();
    fs::rename(env.src.join("b.mov"), env.src.join("renamed.mov")).unwrap();
    let s = sync_encrypted(&env, &id);
    assert_eq!(s["moved"], 1, "{s}");
    assert!(
        proxy.body_bytes() - sent < 10_000,
        "a rename sends no content"
    );
    let a2 = marked("MARKER-ALPHA-EDITED", 41_000);
    env.write("a.jpg", &a2);
    sync_encrypted(&env, &id);
    assert_eq!(
        decrypted_objects(&garage, &id),
        want(&[("a.jpg", &a2), ("copy of a.jpg", &a), ("renamed.mov", &b)])
    );

    // Every request byte the server received: no marker planted in a photo.
    let wire = proxy.recorded();
    assert!(wire.len() > 20 << 20, "the proxy saw the uploads");
    for marker in [
        "MARKER-ALPHA-7f3c",
        "MARKER-BRAVO-19ae",
        "MARKER-ALPHA-EDITED",
    ] {
        assert!(
            !wire.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{marker} reached the server in plaintext"
        );
    }
}

#[test]
fn a_new_computer_restores_an_encrypted_bucket_with_the_exported_key_and_adopts_what_is_there() {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    let id = Identity::new(env.tmp.path());
    add_encrypted_garage(&env, garage.s3_port, &id, &id.file, None).ok();
    let want = crate::restore::photos(&env);
    env.watch(&["--mode", "per-folder", "--dest", "garage"]);
    assert_eq!(sync_encrypted(&env, &id)["uploaded"], 3);
    let key_file = env.tmp.path().join("garage.key");
    export_garage_key(&env, &id, &key_file, "the laptop was stolen");

    // A new laptop: the bucket's address and credentials, the key file and
    // its passphrase. No keyring here: the key then comes from the
    // environment, which must hold the same key.
    let laptop = Env::new();
    let r = add_encrypted_garage(
        &laptop,
        garage.s3_port,
        &id,
        &key_file,
        Some("not the passphrase"),
    );
    assert_ne!(r.code, 0, "a wrong passphrase is refused");
    assert!(
        r.stderr.contains("passphrase does not open it"),
        "{}",
        r.stderr
    );
    add_encrypted_garage(
        &laptop,
        garage.s3_port,
        &id,
        &key_file,
        Some("the laptop was stolen"),
    )
    .ok();
    let out = laptop.tmp.path().join("Restored");
    let restore = || {
        run_within(
            with_secrets(&laptop, &id)
                .args(["restore", "--dest", "garage", "--json", "--to"])
                .arg(&out),
            SECS(120),
            "shoebox restore",
        )
    };
    crate::restore::restore_scenario(&out, &want, &restore);

    // The laptop's own data folder lost, the same photos watched again:
    // every object is read back, decrypted and adopted; nothing is sent.
    let again = Env::new();
    add_encrypted_garage(&again, garage.s3_port, &id, &id.file, None).ok();
    let r = run_within(
        again
            .cmd()
            .args(["watch", "add", "--mode", "per-folder", "--dest", "garage"])
            .arg(&env.src),
        SECS(60),
        "watch add",
    );
    r.ok();
    let s = sync_encrypted(&again, &id);
    assert_eq!(
        (s["uploaded"].as_u64(), s["linked"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
}

#[test]
fn an_encrypted_multipart_upload_killed_midway_sends_only_the_parts_the_server_lacks() {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    let proxy = Proxy::start(garage.s3_port);
    let id = Identity::new(env.tmp.path());
    add_encrypted_garage(&env, proxy.port, &id, &id.file, None).ok();
    let len = 120 * 1024 * 1024;
    let video = bytes("long encrypted video", len);
    env.write("clip.mov", &video);
    env.watch(&["--album", "Videos", "--dest", "garage"]);

    let mut child = with_secrets(&env, &id)
        .args(["sync", "--json", "--settle", "100ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    poll_until(SECS(120), "half the video to reach the server", || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync ended before it was killed"
        );
        proxy.body_bytes() >= (len / 2) as u64
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        garage.objects().is_empty(),
        "nothing is visible before it completes"
    );

    let before = proxy.body_bytes();
    let s = sync_encrypted(&env, &id);
    assert_eq!(s["uploaded"], 1, "{s}");
    let resent = proxy.body_bytes() - before;
    // The same content encrypts to the same bytes, so the parts the server
    // acknowledged are kept: at most the 3 in flight (8 MiB) go again.
    let part = 8 << 20;
    assert!(
        resent <= (len as u64) / 2 + 4 * part,
        "the restarted upload sent {resent} of {len} bytes; acknowledged parts must not be sent again"
    );
    assert_eq!(
        decrypted_objects(&garage, &id),
        BTreeMap::from([("Videos/clip.mov.age".to_string(), hash(&video))])
    );
    assert_eq!(garage.unfinished_uploads(), "");
}

#[test]
fn every_encrypted_file_arrives_exactly_once_through_resets_5xx_429_stalls_and_cut_answers() {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    let proxy = Proxy::start(garage.s3_port);
    let id = Identity::new(env.tmp.path());
    add_encrypted_garage(&env, proxy.port, &id, &id.file, None).ok();
    let mut want = BTreeMap::new();
    for i in 0..20 {
        let data = bytes(&format!("f{i}"), 50_000 + i * 7_919);
        env.write(&format!("f{i:02}.jpg"), &data);
        want.insert(format!("A/f{i:02}.jpg.age"), hash(&data));
    }
    let video = bytes("faulty encrypted video", 70 * 1024 * 1024);
    env.write("clip.mov", &video);
    want.insert("A/clip.mov.age".into(), hash(&video));
    env.watch(&["--album", "A", "--dest", "garage"]);
    proxy.inject(25, crate::proxy::EVERY_FAULT, SECS(4));
    sync_until_clean(&mut with_secrets(&env, &id));
    env.assert_retries_logged_and_bounded(proxy.faults());
    assert_exactly(&decrypted_objects(&garage, &id), &want);
    assert_eq!(garage.unfinished_uploads(), "");
}

/// WsgiDAV, which keeps the dates Shoebox sends, so that the restore's
/// dates are the photos'.
#[test]
fn a_webdav_server_holds_only_age_files_and_a_new_computer_restores_them() {
    use crate::dav_servers::{DavServer, Server};
    use crate::webdav::{PASS, USER};
    let env = Env::new();
    let server = DavServer::start(Server::WsgiDav, &env.tmp.path().join("wsgidav"));
    let id = Identity::new(env.tmp.path());
    let with_secrets = |env: &Env| {
        let mut c = env.cmd();
        c.env("SHOEBOX_IDENTITY_DAV", &id.secret)
            .env("SHOEBOX_SECRET_DAV", PASS);
        c
    };
    let add = |env: &Env| {
        run_within(
            with_secrets(env)
                .args(["dest", "add", "dav", "webdav", "--url", &server.url()])
                .args(["--user", USER, "--allow-insecure-http", "--identity"])
                .arg(&id.file),
            SECS(60),
            "dest add dav",
        )
        .ok()
    };
    add(&env);
    let want = crate::restore::photos(&env);
    env.watch(&["--mode", "per-folder", "--dest", "dav"]);
    run_within(
        with_secrets(&env).args(["sync", "--json", "--settle", "100ms"]),
        SECS(120),
        "shoebox sync",
    )
    .ok();
    assert_eq!(
        server.albums().into_keys().collect::<Vec<_>>(),
        [
            "Trip one/a b.jpg.age",
            "Trip one/clip.mov.age",
            "Z\u{fc}rich/c.jpg.age"
        ]
    );
    let sealed = fs::read(server.root.join("photos/Trip one/a b.jpg.age")).unwrap();
    assert_eq!(hash(&id.decrypt(&sealed)), want["Trip one/a b.jpg"]);

    let laptop = Env::new();
    add(&laptop);
    let out = laptop.tmp.path().join("Restored");
    crate::restore::restore_scenario(&out, &want, &|| {
        run_within(
            with_secrets(&laptop)
                .args(["restore", "--dest", "dav", "--json", "--to"])
                .arg(&out),
            SECS(120),
            "shoebox restore",
        )
    });
}

#[test]
fn hidden_names_never_reach_the_server_and_come_back_on_a_new_computer() {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    let proxy = Proxy::start(garage.s3_port);
    proxy.record();
    let id = Identity::new(env.tmp.path());
    add_encrypted_garage_with(&env, proxy.port, &id, &id.file, None, &["--encrypt-names"]).ok();
    assert!(
        env.run(["dest", "list"])
            .ok()
            .stdout
            .contains("encrypted, names hidden")
    );
    let mut want = BTreeMap::new();
    for (path, len) in [
        ("Secret Holiday Z\u{fc}rich/IMG_4242 Grandma.jpg", 30_000),
        ("Secret Holiday Z\u{fc}rich/clip-beach.mov", 20 << 20),
        ("Private Album/scan-passport.jpg", 5_000),
    ] {
        let data = bytes(path, len);
        env.write(path, &data);
        want.insert(path.to_string(), hash(&data));
    }
    env.watch(&["--mode", "per-folder", "--dest", "garage"]);
    assert_eq!(sync_encrypted(&env, &id)["uploaded"], 3);
    // A rename is still a server-side move; a copy of content a copy.
    fs::rename(
        env.src.join("Private Album/scan-passport.jpg"),
        env.src.join("Private Album/passport-renamed.jpg"),
    )
    .unwrap();
    let s = sync_encrypted(&env, &id);
    assert_eq!(s["moved"], 1, "{s}");
    want.remove("Private Album/scan-passport.jpg");
    want.insert(
        "Private Album/passport-renamed.jpg".into(),
        hash(&bytes("Private Album/scan-passport.jpg", 5_000)),
    );

    // Nothing the server received names an album or a file. Each needle is
    // 6 bytes or more: 20 MiB of ciphertext holds a given 4-byte string
    // about once in 200 runs, a 6-byte one about once in 13 million.
    let wire = proxy.recorded();
    for name in [
        "Secret",
        "Holiday",
        "Z\u{fc}rich",
        "Z%C3%BCrich",
        "IMG_4242",
        "Grandma",
        "clip-beach",
        "Private",
        "passport",
    ] {
        assert!(
            !wire.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} reached the server"
        );
    }
    // The manifest, read with stock age alone, names every file and where
    // it is.
    let objects = decrypted_objects(&garage, &id);
    let manifest_key = ".shoebox-names/manifest.age";
    assert!(objects.contains_key(manifest_key), "{objects:?}");
    let manifest = String::from_utf8(
        id.decrypt(
            &crate::s3::rclone(
                garage.s3_port,
                &["cat", &format!("g:{BUCKET}/{manifest_key}")],
            )
            .stdout,
        ),
    )
    .unwrap();
    let listed: BTreeMap<String, String> = manifest
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, stored) = l.split_once('\t').unwrap();
            (name.to_string(), objects[stored].clone())
        })
        .collect();
    assert_eq!(listed, want, "{manifest}");

    // A new computer with the exported key file gets the names back
    // without being told that they are hidden.
    let key_file = env.tmp.path().join("hidden.key");
    export_garage_key(&env, &id, &key_file, "names are private too");
    let laptop = Env::new();
    add_encrypted_garage(
        &laptop,
        garage.s3_port,
        &id,
        &key_file,
        Some("names are private too"),
    )
    .ok();
    let out = laptop.tmp.path().join("Restored");
    let r = run_within(
        with_secrets(&laptop, &id)
            .args(["restore", "--dest", "garage", "--json", "--to"])
            .arg(&out),
        SECS(120),
        "shoebox restore",
    )
    .ok();
    assert_eq!(r.json()["restored"], 3, "{}", r.stdout);
    assert_eq!(files_below(&out), want);
    // And verify checks them by listing, names and all.
    let r = run_within(
        with_secrets(&env, &id).args(["verify", "--deep"]),
        SECS(120),
        "shoebox verify",
    )
    .ok();
    assert!(r.stdout.contains("0 missing, 0 damaged"), "{}", r.stdout);
}

#[test]
fn a_running_engine_keeps_the_manifest_of_hidden_names_and_completes_it_when_it_stops() {
    let env = Env::new();
    let id = Identity::new(env.tmp.path());
    let vault = env.tmp.path().join("vault");
    fs::create_dir(&vault).unwrap();
    let key = [("SHOEBOX_IDENTITY_VAULT", id.secret.as_str())];
    run_within(
        env.cmd()
            .envs(key)
            .args(["dest", "add", "vault", "local", "--encrypt-names", "--path"])
            .arg(&vault)
            .arg("--identity")
            .arg(&id.file),
        SECS(30),
        "dest add",
    )
    .ok();
    env.watch(&["--dest", "vault"]);
    let manifest = || match fs::read(vault.join(".shoebox-names/manifest.age")) {
        Ok(sealed) => String::from_utf8(id.decrypt(&sealed)).unwrap(),
        Err(_) => String::new(),
    };
    let mut run = env.spawn_run_with_env(&[], &key);
    let m = run.mark();
    env.write("first.jpg", &bytes("first", 10_000));
    run.wait_for(m, SECS(30), done_for("first.jpg"));
    run.wait_until(SECS(30), || manifest().contains("/first.jpg\t"));

    // Names that change soon after wait for a later pass, or for the stop.
    let m = run.mark();
    env.write("second.jpg", &bytes("second", 10_000));
    run.wait_for(m, SECS(30), done_for("second.jpg"));
    assert!(!manifest().contains("second.jpg"), "{}", manifest());
    run.signal(libc::SIGTERM);
    let stopped = run.wait_exit(SECS(30));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "shoebox run stops on SIGTERM: {stopped:?}"
    );
    let text = manifest();
    assert!(
        text.contains("/first.jpg\t") && text.contains("/second.jpg\t"),
        "{text}"
    );
}
