//! Desktop notifications for what needs the user (a folder went missing,
//! deletions held, files failing) — never for ordinary uploads. Failures are
//! grouped: at most one notification a minute.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

static LAST_FAILURE: Mutex<Option<Instant>> = Mutex::new(None);

pub fn tell(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        // No notification service (a headless session): the tray and the
        // window still show it.
        tracing::info!("notification not shown ({e}): {title}: {body}");
    }
}

pub fn failure(app: &AppHandle, path: &str, error: &str) {
    let mut last = LAST_FAILURE.lock().expect("lock");
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    tell(
        app,
        "A file could not be backed up",
        &format!("{path}: {error}"),
    );
}
