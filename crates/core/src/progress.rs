//! What a tray or status bar shows in one line: "Up to date", "Uploading 12
//! of 340 · 18 MB/s", "Paused", "2 files need attention". Built from the
//! engine's events and its status; pure, so hosts share it and tests drive
//! it with their own clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::Status;
use crate::error::DestProblem;
use crate::events::Event;

/// The overall state, for the tray icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    UpToDate,
    Syncing,
    Paused,
    Attention,
}

/// The one-line summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub state: Overall,
    pub line: String,
}

const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Follows a run of uploads ("12 of 340") and the recent transfer rate.
#[derive(Debug, Default)]
pub struct Progress {
    done_in_batch: u64,
    /// When this run of uploads was first seen.
    started: Option<Instant>,
    sent: VecDeque<(Instant, u64)>,
}

/// "18 MB/s", "850 kB/s" (decimal units, as file managers show sizes).
pub fn rate_text(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e9 {
        format!("{:.1} GB/s", bytes_per_sec / 1e9)
    } else if bytes_per_sec >= 1e6 {
        format!("{:.0} MB/s", bytes_per_sec / 1e6)
    } else {
        format!("{:.0} kB/s", (bytes_per_sec / 1e3).max(1.0))
    }
}

impl Progress {
    pub fn on_event(&mut self, e: &Event, now: Instant) {
        match e {
            Event::FileDone { bytes, .. } => {
                self.done_in_batch += 1;
                if *bytes > 0 {
                    self.sent.push_back((now, *bytes));
                }
            }
            Event::FileFailed { .. } => self.done_in_batch += 1,
            _ => {}
        }
        while self
            .sent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.sent.pop_front();
        }
    }

    /// Bytes per second of the uploads finished in the last few seconds,
    /// or since this run of uploads began if that is more recent (files
    /// upload side by side and finish together, so a shorter span would
    /// count their bytes as sent in an instant).
    fn rate(&self, now: Instant) -> f64 {
        let window = self
            .started
            .map_or(RATE_WINDOW, |s| now.duration_since(s).min(RATE_WINDOW));
        if window < Duration::from_millis(500) {
            return 0.0;
        }
        let bytes: u64 = self
            .sent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= window)
            .map(|(_, b)| b)
            .sum();
        bytes as f64 / window.as_secs_f64()
    }

    /// How long `bytes` more take at the recent upload rate; `None` while
    /// nothing was sent lately.
    pub fn time_left(&mut self, bytes: u64, now: Instant) -> Option<Duration> {
        let rate = self.rate(now);
        (rate > 0.0).then(|| Duration::from_secs_f64(bytes as f64 / rate))
    }

    pub fn summary(&mut self, status: &Status, now: Instant) -> Summary {
        // The queue's pending files include those uploading and those
        // still settling.
        let remaining = status.queue.pending;
        if remaining == 0 {
            self.done_in_batch = 0;
            self.started = None;
        } else if self.started.is_none() {
            self.started = Some(now);
        }
        if status.paused {
            return Summary {
                state: Overall::Paused,
                line: "Paused".into(),
            };
        }
        // A condition that holds every upload is what the user sees; one
        // that holds some (videos on battery) once the rest is done.
        let held = status.waiting.as_ref().map_or(0, |w| match w.holds {
            crate::waiting::Holds::All => remaining,
            _ => w.held.min(remaining),
        });
        let remaining = remaining - held;
        if let Some(w) = &status.waiting
            && remaining == 0
            && w.holds_anything()
        {
            return Summary {
                state: Overall::Paused,
                line: w.line(),
            };
        }
        // Files waiting for a destination that cannot be used are not
        // "uploading": say what holds them.
        if let Some(d) = status.destinations_down.first() {
            return Summary {
                state: Overall::Attention,
                line: match d.code {
                    DestProblem::Unreachable => format!("Cannot reach {}", d.dest),
                    DestProblem::Full => format!("{} is full", d.dest),
                },
            };
        }
        if remaining > 0 {
            let total = self.done_in_batch + remaining;
            let rate = self.rate(now);
            let mut line = format!("Uploading {} of {total}", self.done_in_batch.min(total));
            if rate > 0.0 {
                line.push_str(&format!(" · {}", rate_text(rate)));
            }
            if let Some(limit) = status.bandwidth_limit {
                line.push_str(&format!(
                    " · limited to {}",
                    crate::config::rate_text(Some(limit))
                ));
            }
            return Summary {
                state: Overall::Syncing,
                line,
            };
        }
        if let Some(w) = status.watches.iter().find(|w| w.state == "folder_missing") {
            let name = std::path::Path::new(&w.watch.folder)
                .file_name()
                .map_or(w.watch.folder.clone(), |n| n.to_string_lossy().into_owned());
            return Summary {
                state: Overall::Attention,
                line: format!("Folder missing: {name}"),
            };
        }
        let held: u64 = status.watches.iter().map(|w| w.deletions_held).sum();
        if held > 0 {
            return Summary {
                state: Overall::Attention,
                line: format!("{held} deletions waiting for you"),
            };
        }
        match status.queue.failed {
            0 => Summary {
                state: Overall::UpToDate,
                line: "Up to date".into(),
            },
            1 => Summary {
                state: Overall::Attention,
                line: "1 file needs attention".into(),
            },
            n => Summary {
                state: Overall::Attention,
                line: format!("{n} files need attention"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::QueueStatus;
    use crate::events::Outcome;

    fn status(pending: u64, failed: u64, paused: bool) -> Status {
        Status {
            home: String::new(),
            engine: None,
            paused,
            watches: Vec::new(),
            queue: QueueStatus {
                pending,
                in_progress: 0,
                failed,
            },
            uploading: Vec::new(),
            settling: 0,
            destinations_down: Vec::new(),
            last_check: None,
            bandwidth_limit: None,
            waiting: None,
            on_battery: None,
            metered: None,
        }
    }

    fn done(bytes: u64) -> Event {
        Event::FileDone {
            path: "p".into(),
            album: "a".into(),
            name: "n".into(),
            outcome: Outcome::Uploaded,
            bytes,
            size: bytes,
            taken: None,
            note: None,
        }
    }

    #[test]
    fn a_run_of_uploads_counts_up_with_its_rate() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        assert_eq!(
            p.summary(&status(340, 0, false), t0).line,
            "Uploading 0 of 340"
        );
        for i in 0..12 {
            p.on_event(&done(7_500_000), t0 + Duration::from_millis(i * 100));
        }
        let s = p.summary(&status(328, 0, false), t0 + Duration::from_secs(2));
        assert_eq!(s.state, Overall::Syncing);
        assert_eq!(
            s.line, "Uploading 12 of 340 · 45 MB/s",
            "90 MB in the 2 s since the run began"
        );
        assert_eq!(
            p.time_left(45_000_000, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(1)),
            "time left at that rate"
        );
    }

    #[test]
    fn files_uploading_or_settling_are_counted_once() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        // 5 queued, of which 2 upload and 3 are still being written.
        let mut s = status(5, 0, false);
        s.queue.in_progress = 2;
        s.settling = 3;
        assert_eq!(p.summary(&s, t0).line, "Uploading 0 of 5");
        assert_eq!(p.time_left(1_000, t0), None, "no rate before an upload");
        p.on_event(&done(2_000), t0 + Duration::from_secs(1));
        assert_eq!(
            p.time_left(4_000, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(4)),
            "2 kB in the 2 s since the run began: 1 kB/s"
        );
    }

    #[test]
    fn a_bandwidth_limit_is_said_while_uploading() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        let mut limited = status(5, 0, false);
        limited.bandwidth_limit = Some(2_000_000);
        assert_eq!(
            p.summary(&limited, t0).line,
            "Uploading 0 of 5 · limited to 2 MB/s"
        );
        limited.queue.pending = 0;
        assert_eq!(p.summary(&limited, t0).line, "Up to date");
    }

    #[test]
    fn outside_the_schedule_the_line_says_until_when() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        let mut quiet = status(7, 0, false);
        quiet.waiting = Some(crate::waiting::Waiting {
            reason: crate::waiting::WaitReason::Schedule,
            holds: crate::waiting::Holds::All,
            until: Some("22:00".into()),
            held: 7,
        });
        assert_eq!(
            p.summary(&quiet, t0),
            Summary {
                state: Overall::Paused,
                line: "Quiet hours until 22:00".into()
            }
        );
    }

    #[test]
    fn on_battery_photos_upload_first_then_the_line_says_how_many_videos_wait() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        let mut battery = status(5, 0, false);
        battery.waiting = Some(crate::waiting::Waiting {
            reason: crate::waiting::WaitReason::OnBattery,
            holds: crate::waiting::Holds::Videos,
            until: None,
            held: 3,
        });
        assert_eq!(
            p.summary(&battery, t0).line,
            "Uploading 0 of 2",
            "the photos go; the held videos are not counted as uploading"
        );
        battery.queue.pending = 3;
        assert_eq!(
            p.summary(&battery, t0),
            Summary {
                state: Overall::Paused,
                line: "Waiting: on battery — 3 videos held".into()
            }
        );
    }

    #[test]
    fn when_the_queue_empties_the_next_run_counts_from_zero() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        p.on_event(&done(1), t0);
        assert_eq!(p.summary(&status(0, 0, false), t0).line, "Up to date");
        assert_eq!(
            p.summary(&status(5, 0, false), t0)
                .line
                .split(" ·")
                .next()
                .unwrap(),
            "Uploading 0 of 5"
        );
    }

    #[test]
    fn paused_and_attention_states() {
        let t0 = crate::clock::now();
        let mut p = Progress::default();
        assert_eq!(
            p.summary(&status(3, 0, true), t0),
            Summary {
                state: Overall::Paused,
                line: "Paused".into()
            }
        );
        assert_eq!(
            p.summary(&status(0, 2, false), t0).line,
            "2 files need attention"
        );
        assert_eq!(
            p.summary(&status(0, 1, false), t0).state,
            Overall::Attention
        );
        let mut held = status(5, 0, false);
        held.destinations_down.push(crate::DestDown {
            dest: "nas".into(),
            code: DestProblem::Unreachable,
            message: "is the drive mounted?".into(),
        });
        assert_eq!(
            p.summary(&held, t0),
            Summary {
                state: Overall::Attention,
                line: "Cannot reach nas".into()
            },
            "files held by a destination are not shown as uploading"
        );
    }

    #[test]
    fn rates_read_naturally() {
        assert_eq!(rate_text(18_000_000.0), "18 MB/s");
        assert_eq!(rate_text(850_000.0), "850 kB/s");
        assert_eq!(rate_text(1_500_000_000.0), "1.5 GB/s");
    }
}
