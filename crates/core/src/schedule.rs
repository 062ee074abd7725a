//! The upload schedule (`shoebox config set schedule 22:00-07:00`): the
//! hours of the day, in local time, when the running engine uploads, or
//! (`pause 09:00-17:00`) when it does not, or (`limit 09:00-17:00`) when it
//! uploads at another rate (`schedule-bandwidth`). Pure: the engine asks it
//! with the local time of day, so tests give it theirs. See
//! docs/ARCHITECTURE.md.

use chrono::{NaiveTime, Timelike};

use crate::error::{Error, Result};

/// What the hours of the window mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inside {
    /// Uploads run inside the window only.
    Run,
    /// Uploads pause inside the window.
    Pause,
    /// Uploads run at the schedule's own rate inside the window.
    Limit,
}

/// A daily window; it may pass midnight (`22:00-07:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub inside: Inside,
}

/// Whether uploads wait at some moment, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moment {
    pub quiet: bool,
    /// Uploads run at the schedule's rate (inside a `limit` window).
    pub limited: bool,
    /// The next time of day this changes.
    pub until: NaiveTime,
}

impl Schedule {
    /// `22:00-07:00`, `pause 09:00-17:00`, or `off` (`None`).
    pub(crate) fn parse(text: &str) -> Result<Option<Schedule>> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || {
            Error::Invalid(format!(
                "{text:?} is not a schedule: write the hours uploads run, such as 22:00-07:00, \
                 the hours they pause, such as \"pause 09:00-17:00\", the hours they run at \
                 schedule-bandwidth, such as \"limit 09:00-17:00\", or off"
            ))
        };
        let (inside, hours) = match t.split_once(char::is_whitespace) {
            Some((word, rest)) if word.eq_ignore_ascii_case("pause") => (Inside::Pause, rest),
            Some((word, rest)) if word.eq_ignore_ascii_case("run") => (Inside::Run, rest),
            Some((word, rest)) if word.eq_ignore_ascii_case("limit") => (Inside::Limit, rest),
            Some(_) => return Err(bad()),
            None => (Inside::Run, t),
        };
        let (start, end) = hours.trim().split_once('-').ok_or_else(bad)?;
        let time = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(Error::Invalid(format!(
                "{text:?} starts and ends at the same time; give a window such as 22:00-07:00, \
                 or off for no schedule"
            )));
        }
        Ok(Some(Schedule { start, end, inside }))
    }

    /// As it is kept and shown: `22:00-07:00`, `pause 09:00-17:00`.
    pub(crate) fn text(&self) -> String {
        let hours = format!(
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        );
        match self.inside {
            Inside::Run => hours,
            Inside::Pause => format!("pause {hours}"),
            Inside::Limit => format!("limit {hours}"),
        }
    }

    fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether uploads wait at the time of day `now`, and until when.
    pub(crate) fn at(&self, now: NaiveTime) -> Moment {
        let inside = self.contains(now);
        Moment {
            quiet: match self.inside {
                Inside::Run => !inside,
                Inside::Pause => inside,
                Inside::Limit => false,
            },
            limited: inside && self.inside == Inside::Limit,
            until: if inside { self.end } else { self.start },
        }
    }
}

/// Seconds from the time of day `now` to `until` (the next day if it is
/// not later today), at least one.
pub(crate) fn secs_until(now: NaiveTime, until: NaiveTime) -> u64 {
    let (now, until) = (
        i64::from(now.num_seconds_from_midnight()),
        i64::from(until.num_seconds_from_midnight()),
    );
    let secs = (until - now).rem_euclid(24 * 3600);
    secs.max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn a_night_window_runs_uploads_at_night_only() {
        let s = Schedule::parse("22:00-07:00").unwrap().unwrap();
        assert_eq!(s.text(), "22:00-07:00");
        for (now, quiet, until) in [
            ("21:59", true, "22:00"),
            ("22:00", false, "07:00"),
            ("03:00", false, "07:00"),
            ("06:59", false, "07:00"),
            ("07:00", true, "22:00"),
            ("12:00", true, "22:00"),
        ] {
            assert_eq!(
                s.at(t(now)),
                Moment {
                    quiet,
                    limited: false,
                    until: t(until)
                },
                "at {now}"
            );
        }
    }

    #[test]
    fn a_pause_window_holds_uploads_inside_it() {
        let s = Schedule::parse(" pause 09:00 - 17:30 ").unwrap().unwrap();
        assert_eq!(s.text(), "pause 09:00-17:30");
        let at = |now| (s.at(t(now)).quiet, s.at(t(now)).until);
        assert_eq!(at("10:00"), (true, t("17:30")));
        assert_eq!(at("17:30"), (false, t("09:00")));
        assert_eq!(at("08:00"), (false, t("09:00")));
        assert!(!s.at(t("10:00")).limited);
    }

    #[test]
    fn a_limit_window_slows_uploads_inside_it_and_never_holds_them() {
        let s = Schedule::parse("limit 09:00-17:00").unwrap().unwrap();
        assert_eq!(s.text(), "limit 09:00-17:00");
        let inside = s.at(t("12:00"));
        assert!(inside.limited && !inside.quiet);
        assert_eq!(inside.until, t("17:00"));
        let outside = s.at(t("20:00"));
        assert!(!outside.limited && !outside.quiet);
        assert_eq!(outside.until, t("09:00"));
    }

    #[test]
    fn what_is_not_a_schedule_is_refused_with_how_to_write_one() {
        assert_eq!(Schedule::parse("off").unwrap(), None);
        for bad in [
            "",
            "22-07",
            "22:00",
            "nightly 22:00-07:00",
            "25:00-07:00",
            "22:00-07:00-08:00",
        ] {
            let e = Schedule::parse(bad).unwrap_err().to_string();
            assert!(e.contains("22:00-07:00"), "{bad}: {e}");
        }
        let e = Schedule::parse("08:00-08:00").unwrap_err().to_string();
        assert!(e.contains("same time"), "{e}");
    }

    #[test]
    fn the_wait_to_the_next_change_passes_midnight() {
        assert_eq!(secs_until(t("21:00"), t("22:00")), 3600);
        assert_eq!(secs_until(t("23:00"), t("07:00")), 8 * 3600);
        assert_eq!(secs_until(t("07:00"), t("07:00")), 1);
    }
}
