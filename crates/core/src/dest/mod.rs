//! Destinations: where albums are stored. A destination stores objects
//! named `<album>/<name>` and never makes a partial object visible under its
//! final name: an upload is staged, then committed.

mod local;

pub use local::LocalFolder;

use std::io::Read;
use std::sync::Arc;

use crate::error::{DestError, Error, Result};
use crate::home::Home;
use crate::store::DestRow;

/// Builds the destination object for a destination row.
pub fn open(home: &Home, row: &DestRow) -> Result<Arc<dyn Destination>> {
    match row.kind.as_str() {
        "local" => Ok(Arc::new(match &row.path {
            Some(p) => LocalFolder::new(&row.name, p.clone(), false),
            None => LocalFolder::new(&row.name, home.library_dir(), true),
        })),
        other => Err(Error::Invalid(format!(
            "destination {} has kind {other:?}, which this version of Shoebox does not know; update Shoebox",
            row.name
        ))),
    }
}

/// An upload whose bytes are written but not yet visible under the final
/// name. Dropping it without [`Staged::commit`] discards it.
pub trait Staged: Send {
    /// Makes the object visible under its final name, durably.
    fn commit(self: Box<Self>) -> Result<(), DestError>;
}

/// A place that stores albums.
pub trait Destination: Send + Sync {
    /// The destination's name, for messages.
    fn name(&self) -> &str;

    /// Checks that the destination can be used now (mounted, reachable),
    /// and removes what interrupted uploads left behind.
    fn prepare(&self) -> Result<(), DestError>;

    /// True when an object with this name exists (whether or not Shoebox
    /// put it there), so that nothing is ever overwritten by accident.
    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError>;

    /// Streams `source` into a staged object for `<album>/<name>`; returns
    /// the staged upload and the number of bytes written.
    fn stage(
        &self,
        album: &str,
        name: &str,
        source: &mut dyn Read,
    ) -> Result<(Box<dyn Staged>, u64), DestError>;

    /// Moves an object inside the destination without sending its bytes.
    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError>;

    /// Copies an object inside the destination without sending its bytes.
    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError>;

    /// Deletes an object; an object that is already gone is not an error.
    fn delete(&self, album: &str, name: &str) -> Result<(), DestError>;
}
