//! The running engine's local API: `status --follow`, commands reaching the
//! engine through its socket, and no one but its owner connecting.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::*;

/// Follows `env`'s running engine: `status --follow --json`, collected.
fn follow(env: &Env) -> Running {
    let child = env
        .cmd()
        .args(["status", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running::collect(child)
}

fn paused(v: &serde_json::Value) -> Option<bool> {
    v["status"]["paused"].as_bool()
}

#[test]
fn status_follow_streams_what_the_engine_does_until_it_stops() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    let sock = env.home.join("engine.sock");
    let mode = fs::symlink_metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is its owner's only");
    assert!(
        !env.home.join("control").exists(),
        "no control folder beside the socket"
    );

    let mut followed = follow(&env);
    let first = followed.wait_for(0, SECS(10), |v| v["status"].is_object());
    assert_eq!(paused(&first), Some(false));
    assert!(
        first["status"]["engine"]
            .as_str()
            .is_some_and(|e| e.starts_with("shoebox run")),
        "the status names the engine: {first}"
    );

    // An upload, as it happens.
    env.write("a.jpg", &bytes("a", 4000));
    let done = followed.wait_for(0, SECS(30), done_for("a.jpg"));
    assert_eq!(done["outcome"], "uploaded");
    assert_eq!(env.library_files().len(), 1);

    // A command from another process reaches the engine through the
    // socket, and the followers see it.
    let mark = followed.mark();
    env.run(["pause"]).ok();
    followed.wait_for(mark, SECS(10), |v| paused(v) == Some(true));
    let mark = followed.mark();
    env.run(["resume"]).ok();
    followed.wait_for(mark, SECS(10), |v| paused(v) == Some(false));

    // Killed, the engine leaves its socket behind; the follower's stream
    // ends and it exits cleanly.
    drop(run);
    assert!(
        followed.wait_exit(SECS(10)).is_some_and(|s| s.success()),
        "the follower ends with the engine"
    );

    // The next engine serves in its place, and what it does is asked of
    // it: a file held by the settle window shows in `status`.
    let run = env.spawn_run(&["--settle", "30s"]);
    let mut followed = follow(&env);
    followed.wait_for(0, SECS(10), |v| v["status"].is_object());
    env.write("b.jpg", &bytes("b", 4000));
    run.wait_until(SECS(20), || env.status()["settling"] == 1);

    // Stopped, it ends its followers' streams and removes its socket.
    run.signal(libc::SIGTERM);
    let status = followed.wait_exit(SECS(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the follower ends cleanly when the engine stops: {status:?}"
    );
    poll_until(SECS(20), "the stopped engine's socket to go", || {
        !sock.exists()
    });
}

#[test]
fn status_follow_without_an_engine_says_how_to_start_one() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.run(["status", "--follow"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("no engine runs") && run.stderr.contains("shoebox run"),
        "{}",
        run.stderr
    );
}

/// Connects to `sock` as `user` (a uid, through setpriv), asks for the
/// engine's activity and prints what came back.
fn ask_as(uid: u32, sock: &std::path::Path) -> Run {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("REFUSED: permission"); sys.exit(0)
try:
    s.sendall(b'{"op":"activity"}\n')
    reply = s.recv(65536)
except (BrokenPipeError, ConnectionResetError):
    reply = b""
print("ANSWER: " + reply.decode() if reply else "CLOSED")
"#;
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "/usr/bin/python3", "-c", script])
        .arg(sock);
    run_within(&mut cmd, SECS(20), "a connection to the engine's socket")
}

#[test]
fn only_its_owner_reaches_the_engine() {
    assert!(
        is_root(),
        "this test acts as another user (setpriv), which needs root"
    );
    let env = Env::new();
    // Every folder on the way is open to others, so that only the
    // socket's own mode and the engine's check of its peer keep them out.
    for dir in [env.tmp.path(), env.home.as_path()] {
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    env.watch(&[]);
    let _run = env.spawn_run(&[]);
    let sock = env.home.join("engine.sock");

    let owner = ask_as(0, &sock);
    assert!(
        owner.stdout.starts_with("ANSWER: {\"activity\""),
        "{}",
        owner.stdout
    );

    let nobody = 65534;
    let other = ask_as(nobody, &sock);
    assert_eq!(
        other.stdout.trim(),
        "REFUSED: permission",
        "{}",
        other.stderr
    );

    // Even with the socket opened to everyone, the engine answers no one
    // but its owner.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
    let other = ask_as(nobody, &sock);
    assert_eq!(other.stdout.trim(), "CLOSED", "{}", other.stderr);
    assert!(
        !env.log_lines("refused a connection from another user")
            .is_empty(),
        "the refusal is logged"
    );
    let owner = ask_as(0, &sock);
    assert!(
        owner.stdout.starts_with("ANSWER: {\"activity\""),
        "{}",
        owner.stdout
    );
}
