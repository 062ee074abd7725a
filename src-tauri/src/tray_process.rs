//! Finding and starting the tray process (`shoebox-tray`, beside this
//! program), which runs the engine; the window is then its client.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::Mode;

/// The tray program's file name.
const TRAY: &str = "shoebox-tray";
/// How long a tray process has to take the engine.
const START_WITHIN: Duration = Duration::from_secs(10);

/// Makes sure a tray runs for `home` (which runs the engine, or follows
/// a headless one), starting the tray process if none does, and says who
/// hosts the engine. Without a tray program (macOS and Windows for now),
/// or if it does not start, this process hosts the engine.
pub fn ensure_running(home: Option<PathBuf>) -> Mode {
    let Some(tray) = tray_program() else {
        return Mode::AllInOne;
    };
    let Ok(home) = shoebox_core::Home::open(home) else {
        // The window says what is wrong with the data folder.
        return Mode::AllInOne;
    };
    if shoebox_host::TrayLock::holder(&home).is_some() {
        return Mode::Window;
    }
    let mut cmd = Command::new(&tray);
    cmd.arg("--home")
        .arg(home.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // Its own process group: it outlives this window.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("Shoebox: the tray ({}) did not start: {e}", tray.display());
            return Mode::AllInOne;
        }
    };
    let deadline = Instant::now() + START_WITHIN;
    while Instant::now() < deadline {
        // The tray runs the engine, or follows the one that runs.
        if shoebox_host::TrayLock::holder(&home).is_some()
            && shoebox_core::engine_holder(&home).is_some()
        {
            // Reaped if it ends while the window is open.
            std::thread::spawn(move || child.wait());
            return Mode::Window;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("Shoebox: the tray ended at once ({status}); the window runs the engine");
            return Mode::AllInOne;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "Shoebox: the tray did not start within {START_WITHIN:?}; the window runs the engine"
    );
    let _ = child.kill();
    Mode::AllInOne
}

fn tray_program() -> Option<PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let tray = std::env::current_exe().ok()?.with_file_name(TRAY);
    tray.exists().then_some(tray)
}
