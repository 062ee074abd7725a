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
