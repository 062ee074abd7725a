//! Desktop notifications for what needs the user (the host decides which;
//! never ordinary uploads), sent off the caller's thread.

pub fn tell(title: &str, body: &str) {
    let (title, body) = (title.to_string(), body.to_string());
    std::thread::spawn(move || {
        let shown = notify_rust::Notification::new()
            .appname("Shoebox")
            .summary(&title)
            .body(&body)
            .show();
        if let Err(e) = shown {
            // No notification service (a headless session): the tray and
            // the window still show it.
            tracing::info!("notification not shown ({e}): {title}: {body}");
        }
    });
}
