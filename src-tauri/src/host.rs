//! The bridge between the shell and the engine: opens the engine on the
//! shared data folder and runs it on its own thread, or, when another
//! process runs it (a headless `shoebox run`), follows that engine through
//! its local API and controls it as the `shoebox` command does, taking
//! over when it stops. It turns engine events into tray and window
//! updates. No sync logic lives here.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;
use shoebox_core::progress::{Progress, Summary};
use shoebox_core::{Captured, Engine, Event, Followed, Home, Outcome, RunOptions, Status};
use tauri::{AppHandle, Emitter, Manager};

/// Settings keys the shell keeps in the engine's store.
pub const AUTOSTART_ASKED_KEY: &str = "app.autostart_asked";
pub const WORKERS_KEY: &str = "app.workers";

/// What the shell's refresher thread is told.
pub enum Nudge {
    Engine(Event),
    /// Something changed through a command: refresh now.
    Refresh,
    /// The engine this app followed stopped: run it here, or follow the
    /// next one.
    EngineGone,
    Stop,
}

/// A recent upload, for the Activity view.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    pub path: String,
    pub album: String,
    pub name: String,
    pub outcome: Outcome,
    pub bytes: u64,
    /// When its item was taken, and where that was read.
    pub taken: Option<Captured>,
}

/// Everything the window shows.
#[derive(Debug, Clone, Serialize)]
pub struct UiState {
    pub summary: Summary,
    pub status: Status,
    /// Who runs the engine when another process does (a headless
    /// `shoebox run`): this window then controls that engine.
    pub engine_elsewhere: Option<String>,
    pub recent: Vec<Recent>,
    pub failures: Vec<shoebox_core::Problem>,
    pub library: String,
    pub logs: String,
    pub workers: u64,
    /// The upload limit as `shoebox config` shows it (`2 MB/s`, `off`).
    pub bandwidth: String,
    /// The upload hours as `shoebox config` shows them (`22:00-07:00`,
    /// `pause 09:00-17:00`, `limit 09:00-17:00`, `off`).
    pub schedule: String,
    /// The upload limit inside a `limit` schedule's hours.
    pub schedule_bandwidth: String,
    /// On battery: `keep-going`, `photos-only` or `pause`.
    pub on_battery: String,
    /// On a metered network: `pause` or `keep-going`.
    pub on_metered: String,
    pub autostart: bool,
    pub autostart_asked: bool,
}

pub struct Host {
    pub home: Home,
    _log: Option<shoebox_core::logging::LogGuard>,
    /// The shell's own connection, for commands and status.
    pub engine: Mutex<Engine>,
    /// Who runs the engine when another process does; the app follows it.
    elsewhere: Mutex<Option<String>>,
    workers: usize,
    nudges: Sender<Nudge>,
    stop_engine: Mutex<Option<Sender<()>>>,
    engine_thread: Mutex<Option<JoinHandle<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    pub recent: Mutex<VecDeque<Recent>>,
    progress: Mutex<Progress>,
}

const RECENT_KEPT: usize = 50;

impl Host {
    /// Opens the engine on `home_dir` (None: the platform default) and runs
    /// it, or follows the process that runs it.
    pub fn start(app: &AppHandle, home_dir: Option<PathBuf>) -> anyhow::Result<Host> {
        let home = Home::open(home_dir)?;
        let log = shoebox_core::logging::init(&home, 0);
        let engine = Engine::open(home.clone())?;
        let (nudges, nudge_rx) = unbounded();
        let workers = engine.store().number(WORKERS_KEY)?.unwrap_or(4) as usize;
        let refresher = {
            let app = app.clone();
            std::thread::Builder::new()
                .name("shoebox-refresher".into())
                .spawn(move || refresh_loop(&app, &nudge_rx))?
        };
        let host = Host {
            home,
            _log: log,
            engine: Mutex::new(engine),
            elsewhere: Mutex::new(None),
            workers,
            nudges,
            stop_engine: Mutex::new(None),
            engine_thread: Mutex::new(None),
            refresher: Mutex::new(Some(refresher)),
            recent: Mutex::new(VecDeque::new()),
            progress: Mutex::new(Progress::default()),
        };
        host.run_or_follow()?;
        Ok(host)
    }

    /// Runs the engine on a thread of this app when no other process
    /// runs it; else follows the one that does, until it stops.
    fn run_or_follow(&self) -> shoebox_core::Result<()> {
        let engine = Engine::open(self.home.clone())?;
        match engine.lock("Shoebox app") {
            Ok(lock) => {
                let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
                let home = self.home.clone();
                let tx = self.nudges.clone();
                let workers = self.workers;
                let handle = std::thread::Builder::new()
                    .name("shoebox-engine".into())
                    .spawn(move || {
                        let run = || -> shoebox_core::Result<()> {
                            let engine = Engine::open(home)?;
                            let opts = RunOptions {
                                workers,
                                ..RunOptions::default()
                            };
                            engine.run(&lock, &opts, &stop_rx, &|e| {
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
                *self.stop_engine.lock().expect("lock") = Some(stop_tx);
                *self.engine_thread.lock().expect("lock") = Some(handle);
                *self.elsewhere.lock().expect("lock") = None;
            }
            Err(shoebox_core::Error::Locked { holder, .. }) => {
                tracing::info!("{holder} runs the engine; the app follows it");
                *self.elsewhere.lock().expect("lock") = Some(holder);
                let tx = self.nudges.clone();
                // Not joined: it ends with the engine it follows, and the
                // app need not wait for that to quit.
                std::thread::Builder::new()
                    .name("shoebox-follower".into())
                    .spawn(move || follow(&engine, &tx))
                    .map_err(|e| {
                        shoebox_core::Error::io("cannot follow the engine in", self.home.dir(), e)
                    })?;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The tray's Pause / Resume item.
    pub fn toggle_pause(&self) {
        let engine = self.engine.lock().expect("lock");
        let result = engine.paused().and_then(|p| engine.set_paused(!p));
        drop(engine);
        if let Err(e) = result {
            tracing::error!("could not change pause: {e}");
        }
        self.nudge();
    }

    /// "Back up now anyway" from the tray: through what holds uploads now
    /// (quiet hours, battery, a metered network), until it ends.
    pub fn back_up_now_anyway(&self) {
        if let Err(e) = self.engine.lock().expect("lock").back_up_now_anyway() {
            tracing::warn!("could not back up now: {e}");
        }
        self.nudge();
    }

    pub fn nudge(&self) {
        let _ = self.nudges.send(Nudge::Refresh);
    }

    /// Stops the engine (uploads in flight finish or are cancelled within
    /// seconds; nothing is lost) and the refresher.
    pub fn shutdown(&self) {
        if let Some(stop) = self.stop_engine.lock().expect("lock").take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.engine_thread.lock().expect("lock").take() {
            let _ = t.join();
        }
        let _ = self.nudges.send(Nudge::Stop);
        if let Some(t) = self.refresher.lock().expect("lock").take() {
            let _ = t.join();
        }
    }

    pub fn ui_state(&self, app: &AppHandle) -> shoebox_core::Result<UiState> {
        use tauri_plugin_autostart::ManagerExt;
        let engine = self.engine.lock().expect("lock");
        let status = engine.status()?;
        let summary = self
            .progress
            .lock()
            .expect("lock")
            .summary(&status, Instant::now());
        Ok(UiState {
            summary,
            failures: engine.problems(200)?,
            recent: self.recent.lock().expect("lock").iter().cloned().collect(),
            engine_elsewhere: self.elsewhere.lock().expect("lock").clone(),
            library: self.home.library_dir().display().to_string(),
            logs: self.home.logs_dir().display().to_string(),
            workers: engine.store().number(WORKERS_KEY)?.unwrap_or(4),
            bandwidth: engine.config_get("bandwidth")?.value,
            schedule: engine.config_get("schedule")?.value,
            schedule_bandwidth: engine.config_get("schedule-bandwidth")?.value,
            on_battery: engine.config_get("on-battery")?.value,
            on_metered: engine.config_get("on-metered")?.value,
            autostart: app.autolaunch().is_enabled().unwrap_or(false),
            autostart_asked: engine.store().flag(AUTOSTART_ASKED_KEY)?,
            status,
        })
    }

    fn on_engine_event(&self, app: &AppHandle, e: &Event) {
        self.progress
            .lock()
            .expect("lock")
            .on_event(e, Instant::now());
        match e {
            Event::FileDone {
                path,
                album,
                name,
                outcome,
                bytes,
                taken,
                ..
            } => {
                let mut recent = self.recent.lock().expect("lock");
                recent.push_front(Recent {
                    path: path.clone(),
                    album: album.clone(),
                    name: name.clone(),
                    outcome: *outcome,
                    bytes: *bytes,
                    taken: *taken,
                });
                recent.truncate(RECENT_KEPT);
            }
            Event::WatchMissing { watch, .. } => {
                crate::notify::tell(
                    app,
                    "Folder missing",
                    &format!(
                        "{watch} is not there. Nothing will be removed from its albums; Shoebox resumes when it is back."
                    ),
                );
            }
            Event::DeletionsHeld { watch, count } => {
                crate::notify::tell(
                    app,
                    "Deletions held",
                    &format!(
                        "{count} files vanished at once from {watch}. Open Shoebox to confirm or keep them."
                    ),
                );
            }
            Event::FileFailed { path, error, .. } => crate::notify::failure(app, path, error),
            Event::BackupChecked {
                checked,
                missing,
                damaged,
                ..
            } if missing + damaged > 0 => {
                crate::notify::tell(
                    app,
                    "Backup check",
                    &format!(
                        "Of {checked} backed-up files, {missing} are missing and {damaged} damaged \
                         on their destinations. Run `shoebox verify --repair` to send them again."
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Refreshes tray and window when something happened: at most every 300 ms
/// while busy, and not at all while nothing happens.
fn refresh_loop(app: &AppHandle, nudges: &Receiver<Nudge>) {
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
        let Some(host) = app.try_state::<Host>() else {
            if matches!(msg, Some(Nudge::Stop)) {
                return;
            }
            pending = true;
            continue;
        };
        match msg {
            Some(Nudge::Stop) => return,
            Some(Nudge::Engine(e)) => {
                host.on_engine_event(app, &e);
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
            match host.ui_state(app) {
                Ok(state) => {
                    busy = state.summary.state == shoebox_core::progress::Overall::Syncing;
                    crate::tray::update(
                        app,
                        &state.summary,
                        state.status.paused,
                        state
                            .status
                            .waiting
                            .as_ref()
                            .is_some_and(|w| w.holds_anything()),
                    );
                    let _ = app.emit_to("main", "state", &state);
                }
                Err(e) => tracing::warn!("could not read the status: {e}"),
            }
        }
    }
}

/// Follows the engine another process runs, handing its events to the
/// refresher, then says it is gone. An engine that serves nothing to
/// follow (a `shoebox sync`, or one still starting) is asked again after a
/// moment rather than at once.
fn follow(engine: &Engine, nudges: &Sender<Nudge>) {
    let started = Instant::now();
    let followed = engine.follow(&mut |f| {
        let nudge = match f {
            Followed::Event(e) => Nudge::Engine(e),
            Followed::Status(_) => Nudge::Refresh,
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

/// The least time between two attempts to follow an engine.
const FOLLOW_AGAIN_AFTER: Duration = Duration::from_secs(2);
