//! Hidden names (`--encrypt-names`): album and file names encrypted
//! deterministically with AES-SIV (RFC 5297, AES-128-CMAC-SIV, keyed from
//! the destination's secret) and written in lowercase base32hex without
//! padding, so that a name always gives the same token: renames, copies
//! and "is it there?" work by name as on a plain destination, and a token
//! decrypts back to its name (listing, `verify`, `restore`). A file's
//! token is bound to its album (the album is SIV associated data), so the
//! same name in two albums gives two unrelated tokens. See
//! docs/ENCRYPTION.md.

use aes_siv::KeyInit;
use aes_siv::siv::Aes128Siv;
use data_encoding::BASE32_DNSSEC;

use super::SUFFIX;

/// The longest token a file system takes as a name (255 bytes), less the
/// suffix.
const MAX_TOKEN: usize = 255 - SUFFIX.len();

/// The key that hides names.
pub struct NameKey([u8; 32]);

/// A name too long to hide: its token would not fit a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// The longest name, in bytes, that fits.
    pub max: usize,
}

impl NameKey {
    pub(super) fn new(key: [u8; 32]) -> NameKey {
        NameKey(key)
    }

    fn siv(&self) -> Aes128Siv {
        Aes128Siv::new((&self.0).into())
    }

    fn token(&self, headers: &[&[u8]], name: &str) -> Result<String, TooLong> {
        let sealed = self
            .siv()
            .encrypt(headers, name.as_bytes())
            .expect("SIV encrypts any length");
        let token = BASE32_DNSSEC.encode(&sealed);
        if token.len() > MAX_TOKEN {
            // 5 bits per character, 16 bytes of SIV tag.
            return Err(TooLong {
                max: MAX_TOKEN * 5 / 8 - 16,
            });
        }
        Ok(token)
    }

    fn name(&self, headers: &[&[u8]], token: &str) -> Option<String> {
        let sealed = BASE32_DNSSEC.decode(token.as_bytes()).ok()?;
        let plain = self.siv().decrypt(headers, &sealed).ok()?;
        String::from_utf8(plain).ok()
    }

    /// The stored name of an album.
    pub fn album(&self, album: &str) -> Result<String, TooLong> {
        self.token(&[b"album"], album)
    }

    /// The stored name of a file of `album` (with the `.age` suffix).
    pub fn file(&self, album: &str, name: &str) -> Result<String, TooLong> {
        Ok(self.token(&[b"file", album.as_bytes()], name)? + SUFFIX)
    }

    /// An album's name from its stored name; `None` for a folder or prefix
    /// that is not one of this key's albums.
    pub fn album_name(&self, stored: &str) -> Option<String> {
        self.name(&[b"album"], stored)
    }

    /// A file's name from its stored name in `album`; `None` for an object
    /// that is not one of this key's files there.
    pub fn file_name(&self, album: &str, stored: &str) -> Option<String> {
        self.name(&[b"file", album.as_bytes()], stored.strip_suffix(SUFFIX)?)
    }
}

impl Drop for NameKey {
    fn drop(&mut self) {
        self.0 = [0; 32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hide_deterministically_and_come_back() {
        let key = NameKey::new([7; 32]);
        let album = key.album("Zürich 2024").unwrap();
        assert_eq!(album, key.album("Zürich 2024").unwrap(), "deterministic");
        assert!(!album.contains("rich"));
        assert!(
            album
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{album}: safe on every file system, case-insensitive ones too"
        );
        assert_eq!(key.album_name(&album).as_deref(), Some("Zürich 2024"));
        let file = key.file("Zürich 2024", "IMG_0001.HEIC").unwrap();
        assert!(file.ends_with(".age"));
        assert_eq!(
            key.file_name("Zürich 2024", &file).as_deref(),
            Some("IMG_0001.HEIC")
        );
        // Bound to its album, and to the key.
        assert_ne!(file, key.file("Other", "IMG_0001.HEIC").unwrap());
        assert_eq!(key.file_name("Other", &file), None);
        assert_eq!(NameKey::new([8; 32]).album_name(&album), None);
        assert_eq!(key.album_name(".shoebox-staging"), None);
    }

    #[test]
    fn a_name_too_long_for_a_file_system_is_refused_with_the_limit() {
        let key = NameKey::new([7; 32]);
        let max = key.file("A", &"x".repeat(400)).unwrap_err().max;
        assert!(key.file("A", &"x".repeat(max)).is_ok(), "{max}");
        assert!(key.file("A", &"x".repeat(max + 1)).is_err());
        assert!(key.file("A", &"x".repeat(max)).unwrap().len() <= 255);
    }
}
