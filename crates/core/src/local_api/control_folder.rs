//! The local API where no socket is served yet (Windows, until its named
//! pipe is written): a change is told by writing into the control folder,
//! which the running engine watches, and the engine's activity is kept in
//! the store's settings for `status`. Following is not available.

use crossbeam_channel::Sender;

use super::{Activity, Message};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::home::Home;
use crate::store::Store;
use crate::watcher::{FolderWatcher, Hint, watch_dir_shallow};

/// Settings key: what a running engine is doing (JSON).
const ACTIVITY_KEY: &str = "activity";

pub(crate) struct Server {
    _control: Option<FolderWatcher>,
}

impl Server {
    pub(crate) fn start(home: &Home, hints: Sender<Hint>) -> Option<Server> {
        let dir = home.control_dir();
        let _ = std::fs::create_dir_all(&dir);
        Some(Server {
            _control: watch_dir_shallow(&dir, hints, |_| Some(Hint::Control)),
        })
    }

    pub(crate) fn publish(&self, store: &Store, activity: &Activity) -> Result<()> {
        let json = serde_json::to_string(activity).expect("serialisable");
        store.set_setting(ACTIVITY_KEY, &json)
    }

    pub(crate) fn event(&self, _event: &Event) {}
}

pub(crate) fn changed(home: &Home) {
    let dir = home.control_dir();
    // Best effort: without a running engine nobody listens.
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("changed"), crate::store::now_ms().to_string());
}

pub(crate) fn activity(_home: &Home, store: &Store) -> Option<Activity> {
    let json = store.setting(ACTIVITY_KEY).ok()??;
    serde_json::from_str(&json).ok()
}

pub(crate) fn follow(_home: &Home, _recent: usize, _each: &mut dyn FnMut(Message)) -> Result<()> {
    Err(Error::Invalid(
        "following a running engine is not available on this system yet; \
         `shoebox status` shows what it does now"
            .into(),
    ))
}
