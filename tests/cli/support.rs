//! Test harness: a temp dir with a source tree and a Shoebox home, helpers
//! to run the binary and to inspect the library.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_shoebox");

/// Deterministic incompressible bytes: BLAKE3's XOF of the seed.
pub fn bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Runs `sync --json` (with a 2 s stall allowance) until a pass ends with
/// exit 0; under injected faults a pass may leave files for the next one.
/// Each pass is bounded, and so is their number.
#[track_caller]
pub fn sync_until_clean(cmd: &mut Command) {
    cmd.env("SHOEBOX_HTTP_TIMEOUT", "2")
        .args(["sync", "--json", "--settle", "100ms"]);
    for pass in 1.. {
        let r = Run::from(cmd.output().unwrap());
        if r.code == 0 {
            return;
        }
        assert!(pass < 8, "still failing after {pass} passes: {}", r.stdout);
    }
}

/// Every wanted object is there with its content, and nothing else is.
#[track_caller]
pub fn assert_exactly(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(v))
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "every file exactly once, with its content: extra {extra:?}, missing {missing:?}"
    );
}

/// Fails if any file below `dir` contains `secret`.
#[track_caller]
pub fn assert_nowhere_in(dir: &Path, secret: &str) {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file() {
                // (Not the engine's socket.)
                let data = fs::read(e.path()).unwrap();
                assert!(
                    !data.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the secret is in {}",
                    e.path().display()
                );
            }
        }
    }
}

pub fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// A date long past, with nanoseconds, for files whose date must survive.
pub fn old_date() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 123_456_789)
}

/// The date as rclone prints a modification time (`lsjson`'s `ModTime`).
pub const OLD_DATE_RFC3339: &str = "2017-07-14T02:40:00.123456789Z";

pub fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

pub fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// This process's umask, which the shoebox it starts inherits.
pub fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("the kernel reports the umask");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub src: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// The JSON lines of a `--json` run.
    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The last JSON line (a sync's summary, or a one-object output).
    pub fn json(&self) -> Value {
        self.lines().pop().expect("some JSON output")
    }

    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v["event"] == kind)
            .collect()
    }
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let src = tmp.path().join("Photos");
        fs::create_dir_all(&src).unwrap();
        Env { tmp, home, src }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--home")
            .arg(&self.home)
            .env_remove("SHOEBOX_HOME")
            .env_remove("SHOEBOX_LOG")
            // No system bus: the computer's battery and network are
            // unknown, whatever runs this suite (tests/cli/conditions.rs
            // brings its own bus).
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                "unix:path=/nonexistent/shoebox-test-bus",
            );
        c
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.cmd().args(args).output().unwrap())
    }

    /// `watch add <src> <extra args>`, which must succeed.
    pub fn watch(&self, extra: &[&str]) {
        let mut args: Vec<&OsStr> =
            vec![OsStr::new("watch"), OsStr::new("add"), self.src.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        self.run(args).ok();
    }

    /// `sync --json` with a short settle window: files written by the test
    /// a moment ago are settled after 100 ms, not the default 2 s.
    pub fn sync(&self) -> Run {
        self.run(["sync", "--json", "--settle", "100ms"])
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.src.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    pub fn library(&self) -> PathBuf {
        self.home.join("Library")
    }

    /// Every file in the library (outside the staging folder): relative
    /// path → content hash.
    pub fn library_files(&self) -> BTreeMap<String, String> {
        let lib = self.library();
        if !lib.exists() {
            return BTreeMap::new();
        }
        files_below(&lib)
    }

    /// Temporary files anywhere in the library, including the staging area.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk_all(&self.library(), &mut out);
        let lib = self.library();
        out.into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(&lib).unwrap().to_string_lossy().into_owned();
                rel.starts_with(".shoebox-staging/")
                    || rel.ends_with(".part")
                    || rel.contains(".tmp")
            })
            .collect()
    }

    pub fn status(&self) -> Value {
        self.run(["status", "--json"]).ok().json()
    }

    /// Spawns `sync --json` with a pipe on stdout.
    pub fn spawn_sync(&self) -> (Child, BufReader<ChildStdout>) {
        let mut child = self
            .cmd()
            .args(["sync", "--json", "--settle", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        (child, out)
    }
}

/// Reads JSON lines until `pred` has matched `n` times.
pub fn read_until(out: &mut BufReader<ChildStdout>, n: usize, pred: impl Fn(&Value) -> bool) {
    let mut seen = 0;
    let mut line = String::new();
    while seen < n {
        line.clear();
        let got = out.read_line(&mut line).unwrap();
        assert!(got > 0, "the sync ended before {n} matching events");
        let v: Value = serde_json::from_str(&line).unwrap();
        if pred(&v) {
            seen += 1;
        }
    }
}

/// Every file below `dir` outside the staging folder and the destination
/// marker: relative path → hash.
pub fn files_below(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    collect(dir, dir, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        // Shoebox's own bookkeeping: the staging area and the marker.
        if e.file_name() == ".shoebox-staging" || e.file_name() == ".shoebox-destination" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(rel, hash(&fs::read(&p).unwrap()));
        }
    }
}

/// Every file below `dir`, staging included (absolute paths).
pub fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            walk_all(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Watches a tree for file opens and reads with inotify, to prove what the
/// engine did or did not read.
#[cfg(target_os = "linux")]
pub struct ReadProbe {
    inotify: inotify::Inotify,
}

#[cfg(target_os = "linux")]
impl ReadProbe {
    pub fn new(tree: &Path) -> ReadProbe {
        use inotify::{Inotify, WatchMask};
        let inotify = Inotify::init().unwrap();
        let mut dirs = vec![tree.to_path_buf()];
        while let Some(d) = dirs.pop() {
            inotify
                .watches()
                .add(&d, WatchMask::OPEN | WatchMask::ACCESS)
                .unwrap();
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
        ReadProbe { inotify }
    }

    /// Names of files (not directories) opened or read since the probe
    /// started; call after the process under test has exited.
    pub fn files_touched(&mut self) -> Vec<String> {
        let mut buf = vec![0u8; 1 << 16];
        let mut names = Vec::new();
        loop {
            match self.inotify.read_events(&mut buf) {
                Ok(events) => {
                    let mut any = false;
                    for ev in events {
                        any = true;
                        if !ev.mask.contains(inotify::EventMask::ISDIR)
                            && let Some(n) = ev.name
                        {
                            names.push(n.to_string_lossy().into_owned());
                        }
                    }
                    if !any {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        names
    }
}

/// True when this process runs as root (then permission bits do not stop
/// reads unless capabilities are dropped).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

/// A `shoebox run --json` in the background; its events are collected so
/// tests can wait for them.
pub struct Running {
    pub child: Child,
    events: std::sync::Arc<(std::sync::Mutex<Vec<Value>>, std::sync::Condvar)>,
}

impl Env {
    /// Starts `shoebox run --json` with a 1 s settle window and waits until
    /// its initial reconcile is done and every watch is watched.
    pub fn spawn_run(&self, extra: &[&str]) -> Running {
        self.spawn_run_with_env(extra, &[])
    }

    /// `spawn_run` with extra environment variables (destination secrets).
    pub fn spawn_run_with_env(&self, extra: &[&str], vars: &[(&str, &str)]) -> Running {
        let default_settle: &[&str] = if extra.contains(&"--settle") {
            &[]
        } else {
            &["--settle", "1s"]
        };
        let child = self
            .cmd()
            .args(["run", "--json"])
            .args(default_settle)
            .args(extra)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let run = Running::collect(child);
        run.wait_for(0, std::time::Duration::from_secs(30), |v| {
            v["event"] == "watcher"
        });
        run
    }
}

impl Running {
    /// Collects the JSON lines `child` prints on its piped stdout
    /// (`run --json`, `status --follow --json`).
    pub fn collect(mut child: Child) -> Running {
        let out = BufReader::new(child.stdout.take().expect("stdout piped"));
        let events =
            std::sync::Arc::new((std::sync::Mutex::new(Vec::new()), std::sync::Condvar::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line).unwrap();
                sink.0.lock().unwrap().push(v);
                sink.1.notify_all();
            }
        });
        Running { child, events }
    }

    /// How many events arrived so far (a mark to wait after).
    pub fn mark(&self) -> usize {
        self.events.0.lock().unwrap().len()
    }

    pub fn events_after(&self, mark: usize) -> Vec<Value> {
        self.events.0.lock().unwrap()[mark..].to_vec()
    }

    /// Waits until an event after `mark` matches; panics after `timeout`.
    #[track_caller]
    pub fn wait_for(
        &self,
        mark: usize,
        timeout: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        let (lock, cvar) = &*self.events;
        let mut events = lock.lock().unwrap();
        loop {
            if let Some(v) = events[mark..].iter().find(|v| pred(v)) {
                return v.clone();
            }
            let now = std::time::Instant::now();
            assert!(
                now < deadline,
                "no matching event within {timeout:?}; got: {:?}",
                &events[mark..]
            );
            events = cvar.wait_timeout(events, deadline - now).unwrap().0;
        }
    }

    /// Waits until `n` events after `mark` match.
    #[track_caller]
    pub fn wait_count(
        &self,
        mark: usize,
        n: usize,
        timeout: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) {
        let deadline = std::time::Instant::now() + timeout;
        let (lock, cvar) = &*self.events;
        let mut events = lock.lock().unwrap();
        loop {
            let got = events[mark..].iter().filter(|v| pred(v)).count();
            if got >= n {
                return;
            }
            let now = std::time::Instant::now();
            assert!(
                now < deadline,
                "only {got} of {n} matching events within {timeout:?}"
            );
            events = cvar.wait_timeout(events, deadline - now).unwrap().0;
        }
    }

    /// Waits until `cond` holds, checking it again whenever the engine
    /// reports something (and at least once a second).
    #[track_caller]
    pub fn wait_until(&self, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = self.mark();
            if cond() {
                return;
            }
            let now = std::time::Instant::now();
            assert!(now < deadline, "condition not met within {timeout:?}");
            let (lock, cvar) = &*self.events;
            let events = lock.lock().unwrap();
            if events.len() == seen {
                let wait = (deadline - now).min(std::time::Duration::from_secs(1));
                drop(cvar.wait_timeout(events, wait).unwrap());
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        #[allow(unsafe_code)]
        let r = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(r, 0);
    }

    /// Waits for the process to exit; None if it is still running at `timeout`.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `file_done` event of a file whose path ends with `suffix`.
pub fn done_for(suffix: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == "file_done" && v["path"].as_str().is_some_and(|p| p.ends_with(suffix))
}

pub const SECS: fn(u64) -> std::time::Duration = std::time::Duration::from_secs;

impl Env {
    /// Every line of the engine's log files that contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.home.join("logs")) else {
            return Vec::new();
        };
        dir.flatten()
            .flat_map(|e| {
                fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Retries are logged, one line each, and never outnumber the faults
    /// that caused them (no retry storms).
    #[track_caller]
    pub fn assert_retries_logged_and_bounded(&self, faults: u64) {
        let retries = self.log_lines("retrying in").len() as u64;
        assert!(retries >= 1, "retries are logged");
        assert!(
            retries <= faults,
            "{retries} retries for {faults} injected faults: every retry answers one fault"
        );
    }
}

/// `mount --bind`, undone on drop: a drive that can be unmounted and
/// mounted again with the same identity (device and inode).
pub struct BindMount(PathBuf);

impl BindMount {
    pub fn mount(from: &Path, at: &Path) -> BindMount {
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount --bind needs root (CI runs as root)");
        BindMount(at.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Runs `cmd` to its end, killing it and failing the test (naming `what`)
/// if it takes longer than `timeout`.
#[track_caller]
pub fn run_within(cmd: &mut Command, timeout: std::time::Duration, what: &str) -> Run {
    Run::from(crate::bounded::output_within(cmd, timeout, what))
}

/// [`run_within`], with `input` (if any) on the command's standard input.
#[track_caller]
pub fn run_fed(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: std::time::Duration,
    what: &str,
) -> Run {
    let out = crate::bounded::output_fed(cmd, input, timeout)
        .unwrap_or_else(|| panic!("{what} did not end within {timeout:?}"));
    Run::from(out)
}

/// Checks `cond` every 20 ms until it holds; panics naming `what` after
/// `timeout`. For conditions no event announces (a file on disk, a row in
/// the store).
#[track_caller]
pub fn poll_until(timeout: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {timeout:?} for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Turns the store in `home` back into what a release at schema v9 left:
/// what v10 marked and what v11 to v16 added go, so that the next
/// start upgrades it again.
pub fn back_to_schema_v9(home: &Path) {
    let db = rusqlite::Connection::open(home.join("shoebox.db")).unwrap();
    db.execute_batch(
        "DELETE FROM settings WHERE key LIKE 'dates_pending.%';
         ALTER TABLE files DROP COLUMN captured;
         ALTER TABLE files DROP COLUMN captured_from;
         ALTER TABLE watches DROP COLUMN album_mode;
         ALTER TABLE watches DROP COLUMN date_format;
         ALTER TABLE destinations DROP COLUMN ssh_auth;
         ALTER TABLE destinations DROP COLUMN host_key;
         ALTER TABLE destinations DROP COLUMN encryption;
         ALTER TABLE destinations DROP COLUMN key_exported_at;
         ALTER TABLE destinations DROP COLUMN hide_names;
         DROP INDEX files_by_live_id;
         ALTER TABLE files DROP COLUMN live_id;
         DROP TABLE asset_names;
         PRAGMA user_version = 9;",
    )
    .unwrap();
}

/// Waits until `cond` holds, checking every 50 ms; fails the test naming
/// `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A free TCP port on loopback, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Renames `from` to `to` (paths below the watched folder) and moves what
/// `want` expects there; `key` gives the expected album path of a source
/// path.
pub fn rename_expected(
    env: &Env,
    want: &mut BTreeMap<String, String>,
    (from, to): (&str, &str),
    key: impl Fn(&str) -> String,
) {
    fs::rename(env.src.join(from), env.src.join(to)).unwrap();
    let v = want
        .remove(&key(from))
        .unwrap_or_else(|| panic!("{from} was expected in the album"));
    want.insert(key(to), v);
}
