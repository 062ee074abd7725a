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

pub fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
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
    fn from(o: Output) -> Run {
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
            .env_remove("SHOEBOX_LOG");
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
        let mut out = BTreeMap::new();
        let lib = self.library();
        if !lib.exists() {
            return out;
        }
        collect(&lib, &lib, &mut out);
        out
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

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_name() == ".shoebox-staging" {
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

fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
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
