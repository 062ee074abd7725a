//! The window is another program (`shoebox-desktop`, beside this one),
//! started on demand: a second start only focuses the one shown.

use std::process::{Command, Stdio};

use shoebox_core::Home;

/// The window program's file name.
const WINDOW: &str = "shoebox-desktop";
/// Asks the window to open its add-folder dialog.
pub const ADD_FOLDER_FLAG: &str = "--add-folder";

/// Opens the window on `home`; `add` opens its add-folder dialog.
pub fn open(home: &Home, add: bool) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(WINDOW),
        Err(e) => {
            tracing::error!("cannot find the window program: {e}");
            return;
        }
    };
    let mut cmd = Command::new(&exe);
    cmd.arg("--home")
        .arg(home.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if add {
        cmd.arg(ADD_FOLDER_FLAG);
    }
    match cmd.spawn() {
        // Reaped when it closes.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(e) => {
            tracing::error!("cannot start the window ({}): {e}", exe.display());
            crate::notify::tell(
                "Shoebox cannot open its window",
                &format!(
                    "{} could not be started: {e}. Reinstall Shoebox.",
                    exe.display()
                ),
            );
        }
    }
}
