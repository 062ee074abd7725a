//! shoebox-host: the engine's host in a desktop process, shared by the
//! tray process (`shoebox-tray`) and the window (`shoebox-desktop`).
//!
//! A [`Host`] either runs the engine on a thread of its process or, when
//! another process runs it (the tray, a headless `shoebox run`), follows
//! that engine through its local API (`Engine::follow`); with
//! [`Role::RunOrFollow`] it runs the engine itself once the other one
//! stops. It turns what the engine does into a [`Shown`] state for its
//! [`Shell`] (at most every 300 ms while busy, never while idle), keeps the
//! recent uploads, and tells the shell what needs the user (a folder
//! missing, deletions held, files failing at most once a minute, a failed
//! backup check). No GUI dependency: the shells draw.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;
use shoebox_core::progress::{Overall, Progress, Summary};
use shoebox_core::{Captured, Engine, Event, Followed, Home, Outcome, RunOptions, Status};

/// Settings key the app keeps in the engine's store: upload workers.
pub const WORKERS_KEY: &str = "app.workers";
/// The name the app's engine runs under (`status` shows it).
pub const APP_ENGINE: &str = "Shoebox app";
/// Sets each environment variable that is not set yet: the desktop
/// processes' lighter defaults for GTK and WebKit (a value the user set is
/// kept).
///
/// # Safety
///
/// The environment is process-wide: call this first in `main`, before any
/// other thread exists (see [`std::env::set_var`]).
#[allow(unsafe_code)]
pub unsafe fn default_env(vars: &[(&str, &str)]) {
    for (key, value) in vars {
        if std::env::var_os(key).is_none() {
            // SAFETY: the caller's promise, above.
            unsafe { std::env::set_var(key, value) };
        }
    }
}

/// Recent uploads kept (and asked of an engine followed from its start).
pub const RECENT_KEPT: usize = 50;

/// One tray per data folder: an OS lock on `<data folder>/tray.lock`
/// (released by the OS when the tray ends, however it ends), which holds
/// the tray's process id. The window starts a tray when none holds it,
/// also when a headless engine runs (the tray then follows that engine).
#[derive(Debug)]
pub struct TrayLock {
    _file: File,
}

const TRAY_LOCK: &str = "tray.lock";

impl TrayLock {
    /// Takes it for this process; `None` when another tray holds it.
    pub fn take(home: &Home) -> std::io::Result<Option<TrayLock>> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.dir().join(TRAY_LOCK))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.write_all(std::process::id().to_string().as_bytes())?;
        Ok(Some(TrayLock { _file: file }))
    }

    /// The process id of the tray that holds it, if one does.
    pub fn holder(home: &Home) -> Option<u32> {
        let path = home.dir().join(TRAY_LOCK);
        let file = OpenOptions::new().write(true).open(&path).ok()?;
        match file.try_lock() {
            // Free (and released again when `file` drops).
            Ok(()) => None,
            Err(_) => std::fs::read_to_string(&path).ok()?.trim().parse().ok(),
        }
    }
}

/// What a host does about the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Run it here when no other process does; else follow that one, and
    /// run it here once it stops.
    RunOrFollow,
    /// Only follow the process that runs it; once none does,
    /// [`Shell::engine_gone`].
    Follow,
}

/// A recent upload, for the Activity view.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// Unique among this process's recent uploads: what the window asks a
    /// thumbnail by (see [`Host::recent_path`]).
    pub id: u64,
    pub path: String,
    pub album: String,
    pub name: String,
    pub outcome: Outcome,
    pub bytes: u64,
    /// When its item was taken, and where that was read.
    pub taken: Option<Captured>,
}

/// The state a shell shows.
#[derive(Debug, Clone)]
pub struct Shown {
    pub summary: Summary,
    pub status: Status,
}

impl Shown {
    /// A condition (quiet hours, the battery, a metered network) holds
    /// uploads, which "Back up now anyway" lifts.
    pub fn waiting(&self) -> bool {
        self.status
            .waiting
            .as_ref()
            .is_some_and(|w| w.holds_anything())
    }
}

/// What draws: a tray, a window.
pub trait Shell: Send + Sync + 'static {
    /// The state changed.
    fn show(&self, host: &Host, shown: Shown);
    /// Something needs the user (a shell may leave that to another
    /// process: the window does, to the tray).
    fn notify(&self, title: &str, body: &str);
    /// With [`Role::Follow`]: no engine runs any more.
    fn engine_gone(&self) {}
}

enum Nudge {
    Engine(Event),
    /// An upload from before this host followed the engine: for the
    /// recent list, not for the rate.
    Past(Event),
    /// Something changed through a command: refresh now.
    Refresh,
    /// The engine this host followed stopped.
    EngineGone,
    Stop,
}

pub struct Host {
    home: Home,
    role: Role,
    shell: Arc<dyn Shell>,
    /// Who runs the engine when another process does.
    elsewhere: Mutex<Option<String>>,
    workers: usize,
    nudges: Sender<Nudge>,
    stop_engine: Mutex<Option<Sender<()>>>,
    engine_thread: Mutex<Option<JoinHandle<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    recent: Mutex<VecDeque<Recent>>,
    next_recent_id: std::sync::atomic::AtomicU64,
    progress: Mutex<Progress>,
    last_failure: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("home", &self.home.dir())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The least time between two attempts to follow an engine.
const FOLLOW_AGAIN_AFTER: Duration = Duration::from_secs(2);
/// How long a follower looks for the next engine before it is gone.
const NEXT_ENGINE_WITHIN: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Host {
    /// Starts hosting the engine of `home` for `shell`.
    pub fn start(home: Home, role: Role, shell: Arc<dyn Shell>) -> shoebox_core::Result<Arc<Host>> {
        let engine = Engine::open_light(home.clone())?;
        let workers = engine.store().number(WORKERS_KEY)?.unwrap_or(4) as usize;
        let (nudges, nudge_rx) = unbounded();
        let host = Arc::new(Host {
            home,
            role,
            shell,
            elsewhere: Mutex::new(None),
            workers,
            nudges,
            stop_engine: Mutex::new(None),
            engine_thread: Mutex::new(None),
            refresher: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
            next_recent_id: std::sync::atomic::AtomicU64::new(1),
            progress: Mutex::new(Progress::default()),
            last_failure: Mutex::new(None),
        });
        let weak = Arc::downgrade(&host);
        let refresher = std::thread::Builder::new()
            .name("shoebox-refresher".into())
            .spawn(move || refresh_loop(&weak, &nudge_rx, engine))
            .map_err(|e| {
                shoebox_core::Error::io("cannot start a thread for", host.home.dir(), e)
            })?;
        *lock(&host.refresher) = Some(refresher);
        host.run_or_follow()?;
        let _ = host.nudges.send(Nudge::Refresh);
        Ok(host)
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Who runs the engine when another process does.
    pub fn elsewhere(&self) -> Option<String> {
        lock(&self.elsewhere).clone()
    }

    /// The recent uploads, newest first.
    pub fn recent(&self) -> Vec<Recent> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// The source file of a recent upload, while it is in the list.
    pub fn recent_path(&self, id: u64) -> Option<std::path::PathBuf> {
        lock(&self.recent)
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.path.clone().into())
    }

    /// Something changed through a command: show it now.
    pub fn nudge(&self) {
        let _ = self.nudges.send(Nudge::Refresh);
    }

    /// The summary line for `status`, with the rate of recent uploads.
    pub fn summary(&self, status: &Status) -> Summary {
        lock(&self.progress).summary(status, Instant::now())
    }

    /// How long `bytes` more take at the recent upload rate.
    pub fn time_left(&self, bytes: u64) -> Option<Duration> {
        lock(&self.progress).time_left(bytes, Instant::now())
    }

    /// Pause / Resume, from a tray.
    pub fn toggle_pause(&self) {
        let result = Engine::open_light(self.home.clone())
            .and_then(|engine| engine.paused().and_then(|p| engine.set_paused(!p)));
        if let Err(e) = result {
            tracing::error!("could not change pause: {e}");
        }
        self.nudge();
    }

    /// "Back up now anyway": through what holds uploads now (quiet hours,
    /// the battery, a metered network), until it ends.
    pub fn back_up_now_anyway(&self) {
        let result = Engine::open_light(self.home.clone()).and_then(|e| e.back_up_now_anyway());
        if let Err(e) = result {
            tracing::warn!("could not back up now: {e}");
        }
        self.nudge();
    }

    /// Stops the engine if it runs here (uploads in flight finish or are
    /// cancelled within seconds; nothing is lost), and the refresher.
    pub fn shutdown(&self) {
        if let Some(stop) = lock(&self.stop_engine).take() {
            let _ = stop.send(());
        }
        if let Some(t) = lock(&self.engine_thread).take() {
            let _ = t.join();
        }
        let _ = self.nudges.send(Nudge::Stop);
        if let Some(t) = lock(&self.refresher).take() {
            let _ = t.join();
        }
    }

    /// Runs the engine on a thread here when no other process runs it and
    /// the role allows; else follows the one that does.
    fn run_or_follow(&self) -> shoebox_core::Result<()> {
        let engine = Engine::open_light(self.home.clone())?;
        if self.role == Role::Follow {
            let deadline = Instant::now() + NEXT_ENGINE_WITHIN;
            let holder = loop {
                match shoebox_core::engine_holder(&self.home) {
                    Some(holder) => break Some(holder),
                    None if Instant::now() >= deadline => break None,
                    None => std::thread::sleep(Duration::from_millis(200)),
                }
            };
            match holder {
                Some(holder) => self.follow_elsewhere(engine, holder)?,
                None => self.shell.engine_gone(),
            }
            return Ok(());
        }
        match engine.lock(APP_ENGINE) {
            Ok(engine_lock) => {
                let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
                let home = self.home.clone();
                let tx = self.nudges.clone();
                let opts = RunOptions {
                    workers: self.workers,
                    ..RunOptions::default()
                };
                let handle = std::thread::Builder::new()
                    .name("shoebox-engine".into())
                    .spawn(move || {
                        let run = || -> shoebox_core::Result<()> {
                            let engine = Engine::open(home)?;
                            engine.run(&engine_lock, &opts, &stop_rx, &|e| {
                                let _ = tx.send(Nudge::Engine(e.clone()));
                            })
                        };
                        if let Err(e) = run() {
                            tracing::error!("the engine stopped: {e}");
                        }
                    })
                    .map_err(|e| {
                        shoebox_core::Error::io("cannot start the engine in", self.home.dir(), e)
                    })?;
                *lock(&self.stop_engine) = Some(stop_tx);
                *lock(&self.engine_thread) = Some(handle);
                *lock(&self.elsewhere) = None;
            }
            Err(shoebox_core::Error::Locked { holder, .. }) => {
                self.follow_elsewhere(engine, holder)?
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn follow_elsewhere(&self, engine: Engine, holder: String) -> shoebox_core::Result<()> {
        tracing::info!("{holder} runs the engine; following it");
        *lock(&self.elsewhere) = Some(holder);
        let tx = self.nudges.clone();
        // Recent uploads are asked for once, from a host that has none.
        let recent = if lock(&self.recent).is_empty() {
            RECENT_KEPT
        } else {
            0
        };
        // Not joined: it ends with the engine it follows, and the process
        // need not wait for that to quit.
        std::thread::Builder::new()
            .name("shoebox-follower".into())
            .spawn(move || follow(&engine, recent, &tx))
            .map_err(|e| {
                shoebox_core::Error::io("cannot follow the engine in", self.home.dir(), e)
            })?;
        Ok(())
    }

    /// Keeps an upload in the recent list.
    fn remember(&self, e: &Event) {
        if let Event::FileDone {
            path,
            album,
            name,
            outcome,
            bytes,
            taken,
            ..
        } = e
        {
            let id = self
                .next_recent_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut recent = lock(&self.recent);
            recent.push_front(Recent {
                id,
                path: path.clone(),
                album: album.clone(),
                name: name.clone(),
                outcome: *outcome,
                bytes: *bytes,
                taken: *taken,
            });
            recent.truncate(RECENT_KEPT);
        }
    }

    fn on_engine_event(&self, e: &Event) {
        lock(&self.progress).on_event(e, Instant::now());
        match e {
            Event::FileDone { .. } => self.remember(e),
            Event::WatchMissing { watch, .. } => self.shell.notify(
                "Folder missing",
                &format!(
                    "{watch} is not there. Nothing will be removed from its albums; Shoebox \
                     resumes when it is back."
                ),
            ),
            Event::DeletionsHeld { watch, count } => self.shell.notify(
                "Deletions held",
                &format!(
                    "{count} files vanished at once from {watch}. Open Shoebox to confirm or \
                     keep them."
                ),
            ),
            Event::FileFailed { path, error, .. } => {
                let mut last = lock(&self.last_failure);
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    *last = Some(Instant::now());
                    self.shell
                        .notify("A file could not be backed up", &format!("{path}: {error}"));
                }
            }
            Event::BackupChecked {
                checked,
                missing,
                damaged,
                ..
            } if missing + damaged > 0 => self.shell.notify(
                "Backup check",
                &format!(
                    "Of {checked} backed-up files, {missing} are missing and {damaged} damaged \
                     on their destinations. Run `shoebox verify --repair` to send them again."
                ),
            ),
            _ => {}
        }
    }
}

/// Follows the engine another process runs, handing its events to the
/// refresher, then says it is gone. An engine that serves nothing to
/// follow (a `shoebox sync`, or one still starting) is asked again after a
/// moment rather than at once.
fn follow(engine: &Engine, recent: usize, nudges: &Sender<Nudge>) {
    let started = Instant::now();
    // The recent uploads come first, before the first status.
    let mut live = false;
    let followed = engine.follow(recent, &mut |f| {
        let nudge = match f {
            Followed::Event(e) if live => Nudge::Engine(e),
            Followed::Event(e) => Nudge::Past(e),
            Followed::Status(_) => {
                live = true;
                Nudge::Refresh
            }
        };
        let _ = nudges.send(nudge);
    });
    if let Err(e) = followed {
        tracing::debug!("following the engine ended: {e}");
    }
    if started.elapsed() < FOLLOW_AGAIN_AFTER {
        std::thread::sleep(FOLLOW_AGAIN_AFTER - started.elapsed());
    }
    let _ = nudges.send(Nudge::EngineGone);
}

/// Shows the state when something happened: at most every 300 ms while
/// busy, and not at all while nothing happens.
fn refresh_loop(host: &Weak<Host>, nudges: &Receiver<Nudge>, engine: Engine) {
    let mut busy = true;
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut pending = true;
    loop {
        let msg = if busy || pending {
            nudges
                .recv_timeout(Duration::from_millis(if pending { 300 } else { 1000 }))
                .ok()
        } else {
            nudges.recv().ok()
        };
        let Some(host) = host.upgrade() else { return };
        match msg {
            Some(Nudge::Stop) => return,
            Some(Nudge::Engine(e)) => {
                host.on_engine_event(&e);
                pending = true;
            }
            Some(Nudge::Past(e)) => {
                host.remember(&e);
                pending = true;
            }
            Some(Nudge::Refresh) => {
                pending = true;
                last = Instant::now() - Duration::from_secs(1);
            }
            Some(Nudge::EngineGone) => {
                if let Err(e) = host.run_or_follow() {
                    tracing::error!("could not run or follow the engine: {e}");
                }
                pending = true;
            }
            None => pending = pending || busy,
        }
        if pending && last.elapsed() >= Duration::from_millis(300) {
            pending = false;
            last = Instant::now();
            match engine.status() {
                Ok(status) => {
                    let summary = host.summary(&status);
                    busy = summary.state == Overall::Syncing;
                    host.shell.show(&host, Shown { summary, status });
                }
                Err(e) => tracing::warn!("could not read the status: {e}"),
            }
        }
    }
}
