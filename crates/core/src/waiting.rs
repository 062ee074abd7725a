//! Why the running engine holds uploads (a condition, not a pause), as
//! `status` and the `uploads_waiting` event show it. The daemon decides;
//! this only names it. See docs/ARCHITECTURE.md.

use serde::{Deserialize, Serialize};

/// Why uploads wait, what waits, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub reason: WaitReason,
    /// What the condition holds back (the rest goes on).
    #[serde(default)]
    pub holds: Holds,
    /// The local time of day it ends (`22:00`), where that is known (quiet
    /// hours); a battery or a metered network ends when it changes.
    #[serde(default)]
    pub until: Option<String>,
    /// Files held meanwhile.
    #[serde(default)]
    pub held: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Outside the hours uploads run (`schedule`).
    Schedule,
    /// The computer runs on battery (`on-battery`).
    OnBattery,
    /// The network is metered (`on-metered`).
    Metered,
}

/// What a condition holds back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holds {
    /// Every upload.
    #[default]
    All,
    /// Videos only: photos go on (`on-battery photos-only`).
    Videos,
    /// Uploads to servers only: a local or external disk goes on (a
    /// metered network).
    Servers,
}

impl Waiting {
    /// True when it holds anything back now (a condition that holds only
    /// videos holds nothing while no video is queued).
    pub fn holds_anything(&self) -> bool {
        self.holds == Holds::All || self.held > 0
    }

    /// What the tray and the window say about it: "Quiet hours until
    /// 22:00", "Waiting: on battery — 3 videos held", "Paused: metered
    /// network".
    pub fn line(&self) -> String {
        let held = |one: &str, many: &str| match self.held {
            0 => String::new(),
            1 => format!(" — 1 {one} held"),
            n => format!(" — {n} {many} held"),
        };
        match (self.reason, self.holds) {
            (WaitReason::Schedule, _) => match &self.until {
                Some(t) => format!("Quiet hours until {t}"),
                None => "Quiet hours".to_string(),
            },
            (WaitReason::OnBattery, Holds::All) => "Paused: on battery".to_string(),
            (WaitReason::OnBattery, _) => {
                format!("Waiting: on battery{}", held("video", "videos"))
            }
            (WaitReason::Metered, Holds::All) => "Paused: metered network".to_string(),
            (WaitReason::Metered, _) => {
                format!("Paused: metered network{}", held("upload", "uploads"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(reason: WaitReason, holds: Holds, held: u64) -> Waiting {
        Waiting {
            reason,
            holds,
            until: None,
            held,
        }
    }

    #[test]
    fn each_reason_is_said_in_words() {
        let quiet = Waiting {
            until: Some("22:00".into()),
            ..waiting(WaitReason::Schedule, Holds::All, 4)
        };
        assert_eq!(quiet.line(), "Quiet hours until 22:00");
        assert_eq!(
            waiting(WaitReason::OnBattery, Holds::Videos, 3).line(),
            "Waiting: on battery — 3 videos held"
        );
        assert_eq!(
            waiting(WaitReason::OnBattery, Holds::Videos, 1).line(),
            "Waiting: on battery — 1 video held"
        );
        assert_eq!(
            waiting(WaitReason::OnBattery, Holds::All, 9).line(),
            "Paused: on battery"
        );
        assert_eq!(
            waiting(WaitReason::Metered, Holds::Servers, 0).line(),
            "Paused: metered network"
        );
        assert_eq!(
            waiting(WaitReason::Metered, Holds::Servers, 2).line(),
            "Paused: metered network — 2 uploads held"
        );
    }
}
