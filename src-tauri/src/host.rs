//! The bridge between the shell and the engine: opens the engine on the
//! shared data folder, runs it on its own thread (or, when a headless
//! `shoebox run` holds the store, shows its status read-only), and turns
//! engine events into tray and window updates. No sync logic lives here.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;
use shoebox_core::progress::{Progress, Summary};
use shoebox_core::{Captured, Engine, Event, Home, Outcome, RunOptions, Status};
use tauri::{AppHandle, Emitter, Manager};

/// Settings keys the shell keeps in the engine's store.
pub const AUTOSTART_ASKED_KEY: &str = "app.autostart_asked";
pub const WORKERS_KEY: &str = "app.workers";

/// What the shell's refresher thread is told.
pub enum Nudge {
    Engine(Event),
    /// Something changed through a command: refresh now.
    Refresh,
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
    /// Set when another engine (a headless `shoebox run`) holds the store.
    pub read_only: Option<String>,
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
    pub read_only: Option<String>,
    nudges: Sender<Nudge>,
    stop_engine: Mutex<Option<Sender<()>>>,
    engine_thread: Mutex<Option<JoinHandle<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    pub recent: Mutex<VecDeque<Recent>>,
    progress: Mutex<Progress>,
}

const RECENT_KEPT: usize = 50;

impl Host {
    /// Opens the engine on `home_dir` (None: the platform default) and starts
    /// it, unless another engine holds the store.
    pub fn start(app: &AppHandle, home_dir: Option<PathBuf>) -> anyhow::Result<Host> {
        let home = Home::open(home_dir)?;
        let log = shoebox_core::logging::init(&home, 0);
        let engine = Engine::open(home.clone())?;
        let (nudges, nudge_rx) = unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let workers = engine.store().number(WORKERS_KEY)?.unwrap_or(4) as usize;
        let (read_only, engine_thread) = match engine.lock("Shoebox app") {
            Ok(lock) => {
                let home = home.clone();
                let tx = nudges.clone();
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
                    })?;
                (None, Some(handle))
            }
            Err(shoebox_core::Error::Locked { holder, .. }) => (Some(holder), None),
            Err(e) => return Err(e.into()),
        };
        let refresher = {
            let app = app.clone();
            std::thread::Builder::new()
                .name("shoebox-refresher".into())
                .spawn(move || refresh_loop(&app, &nudge_rx))?
        };
        Ok(Host {
            home,
            _log: log,
            engine: Mutex::new(engine),
            read_only,
            nudges,
            stop_engine: Mutex::new(Some(stop_tx)),
            engine_thread: Mutex::new(engine_thread),
            refresher: Mutex::new(Some(refresher)),
            recent: Mutex::new(VecDeque::new()),
            progress: Mutex::new(Progress::default()),
        })
    }

    /// The tray's Pause / Resume item. Does nothing while another engine
    /// owns the data folder (the app only shows its status then).
    pub fn toggle_pause(&self) {
        if self.read_only.is_some() {
            return;
        }
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
        if self.read_only.is_some() {
            return;
        }
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
        let summary = match &self.read_only {
            Some(holder) => Summary {
                state: shoebox_core::progress::Overall::Attention,
                line: format!("Read-only: {holder} is running"),
            },
            None => self
                .progress
                .lock()
                .expect("lock")
                .summary(&status, Instant::now()),
        };
        Ok(UiState {
            summary,
            failures: engine.problems(200)?,
            recent: self.recent.lock().expect("lock").iter().cloned().collect(),
            read_only: self.read_only.clone(),
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
            None => pending = pending || busy,
        }
        if pending && last.elapsed() >= Duration::from_millis(300) {
            pending = false;
            last = Instant::now();
            match host.ui_state(app) {
                Ok(state) => {
                    // A headless engine sends us no events: while its status
                    // is on screen, look again every second.
                    busy = state.summary.state == shoebox_core::progress::Overall::Syncing
                        || (state.read_only.is_some() && app.get_webview_window("main").is_some());
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
