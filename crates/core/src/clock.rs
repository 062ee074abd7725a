//! Time, read in one place. Every reading of the monotonic clock (for
//! deadlines and schedules) and of the wall clock (for what is stored and
//! shown) goes through here, so that a schedule (quiet hours) or a test can
//! put its own time in one place. See docs/ARCHITECTURE.md.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The monotonic clock: for deadlines and waits.
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The wall clock: for timestamps that are stored, signed or shown.
pub(crate) fn wall() -> SystemTime {
    SystemTime::now()
}

fn since_epoch() -> std::time::Duration {
    wall().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The local time of day (for the upload schedule).
pub(crate) fn local_time_of_day() -> chrono::NaiveTime {
    chrono::DateTime::<chrono::Local>::from(wall()).time()
}

/// Unix time in milliseconds.
pub(crate) fn unix_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Unix time in seconds.
pub(crate) fn unix_secs() -> i64 {
    since_epoch().as_secs() as i64
}

/// Unix time in nanoseconds (a seed for ids).
pub(crate) fn unix_nanos() -> u128 {
    since_epoch().as_nanos()
}
