//! End-to-end tests of the real Shoebox app: the real binary in a real
//! WebKit, driven through WebDriver (tauri-driver + WebKitWebDriver) and
//! through its tray menu on D-Bus. They need an X display and a private
//! D-Bus session: `scripts/test` runs them under
//! `dbus-run-session -- xvfb-run -a`.

// Shared with the CLI suite, which uses all of it.
#[path = "../common/bounded.rs"]
mod bounded;
#[allow(dead_code)]
#[path = "../common/media.rs"]
mod media;
#[allow(dead_code)]
#[path = "../common/sshd.rs"]
mod sshd;
mod support;
#[allow(dead_code)]
#[path = "../common/system_bus.rs"]
mod system_bus;

mod autostart;
mod destinations;
mod security;
mod tray;
mod window;
