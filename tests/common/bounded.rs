//! Running a command with a bound on its time: the one runner both suites
//! use, for the binaries under test and for helper commands (openssl,
//! dbus-send, gdbus).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to its end with `input` (if any) on its standard input and
/// its output captured; `None` if it ran longer than `timeout` (it is then
/// killed). Both pipes are read on threads, so that a full one never
/// stalls it.
pub fn output_fed(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Option<Output> {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot be started: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || stdin.write_all(&input));
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Some(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Runs `cmd` to its end with its output captured; fails the test naming
/// `what` if it runs longer than `timeout` (it is killed).
#[track_caller]
pub fn output_within(cmd: &mut Command, timeout: Duration, what: &str) -> Output {
    output_fed(cmd, None, timeout)
        .unwrap_or_else(|| panic!("{what} did not end within {timeout:?}"))
}

/// Runs `cmd`, killing it after `timeout`; true when it exited 0.
pub fn succeeds_within(cmd: &mut Command, timeout: Duration) -> bool {
    output_fed(cmd, None, timeout).is_some_and(|out| out.status.success())
}

/// A self-signed certificate for 127.0.0.1 (openssl), as a NAS makes one:
/// (cert, key), PEM files in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = succeeds_within(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(60),
    );
    assert!(made, "openssl made a certificate (within 60 s)");
    (cert, key)
}
