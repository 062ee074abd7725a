//! The tray icon and its menu. Every action is in the menu (icon clicks do
//! nothing on Linux): a status line, Open Shoebox, Add folder…, Pause /
//! Resume syncing, Back up now anyway (while quiet hours, the battery or a
//! metered network hold uploads), Quit. The icon and the tooltip follow the state.

use std::sync::Mutex;

use shoebox_core::progress::{Overall, Summary};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};

pub const TRAY_ID: &str = "shoebox";

/// The menu items that change.
pub struct TrayItems {
    status: MenuItem<Wry>,
    pause: MenuItem<Wry>,
    anyway: MenuItem<Wry>,
    tray: TrayIcon<Wry>,
    last: Mutex<Option<(Summary, bool, bool)>>,
}

fn icon(state: Overall) -> Image<'static> {
    let bytes: &'static [u8] = match state {
        Overall::UpToDate => include_bytes!("../../icons/tray-up_to_date.png"),
        Overall::Syncing => include_bytes!("../../icons/tray-syncing.png"),
        Overall::Paused => include_bytes!("../../icons/tray-paused.png"),
        Overall::Attention => include_bytes!("../../icons/tray-attention.png"),
    };
    Image::from_bytes(bytes).expect("bundled tray icons are valid PNGs")
}

/// What the tray's actions do (the engine's host owns them; the tray only
/// shows them).
pub struct Actions {
    pub toggle_pause: fn(&AppHandle),
    pub back_up_now_anyway: fn(&AppHandle),
}

/// Builds the tray.
pub fn build(app: &AppHandle, actions: Actions) -> tauri::Result<TrayItems> {
    let status = MenuItem::with_id(app, "status", "Starting…", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Shoebox", true, None::<&str>)?;
    let add = MenuItem::with_id(app, "add", "Add folder…", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause syncing", true, None::<&str>)?;
    let anyway = MenuItem::with_id(app, "anyway", "Back up now anyway", false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &add,
            &pause,
            &anyway,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(Overall::UpToDate))
        .tooltip("Shoebox")
        .title("Shoebox")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| match event.id.as_ref() {
            "open" => crate::window::show(app, false),
            "add" => crate::window::show(app, true),
            "pause" => (actions.toggle_pause)(app),
            "anyway" => (actions.back_up_now_anyway)(app),
            "quit" => crate::quit(app),
            _ => {}
        })
        .build(app)?;
    Ok(TrayItems {
        status,
        pause,
        anyway,
        tray,
        last: Mutex::new(None),
    })
}

/// Shows a new state; does nothing when it did not change. `waiting`: a
/// condition (quiet hours, battery, a metered network) holds uploads,
/// which "Back up now anyway" lifts.
pub fn update(app: &AppHandle, summary: &Summary, paused: bool, waiting: bool) {
    let Some(items) = app.try_state::<TrayItems>() else {
        return;
    };
    let mut last = items.last.lock().expect("lock");
    if last.as_ref() == Some(&(summary.clone(), paused, waiting)) {
        return;
    }
    let _ = items.anyway.set_enabled(waiting);
    let _ = items.status.set_text(&summary.line);
    let _ = items.pause.set_text(if paused {
        "Resume syncing"
    } else {
        "Pause syncing"
    });
    let _ = items
        .tray
        .set_tooltip(Some(format!("Shoebox: {}", summary.line)));
    if last
        .as_ref()
        .is_none_or(|(s, _, _)| s.state != summary.state)
    {
        let _ = items.tray.set_icon(Some(icon(summary.state)));
    }
    *last = Some((summary.clone(), paused, waiting));
}
