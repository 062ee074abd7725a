//! The upload bandwidth limit (`shoebox config set bandwidth 2MB/s`): one
//! token bucket that every upload of the process draws from, whatever its
//! worker or destination, so the limit holds for all transfers together.
//! It paces the bytes where they leave: each network destination builds
//! its request bodies through [`paced`], so a body read into memory first
//! (S3's single PUT, a multipart part) is paced as it is sent. A local
//! destination (a disk) is not limited. See docs/ARCHITECTURE.md.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most a bucket holds: 50 ms of the rate, so that no burst goes far
/// past it over any window of a second or more.
const BURST: Duration = Duration::from_millis(50);
/// The largest piece admitted at once: 20 ms of the rate (at least 4 KiB).
const PIECE: Duration = Duration::from_millis(20);
const MIN_PIECE: usize = 4096;
/// How often a paced reader that waits looks at the cancel switch.
const NAP: Duration = Duration::from_millis(50);

/// The process's upload limit.
pub(crate) static UPLOADS: RateLimit = RateLimit::new();

/// A token bucket; `None` for no limit.
pub(crate) struct RateLimit {
    state: Mutex<Option<Bucket>>,
    /// Set while uploads are being cancelled (pause, shutdown): a paced
    /// body that waits then fails, which ends its request.
    cancel: AtomicBool,
}

struct Bucket {
    /// Bytes per second.
    rate: u64,
    /// Bytes that may go now; below zero, what was admitted ahead.
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(None),
            cancel: AtomicBool::new(false),
        }
    }

    /// Sets the limit (bytes per second; `None` lifts it).
    pub(crate) fn set(&self, rate: Option<u64>) {
        let mut state = self.state.lock().expect("rate lock");
        if state.as_ref().map(|b| b.rate) != rate {
            *state = rate.filter(|r| *r > 0).map(|rate| Bucket {
                rate,
                tokens: 0.0,
                at: crate::clock::now(),
            });
        }
    }

    pub(crate) fn rate(&self) -> Option<u64> {
        self.state
            .lock()
            .expect("rate lock")
            .as_ref()
            .map(|b| b.rate)
    }

    pub(crate) fn set_cancelled(&self, cancelled: bool) {
        self.cancel.store(cancelled, Ordering::Relaxed);
    }

    /// The most one read may take now.
    fn piece(&self) -> Option<usize> {
        let rate = self.rate()?;
        Some(((rate as f64 * PIECE.as_secs_f64()) as usize).max(MIN_PIECE))
    }

    /// Admits `n` bytes: takes them from the bucket now, and returns how
    /// long to wait before they may go (the bytes admitted ahead of them at
    /// the rate). Admission is in order, so waiting readers share the rate.
    fn admit(&self, n: usize, now: Instant) -> Duration {
        let mut state = self.state.lock().expect("rate lock");
        let Some(b) = state.as_mut() else {
            return Duration::ZERO;
        };
        let rate = b.rate as f64;
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate * BURST.as_secs_f64());
        b.at = now;
        b.tokens -= n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }

    /// Waits `wait`, in naps, failing if uploads are cancelled meanwhile.
    fn wait(&self, wait: Duration) -> io::Result<()> {
        let until = crate::clock::now() + wait;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(io::Error::other("the upload was stopped"));
            }
            let left = until.saturating_duration_since(crate::clock::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(NAP));
        }
    }
}

/// `inner`, paced by `limit`: each read is at most a piece, and returns
/// once its bytes were admitted.
pub(crate) struct Paced<R> {
    inner: R,
    limit: &'static RateLimit,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.limit.piece() else {
            return self.inner.read(buf);
        };
        let take = buf.len().min(piece);
        let n = self.inner.read(&mut buf[..take])?;
        let wait = self.limit.admit(n, crate::clock::now());
        self.limit.wait(wait)?;
        Ok(n)
    }
}

/// `inner` paced by the process's upload limit.
pub(crate) fn paced<R: Read>(inner: R) -> Paced<R> {
    Paced {
        inner,
        limit: &UPLOADS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a bucket of `rate` admits in each window of `window`
    /// when readers take `piece`-sized reads as fast as they are let, on a
    /// simulated clock.
    fn windows(rate: u64, readers: usize, total: usize, window: Duration) -> Vec<u64> {
        let limit = RateLimit::new();
        limit.set(Some(rate));
        let start = limit.state.lock().unwrap().as_ref().unwrap().at;
        let piece = limit.piece().unwrap();
        // Each reader's next moment to read.
        let mut next = vec![start; readers];
        let mut sent = 0;
        let mut admitted: Vec<(Instant, usize)> = Vec::new();
        while sent < total {
            let (i, &at) = next.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            let wait = limit.admit(piece, at);
            // The bytes go when the wait ends.
            admitted.push((at + wait, piece));
            next[i] = at + wait;
            sent += piece;
        }
        let end = admitted.iter().map(|(t, _)| *t).max().unwrap();
        let mut out = Vec::new();
        let mut from = start;
        while from < end {
            let to = from + window;
            out.push(
                admitted
                    .iter()
                    .filter(|(t, _)| *t >= from && *t < to)
                    .map(|(_, n)| *n as u64)
                    .sum(),
            );
            from += Duration::from_millis(100);
        }
        out
    }

    #[test]
    fn four_readers_together_keep_to_the_rate_over_any_two_seconds() {
        let rate = 2_000_000;
        let per_window = windows(rate, 4, 20 << 20, Duration::from_secs(2));
        let most = *per_window.iter().max().unwrap();
        assert!(
            most as f64 <= 2.0 * rate as f64 * 1.05,
            "{most} bytes in one 2 s window at {rate} B/s"
        );
        // And the whole goes in its time: 20 MiB at 2 MB/s is 10.5 s.
        let limit = RateLimit::new();
        limit.set(Some(rate));
        let t0 = limit.state.lock().unwrap().as_ref().unwrap().at;
        let mut last = Duration::ZERO;
        for _ in 0..(20 << 20) / 40_000 {
            last = limit.admit(40_000, t0);
        }
        let secs = last.as_secs_f64();
        assert!(
            (10.2..=10.8).contains(&secs),
            "the last byte after {secs} s"
        );
    }

    #[test]
    fn no_limit_admits_at_once_and_a_lifted_limit_stops_pacing() {
        let limit = RateLimit::new();
        assert_eq!(limit.admit(1 << 30, crate::clock::now()), Duration::ZERO);
        limit.set(Some(1000));
        assert!(limit.admit(10_000, crate::clock::now()) > Duration::from_secs(9));
        limit.set(None);
        assert_eq!(limit.admit(1 << 30, crate::clock::now()), Duration::ZERO);
        assert_eq!(limit.piece(), None);
    }

    #[test]
    fn a_waiting_reader_stops_when_uploads_are_cancelled() {
        let limit = RateLimit::new();
        limit.set_cancelled(true);
        let e = limit.wait(Duration::from_secs(60)).unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
    }
}
