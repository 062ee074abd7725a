//! Launch at login: the Settings switch writes the autostart entry (which
//! starts the app hidden) and removes it.

use crate::support::*;

#[test]
fn the_launch_at_login_switch_writes_and_removes_the_autostart_entry() {
    let sb = Sandbox::new();
    let entry = sb.home.join(".config/autostart/Shoebox.desktop");
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-settings");
    assert!(!entry.exists());
    wd.click("#autostart");
    wait_until(
        secs(10),
        &format!("the autostart entry (toast: {:?})", wd.text("#toast")),
        || entry.exists(),
    );
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = text
        .lines()
        .find(|l| l.starts_with("Exec="))
        .unwrap_or_default();
    assert!(
        exec.contains("shoebox-desktop") && exec.ends_with("--minimized"),
        "starts the app hidden: {exec}"
    );
    wd.screenshot("settings");
    wd.click("#autostart");
    wait_until(secs(10), "the autostart entry to go", || !entry.exists());
}

/// The upload limit, the hours and the battery and metered rules in
/// Settings are `shoebox config`'s: set there, they are in the store for
/// every engine; a value that is not a rate is refused with how to write
/// one.
#[test]
fn the_upload_limit_hours_and_conditions_are_set_in_settings() {
    let sb = Sandbox::new();
    let wd = WebDriver::start(&sb, &[]);
    wd.click("#tab-settings");
    wd.wait_text("#settings", secs(10), |t| t.contains("Upload limit"));
    assert_eq!(
        wd.exec("return document.querySelector('#bandwidth').value"),
        "off"
    );
    // Typed, then committed as leaving the field commits it.
    let set = |field: &str, value: &str| {
        wd.exec(&format!(
            "const f = document.querySelector('#{field}');
             f.value = {value:?};
             f.dispatchEvent(new Event('change'));"
        ));
    };
    set("bandwidth", "2MB/s");
    wd.wait_text("#toast", secs(10), |t| t.contains("limited to 2 MB/s"));
    assert_eq!(sb.engine().config_get("bandwidth").unwrap().value, "2 MB/s");
    set("bandwidth", "fast");
    wd.wait_text("#toast", secs(10), |t| t.contains("not a rate"));
    assert_eq!(
        sb.engine().config_get("bandwidth").unwrap().value,
        "2 MB/s",
        "a refused value changes nothing"
    );
    // The upload hours likewise.
    set("schedule", "22:00-07:00");
    wd.wait_text("#toast", secs(10), |t| {
        t.contains("Uploads run 22:00-07:00")
    });
    assert_eq!(
        sb.engine().config_get("schedule").unwrap().value,
        "22:00-07:00"
    );
    set("schedule-bandwidth", "500kB/s");
    wd.wait_text("#toast", secs(10), |t| {
        t.contains("500 kB/s in those hours")
    });
    assert_eq!(
        sb.engine().config_get("schedule-bandwidth").unwrap().value,
        "500 kB/s"
    );
    // On battery and on a metered network: choices, with the defaults.
    let value = |id: &str| wd.exec(&format!("return document.querySelector('#{id}').value"));
    assert_eq!(value("on-battery"), "photos-only");
    assert_eq!(value("on-metered"), "pause");
    set("on-battery", "pause");
    wd.wait_text("#toast", secs(10), |t| {
        t.contains("On battery, backups pause")
    });
    assert_eq!(sb.engine().config_get("on-battery").unwrap().value, "pause");
    set("on-metered", "keep-going");
    wd.wait_text("#toast", secs(10), |t| t.contains("uploads keep going"));
    assert_eq!(
        sb.engine().config_get("on-metered").unwrap().value,
        "keep-going"
    );
    wd.wait_text("#settings", secs(10), |t| {
        t.contains("a local or external disk is backed up either way")
    });
}
