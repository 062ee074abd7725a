//! Linux: UPower's `OnBattery` and NetworkManager's `Metered` over the
//! system D-Bus, read again whenever either service signals anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbus::blocking::Connection;
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::channel::MatchingReceiver;
use dbus::message::{MatchRule, MessageType};

use super::Machine;

const UPOWER: &str = "org.freedesktop.UPower";
const UPOWER_PATH: &str = "/org/freedesktop/UPower";
const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
/// The bound on each property read.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the thread sleeps with nothing to tell, before it looks
/// whether the engine stopped.
const IDLE: Duration = Duration::from_secs(60);

/// Reads the conditions, tells each reading to `tell`, and reads them
/// again whenever UPower or NetworkManager signals anything (a property
/// changed, the service started or stopped), until `stop`.
pub(super) fn follow(stop: &AtomicBool, mut tell: impl FnMut(Machine)) {
    let conn = match Connection::new_system() {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(
                "no system bus ({}): whether the computer runs on battery or on a metered \
                 network cannot be told, and neither holds uploads back",
                e.message().unwrap_or("unknown error")
            );
            tell(Machine::default());
            return;
        }
    };
    let dirty = Arc::new(AtomicBool::new(true));
    if let Err(e) = listen(&conn, &dirty) {
        tracing::warn!(
            "cannot follow UPower and NetworkManager on the system bus ({}): battery and \
             metered network are read once, at start",
            e.message().unwrap_or("unknown error")
        );
    }
    let mut told = [false; 2];
    loop {
        if dirty.swap(false, Ordering::Relaxed) {
            tell(read(&conn, &mut told));
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = conn.process(IDLE) {
            tracing::warn!(
                "the system bus connection failed ({}): battery and metered network are no \
                 longer followed",
                e.message().unwrap_or("unknown error")
            );
            tell(Machine::default());
            return;
        }
    }
}

/// Asks the bus for every signal of the two services and for their
/// coming and going; each marks the conditions to be read again.
fn listen(conn: &Connection, dirty: &Arc<AtomicBool>) -> Result<(), dbus::Error> {
    for (name, path) in [(UPOWER, UPOWER_PATH), (NM, NM_PATH)] {
        let rule = MatchRule::new()
            .with_type(MessageType::Signal)
            .with_sender(name)
            .with_path(path);
        conn.add_match_no_cb(&rule.match_str())?;
        conn.add_match_no_cb(&format!(
            "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{name}'"
        ))?;
    }
    // Signals from the services (sent from their unique names) and the
    // bus's NameOwnerChanged, as asked for above.
    let mark = dirty.clone();
    conn.start_receive(
        MatchRule::new().with_type(MessageType::Signal),
        Box::new(move |_, _| {
            mark.store(true, Ordering::Relaxed);
            true
        }),
    );
    Ok(())
}

/// The conditions now; a service missing from the bus is logged the
/// first time (`told`).
fn read(conn: &Connection, told: &mut [bool; 2]) -> Machine {
    let on_battery = conn
        .with_proxy(UPOWER, UPOWER_PATH, CALL_TIMEOUT)
        .get::<bool>(UPOWER, "OnBattery");
    let metered = conn
        .with_proxy(NM, NM_PATH, CALL_TIMEOUT)
        .get::<u32>(NM, "Metered");
    let unknown = |i: usize, what: &str, e: &dbus::Error, told: &mut [bool; 2]| {
        if !std::mem::replace(&mut told[i], true) {
            tracing::info!(
                "{what} cannot be told ({}); it holds no upload back",
                e.message().unwrap_or("unknown error")
            );
        }
    };
    if let Err(e) = &on_battery {
        unknown(0, "whether the computer runs on battery (UPower)", e, told);
    }
    if let Err(e) = &metered {
        unknown(
            1,
            "whether the network is metered (NetworkManager)",
            e,
            told,
        );
    }
    Machine {
        on_battery: on_battery.ok(),
        metered: metered.ok().and_then(metered_from_nm),
    }
}

/// NetworkManager's `NMMetered`: yes (1) and guess-yes (3) are metered, no
/// (2) and guess-no (4) are not, unknown (0) is unknown.
fn metered_from_nm(value: u32) -> Option<bool> {
    match value {
        1 | 3 => Some(true),
        2 | 4 => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_manager_guesses_count_as_what_they_guess() {
        assert_eq!(metered_from_nm(1), Some(true));
        assert_eq!(metered_from_nm(3), Some(true));
        assert_eq!(metered_from_nm(2), Some(false));
        assert_eq!(metered_from_nm(4), Some(false));
        assert_eq!(metered_from_nm(0), None);
    }
}
