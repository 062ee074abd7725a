//! A private D-Bus standing in for the system bus, with python-dbusmock's
//! `upower` and `networkmanager` templates on it (Debian's
//! python3-dbusmock): the battery and the network as UPower and
//! NetworkManager report them, flipped by the tests the way those services
//! change them (a property set, and its PropertiesChanged signal). Shared
//! by the CLI and GUI suites. Every wait and every request is bounded.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bounded::succeeds_within;

/// Checks `cond` every 50 ms; panics naming `what` after `timeout`.
#[track_caller]
fn poll(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

const UPOWER: &str = "org.freedesktop.UPower";
const NM: &str = "org.freedesktop.NetworkManager";

/// A private bus, and the mock services on it; everything stops on drop.
pub struct SystemBus {
    daemon: Child,
    mocks: Vec<Child>,
    address: String,
    _dir: tempfile::TempDir,
}

impl SystemBus {
    /// A bus with no service on it.
    pub fn empty() -> SystemBus {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("system_bus_socket");
        let address = format!("unix:path={}", socket.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (scripts/install-deps)");
        let bus = SystemBus {
            daemon,
            mocks: Vec::new(),
            address,
            _dir: dir,
        };
        poll(SECS(10), "the private bus to listen", || socket.exists());
        poll(SECS(10), "the private bus to answer", || {
            bus.send(&[
                "--dest=org.freedesktop.DBus",
                "/",
                "org.freedesktop.DBus.ListNames",
            ])
        });
        bus
    }

    /// A bus with UPower (on mains power) and NetworkManager (an
    /// unmetered network).
    pub fn with_services() -> SystemBus {
        let mut bus = SystemBus::empty();
        for template in ["upower", "networkmanager"] {
            let child = Command::new("/usr/bin/python3")
                .args(["-m", "dbusmock", "--system", "--template", template])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3-dbusmock is installed (scripts/install-deps)");
            bus.mocks.push(child);
        }
        poll(SECS(20), "the UPower mock on the bus", || {
            bus.get(UPOWER, "/org/freedesktop/UPower", "OnBattery")
        });
        poll(SECS(20), "the NetworkManager mock on the bus", || {
            bus.get(NM, "/org/freedesktop/NetworkManager", "State")
        });
        // The template has no `Metered` yet: add it as NetworkManager has
        // it (NM_METERED_NO).
        assert!(
            bus.send(&[
                &format!("--dest={NM}"),
                "/org/freedesktop/NetworkManager",
                "org.freedesktop.DBus.Mock.AddProperty",
                &format!("string:{NM}"),
                "string:Metered",
                "variant:uint32:2",
            ]),
            "adding Metered to the NetworkManager mock"
        );
        bus
    }

    /// `dbus-send --print-reply ARGS` on this bus, bounded; true when it
    /// was answered without an error.
    fn send(&self, args: &[&str]) -> bool {
        let mut cmd = Command::new("dbus-send");
        cmd.arg(format!("--bus={}", self.address))
            .args(["--print-reply", "--reply-timeout=2000"])
            .args(args);
        succeeds_within(&mut cmd, SECS(10))
    }

    fn get(&self, service: &str, path: &str, property: &str) -> bool {
        self.send(&[
            &format!("--dest={service}"),
            path,
            "org.freedesktop.DBus.Properties.Get",
            &format!("string:{service}"),
            &format!("string:{property}"),
        ])
    }

    /// Sets a property as the service would; the mock emits
    /// PropertiesChanged.
    fn set(&self, service: &str, path: &str, property: &str, value: &str) {
        assert!(
            self.send(&[
                &format!("--dest={service}"),
                path,
                "org.freedesktop.DBus.Properties.Set",
                &format!("string:{service}"),
                &format!("string:{property}"),
                value,
            ]),
            "setting {property} to {value}"
        );
    }

    pub fn on_battery(&self, yes: bool) {
        self.set(
            UPOWER,
            "/org/freedesktop/UPower",
            "OnBattery",
            &format!("variant:boolean:{yes}"),
        );
    }

    /// NM_METERED_YES (1) or NM_METERED_NO (2).
    pub fn metered(&self, yes: bool) {
        let v = if yes { 1 } else { 2 };
        self.set(
            NM,
            "/org/freedesktop/NetworkManager",
            "Metered",
            &format!("variant:uint32:{v}"),
        );
    }

    /// What `shoebox run` needs to use this bus as the system bus.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SYSTEM_BUS_ADDRESS", self.address.as_str())]
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        for c in self.mocks.iter_mut().chain([&mut self.daemon]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
