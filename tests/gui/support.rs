//! Harness for the GUI tests: a sandbox (HOME, data folder, photos), the
//! app as a child process, its tray on D-Bus, and a small WebDriver client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoebox_core::{AlbumMode, Engine, Home, OnDelete, Status, WatchSpec};

pub const APP: &str = env!("CARGO_BIN_EXE_shoebox-desktop");
/// The tray process, which runs the engine; the window (`APP`) starts it
/// when no engine runs.
pub const TRAY: &str = env!("CARGO_BIN_EXE_shoebox-tray");
/// Debian's Python, which has the GObject and Xlib bindings.
const SYS_PYTHON: &str = "/usr/bin/python3";

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Fails clearly when the tests are not run inside a display and a bus.
pub fn require_session() {
    for var in ["DISPLAY", "DBUS_SESSION_BUS_ADDRESS"] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: run the GUI tests inside `dbus-run-session -- xvfb-run -a` (see scripts/test)"
        );
    }
}

/// Deterministic incompressible bytes.
pub fn bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

pub use crate::bounded::output_within;

/// The local time of day `offset` from now (`+2 hours`), as `HH:MM`.
fn local_hhmm(offset: &str) -> String {
    let out = output_within(
        Command::new("date").args(["-d", offset, "+%H:%M"]),
        secs(10),
        "date",
    );
    assert!(out.status.success(), "date -d {offset}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits until `cond` holds (the UI and D-Bus offer nothing to block on, so
/// this looks every 50 ms); panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (with its process group) when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        Proc {
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: signalling our own child's process group.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// An engine run by the test itself (see `Sandbox::run_headless`); it
/// stops when dropped.
pub struct Headless {
    stop: crossbeam_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops the process `holder` names (SIGTERM, then SIGKILL), until it
/// names none.
fn stop(holder: &dyn Fn() -> Option<u32>) {
    for (signal, within) in [(libc::SIGTERM, secs(20)), (libc::SIGKILL, secs(10))] {
        let Some(pid) = holder() else { return };
        // SAFETY: kill(2) on the pid a lock of the sandbox names.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid as i32, signal);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if holder().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A tray a window started (in a process group of its own), and whoever
/// else still runs the engine on the sandbox's data folder when the test
/// ends, are stopped, so that no test leaves a process behind.
impl Drop for Sandbox {
    fn drop(&mut self) {
        let Ok(home) = Home::open(Some(self.data.clone())) else {
            return;
        };
        // The tray, then whoever else runs the engine (not this test).
        let tray = || shoebox_host::TrayLock::holder(&home);
        let engine = || {
            shoebox_core::engine_holder(&home).and_then(|holder| {
                holder
                    .split("(pid ")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .filter(|pid| *pid != std::process::id())
            })
        };
        for holder in [&tray as &dyn Fn() -> Option<u32>, &engine] {
            stop(holder);
        }
    }
}

/// A private world for one app: its own HOME (autostart entries go there),
/// data folder and photos.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub data: PathBuf,
    pub photos: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_session();
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("user");
        let data = tmp.path().join("data");
        let photos = tmp.path().join("Photos");
        for d in [&home, &data, &photos] {
            fs::create_dir_all(d).unwrap();
        }
        Sandbox {
            tmp,
            home,
            data,
            photos,
        }
    }

    pub fn engine(&self) -> Engine {
        Engine::open(Home::open(Some(self.data.clone())).unwrap()).unwrap()
    }

    /// Runs the engine as `shoebox run` does, on a thread of this test,
    /// until the returned handle drops.
    pub fn run_headless(&self) -> Headless {
        let engine = self.engine();
        let lock = engine.lock("shoebox run").unwrap();
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let thread = std::thread::spawn(move || {
            let opts = shoebox_core::RunOptions {
                settle: Duration::from_millis(500),
                ..Default::default()
            };
            engine.run(&lock, &opts, &stopped, &|_| {}).unwrap();
        });
        let headless = Headless {
            stop,
            thread: Some(thread),
        };
        wait_until(
            secs(20),
            "the headless engine to serve its local API",
            || self.data.join("engine.sock").exists(),
        );
        headless
    }

    pub fn status(&self) -> Status {
        self.engine().status().unwrap()
    }

    pub fn watch(&self, folder: &Path) {
        let spec = WatchSpec {
            folder: folder.to_path_buf(),
            mode: AlbumMode::Single,
            album_names: shoebox_core::AlbumNames::Leaf,
            date_format: Default::default(),
            album: None,
            dest: "library".into(),
            on_delete: OnDelete::Keep,
            all_files: false,
        };
        self.engine().add_watch(&spec).unwrap();
    }

    /// A watched photo, and upload hours that start in two hours, so that
    /// now is quiet: returns when they start (`HH:MM`).
    pub fn photo_in_quiet_hours(&self) -> String {
        self.watch(&self.photos);
        self.write("IMG.jpg", &bytes("x", 1000));
        let (from, to) = (local_hhmm("+2 hours"), local_hhmm("+3 hours"));
        self.engine()
            .config_set("schedule", &format!("{from}-{to}"))
            .unwrap();
        from
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.photos.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    pub fn library_files(&self) -> BTreeMap<String, String> {
        let lib = self.data.join("Library");
        let mut out = BTreeMap::new();
        let mut todo = vec![lib.clone()];
        while let Some(d) = todo.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                // Shoebox's own bookkeeping: the staging area and the marker.
                if e.file_name() == ".shoebox-staging" || e.file_name() == ".shoebox-destination" {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    let rel = e
                        .path()
                        .strip_prefix(&lib)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.insert(
                        rel,
                        blake3::hash(&fs::read(e.path()).unwrap())
                            .to_hex()
                            .to_string(),
                    );
                }
            }
        }
        out
    }

    /// The environment every process of the app sees.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", &self.home)
            .env("SHOEBOX_HOME", &self.data)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            // No system bus: the battery and the network are unknown
            // whatever machine runs the suite.
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                "unix:path=/nonexistent/shoebox-test-bus",
            )
            .env_remove("SHOEBOX_LOG");
    }

    /// Starts the window program directly.
    pub fn launch(&self, args: &[&str]) -> Proc {
        self.start(APP, args, &[])
    }

    /// Starts the tray process, which runs the engine.
    pub fn launch_tray(&self) -> Proc {
        self.start(TRAY, &[], &[])
    }

    /// [`Self::launch_tray`] with more environment variables (a system bus).
    pub fn launch_tray_with_env(&self, vars: &[(&str, &str)]) -> Proc {
        self.start(TRAY, &[], vars)
    }

    fn start(&self, program: &str, args: &[&str], vars: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.env(&mut cmd);
        cmd.envs(vars.iter().copied());
        Proc::spawn(cmd)
    }
}

// ---- X windows ---------------------------------------------------------------

/// The X window ids of visible windows titled exactly "Shoebox".
pub fn shoebox_windows() -> Vec<String> {
    windows_named("Shoebox")
}

/// The X window ids of visible windows titled exactly `title`.
pub fn windows_named(title: &str) -> Vec<String> {
    let out = output_within(
        Command::new("xdotool").args(["search", "--onlyvisible", "--name", &format!("^{title}$")]),
        secs(20),
        "xdotool search",
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// What a window manager's close button does: WM_DELETE_WINDOW.
pub fn close_window(id: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gui/x_close.py");
    let out = output_within(
        Command::new(SYS_PYTHON).arg(script).arg(id),
        secs(20),
        "x_close.py",
    );
    assert!(
        out.status.success(),
        "x_close.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- the tray on D-Bus -------------------------------------------------------

/// A minimal StatusNotifierWatcher, so the tray item registers as on a desktop.
pub fn start_tray_watcher() -> Proc {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gui/sni_watcher.py");
    let mut cmd = Command::new(SYS_PYTHON);
    cmd.arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut p = Proc::spawn(cmd);
    let out = BufReader::new(p.child.stdout.take().unwrap());
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if line.contains("WATCHER_READY") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready
        .recv_timeout(secs(30))
        .expect("the tray watcher did not say WATCHER_READY within 30 s (or exited first)");
    p
}

fn gdbus(args: &[&str]) -> String {
    let out = output_within(
        Command::new("gdbus")
            .args(["call", "--session", "--timeout", "20"])
            .args(args),
        secs(30),
        "gdbus call",
    );
    assert!(
        out.status.success(),
        "gdbus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The app's tray item and its menu, seen through D-Bus.
pub struct Tray {
    bus: String,
    item: String,
    menu: String,
}

/// Undoes GVariant text escapes (gdbus prints non-ASCII as \u2026).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                }
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Tray {
    pub fn find() -> Tray {
        let mut found = None;
        wait_until(secs(30), "the tray item to register", || {
            let reply = gdbus(&[
                "--dest",
                "org.kde.StatusNotifierWatcher",
                "--object-path",
                "/StatusNotifierWatcher",
                "--method",
                "org.freedesktop.DBus.Properties.Get",
                "org.kde.StatusNotifierWatcher",
                "RegisteredStatusNotifierItems",
            ]);
            found = reply
                .split('\'')
                .find(|s| s.starts_with(':') && s.contains('/'))
                .map(str::to_string);
            found.is_some()
        });
        let found = found.unwrap();
        let (bus, path) = found.split_at(found.find('/').unwrap());
        let props = gdbus(&[
            "--dest",
            bus,
            "--object-path",
            path,
            "--method",
            "org.freedesktop.DBus.Properties.GetAll",
            "org.kde.StatusNotifierItem",
        ]);
        let menu = props
            .split("'Menu': <objectpath '")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string();
        Tray {
            bus: bus.to_string(),
            item: path.to_string(),
            menu,
        }
    }

    /// (id, label) of every menu item, in order.
    pub fn items(&self) -> Vec<(i32, String)> {
        let layout = gdbus(&[
            "--dest",
            &self.bus,
            "--object-path",
            &self.menu,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            "--",
            "0",
            "-1",
            "@as []",
        ]);
        let mut out = Vec::new();
        for part in layout.split("<(").skip(1) {
            let id: i32 = part.split(',').next().unwrap().trim().parse().unwrap_or(-1);
            if let Some(rest) = part.split("'label': <'").nth(1) {
                out.push((id, unescape(rest.split("'>").next().unwrap())));
            }
        }
        out
    }

    pub fn labels(&self) -> Vec<String> {
        self.items().into_iter().map(|(_, l)| l).collect()
    }

    /// The first item's label: the status line.
    pub fn status_line(&self) -> String {
        self.labels().into_iter().next().unwrap_or_default()
    }

    pub fn click(&self, label: &str) {
        let id = self
            .items()
            .into_iter()
            .find(|(_, l)| l == label)
            .unwrap_or_else(|| panic!("no menu item {label:?} in {:?}", self.labels()))
            .0;
        gdbus(&[
            "--dest",
            &self.bus,
            "--object-path",
            &self.menu,
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &id.to_string(),
            "clicked",
            "<int32 0>",
            "0",
        ]);
    }
}

// ---- WebDriver -----------------------------------------------------------------

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tauri_driver() -> PathBuf {
    if let Ok(p) = std::env::var("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let candidate = cargo_home.join("bin/tauri-driver");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("tauri-driver")
    }
}

/// The app driven through tauri-driver and WebKitWebDriver.
pub struct WebDriver {
    agent: ureq::Agent,
    base: String,
    session: String,
    _driver: Proc,
}

impl WebDriver {
    /// Starts the app under WebDriver. `wrap` runs tauri-driver (and so the
    /// app) through another command, e.g. setpriv.
    pub fn start(sandbox: &Sandbox, wrap: &[&str]) -> WebDriver {
        Self::start_with_env(sandbox, wrap, &[])
    }

    /// [`WebDriver::start`], with more environment for the app.
    pub fn start_with_env(sandbox: &Sandbox, wrap: &[&str], env: &[(&str, &str)]) -> WebDriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(tauri_driver());
                c
            }
            None => Command::new(tauri_driver()),
        };
        cmd.args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sandbox.env(&mut cmd);
        cmd.envs(env.iter().copied());
        let driver = Proc::spawn(cmd);
        let base = format!("http://127.0.0.1:{port}");
        wait_until(secs(20), "tauri-driver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        // Every WebDriver request has a bound: a hung request fails the
        // test with its name instead of hanging the suite.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(secs(90)))
            .build()
            .into();
        let caps =
            json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": APP}}}});
        // tauri-driver listens before its WebKitWebDriver is up; until it
        // is, a session request gets its connection closed. Wait for that.
        // A session starts the app and its WebKit: on a machine busy with
        // builds that alone can take more than a minute, so it has a
        // longer bound than other requests.
        let bound = secs(180);
        let deadline = Instant::now() + bound;
        let reply: Value = loop {
            let sent = agent
                .post(format!("{base}/session"))
                .config()
                .timeout_global(Some(bound))
                .build()
                .send_json(&caps);
            match sent {
                Ok(mut r) => break r.body_mut().read_json().unwrap(),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("WebDriver not ready yet ({e}); trying again");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("no WebDriver session within {bound:?}: {e}"),
            }
        };
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        let wd = WebDriver {
            agent,
            base,
            session,
            _driver: driver,
        };
        wd.wait_text("#status-line", secs(20), |t| t != "Loading…");
        wd
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let v: Value = self
            .agent
            .post(self.url(path))
            .send_json(&body)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let v: Value = self
            .agent
            .get(self.url(path))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    pub fn try_find(&self, css: &str) -> Option<String> {
        let v: Value = self
            .agent
            .post(self.url("/element"))
            .send_json(json!({"using": "css selector", "value": css}))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    #[track_caller]
    pub fn find(&self, css: &str) -> String {
        let mut found = None;
        wait_until(secs(10), &format!("element {css}"), || {
            found = self.try_find(css);
            found.is_some()
        });
        found.unwrap()
    }

    /// Clicks an element; the UI re-renders lists as state arrives, so an
    /// element found a moment ago may be replaced: find it again then.
    #[track_caller]
    pub fn click(&self, css: &str) {
        let mut last = Value::Null;
        for _ in 0..20 {
            let id = self.find(css);
            let v: Value = self
                .agent
                .post(self.url(&format!("/element/{id}/click")))
                .send_json(json!({}))
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            if v["value"].get("error").is_none() {
                return;
            }
            last = v;
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("could not click {css}: {last}");
    }

    /// The rendered text of the first element matching `css` ("" if none),
    /// read in one step so a re-render cannot get in between.
    pub fn text(&self, css: &str) -> String {
        let v = self.post(
            "/execute/sync",
            json!({"script": "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : '';", "args": [css]}),
        );
        v.as_str().unwrap_or_default().to_string()
    }

    /// Whether the element takes part in the layout (not hidden, not
    /// inside something hidden). WebKitWebDriver's own "displayed" answers
    /// false for everything in a modal dialog, so the page is asked.
    pub fn displayed(&self, css: &str) -> bool {
        self.post(
            "/execute/sync",
            json!({
                "script": "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
                "args": [css]
            }),
        )
        .as_bool()
        .unwrap_or(false)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
        self.post(&format!("/element/{id}/value"), json!({"text": text}));
    }

    /// Runs a script in the page and returns its result.
    pub fn exec(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
    }

    #[track_caller]
    pub fn wait_text(&self, css: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.text(css);
            if pred(&last) {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for the text of {css}; last: {last:?}; toast: {:?}",
                self.text("#toast")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a screenshot of the window when SHOEBOX_SCREENSHOTS names a
    /// folder. It is taken from the X server (ImageMagick's `import`):
    /// WebKit's own screenshot misses what modal dialogs show.
    pub fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SHOEBOX_SCREENSHOTS") else {
            return;
        };
        // Let the page paint what the test just did.
        self.post(
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));", "args": []}),
        );
        fs::create_dir_all(&dir).unwrap();
        let window = shoebox_windows()
            .into_iter()
            .next()
            .expect("the window is shown");
        let out = Path::new(&dir).join(format!("{name}.png"));
        let st = output_within(
            Command::new("import").args(["-window", &window]).arg(&out),
            secs(60),
            "import (ImageMagick)",
        )
        .status;
        assert!(st.success(), "import (ImageMagick) failed");
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(format!("{}/session/{}", self.base, self.session))
            .call();
    }
}
