//! Running a system thumbnailer program (the desktop's thumbnailers, Quick
//! Look): with no input or output of its own, stopped after its time bound,
//! then the picture it wrote read back.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use image::{DynamicImage, ImageReader};
use wait_timeout::ChildExt;

/// Runs `command` (`what`, in the log) on `source`; its exit status, or
/// `None` (logged) if it could not run or took more than `bound` and was
/// stopped.
pub(crate) fn bounded(
    command: &mut Command,
    bound: Duration,
    what: &str,
    source: &Path,
) -> Option<ExitStatus> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .inspect_err(|e| tracing::warn!("cannot run {what}: {e}"))
        .ok()?;
    match child.wait_timeout(bound) {
        Ok(Some(status)) => Some(status),
        Ok(None) => {
            tracing::warn!(
                "{what} took more than {}s for {}; stopped",
                bound.as_secs(),
                source.display()
            );
            let _ = child.kill();
            let _ = child.wait();
            None
        }
        Err(e) => {
            tracing::warn!("cannot wait for {what}: {e}");
            None
        }
    }
}

/// The picture a thumbnailer wrote at `path`, in whatever format it chose.
pub(crate) fn picture(path: &Path, what: &str) -> Option<DynamicImage> {
    ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .decode()
        .inspect_err(|e| tracing::debug!("{what} wrote no picture: {e}"))
        .ok()
}
