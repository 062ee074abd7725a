//! The tray's shell for the engine's host (`shoebox-host`): the host runs
//! or follows the engine; this draws its state in the tray and shows its
//! notifications.

use std::sync::Arc;

use shoebox_core::Home;
use shoebox_host::{Host, Role, Shell, Shown};

struct Tray {
    show: fn(Shown),
}

impl Shell for Tray {
    fn show(&self, _host: &Host, shown: Shown) {
        (self.show)(shown);
    }

    fn notify(&self, title: &str, body: &str) {
        crate::notify::tell(title, body);
    }
}

/// Starts hosting `home`'s engine for the tray, which `show` draws.
pub fn start(home: Home, show: fn(Shown)) -> shoebox_core::Result<Arc<Host>> {
    Host::start(home, Role::RunOrFollow, Arc::new(Tray { show }))
}
