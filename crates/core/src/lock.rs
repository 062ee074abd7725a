//! One engine per data directory: an OS file lock on `engine.lock`, released
//! by the OS when the process dies (so a crash never leaves a stale lock).
//! The holder writes who it is beside it so a second engine can say so.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::home::Home;

#[derive(Debug)]
pub struct EngineLock {
    _file: File,
    holder_path: PathBuf,
}

impl EngineLock {
    /// Takes the lock for `what` (e.g. "shoebox sync"), or says who holds it.
    pub fn acquire(home: &Home, what: &str) -> Result<EngineLock> {
        let path = home.lock_path();
        let holder_path = path.with_extension("holder");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open the engine lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&holder_path)
                    .ok()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "an unknown process".into());
                return Err(Error::Locked {
                    home: home.dir().to_path_buf(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io("cannot lock", &path, e));
            }
        }
        let since = humantime_now();
        let text = format!(
            "{what} (pid {}, on {}, since {since})",
            std::process::id(),
            gethostname::gethostname().to_string_lossy()
        );
        // Best effort: the lock itself is what counts.
        if let Ok(mut f) = File::create(&holder_path) {
            let _ = f.write_all(text.as_bytes());
        }
        Ok(EngineLock {
            _file: file,
            holder_path,
        })
    }
}

/// Who holds the engine lock of `home`, if anyone (without taking it).
pub fn holder(home: &Home) -> Option<String> {
    let file = OpenOptions::new().write(true).open(home.lock_path()).ok()?;
    match file.try_lock() {
        Ok(()) => None, // free; released when `file` drops
        Err(_) => Some(
            fs::read_to_string(home.lock_path().with_extension("holder"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "an unknown process".into()),
        ),
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.holder_path);
    }
}

fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(crate::clock::wall()).to_string()
}
