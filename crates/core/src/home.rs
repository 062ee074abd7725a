//! The data directory ("home"): where the store, the engine lock, the logs
//! and the embedded library live. The desktop app and the CLI resolve the
//! same one; `--home` / `SHOEBOX_HOME` override it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The app identifier; the default home is `<platform data dir>/<this>`,
/// which is what Tauri's `app_data_dir()` gives for the desktop app.
pub const APP_IDENTIFIER: &str = "app.shoebox";

/// Name of the destination that always exists: the embedded library.
pub const LIBRARY_DEST: &str = "library";

#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The platform's default data directory for Shoebox.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join(APP_IDENTIFIER))
    }

    /// Opens `dir` (or the default) as the home, creating it if needed.
    pub fn open(dir: Option<PathBuf>) -> Result<Home> {
        let dir = match dir {
            Some(d) => d,
            None => Home::default_dir().ok_or_else(|| {
                Error::Invalid(
                    "cannot find this system's data folder; pass --home DIR or set SHOEBOX_HOME"
                        .into(),
                )
            })?,
        };
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the data folder", &dir, e))?;
        let dir = fs::canonicalize(&dir)
            .map_err(|e| Error::io("cannot open the data folder", &dir, e))?;
        Ok(Home { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("shoebox.db")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("engine.lock")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Where the running engine serves its local API (`local_api`): a
    /// socket only this user can open. (On Windows it is a named pipe.)
    #[cfg(unix)]
    pub fn api_path(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    /// This data folder's engine id: random, made on first use and kept in
    /// `engine-id`. It names the engine's own staging area on shared
    /// destinations, so that two computers (or `dest test`) never clean up
    /// each other's uploads in progress.
    pub fn engine_id(&self) -> Result<String> {
        let path = self.dir.join("engine-id");
        let read = || {
            fs::read_to_string(&path).ok().and_then(|id| {
                let id = id.trim();
                (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| id.to_string())
            })
        };
        if let Some(id) = read() {
            return Ok(id);
        }
        let id = crate::platform::random_hex(8);
        // Made by whoever comes first (threads and processes may race): a
        // private temp file, renamed only where none is yet (or over a
        // damaged one).
        let temp = self.dir.join(format!("engine-id.{id}.new"));
        let damaged = path.exists();
        let made = fs::write(&temp, format!("{id}\n")).and_then(|()| {
            if damaged {
                fs::rename(&temp, &path)
            } else {
                crate::platform::rename_no_replace(&temp, &path)
            }
        });
        let _ = fs::remove_file(&temp);
        match made {
            Ok(()) => Ok(id),
            Err(e) => read().ok_or_else(|| Error::io("cannot write the engine id in", &path, e)),
        }
    }

    /// Where the embedded default destination keeps its albums.
    pub fn library_dir(&self) -> PathBuf {
        self.dir.join("Library")
    }
}
