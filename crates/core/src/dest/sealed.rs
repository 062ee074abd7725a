//! An encrypted destination: any destination, with every object an age
//! file (`seal.rs`) stored as `<album>/<name>.age`. It wraps the real
//! destination and translates: names gain the suffix, lengths become the
//! age file's, uploads are encoded as they stream out, and what is read
//! back is decoded, so the upload path, `verify` and `restore` see content
//! exactly as for a plain destination. Renames and copies stay
//! server-side: the object's bytes do not depend on its name.

use std::io::Read;
use std::sync::Arc;

use super::{Capabilities, Check, Destination, Listed, Marker, Staged, StoredBytes, Upload};
use crate::error::DestError;
use crate::seal::{AgeKey, SUFFIX, plain_len, sealed_len};

pub struct Sealed {
    inner: Arc<dyn Destination>,
    key: AgeKey,
}

impl Sealed {
    pub fn new(inner: Arc<dyn Destination>, key: AgeKey) -> Sealed {
        Sealed { inner, key }
    }
}

/// The stored object's name for a file's name.
fn stored(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

/// A file's name for a stored object's name; `None` for an object that is
/// not one of ours (no suffix).
fn unsealed(name: &str) -> Option<&str> {
    name.strip_suffix(SUFFIX).filter(|n| !n.is_empty())
}

impl Destination for Sealed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn reach(&self) -> Result<(), DestError> {
        self.inner.reach()
    }

    fn prepare(&self) -> Result<(), DestError> {
        self.inner.prepare()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn local_root(&self) -> Option<&std::path::Path> {
        self.inner.local_root()
    }

    fn names_lost(&self) -> Result<Vec<(String, String)>, DestError> {
        Ok(self
            .inner
            .names_lost()?
            .into_iter()
            .filter_map(|(album, name)| Some((album, unsealed(&name)?.to_string())))
            .collect())
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        Ok(self.inner.list_album(album)?.map(|objects| {
            objects
                .into_iter()
                .filter_map(|o| {
                    Some(Listed {
                        name: unsealed(&o.name)?.to_string(),
                        // A length no age file of ours has: shown as is,
                        // so that `verify` calls it damaged.
                        len: plain_len(o.len).unwrap_or(o.len),
                        modified: o.modified,
                    })
                })
                .collect()
        }))
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        self.inner.albums()
    }

    fn stored_modified(
        &self,
        album: &str,
        name: &str,
    ) -> Result<Option<std::time::SystemTime>, DestError> {
        self.inner.stored_modified(album, &stored(name))
    }

    fn marker(&self) -> Result<Marker, DestError> {
        self.inner.marker()
    }

    fn write_marker(&self, id: &str) -> Result<String, DestError> {
        self.inner.write_marker(id)
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        self.inner.exists(album, &stored(name))
    }

    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<StoredBytes>, DestError> {
        let Some(sealed) = self
            .inner
            .read_back(album, &stored(name), sealed_len(len))?
        else {
            return Ok(None);
        };
        match self.key.open(sealed) {
            Ok(plain) => Ok(Some(Box::new(plain))),
            // Not an age file for this key: it reads as what it is.
            Err(e) => Ok(Some(Box::new(Unreadable(Some(e))))),
        }
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let name = stored(upload.name);
        let len = sealed_len(upload.len);
        let mut sealer = self.key.sealer(source, upload.hash, upload.len);
        let outer = Upload {
            name: &name,
            len,
            encoded: true,
            ..*upload
        };
        let (staged, written) = self.inner.stage(&outer, &mut sealer)?;
        // The caller compares what it handed over (content) with what the
        // destination took: all of it, or (never equal) nothing proven.
        let taken = if written == sealer.emitted() && written == len {
            sealer.consumed()
        } else {
            u64::MAX
        };
        Ok((staged, taken))
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.inner
            .rename((from.0, &stored(from.1)), (to.0, &stored(to.1)))
    }

    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.inner
            .copy((from.0, &stored(from.1)), (to.0, &stored(to.1)))
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        self.inner.delete(album, &stored(name))
    }

    fn set_modified(
        &self,
        album: &str,
        name: &str,
        t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        self.inner.set_modified(album, &stored(name), t)
    }

    fn check(&self) -> Vec<Check> {
        let mut checks = self.inner.check();
        checks.push(Check::new(
            "encryption",
            Ok(format!("age, to the key {}", self.key.recipient())),
        ));
        checks
    }
}

/// An object that does not decrypt: reading it fails with the reason.
struct Unreadable(Option<std::io::Error>);

impl Read for Unreadable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "it does not decrypt")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::LocalFolder;

    #[test]
    fn objects_are_age_files_named_with_the_suffix_and_read_back_as_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(LocalFolder::new(
            "lib",
            dir.path().to_path_buf(),
            true,
            "e1",
        ));
        let sealed = Sealed::new(inner, AgeKey::generate());
        sealed.prepare().unwrap();
        let content = b"a photo's bytes".repeat(10_000);
        let hash = *blake3::hash(&content).as_bytes();
        let upload = Upload {
            album: "Trip",
            name: "IMG_1.JPG",
            len: content.len() as u64,
            hash: &hash,
            overwrite: false,
            modified: None,
            encoded: false,
        };
        let (staged, taken) = sealed.stage(&upload, &mut &content[..]).unwrap();
        assert_eq!(taken, content.len() as u64);
        staged.commit().unwrap();
        let on_disk = std::fs::read(dir.path().join("Trip/IMG_1.JPG.age")).unwrap();
        assert_eq!(on_disk.len() as u64, sealed_len(content.len() as u64));
        assert!(on_disk.starts_with(b"age-encryption.org/v1\n"));
        assert!(sealed.exists("Trip", "IMG_1.JPG").unwrap());
        let listed = sealed.list_album("Trip").unwrap().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].name.as_str(), listed[0].len),
            ("IMG_1.JPG", content.len() as u64)
        );
        assert!(
            crate::dest::holds(&sealed, "Trip", "IMG_1.JPG", content.len() as u64, &hash).unwrap()
        );
        // A flipped bit is other content, not a failure of the destination.
        let mut damaged = on_disk.clone();
        damaged[300] ^= 1;
        std::fs::write(dir.path().join("Trip/IMG_1.JPG.age"), damaged).unwrap();
        assert!(
            !crate::dest::holds(&sealed, "Trip", "IMG_1.JPG", content.len() as u64, &hash).unwrap()
        );
    }
}
