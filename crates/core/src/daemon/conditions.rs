//! What holds the running engine's uploads back: the schedule's quiet
//! hours, the battery and a metered network, as the user's rules for them
//! say; "back up now anyway"; and the rate in force. A condition that
//! holds every upload pauses the pipeline; one that holds some (videos on
//! battery, servers on a metered network) has the pipeline leave those
//! files queued. Either way uploads in flight are cancelled like a pause,
//! and go again when the condition ends. See docs/ARCHITECTURE.md.

use crate::clock;
use crate::conditions::Machine;
use crate::config::{BatteryRule, MeteredRule};
use crate::error::Result;
use crate::events::Event;
use crate::schedule::Moment;
use crate::transfer::rate::UPLOADS;
use crate::upload::Withheld;
use crate::waiting::{Holds, WaitReason, Waiting};

use super::{ANYWAY_KEY, Daemon};

/// What "back up now anyway" asks for, until the engine records which
/// conditions it lifted.
pub(crate) const ANYWAY_NOW: &str = "now";

/// The user's rules for the conditions.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rules {
    pub battery: BatteryRule,
    pub metered: MeteredRule,
}

/// The conditions that would hold uploads now, strongest first.
fn holding(quiet: Option<Moment>, machine: Machine, rules: Rules) -> Vec<Waiting> {
    let mut out = Vec::new();
    let waiting = |reason, holds, until| Waiting {
        reason,
        holds,
        until,
        held: 0,
    };
    if let Some(m) = quiet {
        let until = m.until.format("%H:%M").to_string();
        out.push(waiting(WaitReason::Schedule, Holds::All, Some(until)));
    }
    if machine.on_battery == Some(true) {
        match rules.battery {
            BatteryRule::Pause => out.push(waiting(WaitReason::OnBattery, Holds::All, None)),
            BatteryRule::PhotosOnly => {
                out.push(waiting(WaitReason::OnBattery, Holds::Videos, None))
            }
            BatteryRule::KeepGoing => {}
        }
    }
    if machine.metered == Some(true) && rules.metered == MeteredRule::Pause {
        out.push(waiting(WaitReason::Metered, Holds::Servers, None));
    }
    out.sort_by_key(|w| w.holds != Holds::All);
    out
}

/// How "back up now anyway" names a condition it lifted: quiet hours by
/// the time they end (so the next quiet hours hold again), the others by
/// reason (until they change).
fn lift_key(w: &Waiting) -> String {
    match w.reason {
        WaitReason::Schedule => w.until.clone().unwrap_or_default(),
        WaitReason::OnBattery => "on-battery".into(),
        WaitReason::Metered => "metered".into(),
    }
}

/// What the conditions hold back file by file.
fn withheld(conditions: &[Waiting]) -> Withheld {
    Withheld {
        videos: conditions.iter().any(|w| w.holds == Holds::Videos),
        servers: conditions.iter().any(|w| w.holds == Holds::Servers),
    }
}

impl Daemon<'_> {
    /// Reads the rules and "back up now anyway" from the store.
    pub(super) fn reload_conditions(&mut self) -> Result<()> {
        self.rates = (
            crate::config::bandwidth(self.store)?,
            crate::config::schedule_bandwidth(self.store)?,
        );
        self.schedule = crate::config::schedule(self.store)?;
        self.rules = Rules {
            battery: crate::config::on_battery(self.store)?,
            metered: crate::config::on_metered(self.store)?,
        };
        let anyway = self.store.setting(ANYWAY_KEY)?.unwrap_or_default();
        self.anyway_asked = anyway == ANYWAY_NOW;
        if !self.anyway_asked {
            self.anyway = anyway
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
        }
        Ok(())
    }

    /// Puts the rate in force and holds or lets go uploads as the
    /// conditions say (before the pipeline is pumped).
    pub(super) fn follow_conditions(&mut self) -> Result<()> {
        let moment = self.schedule.map(|s| s.at(clock::local_time_of_day()));
        let rate = match moment {
            Some(m) if m.limited => self.rates.1,
            _ => self.rates.0,
        };
        UPLOADS.set(rate);
        if self.limit_published != Some(rate) {
            self.limit_published = Some(rate);
            self.publish(true)?;
        }
        let machine = self.machine.as_ref().map(|m| m.now()).unwrap_or_default();
        if machine != self.machine_seen {
            self.machine_seen = machine;
            self.publish(true)?;
        }
        let mut conditions = holding(moment.filter(|m| m.quiet), machine, self.rules);
        self.lift(&conditions)?;
        conditions.retain(|w| !self.anyway.contains(&lift_key(w)));

        let hold_all = conditions.iter().any(|w| w.holds == Holds::All);
        let withheld = withheld(&conditions);
        let stricter = (hold_all && !self.hold_all) || withheld.exceeds(self.withheld);
        if stricter {
            // Uploads in flight stop like a pause: they stay queued.
            self.pipeline.set_paused(true);
            self.pipeline.cancel();
        }
        self.hold_all = hold_all;
        self.withheld = withheld;
        self.pipeline.withhold(withheld);
        self.holding = conditions;
        Ok(())
    }

    /// Publishes what waits, and tells hosts when that changes (after the
    /// pipeline was pumped, so that the files it held are counted).
    pub(super) fn publish_waiting(&mut self) -> Result<()> {
        // The count of files held is the pipeline's once it has read the
        // queue through (status counts the queue for a condition that
        // holds everything).
        let held = match self.pipeline.held() {
            Some(n) => n,
            None => self.waiting.as_ref().map_or(0, |w| w.held),
        };
        let waiting = self.holding.first().cloned().map(|w| Waiting {
            held: if w.holds == Holds::All { 0 } else { held },
            ..w
        });
        if waiting == self.waiting {
            return Ok(());
        }
        let news = waiting.as_ref().map(|w| (w.reason, w.holds))
            != self.waiting.as_ref().map(|w| (w.reason, w.holds));
        self.waiting = waiting;
        self.publish(true)?;
        if news {
            (self.emit)(&Event::UploadsWaiting {
                waiting: self.waiting.clone(),
            });
        }
        Ok(())
    }

    /// "Back up now anyway": lifts the conditions holding now; a lifted
    /// condition that no longer holds is forgotten, so it holds again the
    /// next time it comes.
    fn lift(&mut self, conditions: &[Waiting]) -> Result<()> {
        let keys: Vec<String> = conditions.iter().map(lift_key).collect();
        let asked = std::mem::take(&mut self.anyway_asked);
        let lifted: Vec<String> = if asked {
            keys
        } else {
            self.anyway
                .iter()
                .filter(|k| keys.contains(k))
                .cloned()
                .collect()
        };
        if !asked && lifted == self.anyway {
            return Ok(());
        }
        self.anyway = lifted;
        if self.anyway.is_empty() {
            self.store.delete_setting(ANYWAY_KEY)
        } else {
            self.store.set_setting(ANYWAY_KEY, &self.anyway.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn machine(on_battery: bool, metered: bool) -> Machine {
        Machine {
            on_battery: Some(on_battery),
            metered: Some(metered),
        }
    }

    fn reasons(v: &[Waiting]) -> Vec<(WaitReason, Holds)> {
        v.iter().map(|w| (w.reason, w.holds)).collect()
    }

    #[test]
    fn each_rule_holds_what_it_says() {
        let rules = Rules::default();
        assert_eq!(
            reasons(&holding(None, machine(true, false), rules)),
            [(WaitReason::OnBattery, Holds::Videos)],
            "photos only by default"
        );
        assert_eq!(
            reasons(&holding(None, machine(false, true), rules)),
            [(WaitReason::Metered, Holds::Servers)]
        );
        let pause = Rules {
            battery: BatteryRule::Pause,
            metered: MeteredRule::KeepGoing,
        };
        assert_eq!(
            reasons(&holding(None, machine(true, true), pause)),
            [(WaitReason::OnBattery, Holds::All)]
        );
        let keep = Rules {
            battery: BatteryRule::KeepGoing,
            metered: MeteredRule::KeepGoing,
        };
        assert!(holding(None, machine(true, true), keep).is_empty());
    }

    #[test]
    fn what_cannot_be_told_holds_nothing() {
        assert!(holding(None, Machine::default(), Rules::default()).is_empty());
    }

    #[test]
    fn a_condition_that_holds_everything_comes_first() {
        let quiet = Moment {
            quiet: true,
            limited: false,
            until: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        };
        let all = holding(Some(quiet), machine(true, true), Rules::default());
        assert_eq!(
            reasons(&all),
            [
                (WaitReason::Schedule, Holds::All),
                (WaitReason::OnBattery, Holds::Videos),
                (WaitReason::Metered, Holds::Servers)
            ]
        );
        assert_eq!(all[0].until.as_deref(), Some("22:00"));
        assert_eq!(
            withheld(&all),
            Withheld {
                videos: true,
                servers: true
            }
        );
        assert_eq!(lift_key(&all[0]), "22:00");
        assert_eq!(lift_key(&all[1]), "on-battery");
    }
}
