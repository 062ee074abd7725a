//! macOS: Quick Look makes the thumbnail, as Finder shows it (`qlmanage
//! -t`): HEIC, videos' poster frames, RAW and whatever else the system can
//! show. It writes `<scratch>/<file name>.png`, and is stopped after
//! [`TIME_BOUND`] (`run.rs`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use image::DynamicImage;

/// How long Quick Look may take before it is stopped.
const TIME_BOUND: Duration = Duration::from_secs(20);

pub(crate) fn make(source: &Path, _mime: &str, size: u32, scratch: &Path) -> Option<DynamicImage> {
    let what = "Quick Look (qlmanage)";
    crate::run::bounded(
        Command::new("/usr/bin/qlmanage")
            .args(["-t", "-s", &size.to_string(), "-o"])
            .arg(scratch)
            .arg(source),
        TIME_BOUND,
        what,
        source,
    )?;
    // It says nothing in its exit status: what it made, if anything, is
    // the file.
    let mut made = source.file_name()?.to_os_string();
    made.push(".png");
    crate::run::picture(&scratch.join(made), what)
}
