//! shoebox-tray: the Shoebox tray process. It runs the engine (or follows
//! the process that runs it, such as a headless `shoebox run`, and takes
//! over when that one stops), shows its state in the tray, and tells the
//! user what needs them. It links no web engine: the window
//! (`shoebox-desktop`) is another process, started from the menu and gone
//! once closed, so an idle Shoebox weighs what the engine and a tray icon
//! weigh (docs/ARCHITECTURE.md, "The desktop app").
//!
//! Linux only for now (GTK and a StatusNotifier tray); elsewhere the
//! window app hosts the engine and the tray itself.

#[cfg(target_os = "linux")]
mod engine;
#[cfg(target_os = "linux")]
mod menu;
#[cfg(target_os = "linux")]
mod notify;
#[cfg(target_os = "linux")]
mod window;

use std::path::PathBuf;
use std::process::ExitCode;

/// The arguments: `--home DIR` (else `SHOEBOX_HOME`, else the platform's
/// data folder). `--minimized` is accepted and means nothing: the tray
/// never shows a window by itself.
fn home_arg() -> Option<PathBuf> {
    let mut home = std::env::var_os("SHOEBOX_HOME").map(PathBuf::from);
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--home" {
            home = args.next().map(PathBuf::from);
        }
    }
    home
}

/// What GTK loads that a tray icon does not need: OpenGL (GDK would load
/// Mesa, and where there is no GPU its software renderer with LLVM, 30 MB,
/// only to pick visuals) and the accessibility bridge (the tray's menu is
/// drawn, and read to screen readers, by the desktop's panel). A value the
/// user set is kept.
#[cfg(target_os = "linux")]
fn light_gtk() {
    // SAFETY: called first in `main`, before any thread exists.
    #[allow(unsafe_code)]
    unsafe {
        shoebox_host::default_env(&[("GDK_GL", "disable"), ("NO_AT_BRIDGE", "1")]);
    }
}

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    light_gtk();
    match run(home_arg()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Shoebox could not start: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(target_os = "linux")]
fn run(home: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context;
    let home = shoebox_core::Home::open(home)?;
    let Some(_tray) = shoebox_host::TrayLock::take(&home)
        .with_context(|| format!("cannot lock the tray of {}", home.dir().display()))?
    else {
        eprintln!("a Shoebox tray already runs for {}", home.dir().display());
        return Ok(());
    };
    let _log = shoebox_core::logging::init(&home, 0);
    gtk::init().context("no display to show the tray on (is DISPLAY or WAYLAND_DISPLAY set?)")?;
    let host = engine::start(home, menu::show_from_any_thread)?;
    menu::build(host.clone())?;
    gtk::main();
    host.shutdown();
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    let _ = home_arg();
    eprintln!("shoebox-tray runs on Linux only for now; start the Shoebox app (shoebox-desktop)");
    ExitCode::from(2)
}
