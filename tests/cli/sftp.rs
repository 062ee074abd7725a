//! SFTP against a real OpenSSH `sshd` (tests/common/sshd.rs): the whole
//! scenario, host keys, every way of signing in, and crashes of either
//! side.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::sshd::{PASSWORD, SshServer, UID, keygen};
use crate::support::*;

/// A user's machine: `HOME` (for ~/.ssh/known_hosts) is the test's own.
pub fn user_home(env: &Env) -> PathBuf {
    let home = env.tmp.path().join("user");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    home
}

/// A command as the user runs it, with the private key as the secret
/// (there is no keyring here).
pub fn shoebox(env: &Env, secret: &str) -> Command {
    let mut c = env.cmd();
    c.env("HOME", user_home(env))
        .env("SHOEBOX_SECRET_SSH", secret)
        .env_remove("SSH_AUTH_SOCK");
    c
}

fn run(mut cmd: Command, args: &[&str]) -> Run {
    run_within(
        cmd.args(args),
        SECS(120),
        &format!("shoebox {}", args.join(" ")),
    )
}

/// `dest add NAME sftp` for the test account on the server at `port`,
/// with `path` as the folder; `extra` adds the sign-in and the host key.
fn add_args(port: u16, name: &str, path: &str, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    let mut args = vec![
        "dest",
        "add",
        name,
        "sftp",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        "shoebox",
        "--path",
        path,
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(String::from).collect()
}

/// `dest add ssh sftp` with the account's key, trusting the server's key.
pub fn add_dest(env: &Env, server: &SshServer) -> String {
    let key = fs::read_to_string(server.user_key()).unwrap();
    let fp = server.fingerprint();
    let path = server.served.join("photos");
    let user_key = server.user_key();
    let args = add_args(
        server.port,
        "ssh",
        path.to_str().unwrap(),
        &["--key", user_key.to_str().unwrap(), "--trust-host-key", &fp],
    );
    let r = run(shoebox(env, &key), &strs(&args)).ok();
    assert!(
        r.stdout.contains(&fp),
        "the pinned key is named: {}",
        r.stdout
    );
    key
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn sync(env: &Env, secret: &str) -> Run {
    run(
        shoebox(env, secret),
        &["sync", "--json", "--settle", "100ms"],
    )
}

/// The whole scenario of a user's first week, as against each WebDAV
/// server: odd names in three albums and a 3 MiB video, with their dates
/// and readable by others; an edit, renames, a move and a deletion; a sync
/// with nothing to do; a wrong key; the server killed and back.
#[test]
fn sftp_passes_the_whole_scenario() {
    let env = Env::new();
    let mut server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = add_dest(&env, &server);
    let r = run(shoebox(&env, &key), &["dest", "test", "ssh"]).ok();
    assert!(
        r.stdout.contains("ok   reachable") && r.stdout.contains("ok   write permission"),
        "a new destination passes its test before any sync: {}",
        r.stdout
    );
    let mut want = BTreeMap::new();
    for (i, folder) in crate::dav_servers::FOLDERS.iter().enumerate() {
        for (j, name) in crate::dav_servers::ODD_NAMES.iter().enumerate() {
            let data = bytes(&format!("{folder}/{name}"), 2000 + 100 * (i * 20 + j));
            let p = env.write(&format!("{folder}/{name}"), &data);
            set_mtime(&p, old_date());
            want.insert(
                format!("{folder}/{}", name.replace('?', "\u{ff1f}")),
                hash(&data),
            );
        }
    }
    let video = bytes("video", 3 << 20);
    env.write("Trip one/clip.mov", &video);
    want.insert("Trip one/clip.mov".into(), hash(&video));
    env.watch(&[
        "--mode",
        "per-folder",
        "--dest",
        "ssh",
        "--on-delete",
        "remove",
    ]);
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["uploaded"], want.len(), "{s}\n{}", server.log());
    assert_eq!(server.albums(), want, "every name arrives whole");
    let photo = server.served.join("photos/Trip one/a b.jpg");
    let meta = fs::metadata(&photo).unwrap();
    assert_eq!(
        meta.mtime(),
        old_date()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        "the copy keeps the photo's date"
    );
    assert_eq!(meta.mode() & 0o777, 0o644, "others can read the copy");
    assert_eq!(meta.uid(), UID, "written as the account, not as root");
    assert!(server.staged().is_empty(), "{:?}", server.staged());

    // An edit, renames, a move to another album and a deletion.
    let trip = env.src.join("Trip one");
    let edited = bytes("edited", 2500);
    fs::write(trip.join("a+b.jpg"), &edited).unwrap();
    want.insert("Trip one/a+b.jpg".into(), hash(&edited));
    for moved in [
        ("Trip one/#1.jpg", "Trip one/#1 renamed;x.jpg"),
        ("Trip one/50% off.jpg", "Misc #2/50% moved.jpg"),
    ] {
        rename_expected(&env, &mut want, moved, str::to_string);
    }
    fs::remove_file(trip.join("a?1.jpg")).unwrap();
    want.remove("Trip one/a\u{ff1f}1.jpg");
    let s = sync(&env, &key).ok().json();
    assert_eq!(
        (
            s["uploaded"].as_u64(),
            s["moved"].as_u64(),
            s["removed"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(s["bytes_uploaded"], edited.len(), "only the edit is sent");
    assert_eq!(server.albums(), want, "the changes reached the server");

    // A second name for a photo in the same album is a hard link on the
    // server: no bytes are sent, and each name stands on its own.
    let twin = bytes("Misc #2/a b.jpg", 2000 + 100 * 40);
    env.write("Misc #2/twin.jpg", &twin);
    want.insert("Misc #2/twin.jpg".into(), hash(&twin));
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["bytes_uploaded"], 0, "{s}");
    assert_eq!(server.albums(), want);
    let twin_meta = fs::metadata(server.served.join("photos/Misc #2/twin.jpg")).unwrap();
    assert_eq!(twin_meta.nlink(), 2, "a hard link to Misc #2/a b.jpg");

    // Nothing to do: nothing is sent.
    let s = sync(&env, &key).ok().json();
    assert_eq!(
        (s["uploaded"].as_u64(), s["bytes_uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // A key the server does not know is named as such.
    let stranger = env.tmp.path().join("stranger");
    keygen(&stranger, "");
    let r = run(
        shoebox(&env, &fs::read_to_string(&stranger).unwrap()),
        &["dest", "test", "ssh"],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stdout
            .contains("refused the private key for the user shoebox"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // The server dies: a new photo waits and nothing is lost; it is sent
    // once the server is back.
    server.kill();
    let late = bytes("late", 3000);
    env.write("Z\u{fc}rich/late.jpg", &late);
    let r = sync(&env, &key);
    let s = r.json();
    assert_eq!(
        (s["failed"].as_u64(), s["waiting"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    assert!(
        s["unavailable_destinations"][0]
            .as_str()
            .unwrap()
            .contains("cannot reach 127.0.0.1"),
        "{s}"
    );
    server.restart();
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    want.insert("Z\u{fc}rich/late.jpg".into(), hash(&late));
    assert_eq!(server.albums(), want);
}

#[test]
fn a_new_host_key_is_confirmed_once_and_a_changed_one_is_refused_until_trusted_again() {
    let env = Env::new();
    let mut server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = fs::read_to_string(server.user_key()).unwrap();
    let (port, server_port) = (server.port.to_string(), server.port);
    let path = server.served.join("photos");
    let user_key = server.user_key();
    let add = |name: &str, extra: &[&str]| {
        let mut with_key = vec!["--key", user_key.to_str().unwrap()];
        with_key.extend_from_slice(extra);
        let args = add_args(server_port, name, path.to_str().unwrap(), &with_key);
        let mut cmd = shoebox(&env, &key);
        cmd.stdin(Stdio::null())
            .env(format!("SHOEBOX_SECRET_{}", name.to_uppercase()), &key);
        run(cmd, &strs(&args))
    };
    let fp = server.fingerprint();

    // Unknown, and nobody at a terminal to ask: the fingerprint is shown.
    let r = add("ssh", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not known to this computer") && r.stderr.contains(&fp),
        "the fingerprint is shown with what to do: {}",
        r.stderr
    );
    assert!(r.stderr.contains("--trust-host-key"), "{}", r.stderr);
    // Another fingerprint than the server's is refused.
    let r = add(
        "ssh",
        &[
            "--trust-host-key",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("shows the host key {fp}")),
        "{}",
        r.stderr
    );
    assert!(
        run(shoebox(&env, &key), &["dest", "list"])
            .ok()
            .stdout
            .lines()
            .all(|l| !l.starts_with("ssh"))
    );

    // A server ~/.ssh/known_hosts knows needs no question.
    let home = user_home(&env);
    fs::write(home.join(".ssh/known_hosts"), server.known_hosts_line()).unwrap();
    add("ssh", &[]).ok();
    fs::remove_file(home.join(".ssh/known_hosts")).unwrap();
    let photo = bytes("photo", 5000);
    env.write("a.jpg", &photo);
    env.watch(&["--dest", "ssh"]);
    sync(&env, &key).ok();
    assert_eq!(server.albums().len(), 1);

    // The server gets a new key: nothing is sent, and the message says why
    // and how to trust the new key.
    server.new_host_key();
    let new_fp = server.fingerprint();
    env.write("b.jpg", &bytes("b", 5000));
    let s = sync(&env, &key).json();
    let why = s["unavailable_destinations"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains("host key has changed")
            && why.contains(&fp)
            && why.contains(&new_fp)
            && why.contains(&format!("dest edit ssh --trust-host-key {new_fp}")),
        "{why}"
    );
    assert_eq!(s["uploaded"], 0, "{s}");
    assert_eq!(server.albums().len(), 1, "nothing reached the new server");
    // Known_hosts with the old key: it refuses a new destination as well.
    fs::write(
        home.join(".ssh/known_hosts"),
        format!("[127.0.0.1]:{port} ssh-ed25519 {}\n", old_key_blob(&env)),
    )
    .unwrap();
    let r = add("other", &["--trust-host-key", &new_fp]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("records another one"), "{}", r.stderr);

    // Trusted again, with the fingerprint the administrator gave.
    run(
        shoebox(&env, &key),
        &["dest", "edit", "ssh", "--trust-host-key", &new_fp],
    )
    .ok();
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(server.albums().len(), 2);
    let list = run(shoebox(&env, &key), &["dest", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[1]["host_key"], new_fp.as_str(), "{list}");
}

/// A public key blob unrelated to the server's, for a stale known_hosts.
fn old_key_blob(env: &Env) -> String {
    let path = env.tmp.path().join("old_host_key");
    keygen(&path, "");
    let text = fs::read_to_string(path.with_extension("pub")).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn a_password_a_key_with_a_passphrase_and_the_ssh_agent_each_sign_in() {
    let env = Env::new();
    let server = SshServer::start(&env.tmp.path().join("sshd"));
    let server_port = server.port;
    let fp = server.fingerprint();
    let path = server.served.join("photos");
    let add = |name: &str, secret: Option<&str>, stdin: &str, extra: &[&str]| {
        let mut trusting = vec!["--trust-host-key", fp.as_str()];
        trusting.extend_from_slice(extra);
        let args = add_args(server_port, name, path.to_str().unwrap(), &trusting);
        let mut cmd = env.cmd();
        cmd.env("HOME", user_home(&env))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = secret {
            cmd.env(format!("SHOEBOX_SECRET_{}", name.to_uppercase()), s);
        }
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap())
    };

    // A password, and a wrong one named as such.
    add(
        "pw",
        Some(PASSWORD),
        &format!("{PASSWORD}\n"),
        &["--password-stdin"],
    )
    .ok();
    let r = add("bad", Some("wrong"), "wrong\n", &["--password-stdin"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("refused the password for the user shoebox"),
        "{}",
        r.stderr
    );

    // A key protected by a passphrase: without it, the error says how.
    let locked = env.tmp.path().join("locked_key");
    keygen(&locked, "secret phrase");
    let mut keys = fs::read_to_string(server.user_key().with_extension("pub")).unwrap();
    keys.push_str(&fs::read_to_string(locked.with_extension("pub")).unwrap());
    fs::write(env.tmp.path().join("sshd/authorized_keys"), keys).unwrap();
    let locked_arg = locked.to_str().unwrap();
    let r = add("phrase", None, "", &["--key", locked_arg]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("protected by a passphrase"),
        "{}",
        r.stderr
    );
    // The key is kept decrypted in the keyring (here: the variable).
    let plain = env.tmp.path().join("plain_copy");
    fs::copy(&locked, &plain).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "secret phrase", "-N", "", "-f"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let plain_text = fs::read_to_string(&plain).unwrap();
    add(
        "phrase",
        Some(&plain_text),
        "secret phrase\n",
        &["--key", locked_arg, "--password-stdin"],
    )
    .ok();

    // The ssh-agent: no secret at all.
    let sock = env.tmp.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    poll_until(SECS(20), "ssh-agent to listen", || sock.exists());
    let st = Command::new("ssh-add")
        .arg("-q")
        .arg(server.user_key())
        .env("SSH_AUTH_SOCK", &sock)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-add");
    let mut cmd = env.cmd();
    cmd.env("HOME", user_home(&env)).env("SSH_AUTH_SOCK", &sock);
    let args = add_args(
        server_port,
        "agent",
        "photos/by agent",
        &["--trust-host-key", &fp],
    );
    run(cmd, &strs(&args)).ok();

    // Each one backs up.
    for dest in ["pw", "phrase", "agent"] {
        let src = env.tmp.path().join(format!("src-{dest}"));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join(format!("{dest}.jpg")), bytes(dest, 4000)).unwrap();
        run(
            env.cmd(),
            &[
                "watch",
                "add",
                src.to_str().unwrap(),
                "--dest",
                dest,
                "--album",
                dest,
            ],
        )
        .ok();
    }
    let mut cmd = env.cmd();
    cmd.env("HOME", user_home(&env))
        .env("SSH_AUTH_SOCK", &sock)
        .env("SHOEBOX_SECRET_PW", PASSWORD)
        .env("SHOEBOX_SECRET_PHRASE", &plain_text);
    let s = run(cmd, &["sync", "--json", "--settle", "100ms"])
        .ok()
        .json();
    assert_eq!(s["uploaded"], 3, "{s}");
    let albums = server.albums();
    assert!(
        albums.contains_key("pw/pw.jpg") && albums.contains_key("phrase/phrase.jpg"),
        "{albums:?}"
    );
    assert!(
        albums.contains_key("by agent/agent/agent.jpg"),
        "a relative --path starts at the account's home: {albums:?}"
    );
    let list = run(env.cmd(), &["dest", "list", "--json"]).ok().json();
    let agent_dest = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "agent")
        .unwrap();
    assert_eq!(
        agent_dest["path"],
        server.served.join("photos/by agent").to_str().unwrap(),
        "kept as the absolute path: {agent_dest}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
}

#[test]
fn sshd_killed_in_the_middle_of_an_upload_makes_the_video_wait_and_leaves_nothing_behind() {
    let env = Env::new();
    let mut server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = add_dest(&env, &server);
    let chunk = bytes("video", 1 << 20);
    let video: Vec<u8> = (0..192u32)
        .flat_map(|i| {
            let mut c = chunk.clone();
            c[..4].copy_from_slice(&i.to_le_bytes());
            c
        })
        .collect();
    env.write("clip.mov", &video);
    env.watch(&["--dest", "ssh"]);

    // sshd is killed once a MiB of the video has arrived (not at the
    // marker file, which is staged too).
    let staging = server.served.join("photos/.shoebox-staging");
    let pid = server.pid();
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + SECS(60);
        loop {
            let mut files = Vec::new();
            walk_all(&staging, &mut files);
            if files
                .iter()
                .any(|f| f.is_file() && f.metadata().is_ok_and(|m| m.len() > 1 << 20))
            {
                return Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap()
                    .success();
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    let s = sync(&env, &key).json();
    assert!(
        killer.join().unwrap(),
        "timed out after 60 s waiting for the upload to arrive"
    );
    assert_eq!(s["failed"], 0, "the video is not the server's fault: {s}");
    assert_eq!(s["waiting"], 1, "it waits for the server: {s}");
    assert!(
        !server.staged().is_empty(),
        "the cut upload is still on the server"
    );

    server.restart();
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(server.albums()["Photos/clip.mov"], hash(&video));
    assert!(
        server.staged().is_empty(),
        "the cut upload was cleaned up: {:?}",
        server.staged()
    );
}

#[test]
fn shoebox_killed_mid_upload_then_a_lost_data_folder_neither_duplicates_nor_sends_again() {
    let env = Env::new();
    let server = SshServer::start(&env.tmp.path().join("sshd"));
    let key = add_dest(&env, &server);
    let chunk = bytes("video", 1 << 20);
    let video: Vec<u8> = (0..128u32)
        .flat_map(|i| {
            let mut c = chunk.clone();
            c[..4].copy_from_slice(&i.to_le_bytes());
            c
        })
        .collect();
    env.write("clip.mov", &video);
    let photo = bytes("photo", 9000);
    env.write("a.jpg", &photo);
    env.watch(&["--dest", "ssh"]);

    // kill -9 once a MiB of the video is on the server.
    let mut cmd = shoebox(&env, &key);
    let mut child = cmd
        .args(["sync", "--json", "--settle", "100ms", "--workers", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let staging = server.served.join("photos/.shoebox-staging");
    poll_until(SECS(60), "a MiB of the video on the server", || {
        let mut files = Vec::new();
        walk_all(&staging, &mut files);
        files
            .iter()
            .any(|f| f.is_file() && f.metadata().is_ok_and(|m| m.len() > 1 << 20))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !server.staged().is_empty(),
        "the cut upload is on the server"
    );

    let s = sync(&env, &key).ok().json();
    assert_eq!(s["failed"], 0, "{s}");
    let want = BTreeMap::from([
        ("Photos/a.jpg".to_string(), hash(&photo)),
        ("Photos/clip.mov".to_string(), hash(&video)),
    ]);
    assert_eq!(server.albums(), want, "each file once, whole");
    assert!(server.staged().is_empty(), "{:?}", server.staged());

    // The data folder is lost: a new one finds both files on the server,
    // reads them back and sends nothing.
    fs::remove_dir_all(&env.home).unwrap();
    add_dest(&env, &server);
    env.watch(&["--dest", "ssh"]);
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["bytes_uploaded"], 0, "adopted, not sent again: {s}");
    assert_eq!(server.albums(), want, "no second copies");
}

/// A tmpfs mounted over a folder for the length of a test.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},uid={UID},gid={UID},mode=0755"))
            .arg("tmpfs")
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount tmpfs at {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_on_the_server_stops_the_destination_and_loses_nothing() {
    let env = Env::new();
    let mut server = SshServer::start(&env.tmp.path().join("sshd"));
    // A 4 MiB disk for the destination's folder, seen by sshd once it
    // starts again (its mount namespace is a copy made at its start).
    let disk = Tmpfs::mount(&server.served.join("photos"), "4m");
    server.restart();
    let key = add_dest(&env, &server);
    let mut want = BTreeMap::new();
    for i in 0..3 {
        let data = bytes(&format!("photo {i}"), 20_000);
        env.write(&format!("p{i}.jpg"), &data);
        want.insert(format!("Photos/p{i}.jpg"), hash(&data));
    }
    let video = bytes("video", 8 << 20);
    env.write("clip.mov", &video);
    want.insert("Photos/clip.mov".to_string(), hash(&video));
    env.watch(&["--dest", "ssh"]);

    let s = sync(&env, &key).json();
    assert_eq!(s["failed"], 0, "a full disk is not the files' fault: {s}");
    let why = s["unavailable_destinations"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("is full") && why.contains("no space left"),
        "the destination is full, and the message says so: {s}"
    );
    assert!(s["waiting"].as_u64().unwrap() >= 1, "{s}");
    for (name, h) in server.albums() {
        assert_eq!(want.get(&name), Some(&h), "{name} is whole on the server");
    }
    assert!(
        server.staged().is_empty(),
        "the cut upload was removed: {:?}",
        server.staged()
    );

    // Space is made: everything goes up, once.
    disk.resize("64m");
    let s = sync(&env, &key).ok().json();
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(server.albums(), want);
}
