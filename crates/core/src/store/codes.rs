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

#[cfg(test)]
mod tests {
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
        for s in [DestKind::Local, DestKind::Webdav, DestKind::S3] {
            assert_eq!(read::<DestKind>(s.as_str()).unwrap(), s);
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
    }
}
