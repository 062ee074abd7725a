//! shoebox-desktop: the Shoebox window. A thin Tauri 2 shell. Where the
//! tray process exists (`shoebox-tray`, beside this program: Linux), it
//! starts that process if no engine runs, and is the window only, a client
//! of the engine's local API that ends when its window closes; so no web
//! engine stays in memory while Shoebox idles in the tray. Elsewhere it
//! hosts the engine and the tray itself. It shows the state in a window
//! (`window`, `ui/`) and maps the window's commands to engine calls
//! (`commands`). All sync logic is in shoebox-core.

mod commands;
mod host;
mod notify;
mod tray;
mod tray_process;
mod window;

use std::path::PathBuf;

use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};

use crate::host::{Host, Mode};

/// The argument autostart passes: start hidden in the tray.
pub const MINIMIZED_FLAG: &str = "--minimized";
/// The tray's "Add folder…": open the window at its add-folder dialog.
pub const ADD_FOLDER_FLAG: &str = "--add-folder";

struct Args {
    home: Option<PathBuf>,
    minimized: bool,
    add_folder: bool,
}

fn parse_args() -> Args {
    let mut args = std::env::args_os().skip(1);
    let mut out = Args {
        home: std::env::var_os("SHOEBOX_HOME").map(PathBuf::from),
        minimized: false,
        add_folder: false,
    };
    while let Some(a) = args.next() {
        if a == MINIMIZED_FLAG {
            out.minimized = true;
        } else if a == ADD_FOLDER_FLAG {
            out.add_folder = true;
        } else if a == "--home" {
            out.home = args.next().map(PathBuf::from);
        }
    }
    out
}

/// Stops the engine cleanly, then exits.
pub(crate) fn quit(app: &AppHandle) {
    if let Some(host) = app.try_state::<Host>() {
        host.shutdown();
    }
    app.exit(0);
}

/// The window is a page of text and a few pictures: WebKit draws it
/// without OpenGL compositing and without its DMA-BUF renderer, which
/// would load Mesa in its processes (and, where there is no GPU, its
/// software renderer with LLVM, about 70 MB). A value the user set is
/// kept.
#[cfg(target_os = "linux")]
fn light_webkit() {
    // SAFETY: called first in `run`, before any thread exists.
    #[allow(unsafe_code)]
    unsafe {
        shoebox_host::default_env(&[
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
            ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
        ]);
    }
}

pub fn run() {
    #[cfg(target_os = "linux")]
    light_webkit();
    let args = parse_args();
    let mode = tray_process::ensure_running(args.home.clone());
    if mode == Mode::Window && args.minimized {
        // At login: the tray process is all that runs.
        return;
    }
    let app = tauri::Builder::default()
        // A second launch focuses the running one.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            window::show(app, argv.iter().any(|a| a == ADD_FOLDER_FLAG))
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec![MINIMIZED_FLAG]),
        ))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::list_destinations,
            commands::preview_albums,
            commands::add_watch,
            commands::remove_watch,
            commands::sync_now,
            commands::set_paused,
            commands::confirm_deletions,
            commands::keep_files,
            commands::retry_failed,
            commands::list_ignored,
            commands::pick_folder,
            commands::set_autostart,
            commands::answer_autostart_question,
            commands::set_workers,
            commands::set_config,
            commands::back_up_now_anyway,
            commands::open_location,
            commands::add_destination,
            commands::edit_destination,
            commands::test_destination,
            commands::remove_destination,
            commands::restore_destination,
            commands::export_key,
            commands::thumbnail,
        ])
        .setup(move |app| {
            let host = match Host::start(app.handle(), args.home.clone(), mode) {
                Ok(host) => host,
                Err(e) => {
                    // A damaged or newer store, a folder that cannot be
                    // written: say so in a window (the app may have been
                    // started at login, with no terminal), then exit. The
                    // message names the recovery command.
                    eprintln!("Shoebox could not start: {e:#}");
                    // Nothing was started, so nothing needs stopping: exit
                    // with a failure code once the message is closed.
                    app.dialog()
                        .message(format!("{e:#}"))
                        .title("Shoebox could not start")
                        .kind(MessageDialogKind::Error)
                        .show(|_| std::process::exit(2));
                    return Ok(());
                }
            };
            app.manage(host);
            if mode == Mode::AllInOne {
                app.manage(tray::build(
                    app.handle(),
                    tray::Actions {
                        toggle_pause: |app| app.state::<Host>().toggle_pause(),
                        back_up_now_anyway: |app| app.state::<Host>().back_up_now_anyway(),
                    },
                )?);
            }
            if !args.minimized {
                window::show(app.handle(), args.add_folder);
            }
            app.state::<Host>().nudge();
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the Shoebox app could not be built");
    app.run(move |app, event| match event {
        // The last window closed: all in one, Shoebox lives on in the
        // tray; else the tray process does, and this one ends.
        RunEvent::ExitRequested {
            code: None, api, ..
        } if mode == Mode::AllInOne => api.prevent_exit(),
        RunEvent::Exit => {
            if let Some(host) = app.try_state::<Host>() {
                host.shutdown();
            }
        }
        _ => {}
    });
}
