//! The states the store keeps as text, as types: each is written and read
//! through one table of names, and a name the table does not know (a store
//! written by a newer version, or damaged) is an error that names it, never
//! a silent default. See docs/ARCHITECTURE.md.

/// Defines `as_str` and the SQLite conversions of a state enum from its
/// table of names.
macro_rules! stored_as_text {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                match text {
                    $($name => Ok($ty::$variant),)+
                    other => Err(rusqlite::types::FromSqlError::Other(
                        format!(
                            "the store holds an unknown {} {other:?} (written by a newer \
                             Shoebox, or damaged: `shoebox doctor` checks it)",
                            $what
                        )
                        .into(),
                    )),
                }
            }
        }
    };
}

pub(crate) use stored_as_text;

/// How a running engine watches a folder, as the store keeps it for
/// `status` (the text the CLI shows: `ok`, `degraded: …`, `polling: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatcherMode {
    /// OS notifications.
    Live,
    /// No notifications (limit reached, watcher failed): periodic scans.
    Degraded(String),
    /// A network or FUSE file system: periodic scans by design.
    Polling(String),
}

/// The kind of a [`WatcherMode`], without its reason: what the window
/// branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatcherKind {
    Live,
    Degraded,
    Polling,
}

impl WatcherMode {
    /// The text `status` shows: `ok`, `degraded: …`, `polling: …`.
    pub fn describe(&self) -> String {
        match self {
            WatcherMode::Live => "ok".into(),
            WatcherMode::Degraded(why) => format!("degraded: {why}"),
            WatcherMode::Polling(why) => format!("polling: {why}"),
        }
    }

    pub fn kind(&self) -> WatcherKind {
        match self {
            WatcherMode::Live => WatcherKind::Live,
            WatcherMode::Degraded(_) => WatcherKind::Degraded,
            WatcherMode::Polling(_) => WatcherKind::Polling,
        }
    }

    fn parse(text: &str) -> Option<WatcherMode> {
        if text == "ok" {
            return Some(WatcherMode::Live);
        }
        let (kind, why) = text.split_once(": ")?;
        match kind {
            "degraded" => Some(WatcherMode::Degraded(why.to_string())),
            "polling" => Some(WatcherMode::Polling(why.to_string())),
            _ => None,
        }
    }
}

impl rusqlite::types::ToSql for WatcherMode {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.describe().into())
    }
}

impl rusqlite::types::FromSql for WatcherMode {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        WatcherMode::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!(
                    "the store holds an unknown watcher mode {text:?} (written by a newer \
                     Shoebox, or damaged: `shoebox doctor` checks it)"
                )
                .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::WatcherMode;
    use crate::store::{DestKind, EntryState, FileState, WatchState};
    use rusqlite::Connection;

    fn read<T: rusqlite::types::FromSql>(text: &str) -> rusqlite::Result<T> {
        Connection::open_in_memory()
            .unwrap()
            .query_row("SELECT ?1", [text], |r| r.get(0))
    }

    #[test]
    fn every_state_reads_back_as_written() {
        for s in [
            FileState::Pending,
            FileState::Uploading,
            FileState::Uploaded,
            FileState::Failed,
            FileState::Skipped,
        ] {
            assert_eq!(read::<FileState>(s.as_str()).unwrap(), s);
        }
        for s in [
            EntryState::Reserved,
            EntryState::Present,
            EntryState::Deleting,
        ] {
            assert_eq!(read::<EntryState>(s.as_str()).unwrap(), s);
        }
        for s in [WatchState::New, WatchState::Ok, WatchState::Missing] {
            assert_eq!(read::<WatchState>(s.as_str()).unwrap(), s);
        }
        for s in [
            DestKind::Local,
            DestKind::Webdav,
            DestKind::S3,
            DestKind::Sftp,
            DestKind::Immich,
        ] {
            assert_eq!(read::<DestKind>(s.as_str()).unwrap(), s);
        }
        for m in [
            WatcherMode::Live,
            WatcherMode::Degraded("raise fs.inotify.max_user_watches: 2 in use".into()),
            WatcherMode::Polling("a network file system (nfs)".into()),
        ] {
            assert_eq!(read::<WatcherMode>(&m.describe()).unwrap(), m);
        }
    }

    #[test]
    fn an_unknown_state_is_an_error_naming_it_not_a_default() {
        let e = read::<FileState>("archived").unwrap_err().to_string();
        assert!(e.contains("unknown file state \"archived\""), "{e}");
        let e = read::<EntryState>("gone").unwrap_err().to_string();
        assert!(e.contains("unknown album entry state \"gone\""), "{e}");
        let e = read::<WatchState>("paused").unwrap_err().to_string();
        assert!(e.contains("unknown watch state \"paused\""), "{e}");
        let e = read::<DestKind>("ftp").unwrap_err().to_string();
        assert!(e.contains("unknown destination kind \"ftp\""), "{e}");
        let e = read::<WatcherMode>("sleeping: why")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown watcher mode \"sleeping: why\""), "{e}");
    }
}
