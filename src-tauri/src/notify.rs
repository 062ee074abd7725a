//! Desktop notifications, where this process hosts the engine: the host
//! (`shoebox-host`) decides what needs the user; never ordinary uploads.

use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

pub fn tell(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        // No notification service (a headless session): the tray and the
        // window still show it.
        tracing::info!("notification not shown ({e}): {title}: {body}");
    }
}
