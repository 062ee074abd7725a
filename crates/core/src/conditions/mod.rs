//! The computer's power and network as they bear on uploads: whether it
//! runs on battery and whether its network is metered. They are followed
//! through the platform's own notifications, never polled: on Linux,
//! UPower's `OnBattery` and NetworkManager's `Metered` over the system
//! D-Bus (`linux.rs`); on Windows, the power source and the internet
//! connection's cost (`windows.rs`); on macOS, IOKit's power sources and
//! the Network framework's path (`macos.rs`). A condition that cannot be
//! told (no UPower on a desktop PC, no system bus in a container) is
//! unknown, holds nothing back, and is logged once. The platform code
//! lives in this module, behind `cfg`, and nowhere else. See
//! docs/ARCHITECTURE.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What is known of the computer's power and network now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Machine {
    /// `None`: cannot be told here.
    pub(crate) on_battery: Option<bool>,
    pub(crate) metered: Option<bool>,
}

/// Follows the computer's conditions on a thread of its own, and calls
/// `changed` whenever they change. Dropping it stops the thread (within a
/// minute: it wakes only for a notification or to see whether to stop).
pub(crate) struct MachineWatch {
    now: Arc<Mutex<Machine>>,
    stop: Arc<AtomicBool>,
}

impl MachineWatch {
    /// Starts following; returns once the first reading is in (or could
    /// not be had within a few seconds), so that nothing starts uploading
    /// before the conditions are known.
    pub(crate) fn start(changed: impl Fn() + Send + 'static) -> MachineWatch {
        let now = Arc::new(Mutex::new(Machine::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (first_tx, first) = crossbeam_channel::bounded(1);
        let (state, stopping) = (now.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("shoebox-conditions".into())
            .spawn(move || {
                let mut first = Some(first_tx);
                platform::follow(&stopping, |m| {
                    let news =
                        std::mem::replace(&mut *state.lock().expect("conditions lock"), m) != m;
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                    if news {
                        changed();
                    }
                });
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot follow battery and network conditions: {e}");
        } else {
            let _ = first.recv_timeout(std::time::Duration::from_secs(5));
        }
        MachineWatch { now, stop }
    }

    /// The conditions as last told.
    pub(crate) fn now(&self) -> Machine {
        *self.now.lock().expect("conditions lock")
    }
}

impl Drop for MachineWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod platform;
#[cfg(windows)]
#[path = "windows.rs"]
mod platform;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod platform;

/// Elsewhere the conditions are not followed: they stay unknown and hold
/// nothing back.
#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
mod platform {
    use std::sync::atomic::AtomicBool;

    use super::Machine;

    pub(super) fn follow(_stop: &AtomicBool, mut tell: impl FnMut(Machine)) {
        tracing::info!(
            "battery and metered network are not followed on this system; neither holds \
             uploads back"
        );
        tell(Machine::default());
    }
}
