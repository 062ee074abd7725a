//! The running engine's local API: how other processes of the same user
//! (the CLI while `shoebox run` or the tray app runs, tests) reach the
//! engine. The process that runs the engine serves it; `Engine` is its
//! client.
//!
//! It carries requests and their answers (the configuration in the store
//! changed: reload it; what are you doing now?) and a stream of what the
//! engine does (`shoebox status --follow`). The store stays the one place
//! of the configuration and the index, and is still read when no engine
//! runs; only what lives in the running engine (its activity and its
//! events) and the nudge to reload travel here.
//!
//! The wire: one JSON object per line each way. A client sends one
//! [`Request`]; the engine answers with one [`Message`], or, for
//! [`Request::Follow`], with the activity now and then a message for each
//! event and each new activity, until the engine stops.
//!
//! The transport (`socket.rs`, over the `interprocess` crate) is a local
//! socket: a Unix socket in the data folder on Linux and macOS, readable by
//! its owner only and checked by the peer's user id; a named pipe on
//! Windows, whose security descriptor admits its owner only.

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::waiting::Waiting;

mod socket;

pub(crate) use socket::{Server, activity, changed, follow};

/// What the running engine does now, as it publishes it for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub uploading: Vec<crate::upload::Uploading>,
    /// Files waiting for their content to stop changing.
    pub settling: u64,
    /// Destinations that cannot be used now.
    #[serde(default)]
    pub destinations_down: Vec<crate::DestDown>,
    /// Why uploads wait, when a condition holds them (not a pause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The upload limit in force now (bytes per second): `bandwidth`, or
    /// `schedule-bandwidth` inside a `limit` schedule's hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<u64>,
    /// The computer's conditions, where they are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_battery: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metered: Option<bool>,
}

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// The configuration in the store changed: read it again.
    Changed,
    /// What the engine is doing now.
    Activity,
    /// The last `recent` uploads (as `file_done` events, oldest first),
    /// the activity now, then every event and every new activity.
    Follow {
        #[serde(default)]
        recent: usize,
    },
}

/// What the engine answers, one per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Message {
    Ok,
    Activity(Activity),
    Event(Event),
    /// The request was not understood, or the engine cannot serve it.
    Error {
        code: String,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_messages_read_back_as_written() {
        let line = serde_json::to_string(&Request::Follow { recent: 5 }).unwrap();
        assert_eq!(line, r#"{"op":"follow","recent":5}"#);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"follow"}"#).unwrap(),
            Request::Follow { recent: 0 }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"changed"}"#).unwrap(),
            Request::Changed
        );
        let event = Message::Event(Event::FileRemoved {
            album: "Trip".into(),
            name: "a.jpg".into(),
        });
        let text = serde_json::to_string(&event).unwrap();
        match serde_json::from_str::<Message>(&text).unwrap() {
            Message::Event(Event::FileRemoved { album, name }) => {
                assert_eq!((album.as_str(), name.as_str()), ("Trip", "a.jpg"))
            }
            other => panic!("read back as {other:?}"),
        }
    }
}
