//! The names on an asset-addressed destination (Immich): which asset each
//! `<album>/<name>` of the index is. The destination writes it through its
//! own connection to the store (as the multipart log does), in the same
//! step that makes a name visible, so that the ledger's entries always
//! find their assets.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::error::Result;

/// The names of one destination and the assets they are.
#[derive(Debug)]
pub struct AssetNames {
    store: Mutex<Store>,
    dest_id: i64,
}

impl AssetNames {
    /// Opens its own connection to the store at `db`.
    pub fn open(db: &Path, dest_id: i64) -> Result<AssetNames> {
        Ok(AssetNames {
            store: Mutex::new(Store::open(db)?),
            dest_id,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&store)
    }

    /// The asset `<album>/<name>` is, if the name is taken.
    pub fn asset(&self, album: &str, name: &str) -> Result<Option<String>> {
        self.with(|s| {
            s.conn
                .query_row(
                    "SELECT asset_id FROM asset_names
                     WHERE dest_id = ?1 AND album = ?2 AND name = ?3",
                    params![self.dest_id, album, name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| s.err(e))
        })
    }

    /// Makes `<album>/<name>` the asset `asset` (a new name, or an edit's
    /// new version).
    pub fn set(&self, album: &str, name: &str, asset: &str) -> Result<()> {
        self.with(|s| {
            s.exec(
                "INSERT INTO asset_names (dest_id, album, name, asset_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dest_id, album, name) DO UPDATE SET asset_id = excluded.asset_id",
                params![self.dest_id, album, name, asset],
            )
            .map(drop)
        })
    }

    /// Gives up a name.
    pub fn remove(&self, album: &str, name: &str) -> Result<()> {
        self.with(|s| {
            s.exec(
                "DELETE FROM asset_names WHERE dest_id = ?1 AND album = ?2 AND name = ?3",
                params![self.dest_id, album, name],
            )
            .map(drop)
        })
    }

    /// Moves a name, in one transaction.
    pub fn rename(&self, from: (&str, &str), to: (&str, &str), asset: &str) -> Result<()> {
        self.with(|s| {
            s.transaction(|s| {
                s.exec(
                    "DELETE FROM asset_names WHERE dest_id = ?1 AND album = ?2 AND name = ?3",
                    params![self.dest_id, from.0, from.1],
                )?;
                s.exec(
                    "INSERT INTO asset_names (dest_id, album, name, asset_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (dest_id, album, name) DO UPDATE SET asset_id = excluded.asset_id",
                    params![self.dest_id, to.0, to.1, asset],
                )
                .map(drop)
            })
        })
    }

    /// Every name of `asset`, as (album, name).
    pub fn names_of(&self, asset: &str) -> Result<Vec<(String, String)>> {
        self.with(|s| {
            let mut st = s
                .conn
                .prepare_cached(
                    "SELECT album, name FROM asset_names WHERE dest_id = ?1 AND asset_id = ?2",
                )
                .map_err(|e| s.err(e))?;
            st.query_map(params![self.dest_id, asset], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(|e| s.err(e))
        })
    }

    /// Every name in `album` and its asset.
    pub fn names_in(&self, album: &str) -> Result<Vec<(String, String)>> {
        self.with(|s| {
            let mut st = s
                .conn
                .prepare_cached(
                    "SELECT name, asset_id FROM asset_names WHERE dest_id = ?1 AND album = ?2",
                )
                .map_err(|e| s.err(e))?;
            st.query_map(params![self.dest_id, album], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(|e| s.err(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (tempfile::TempDir, AssetNames) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shoebox.db");
        let store = Store::open(&db).unwrap();
        store
            .insert_destination("im", crate::store::DestKind::Immich, None)
            .unwrap();
        let id = store.destination_by_name("im").unwrap().unwrap().id;
        (dir, AssetNames::open(&db, id).unwrap())
    }

    #[test]
    fn a_name_maps_to_its_asset_until_it_moves_or_goes() {
        let (_dir, n) = names();
        n.set("Trip", "a.jpg", "A1").unwrap();
        n.set("Trip", "b.jpg", "A1").unwrap();
        n.set("Home", "a.jpg", "A1").unwrap();
        assert_eq!(n.asset("Trip", "a.jpg").unwrap().as_deref(), Some("A1"));
        assert_eq!(n.names_of("A1").unwrap().len(), 3);

        n.set("Trip", "a.jpg", "A2").unwrap();
        assert_eq!(n.asset("Trip", "a.jpg").unwrap().as_deref(), Some("A2"));

        n.rename(("Trip", "a.jpg"), ("Home", "c.jpg"), "A2")
            .unwrap();
        assert_eq!(n.asset("Trip", "a.jpg").unwrap(), None);
        let mut home = n.names_in("Home").unwrap();
        home.sort();
        assert_eq!(
            home,
            [
                ("a.jpg".to_string(), "A1".to_string()),
                ("c.jpg".to_string(), "A2".to_string())
            ]
        );

        n.remove("Home", "a.jpg").unwrap();
        n.remove("Trip", "b.jpg").unwrap();
        assert!(n.names_of("A1").unwrap().is_empty());
    }
}
