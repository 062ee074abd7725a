//! The tray icon and its menu, on the GTK thread. Every action is in the
//! menu (icon clicks do nothing on Linux): a status line, Open Shoebox,
//! Add folder…, Pause / Resume syncing, Back up now anyway (while quiet
//! hours, the battery or a metered network hold uploads), Quit. The icon
//! and the tooltip follow the state.

use std::cell::RefCell;
use std::sync::Arc;

use shoebox_core::progress::Overall;
use shoebox_host::{Host, Shown};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// The parts of the tray that change, and what they show.
struct TrayItems {
    status: MenuItem,
    pause: MenuItem,
    anyway: MenuItem,
    tray: TrayIcon,
    shown: Option<(String, Overall, bool, bool)>,
}

thread_local! {
    static TRAY: RefCell<Option<TrayItems>> = const { RefCell::new(None) };
}

fn icon(state: Overall) -> Icon {
    let png: &'static [u8] = match state {
        Overall::UpToDate => include_bytes!("../icons/tray-up_to_date.png"),
        Overall::Syncing => include_bytes!("../icons/tray-syncing.png"),
        Overall::Paused => include_bytes!("../icons/tray-paused.png"),
        Overall::Attention => include_bytes!("../icons/tray-attention.png"),
    };
    rgba(png).expect("the bundled tray icons are RGBA PNGs")
}

fn rgba(png: &[u8]) -> Option<Icon> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    (info.color_type == png::ColorType::Rgba && info.bit_depth == png::BitDepth::Eight)
        .then_some(())?;
    buf.truncate(info.buffer_size());
    Icon::from_rgba(buf, info.width, info.height).ok()
}

/// Builds the tray on this (the GTK) thread; its actions go to `host`.
pub fn build(host: Arc<Host>) -> anyhow::Result<()> {
    let status = MenuItem::with_id("status", "Starting…", false, None);
    let open = MenuItem::with_id("open", "Open Shoebox", true, None);
    let add = MenuItem::with_id("add", "Add folder…", true, None);
    let pause = MenuItem::with_id("pause", "Pause syncing", true, None);
    let anyway = MenuItem::with_id("anyway", "Back up now anyway", false, None);
    let quit = MenuItem::with_id("quit", "Quit", true, None);
    let menu = Menu::with_items(&[
        &status,
        &PredefinedMenuItem::separator(),
        &open,
        &add,
        &pause,
        &anyway,
        &PredefinedMenuItem::separator(),
        &quit,
    ])?;
    let tray = TrayIconBuilder::new()
        .with_id("shoebox")
        .with_icon(icon(Overall::UpToDate))
        .with_tooltip("Shoebox")
        .with_title("Shoebox")
        .with_menu(Box::new(menu))
        .build()?;
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let host = host.clone();
        match event.id.as_ref() {
            "open" => crate::window::open(host.home(), false),
            "add" => crate::window::open(host.home(), true),
            // The store is written off the GTK thread.
            "pause" => drop(std::thread::spawn(move || host.toggle_pause())),
            "anyway" => drop(std::thread::spawn(move || host.back_up_now_anyway())),
            "quit" => gtk::main_quit(),
            _ => {}
        }
    }));
    TRAY.with(|t| {
        *t.borrow_mut() = Some(TrayItems {
            status,
            pause,
            anyway,
            tray,
            shown: None,
        })
    });
    Ok(())
}

/// Shows `shown` in the tray, from any thread (it is drawn on the GTK
/// thread).
pub fn show_from_any_thread(shown: Shown) {
    gtk::glib::idle_add_once(move || show(&shown));
}

fn show(shown: &Shown) {
    TRAY.with(|t| {
        let mut t = t.borrow_mut();
        let Some(items) = t.as_mut() else { return };
        let now = (
            shown.summary.line.clone(),
            shown.summary.state,
            shown.status.paused,
            shown.waiting(),
        );
        if items.shown.as_ref() == Some(&now) {
            return;
        }
        let (line, state, paused, waiting) = &now;
        items.anyway.set_enabled(*waiting);
        items.status.set_text(line);
        items.pause.set_text(if *paused {
            "Resume syncing"
        } else {
            "Pause syncing"
        });
        let _ = items.tray.set_tooltip(Some(format!("Shoebox: {line}")));
        if items.shown.as_ref().is_none_or(|s| s.1 != *state) {
            let _ = items.tray.set_icon(Some(icon(*state)));
        }
        items.shown = Some(now);
    });
}
