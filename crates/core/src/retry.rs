//! Trying again: the one backoff type behind every wait before a retry.
//!
//! A worker retrying one operation a few times ([`Backoff::OPERATION`],
//! also used for the checks made when a destination is opened), a failed
//! file's schedule in the queue ([`Backoff::FILE`]) and the live engine's
//! probes of a destination that is down use the same type. What is worth retrying, and
//! how long a server asked to be left alone, is the error's to say
//! ([`Retryable`]). See docs/ARCHITECTURE.md.

use std::time::Duration;

use crate::error::{DestError, FileError};

/// An error that can say whether trying again may help.
pub(crate) trait Retryable: std::fmt::Display {
    fn is_transient(&self) -> bool;

    /// How long the server asked to wait before the next attempt.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl Retryable for FileError {
    fn is_transient(&self) -> bool {
        // A file that changed while read is read again by the queue, not
        // by a worker's retry.
        FileError::is_transient(self) && !matches!(self, FileError::Changed)
    }

    fn retry_after(&self) -> Option<Duration> {
        FileError::retry_after(self)
    }
}

impl Retryable for DestError {
    fn is_transient(&self) -> bool {
        DestError::is_transient(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            DestError::Http {
                retry_after: Some(s),
                ..
            } => Some(Duration::from_secs(*s)),
            _ => None,
        }
    }
}

/// Exponential backoff: `first`, doubling up to `max`, for at most
/// `retries` retries where it is used to retry in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub retries: usize,
}

impl Backoff {
    /// A worker's retries of one operation: short, so that a file is not
    /// held long; a longer outage is the file's schedule's business.
    pub const OPERATION: Backoff = Backoff {
        first: Duration::from_millis(200),
        max: Duration::from_secs(5),
        retries: 3,
    };

    /// A failed file's next attempt: a minute, doubling, at most 2^10
    /// minutes (about 17 hours).
    pub const FILE: Backoff = Backoff {
        first: Duration::from_secs(60),
        max: Duration::from_secs(60 << 10),
        retries: usize::MAX,
    };

    /// The longest Retry-After a worker waits for in place; a server asking
    /// for more gets the file back on the file's schedule.
    pub const MAX_RETRY_AFTER_IN_PLACE: Duration = Duration::from_secs(60);

    /// The wait before attempt `failures + 1`, without jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }

    /// Runs `op`, retrying transient failures with this backoff and jitter,
    /// and waiting at least as long as the server asked (Retry-After, up to
    /// [`Self::MAX_RETRY_AFTER_IN_PLACE`]).
    pub fn retry<T, E: Retryable>(&self, mut op: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        use backon::{BlockingRetryable, ExponentialBuilder};
        use std::cell::Cell;
        use std::rc::Rc;
        let asked = Rc::new(Cell::new(Duration::ZERO));
        let asked_by_server = asked.clone();
        (|| op())
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(self.first)
                    .with_max_delay(self.max)
                    .with_max_times(self.retries)
                    .with_jitter(),
            )
            .sleep(move |backoff: Duration| std::thread::sleep(backoff.max(asked.take())))
            .when(|e: &E| {
                e.is_transient()
                    && e.retry_after()
                        .is_none_or(|d| d <= Self::MAX_RETRY_AFTER_IN_PLACE)
            })
            .notify(|e, backoff| {
                let asked = e.retry_after().unwrap_or_default();
                asked_by_server.set(asked);
                tracing::info!("retrying in {:?} after: {e}", backoff.max(asked));
            })
            .call()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(retry_after: Option<u64>) -> FileError {
        FileError::Dest(DestError::Http {
            name: "s3".into(),
            what: "upload".into(),
            status: 503,
            transient: true,
            retry_after,
        })
    }

    #[test]
    fn a_retry_waits_at_least_as_long_as_the_server_asked() {
        let start = crate::clock::now();
        let mut calls = 0;
        let r = Backoff::OPERATION.retry(|| {
            calls += 1;
            if calls == 1 {
                Err(throttled(Some(1)))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 2, "the second attempt succeeds");
        // The backoff alone starts at 200 ms; Retry-After: 1 asks for 1 s.
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "waited only {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn retries_are_bounded_and_a_long_retry_after_is_not_waited_for_in_a_worker() {
        let retries = Backoff::OPERATION.retries;
        let mut calls = 0;
        let r: Result<(), _> = Backoff::OPERATION.retry(|| {
            calls += 1;
            Err(throttled(None))
        });
        assert!(r.is_err());
        assert_eq!(calls, retries + 1, "one attempt and {retries} retries");
        let mut calls = 0;
        let r: Result<(), _> = Backoff::OPERATION.retry(|| {
            calls += 1;
            Err(throttled(Some(3600)))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "an hour's wait is left to the file's own backoff");
    }

    #[test]
    fn a_changed_file_is_not_retried_in_place() {
        let mut calls = 0;
        let r: Result<(), _> = Backoff::OPERATION.retry(|| {
            calls += 1;
            Err(FileError::Changed)
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_files_schedule_doubles_from_a_minute_up_to_about_17_hours() {
        let b = Backoff::FILE;
        assert_eq!(b.delay(0), Duration::from_secs(60));
        assert_eq!(b.delay(1), Duration::from_secs(120));
        assert_eq!(b.delay(10), Duration::from_secs(61_440));
        assert_eq!(b.delay(11), Duration::from_secs(61_440));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(61_440));
    }
}
