//! shoebox-desktop: the Shoebox tray app. A thin Tauri 2 shell: it starts
//! the engine in-process (`host`), shows its state in the tray (`tray`) and
//! a window (`window`, `ui/`), and maps the window's commands to engine
//! calls (`commands`). All sync logic is in shoebox-core.

mod commands;
mod host;
mod notify;
mod tray;
mod window;

use std::path::PathBuf;

use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};

use crate::host::Host;

/// The argument autostart passes: start hidden in the tray.
pub const MINIMIZED_FLAG: &str = "--minimized";

struct Args {
    home: Option<PathBuf>,
    minimized: bool,
}

fn parse_args() -> Args {
    let mut args = std::env::args_os().skip(1);
    let mut out = Args {
        home: std::env::var_os("SHOEBOX_HOME").map(PathBuf::from),
        minimized: false,
    };
    while let Some(a) = args.next() {
        if a == MINIMIZED_FLAG {
            out.minimized = true;
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

pub fn run() {
    let args = parse_args();
    let app = tauri::Builder::default()
        // A second launch focuses the running one.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            window::show(app, false)
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
        ])
        .setup(move |app| {
            let host = match Host::start(app.handle(), args.home.clone()) {
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
            app.manage(tray::build(
                app.handle(),
                tray::Actions {
                    toggle_pause: |app| app.state::<Host>().toggle_pause(),
                    back_up_now_anyway: |app| app.state::<Host>().back_up_now_anyway(),
                },
            )?);
            if !args.minimized {
                window::show(app.handle(), false);
            }
            app.state::<Host>().nudge();
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the Shoebox app could not be built");
    app.run(|app, event| match event {
        // The last window closed: Shoebox lives on in the tray.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            if let Some(host) = app.try_state::<Host>() {
                host.shutdown();
            }
        }
        _ => {}
    });
}
