//! macOS: Quick Look makes the thumbnail, as Finder shows it (`qlmanage
//! -t`): HEIC, videos' poster frames, RAW and whatever else the system can
//! show. It writes `<scratch>/<file name>.png`, and is killed after
//! [`TIME_BOUND`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use image::{DynamicImage, ImageReader};
use wait_timeout::ChildExt;

/// How long Quick Look may take before it is stopped.
const TIME_BOUND: Duration = Duration::from_secs(20);

pub(crate) fn make(source: &Path, _mime: &str, size: u32, scratch: &Path) -> Option<DynamicImage> {
    let mut child = Command::new("/usr/bin/qlmanage")
        .args(["-t", "-s", &size.to_string(), "-o"])
        .arg(scratch)
        .arg(source)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .inspect_err(|e| tracing::warn!("cannot run Quick Look (qlmanage): {e}"))
        .ok()?;
    match child.wait_timeout(TIME_BOUND) {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::warn!(
                "Quick Look took more than {}s for {}; stopped",
                TIME_BOUND.as_secs(),
                source.display()
            );
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Err(e) => {
            tracing::warn!("cannot wait for Quick Look: {e}");
            return None;
        }
    }
    // It says nothing in its exit status: what it made, if anything, is
    // the file.
    let mut made = source.file_name()?.to_os_string();
    made.push(".png");
    ImageReader::open(scratch.join(made))
        .ok()?
        .with_guessed_format()
        .ok()?
        .decode()
        .inspect_err(|e| tracing::debug!("Quick Look made no picture of {}: {e}", source.display()))
        .ok()
}
