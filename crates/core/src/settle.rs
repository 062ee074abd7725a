//! The settle gate (docs/ARCHITECTURE.md invariant 2): a file is read only once it
//! has been unchanged for the settle window and its mtime is at least that
//! old. Where the file system keeps change times by this computer's clock
//! (`platform::keeps_change_times`), the file's ctime says when it last
//! changed: every write and every change of its times moves it, and no
//! program can set it back. Elsewhere (network file systems, FAT) the
//! window counts from when the current fingerprint was first seen, because
//! one look cannot tell a paused writer from a finished one there. A file
//! that keeps changing waits, up to a cap; past the cap it is read as soon
//! as it holds still for one read (the read itself checks the fingerprint
//! before and after, so a torn version is never kept). Pure logic over
//! millisecond timestamps, so tests control the clock.

/// What to do with a pending file now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Settled: read and upload it.
    Ready,
    /// Still changing (or too fresh): look again at this time (unix ms).
    WaitUntil(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleRule {
    /// How long a fingerprint must stay unchanged (ms).
    pub window_ms: i64,
    /// How long a file may keep changing before it is read anyway (ms).
    pub cap_ms: i64,
}

impl SettleRule {
    pub fn new(window: std::time::Duration) -> SettleRule {
        let window_ms = window.as_millis() as i64;
        SettleRule {
            window_ms,
            cap_ms: (window_ms * 15).max(30_000),
        }
    }

    /// `fp_since_ms`: when the current fingerprint was first seen;
    /// `changed_ms`: the file's change time where its file system keeps
    /// it (None elsewhere); `mtime_ms`: the file's modification time;
    /// `waiting_since_ms`: when the file first waited to settle (None:
    /// never waited).
    pub fn verdict(
        &self,
        now_ms: i64,
        fp_since_ms: i64,
        changed_ms: Option<i64>,
        mtime_ms: i64,
        waiting_since_ms: Option<i64>,
    ) -> Verdict {
        if self.window_ms <= 0 {
            return Verdict::Ready;
        }
        if waiting_since_ms.is_some_and(|w| now_ms - w >= self.cap_ms) {
            return Verdict::Ready;
        }
        // An mtime in the future (clock skew, a camera's clock) cannot be
        // waited out: only the stability of the fingerprint counts then.
        let mtime_ms = if mtime_ms > now_ms {
            i64::MIN / 2
        } else {
            mtime_ms
        };
        // A change time in the future means the clock was set back since:
        // only the fingerprint can be trusted then.
        let still_since = match changed_ms {
            Some(changed) if changed <= now_ms => changed,
            _ => fp_since_ms,
        };
        let ready_at = still_since.max(mtime_ms) + self.window_ms;
        if now_ms >= ready_at {
            Verdict::Ready
        } else {
            Verdict::WaitUntil(ready_at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: SettleRule = SettleRule {
        window_ms: 2000,
        cap_ms: 30_000,
    };

    #[test]
    fn a_file_waits_until_its_fingerprint_and_mtime_are_a_window_old() {
        // Written at t=0, seen at t=100.
        assert_eq!(
            RULE.verdict(100, 100, None, 0, None),
            Verdict::WaitUntil(2100)
        );
        assert_eq!(
            RULE.verdict(2099, 100, None, 0, Some(100)),
            Verdict::WaitUntil(2100)
        );
        assert_eq!(RULE.verdict(2100, 100, None, 0, Some(100)), Verdict::Ready);
    }

    #[test]
    fn an_old_file_seen_for_the_first_time_still_waits_one_window() {
        // mtime long ago, but the fingerprint was only just observed and
        // the file system keeps no change time: one observation cannot
        // tell a paused writer from a finished one.
        assert_eq!(
            RULE.verdict(10_000, 10_000, None, 0, None),
            Verdict::WaitUntil(12_000)
        );
    }

    #[test]
    fn continuous_appends_keep_a_file_waiting_until_the_cap() {
        // Every 500 ms the file grows: its fingerprint is new each time.
        let first_wait = 0;
        for t in (0..30_000).step_by(500) {
            assert!(
                matches!(
                    RULE.verdict(t, t, None, t, Some(first_wait)),
                    Verdict::WaitUntil(_)
                ),
                "at {t}"
            );
        }
        assert_eq!(
            RULE.verdict(30_000, 30_000, None, 30_000, Some(first_wait)),
            Verdict::Ready,
            "the cap"
        );
    }

    #[test]
    fn a_change_time_a_window_old_is_ready_at_the_first_look() {
        assert_eq!(
            RULE.verdict(10_000, 10_000, Some(8_000), 7_000, None),
            Verdict::Ready
        );
    }

    #[test]
    fn a_file_just_closed_waits_one_window_from_its_change_not_from_its_sighting() {
        // Closed at 9,500, first seen by a rescan at 10,000.
        assert_eq!(
            RULE.verdict(10_000, 10_000, Some(9_500), 9_500, None),
            Verdict::WaitUntil(11_500)
        );
        assert_eq!(
            RULE.verdict(11_500, 10_000, Some(9_500), 9_500, Some(10_000)),
            Verdict::Ready
        );
    }

    #[test]
    fn a_backdated_mtime_does_not_shorten_the_wait() {
        // `touch -d` or a copy keeping times moves the change time to now.
        assert_eq!(
            RULE.verdict(10_000, 10_000, Some(10_000), 0, None),
            Verdict::WaitUntil(12_000)
        );
    }

    #[test]
    fn a_change_time_in_the_future_falls_back_to_the_fingerprint() {
        assert_eq!(
            RULE.verdict(10_000, 10_000, Some(50_000), 0, None),
            Verdict::WaitUntil(12_000)
        );
    }

    #[test]
    fn continuous_writes_move_the_change_time_and_keep_a_file_waiting() {
        for t in (0..30_000).step_by(500) {
            assert!(
                matches!(
                    RULE.verdict(t, t, Some(t), t, Some(0)),
                    Verdict::WaitUntil(_)
                ),
                "at {t}"
            );
        }
    }

    #[test]
    fn a_future_mtime_does_not_block_forever() {
        assert_eq!(
            RULE.verdict(5000, 1000, None, 999_999, Some(1000)),
            Verdict::Ready
        );
    }

    #[test]
    fn a_zero_window_takes_files_at_once() {
        let rule = SettleRule::new(std::time::Duration::ZERO);
        assert_eq!(rule.verdict(5, 5, None, 5, None), Verdict::Ready);
    }
}
