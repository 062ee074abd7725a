//! macOS: the power source IOKit says provides power
//! (`IOPSGetProvidingPowerSourceType`), followed through the system's
//! `com.apple.system.powersources.source` notification, and the Network
//! framework's current path, metered when it is expensive (a phone's
//! hotspot, cellular) or constrained (Low Data Mode), followed through a
//! path monitor. Both notify on one dispatch queue of Shoebox's own; the
//! thread that tells the engine waits on a channel, so nothing polls.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use block2::RcBlock;
use core_foundation::base::{CFType, TCFType};
use core_foundation::string::{CFString, CFStringRef};
use crossbeam_channel::{RecvTimeoutError, Sender};

use super::Machine;

/// How long the thread sleeps with nothing to tell, before it looks
/// whether the engine stopped.
const IDLE: Duration = Duration::from_secs(60);
/// How long the first reading waits for the network's first path.
const FIRST_PATH_WITHIN: Duration = Duration::from_secs(2);
/// IOKit's `kIOPSNotifyPowerSource`.
const POWER_SOURCE_CHANGED: &CStr = c"com.apple.system.powersources.source";
/// IOKit's `kIOPMBatteryPowerKey`, what the providing source is on battery.
const BATTERY_POWER: &str = "Battery Power";
/// `nw_path_status_satisfied`.
const PATH_SATISFIED: c_int = 1;

type Object = *mut c_void;

#[link(name = "IOKit", kind = "framework")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn IOPSCopyPowerSourcesInfo() -> *const c_void;
    fn IOPSGetProvidingPowerSourceType(snapshot: *const c_void) -> CFStringRef;
}

#[link(name = "Network", kind = "framework")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn nw_path_monitor_create() -> Object;
    fn nw_path_monitor_set_queue(monitor: Object, queue: Object);
    fn nw_path_monitor_set_update_handler(monitor: Object, handler: &block2::Block<dyn Fn(Object)>);
    fn nw_path_monitor_start(monitor: Object);
    fn nw_path_monitor_cancel(monitor: Object);
    fn nw_path_get_status(path: Object) -> c_int;
    fn nw_path_is_expensive(path: Object) -> bool;
    fn nw_path_is_constrained(path: Object) -> bool;
    fn nw_release(object: Object);
}

// libdispatch and libnotify, in libSystem.
#[allow(unsafe_code)]
unsafe extern "C" {
    fn dispatch_queue_create(label: *const c_char, attr: Object) -> Object;
    fn dispatch_release(object: Object);
    fn notify_register_dispatch(
        name: *const c_char,
        token: *mut c_int,
        queue: Object,
        handler: &block2::Block<dyn Fn(c_int)>,
    ) -> u32;
    fn notify_cancel(token: c_int) -> u32;
}

/// What the notifications say.
enum Change {
    Power,
    /// The network path's cost: `None` with no usable path.
    Network(Option<bool>),
}

/// Reads the conditions, tells each reading to `tell`, and reads them
/// again whenever the power source or the network path changes, until
/// `stop`.
pub(super) fn follow(stop: &AtomicBool, mut tell: impl FnMut(Machine)) {
    let (tx, changes) = crossbeam_channel::unbounded();
    let watch = Notifications::start(tx);
    let mut metered = None;
    // The monitor tells the current path at once: wait for it briefly, so
    // that the first reading knows the network.
    if let Ok(Change::Network(m)) = changes.recv_timeout(FIRST_PATH_WITHIN) {
        metered = m;
    }
    let mut told = false;
    let mut changed = true;
    loop {
        if changed {
            tell(Machine {
                on_battery: on_battery(&mut told),
                metered,
            });
        }
        changed = match changes.recv_timeout(IDLE) {
            Ok(change) => {
                if let Change::Network(m) = change {
                    metered = m;
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            // Nothing could be followed: the first reading stands.
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Several notifications at once make one reading.
        while let Ok(change) = changes.try_recv() {
            if let Change::Network(m) = change {
                metered = m;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    drop(watch);
}

/// Whether the battery provides power now; `None` when IOKit cannot say
/// (logged the first time: `told`).
fn on_battery(told: &mut bool) -> Option<bool> {
    // SAFETY: the snapshot is owned here (a Copy function) and released by
    // `CFType`'s drop; the source type is borrowed from it (a Get
    // function) and copied into a `CFString` that retains it.
    #[allow(unsafe_code)]
    let providing = unsafe {
        let snapshot = IOPSCopyPowerSourcesInfo();
        if snapshot.is_null() {
            None
        } else {
            let snapshot = CFType::wrap_under_create_rule(snapshot);
            let kind = IOPSGetProvidingPowerSourceType(snapshot.as_CFTypeRef());
            (!kind.is_null()).then(|| CFString::wrap_under_get_rule(kind).to_string())
        }
    };
    if providing.is_none() && !std::mem::replace(told, true) {
        tracing::info!(
            "whether the computer runs on battery cannot be told (IOKit has no power source); \
             it holds no upload back"
        );
    }
    providing.map(|kind| kind == BATTERY_POWER)
}

/// The power-source notification and the path monitor, on a queue of
/// their own; cancelled and released when dropped.
struct Notifications {
    queue: Object,
    monitor: Object,
    token: Option<c_int>,
    /// The handlers, kept alive while registered.
    _power: RcBlock<dyn Fn(c_int)>,
    _network: RcBlock<dyn Fn(Object)>,
}

impl Notifications {
    fn start(tx: Sender<Change>) -> Notifications {
        let power_tx = tx.clone();
        let power: RcBlock<dyn Fn(c_int)> = RcBlock::new(move |_token: c_int| {
            let _ = power_tx.send(Change::Power);
        });
        let network: RcBlock<dyn Fn(Object)> = RcBlock::new(move |path: Object| {
            // SAFETY: `path` is the monitor's current path, valid for the
            // duration of this call.
            #[allow(unsafe_code)]
            let metered = unsafe {
                (nw_path_get_status(path) == PATH_SATISFIED)
                    .then(|| nw_path_is_expensive(path) || nw_path_is_constrained(path))
            };
            let _ = tx.send(Change::Network(metered));
        });
        // SAFETY: plain C calls on objects created here, each released in
        // `drop`; the handlers are copied by the calls that take them and
        // also kept alive in the value returned.
        #[allow(unsafe_code)]
        unsafe {
            let queue =
                dispatch_queue_create(c"app.shoebox.conditions".as_ptr(), std::ptr::null_mut());
            let mut token: c_int = 0;
            let status =
                notify_register_dispatch(POWER_SOURCE_CHANGED.as_ptr(), &mut token, queue, &power);
            let token = if status == 0 {
                Some(token)
            } else {
                tracing::warn!(
                    "cannot follow the power source (notify status {status}): it is read once, \
                     at start"
                );
                None
            };
            let monitor = nw_path_monitor_create();
            nw_path_monitor_set_queue(monitor, queue);
            nw_path_monitor_set_update_handler(monitor, &network);
            nw_path_monitor_start(monitor);
            Notifications {
                queue,
                monitor,
                token,
                _power: power,
                _network: network,
            }
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        // SAFETY: each object was created in `start` and is released once.
        #[allow(unsafe_code)]
        unsafe {
            if let Some(token) = self.token {
                notify_cancel(token);
            }
            nw_path_monitor_cancel(self.monitor);
            nw_release(self.monitor);
            dispatch_release(self.queue);
        }
    }
}
