//! Logging for every host (CLI, tray app): `tracing` to stderr (warnings by
//! default, more with `verbose`, or `SHOEBOX_LOG`) and to a daily-rotated file
//! in `<home>/logs` (a week kept).

use crate::home::Home;
use tracing_appender::non_blocking::WorkerGuard;

/// Keeps the log file flushed; hold it for the life of the program.
pub type LogGuard = WorkerGuard;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// Keep the returned guard alive for the life of the program: it flushes
/// the log file on drop.
pub fn init(home: &Home, verbose: u8) -> Option<WorkerGuard> {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_filter(
            EnvFilter::try_from_env("SHOEBOX_LOG").unwrap_or_else(|_| EnvFilter::new(level)),
        );
    let _ = std::fs::create_dir_all(home.logs_dir());
    let (file, guard) = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("shoebox")
        .filename_suffix("log")
        .max_log_files(7)
        .build(home.logs_dir())
        .ok()
        .map(tracing_appender::non_blocking)
        .unzip();
    let file = file.map(|w| {
        fmt::layer()
            .with_writer(w)
            .with_ansi(false)
            .with_filter(EnvFilter::new("info"))
    });
    // A host that already set up logging keeps its own.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    guard
}
