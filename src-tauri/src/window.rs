//! The main window. It exists only while shown: closing it destroys its
//! webview (the app lives on in the tray), and Open creates it again — a
//! hidden WebKit costs hundreds of MB.

use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

pub const MAIN: &str = "main";

/// Shows the window (creating it if needed); `add` opens the add-folder
/// dialog in it.
pub fn show(app: &AppHandle, add: bool) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        if add {
            let _ = app.emit_to(MAIN, "open-add", ());
        }
        return;
    }
    let url = if add { "index.html#add" } else { "index.html" };
    let built = WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App(url.into()))
        .title("Shoebox")
        .inner_size(980.0, 680.0)
        .min_inner_size(640.0, 420.0)
        .build();
    match built {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => tracing::error!("could not open the window: {e}"),
    }
}
