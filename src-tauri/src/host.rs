//! The window's bridge to the engine, through `shoebox-host`. Where the
//! tray process (`shoebox-tray`) runs the engine (`Mode::Window`), this
//! process follows it through its local API, controls it as the `shoebox`
//! command does, and ends when no engine runs any more. Where there is no
//! tray process (`Mode::AllInOne`: macOS and Windows for now), it runs the
//! engine itself (or follows a headless `shoebox run`, taking over when it
//! stops) and keeps its own tray. No sync logic lives here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use shoebox_core::progress::Summary;
use shoebox_core::{Engine, Home, Status};
pub use shoebox_host::{Recent, WORKERS_KEY};
use shoebox_host::{Role, Shell, Shown};
use shoebox_thumbnail::Thumbnails;
use tauri::{AppHandle, Emitter};

/// Settings key the shell keeps in the engine's store.
pub const AUTOSTART_ASKED_KEY: &str = "app.autostart_asked";

/// Who runs the engine for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The tray process runs it; this process is the window only.
    Window,
    /// This process runs it and shows the tray.
    AllInOne,
}

/// Everything the window shows.
#[derive(Debug, Clone, Serialize)]
pub struct UiState {
    pub summary: Summary,
    pub status: Status,
    /// Who runs the engine when a headless process does (a `shoebox
    /// run`): this window then controls that engine.
    pub engine_elsewhere: Option<String>,
    pub recent: Vec<Recent>,
    /// Per watched folder with files still to upload: the time left at the
    /// recent rate (seconds), once there is a rate to tell it by.
    pub time_left: Vec<TimeLeft>,
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

/// How long a folder's backup has left.
#[derive(Debug, Clone, Serialize)]
pub struct TimeLeft {
    pub folder: String,
    pub secs: u64,
}

pub struct Host {
    pub home: Home,
    _log: Option<shoebox_core::logging::LogGuard>,
    /// The window's connection to the store, for commands and what the
    /// window shows (shared with its shell).
    pub engine: Arc<Mutex<Engine>>,
    core: Arc<shoebox_host::Host>,
    /// The Activity view's thumbnails, opened when first asked for.
    thumbnails: Mutex<Option<Arc<Thumbnails>>>,
}

/// The window's shell: draws into the window (and, all in one, the tray).
struct WindowShell {
    app: AppHandle,
    mode: Mode,
    engine: Arc<Mutex<Engine>>,
}

impl Shell for WindowShell {
    fn show(&self, host: &shoebox_host::Host, shown: Shown) {
        if self.mode == Mode::AllInOne {
            crate::tray::update(
                &self.app,
                &shown.summary,
                shown.status.paused,
                shown.waiting(),
            );
        }
        let engine = self.engine.lock().expect("lock");
        match ui_state(&self.app, host, shown, &engine) {
            Ok(state) => {
                let _ = self.app.emit_to(crate::window::MAIN, "state", &state);
            }
            Err(e) => tracing::warn!("could not read the state: {e}"),
        }
    }

    fn notify(&self, title: &str, body: &str) {
        // In window mode the tray process tells the user.
        if self.mode == Mode::AllInOne {
            crate::notify::tell(&self.app, title, body);
        }
    }

    fn engine_gone(&self) {
        tracing::info!("no engine runs any more; the window closes");
        self.app.exit(0);
    }
}

impl Host {
    /// Opens the engine on `home_dir` (None: the platform default) and
    /// hosts it as `mode` says.
    pub fn start(app: &AppHandle, home_dir: Option<PathBuf>, mode: Mode) -> anyhow::Result<Host> {
        let home = Home::open(home_dir)?;
        let log = shoebox_core::logging::init(&home, 0);
        let engine = Arc::new(Mutex::new(Engine::open_light(home.clone())?));
        let role = match mode {
            Mode::Window => Role::Follow,
            Mode::AllInOne => Role::RunOrFollow,
        };
        let shell = Arc::new(WindowShell {
            app: app.clone(),
            mode,
            engine: Arc::clone(&engine),
        });
        let core = shoebox_host::Host::start(home.clone(), role, shell)?;
        Ok(Host {
            home,
            _log: log,
            engine,
            core,
            thumbnails: Mutex::new(None),
        })
    }

    /// The source file of a recent upload the Activity view shows.
    pub fn recent_path(&self, id: u64) -> Option<PathBuf> {
        self.core.recent_path(id)
    }

    /// The thumbnail cache in the data folder.
    pub fn thumbnails(&self) -> std::io::Result<Arc<Thumbnails>> {
        let mut opened = self.thumbnails.lock().expect("lock");
        if let Some(t) = &*opened {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(Thumbnails::open(self.home.dir())?);
        *opened = Some(Arc::clone(&t));
        Ok(t)
    }

    /// The tray's Pause / Resume item.
    pub fn toggle_pause(&self) {
        self.core.toggle_pause();
    }

    /// "Back up now anyway" from the tray.
    pub fn back_up_now_anyway(&self) {
        self.core.back_up_now_anyway();
    }

    pub fn nudge(&self) {
        self.core.nudge();
    }

    /// Stops the engine if it runs here.
    pub fn shutdown(&self) {
        self.core.shutdown();
    }

    pub fn ui_state(&self, app: &AppHandle) -> shoebox_core::Result<UiState> {
        let engine = self.engine.lock().expect("lock");
        let status = engine.status()?;
        let summary = self.core.summary(&status);
        ui_state(app, &self.core, Shown { summary, status }, &engine)
    }
}

fn ui_state(
    app: &AppHandle,
    host: &shoebox_host::Host,
    shown: Shown,
    engine: &Engine,
) -> shoebox_core::Result<UiState> {
    use tauri_plugin_autostart::ManagerExt;
    Ok(UiState {
        summary: shown.summary,
        failures: engine.problems(200)?,
        recent: host.recent(),
        time_left: shown
            .status
            .watches
            .iter()
            .filter(|w| w.pending_bytes > 0)
            .filter_map(|w| {
                let left = host.time_left(w.pending_bytes)?;
                Some(TimeLeft {
                    folder: w.watch.folder.clone(),
                    secs: left.as_secs().max(1),
                })
            })
            .collect(),
        engine_elsewhere: host
            .elsewhere()
            .filter(|e| !e.starts_with(shoebox_host::APP_ENGINE)),
        library: host.home().library_dir().display().to_string(),
        logs: host.home().logs_dir().display().to_string(),
        workers: engine.store().number(WORKERS_KEY)?.unwrap_or(4),
        bandwidth: engine.config_get("bandwidth")?.value,
        schedule: engine.config_get("schedule")?.value,
        schedule_bandwidth: engine.config_get("schedule-bandwidth")?.value,
        on_battery: engine.config_get("on-battery")?.value,
        on_metered: engine.config_get("on-metered")?.value,
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
        autostart_asked: engine.store().flag(AUTOSTART_ASKED_KEY)?,
        status: shown.status,
    })
}
