//! Why the running engine holds uploads (a condition, not a pause), as
//! `status` and the `uploads_waiting` event show it. The daemon decides;
//! this only names it. See docs/ARCHITECTURE.md.

use serde::{Deserialize, Serialize};

/// Why uploads wait, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// `schedule`: outside the hours uploads run.
    pub reason: WaitReason,
    /// The local time of day it ends (`22:00`).
    pub until: String,
    /// Files held meanwhile (filled in by `status`).
    #[serde(default)]
    pub held: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    Schedule,
}
