//! An encrypted destination: any destination, with every object an age
//! file (`seal/`) stored as `<album>/<name>.age`, or, with hidden names,
//! as `<album token>/<name token>.age` (`seal/names.rs`). It wraps the
//! real destination and translates: names gain the suffix (or become
//! tokens), lengths become the age file's, uploads are encoded as they
//! stream out, and what is read back is decoded, so the upload path,
//! `verify` and `restore` see content and names exactly as for a plain
//! destination. Renames and copies stay server-side: an object's bytes do
//! not depend on its name. With hidden names it also keeps the manifest, an
//! age file listing every name with its token, for a recovery with the
//! stock `age` tool alone.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    Capabilities, Check, Destination, Listed, Marker, PassEnd, ReadBack, Staged, StoredBytes,
    Upload,
};
use crate::error::DestError;
use crate::seal::{AgeKey, NameKey, SUFFIX, plain_len, sealed_len};

/// Where the manifest of hidden names is kept: an album of its own name,
/// which no token can take.
pub const MANIFEST_ALBUM: &str = ".shoebox-names";
const MANIFEST_NAME: &str = "manifest.age";
/// While an engine runs, the manifest is written again at most this often
/// while names change (and always when it stops).
const MANIFEST_EVERY: Duration = Duration::from_secs(600);

pub struct Sealed {
    inner: Arc<dyn Destination>,
    key: AgeKey,
    /// Set when names are hidden.
    names: Option<NameKey>,
    manifest: Mutex<Manifest>,
}

/// When the manifest was written, and whether names changed since.
#[derive(Default)]
struct Manifest {
    changed: bool,
    written: Option<Instant>,
}

impl Sealed {
    pub fn new(inner: Arc<dyn Destination>, key: AgeKey, hide_names: bool) -> Sealed {
        let names = hide_names.then(|| key.names());
        Sealed {
            inner,
            key,
            names,
            manifest: Mutex::new(Manifest::default()),
        }
    }

    fn too_long(&self, what: &str, max: usize) -> DestError {
        DestError::NameTooLong {
            name: self.inner.name().to_string(),
            object: what.to_string(),
            max,
        }
    }

    /// The stored name of an album.
    fn album(&self, album: &str) -> Result<String, DestError> {
        match &self.names {
            None => Ok(album.to_string()),
            Some(k) => k.album(album).map_err(|e| self.too_long(album, e.max)),
        }
    }

    /// The stored album and object name of a file.
    fn stored(&self, album: &str, name: &str) -> Result<(String, String), DestError> {
        match &self.names {
            None => Ok((album.to_string(), format!("{name}{SUFFIX}"))),
            Some(k) => Ok((
                self.album(album)?,
                k.file(album, name)
                    .map_err(|e| self.too_long(&format!("{album}/{name}"), e.max))?,
            )),
        }
    }

    /// A file's name from its stored name in `album`; `None` for an object
    /// that is not one of ours.
    fn unsealed(&self, album: &str, stored: &str) -> Option<String> {
        match &self.names {
            None => stored
                .strip_suffix(SUFFIX)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            Some(k) => k.file_name(album, stored),
        }
    }

    fn names_changed(&self) {
        if self.names.is_some() {
            self.manifest.lock().expect("lock").changed = true;
        }
    }

    /// Encodes `source` into a staged object at the stored place.
    fn stage_at(
        &self,
        (album, name): (&str, &str),
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let len = sealed_len(upload.len);
        let mut sealer = self.key.sealer(source, upload.hash, upload.len);
        let outer = Upload {
            album,
            name,
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

    /// Writes the manifest: every album's files, by name, with their
    /// stored names, as an age file for the same key.
    fn write_manifest(&self, names: &NameKey) -> Result<(), DestError> {
        let mut lines = vec![
            "# Shoebox: the names of the files of this encrypted backup. Each line is".to_string(),
            "# album/file<TAB>the stored album token/file token.age".to_string(),
            "# (a backslash, tab or line break in a name is written \\\\, \\t or \\n)".to_string(),
        ];
        for album_token in self.inner.albums()?.unwrap_or_default() {
            let Some(album) = names.album_name(&album_token) else {
                continue;
            };
            for o in self.inner.list_album(&album_token)?.unwrap_or_default() {
                if let Some(name) = names.file_name(&album, &o.name) {
                    let path = escape_line(&format!("{album}/{name}"));
                    lines.push(format!("{path}\t{album_token}/{}", o.name));
                }
            }
        }
        let text = lines.join("\n") + "\n";
        let hash = *blake3::hash(text.as_bytes()).as_bytes();
        let upload = Upload {
            album: MANIFEST_ALBUM,
            name: MANIFEST_NAME,
            len: text.len() as u64,
            hash: &hash,
            overwrite: true,
            modified: None,
            taken: None,
            source: None,
            encoded: false,
        };
        let (staged, _) = self.stage_at(
            (MANIFEST_ALBUM, MANIFEST_NAME),
            &upload,
            &mut text.as_bytes(),
        )?;
        staged.commit()
    }
}

/// A name as the manifest writes it: one line, with no tab of its own.
fn escape_line(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
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
            .filter_map(|(album, stored)| {
                let album = match &self.names {
                    None => album,
                    Some(k) => k.album_name(&album)?,
                };
                let name = self.unsealed(&album, &stored)?;
                Some((album, name))
            })
            .collect())
    }

    fn after_pass(&self, when: PassEnd) -> Result<(), DestError> {
        self.inner.after_pass(when)?;
        let Some(names) = &self.names else {
            return Ok(());
        };
        {
            let m = self.manifest.lock().expect("lock");
            let due = when == PassEnd::Stopping
                || m.written
                    .is_none_or(|at| crate::clock::now().duration_since(at) >= MANIFEST_EVERY);
            if !m.changed || !due {
                return Ok(());
            }
        }
        self.write_manifest(names)?;
        let mut m = self.manifest.lock().expect("lock");
        m.changed = false;
        m.written = Some(crate::clock::now());
        Ok(())
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        Ok(self.inner.list_album(&self.album(album)?)?.map(|objects| {
            objects
                .into_iter()
                .filter_map(|o| {
                    Some(Listed {
                        name: self.unsealed(album, &o.name)?,
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
        let albums = self.inner.albums()?;
        Ok(match &self.names {
            None => albums,
            Some(k) => albums.map(|all| all.iter().filter_map(|a| k.album_name(a)).collect()),
        })
    }

    fn stored_modified(
        &self,
        album: &str,
        name: &str,
    ) -> Result<Option<std::time::SystemTime>, DestError> {
        let (album, name) = self.stored(album, name)?;
        self.inner.stored_modified(&album, &name)
    }

    fn marker(&self) -> Result<Marker, DestError> {
        self.inner.marker()
    }

    fn write_marker(&self, id: &str) -> Result<String, DestError> {
        self.inner.write_marker(id)
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        let (album, name) = self.stored(album, name)?;
        self.inner.exists(&album, &name)
    }

    fn read_back(&self, album: &str, name: &str, len: u64) -> Result<Option<ReadBack>, DestError> {
        let (album, name) = self.stored(album, name)?;
        let Some(sealed) = self.inner.read_back(&album, &name, sealed_len(len))? else {
            return Ok(None);
        };
        let bytes: StoredBytes = match self.key.open(sealed.bytes) {
            Ok(plain) => Box::new(plain),
            // Not an age file for this key: it reads as what it is.
            Err(e) => Box::new(Unreadable(Some(e))),
        };
        Ok(Some(ReadBack {
            bytes,
            modified: sealed.modified,
        }))
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let (album, name) = self.stored(upload.album, upload.name)?;
        self.names_changed();
        self.stage_at((&album, &name), upload, source)
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let (from, to) = (self.stored(from.0, from.1)?, self.stored(to.0, to.1)?);
        self.names_changed();
        self.inner.rename((&from.0, &from.1), (&to.0, &to.1))
    }

    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let (from, to) = (self.stored(from.0, from.1)?, self.stored(to.0, to.1)?);
        self.names_changed();
        self.inner.copy((&from.0, &from.1), (&to.0, &to.1))
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        let (album, name) = self.stored(album, name)?;
        self.names_changed();
        self.inner.delete(&album, &name)
    }

    fn set_modified(
        &self,
        album: &str,
        name: &str,
        t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        let (album, name) = self.stored(album, name)?;
        self.inner.set_modified(&album, &name, t)
    }

    fn check(&self) -> Vec<Check> {
        let mut checks = self.inner.check();
        checks.push(Check::new(
            "encryption",
            Ok(format!(
                "age, to the key {}{}",
                self.key.recipient(),
                if self.names.is_some() {
                    "; names hidden"
                } else {
                    ""
                }
            )),
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
        let sealed = in_folder(dir.path(), AgeKey::generate(), false);
        let content = b"a photo's bytes".repeat(10_000);
        let hash = *blake3::hash(&content).as_bytes();
        let upload = Upload {
            album: "Trip",
            name: "IMG_1.JPG",
            len: content.len() as u64,
            hash: &hash,
            overwrite: false,
            modified: None,
            taken: None,
            source: None,
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

    /// An encrypted library in `dir`, prepared.
    fn in_folder(dir: &std::path::Path, key: AgeKey, hide_names: bool) -> Sealed {
        let inner = Arc::new(LocalFolder::new("lib", dir.to_path_buf(), true, "e1"));
        let sealed = Sealed::new(inner, key, hide_names);
        sealed.prepare().unwrap();
        sealed
    }

    fn put(dest: &Sealed, album: &str, name: &str, content: &[u8]) {
        let hash = *blake3::hash(content).as_bytes();
        let upload = Upload {
            album,
            name,
            len: content.len() as u64,
            hash: &hash,
            overwrite: false,
            modified: None,
            taken: None,
            source: None,
            encoded: false,
        };
        dest.stage(&upload, &mut &content[..])
            .unwrap()
            .0
            .commit()
            .unwrap();
    }

    fn manifest(dir: &std::path::Path, key: &AgeKey) -> String {
        let sealed = std::fs::File::open(dir.join(MANIFEST_ALBUM).join(MANIFEST_NAME)).unwrap();
        let mut text = String::new();
        key.open(sealed).unwrap().read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn the_manifest_lists_hidden_names_one_per_line_and_is_kept_up_to_date_when_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let identity = AgeKey::generate().identity_text();
        let key = || AgeKey::from_identity_text(&identity).unwrap();
        let sealed = in_folder(dir.path(), key(), true);
        put(&sealed, "Zürich", "odd\tname\\with\nbreaks.jpg", b"one");
        sealed.after_pass(PassEnd::Pass).unwrap();
        let text = manifest(dir.path(), &key());
        let names = key().names();
        let album = names.album("Zürich").unwrap();
        let file = names.file("Zürich", "odd\tname\\with\nbreaks.jpg").unwrap();
        assert!(
            text.lines()
                .any(|l| l == format!("Zürich/odd\\tname\\\\with\\nbreaks.jpg\t{album}/{file}")),
            "{text}"
        );
        assert!(dir.path().join(&album).join(&file).is_file());

        // A pass soon after waits; stopping writes what changed.
        put(&sealed, "Zürich", "second.jpg", b"two");
        sealed.after_pass(PassEnd::Pass).unwrap();
        assert!(!manifest(dir.path(), &key()).contains("second.jpg"));
        sealed.after_pass(PassEnd::Stopping).unwrap();
        assert!(manifest(dir.path(), &key()).contains("Zürich/second.jpg\t"));
    }
}
