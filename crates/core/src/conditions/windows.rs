//! Windows: the power source from `GetSystemPowerStatus`, followed through
//! `PowerSettingRegisterNotification(GUID_ACDC_POWER_SOURCE)` with a
//! callback (no window needed), and the cost of the internet connection
//! (`NetworkInformation`), followed through `NetworkStatusChanged`.
//! Metered is what Windows' own guidance makes of the cost: a fixed or
//! variable cost, roaming, or over the data limit.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use windows::Networking::Connectivity::{
    NetworkCostType, NetworkInformation, NetworkStatusChangedEventHandler,
};
use windows::Win32::Foundation::{ERROR_SUCCESS, HANDLE};
use windows::Win32::System::Power::{
    DEVICE_NOTIFY_SUBSCRIBE_PARAMETERS, GetSystemPowerStatus, HPOWERNOTIFY,
    PowerSettingRegisterNotification, PowerSettingUnregisterNotification, SYSTEM_POWER_STATUS,
};
use windows::Win32::System::SystemServices::GUID_ACDC_POWER_SOURCE;
use windows::Win32::System::WinRT::{RO_INIT_MULTITHREADED, RoInitialize};
use windows::Win32::UI::WindowsAndMessaging::DEVICE_NOTIFY_CALLBACK;

use super::Machine;

/// How long the thread sleeps with nothing to tell, before it looks
/// whether the engine stopped.
const IDLE: Duration = Duration::from_secs(60);

/// Reads the conditions, tells each reading to `tell`, and reads them
/// again whenever the power source or the network changes, until `stop`.
pub(super) fn follow(stop: &AtomicBool, mut tell: impl FnMut(Machine)) {
    // SAFETY: joins this thread to the multithreaded apartment before its
    // first WinRT call; the thread ends with the engine.
    #[allow(unsafe_code)]
    if let Err(e) = unsafe { RoInitialize(RO_INIT_MULTITHREADED) } {
        tracing::debug!("RoInitialize: {e}");
    }
    let (tx, changes) = crossbeam_channel::unbounded();
    let network = {
        let tx = tx.clone();
        NetworkInformation::NetworkStatusChanged(&NetworkStatusChangedEventHandler::new(
            move |_| {
                let _ = tx.send(());
                Ok(())
            },
        ))
        .inspect_err(|e| {
            tracing::warn!("cannot follow the network's cost ({e}): it is read once, at start")
        })
        .ok()
    };
    let power = PowerNotification::register(tx);
    let mut told = [false; 2];
    let mut changed = true;
    loop {
        if changed {
            tell(read(&mut told));
        }
        changed = match changes.recv_timeout(IDLE) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            // Neither could be followed: the first reading stands.
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Several notifications at once make one reading.
        while changes.try_recv().is_ok() {}
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if let Some(token) = network {
        let _ = NetworkInformation::RemoveNetworkStatusChanged(token);
    }
    drop(power);
}

/// The conditions now; one that cannot be read is logged the first time
/// (`told`).
fn read(told: &mut [bool; 2]) -> Machine {
    let mut unknown = |i: usize, what: &str, e: &windows::core::Error| {
        if !std::mem::replace(&mut told[i], true) {
            tracing::info!("{what} cannot be told ({e}); it holds no upload back");
        }
    };
    let on_battery = on_battery()
        .inspect_err(|e| unknown(0, "whether the computer runs on battery", e))
        .ok()
        .flatten();
    let metered = metered()
        .inspect_err(|e| unknown(1, "whether the network is metered", e))
        .ok()
        .flatten();
    Machine {
        on_battery,
        metered,
    }
}

/// The AC line: offline (0) is on battery, online (1) is not, 255 unknown.
fn on_battery() -> windows::core::Result<Option<bool>> {
    let mut status = SYSTEM_POWER_STATUS::default();
    // SAFETY: `status` is a valid, writable SYSTEM_POWER_STATUS.
    #[allow(unsafe_code)]
    unsafe {
        GetSystemPowerStatus(&mut status)?
    };
    Ok(match status.ACLineStatus {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    })
}

/// Whether the internet connection costs by the byte; `None` with no
/// internet connection or an unknown cost.
fn metered() -> windows::core::Result<Option<bool>> {
    let Ok(profile) = NetworkInformation::GetInternetConnectionProfile() else {
        return Ok(None); // offline: nothing is uploaded anyway
    };
    let cost = profile.GetConnectionCost()?;
    let kind = cost.NetworkCostType()?;
    if cost.Roaming()? || cost.OverDataLimit()? {
        return Ok(Some(true));
    }
    Ok(match kind {
        NetworkCostType::Fixed | NetworkCostType::Variable => Some(true),
        NetworkCostType::Unrestricted => Some(false),
        _ => None,
    })
}

/// A registration for power-source changes, which sends on its channel;
/// unregistered when dropped.
struct PowerNotification {
    handle: *mut c_void,
    /// The callback's context: the sender, owned here until unregistered.
    sender: *mut Sender<()>,
    /// Must stay where the registration points to it.
    _params: Box<DEVICE_NOTIFY_SUBSCRIBE_PARAMETERS>,
}

impl PowerNotification {
    fn register(tx: Sender<()>) -> Option<PowerNotification> {
        let sender = Box::into_raw(Box::new(tx));
        let params = Box::new(DEVICE_NOTIFY_SUBSCRIBE_PARAMETERS {
            Callback: Some(on_power_change),
            Context: sender.cast(),
        });
        let mut handle = std::ptr::null_mut();
        // SAFETY: `params` and the sender it points to live in the
        // returned value until it unregisters them (or are freed at once
        // when registration fails).
        #[allow(unsafe_code)]
        let result = unsafe {
            PowerSettingRegisterNotification(
                &GUID_ACDC_POWER_SOURCE,
                DEVICE_NOTIFY_CALLBACK,
                HANDLE(std::ptr::from_ref(&*params).cast_mut().cast()),
                &mut handle,
            )
        };
        if result != ERROR_SUCCESS {
            tracing::warn!(
                "cannot follow the power source (error {}): it is read once, at start",
                result.0
            );
            // SAFETY: not registered: nothing else holds the sender.
            #[allow(unsafe_code)]
            drop(unsafe { Box::from_raw(sender) });
            return None;
        }
        Some(PowerNotification {
            handle,
            sender,
            _params: params,
        })
    }
}

impl Drop for PowerNotification {
    fn drop(&mut self) {
        // SAFETY: the handle is this registration's; once unregistered, the
        // callback no longer runs and the sender can be freed.
        #[allow(unsafe_code)]
        unsafe {
            let _ = PowerSettingUnregisterNotification(HPOWERNOTIFY(self.handle as isize));
            drop(Box::from_raw(self.sender));
        }
    }
}

/// Called by Windows on a thread of its own when the power source changes.
#[allow(unsafe_code)]
unsafe extern "system" fn on_power_change(
    context: *const c_void,
    _kind: u32,
    _setting: *const c_void,
) -> u32 {
    // SAFETY: `context` is the registration's sender, alive until the
    // registration is dropped, which unregisters this callback first.
    let tx = unsafe { &*context.cast::<Sender<()>>() };
    let _ = tx.send(());
    ERROR_SUCCESS.0
}
