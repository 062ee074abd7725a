//! Encryption in the age format (age-encryption.org/v1, one X25519
//! recipient): a destination's key, the encoder that turns a file into an
//! age file as it streams out, the decoder that reads one back, and the
//! passphrase-protected key file `shoebox dest export-key` writes. Any
//! object an encrypted destination holds is a standard age file: stock
//! `age -d -i <key file>` decrypts it. See docs/ENCRYPTION.md.
//!
//! The encoder is deterministic: the file key, the X25519 ephemeral secret
//! and the payload nonce are derived from the destination's secret and the
//! file's content hash (a keyed derivation: no one without the secret can
//! tell which content an object holds). The same content therefore always
//! gives the same bytes, so an interrupted multipart upload resumes with
//! the parts the server already acknowledged, and the engine never has to
//! spool a ciphertext. Decoding uses the `age` crate itself.

use std::io::{self, Read};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::Mac;

use crate::store::Hash;

mod names;
pub use names::NameKey;

/// Plaintext bytes per STREAM chunk (the age format's fixed size).
const CHUNK: u64 = 64 * 1024;
/// The Poly1305 tag after every chunk.
const TAG: u64 = 16;
/// The payload nonce before the first chunk.
const NONCE: u64 = 16;
/// The header for one X25519 recipient: the version line, the stanza's two
/// lines (43 base64 characters each) and the MAC line.
const HEADER_LEN: u64 = 22 + (10 + 43 + 1) + (43 + 1) + (4 + 43 + 1);

/// The object name an encrypted destination stores a file under.
pub const SUFFIX: &str = ".age";

/// The length of the age file for `len` bytes of content.
pub fn sealed_len(len: u64) -> u64 {
    HEADER_LEN + NONCE + len + TAG * len.div_ceil(CHUNK).max(1)
}

/// The content length of an age file of `sealed` bytes written by
/// [`Sealer`]; `None` when no content gives that length.
pub fn plain_len(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER_LEN + NONCE)?;
    let chunks = body.div_ceil(CHUNK + TAG).max(1);
    let len = body.checked_sub(chunks * TAG)?;
    (sealed_len(len) == sealed).then_some(len)
}

/// The line of an exported key file that says the destination hides names.
const NAMES_HIDDEN_LINE: &str = "# shoebox: names hidden";

/// What a key file holds.
pub struct KeyFile {
    pub key: AgeKey,
    /// The destination it was exported from hides names.
    pub names_hidden: bool,
}

/// A destination's key: an age X25519 identity.
pub struct AgeKey {
    identity: age::x25519::Identity,
    recipient: [u8; 32],
    /// Derives each file's key material (see the module header).
    files: [u8; 32],
}

impl std::fmt::Debug for AgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgeKey({})", self.recipient())
    }
}

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("it holds no age identity (a line starting with AGE-SECRET-KEY-1)")]
    NoIdentity,
    #[error("its age identity is not valid: {0}")]
    Invalid(String),
    #[error("it is protected by a passphrase, and none was given")]
    NeedsPassphrase,
    #[error("the passphrase does not open it")]
    WrongPassphrase,
}

impl AgeKey {
    /// A new random key.
    pub fn generate() -> AgeKey {
        let identity = age::x25519::Identity::generate();
        AgeKey::parse(identity.to_string().expose_secret()).expect("a fresh identity parses")
    }

    /// The key of an identity line (`AGE-SECRET-KEY-1…`).
    fn parse(line: &str) -> Result<AgeKey, KeyError> {
        let identity =
            age::x25519::Identity::from_str(line).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let (_, data, _) = bech32::decode(line).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let secret: [u8; 32] = <Vec<u8> as bech32::FromBase32>::from_base32(&data)
            .map_err(|e| KeyError::Invalid(e.to_string()))?
            .try_into()
            .map_err(|_| KeyError::Invalid("it is not 32 bytes long".into()))?;
        let recipient = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
        Ok(AgeKey {
            identity,
            recipient: recipient.to_bytes(),
            files: blake3::derive_key("shoebox 2026-12-01 age file keys", &secret),
        })
    }

    /// The key in an identity file's text (`age-keygen`'s format: comments
    /// and one `AGE-SECRET-KEY-1…` line), as the keyring keeps it.
    pub fn from_identity_text(text: &str) -> Result<AgeKey, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .ok_or(KeyError::NoIdentity)?;
        AgeKey::parse(line)
    }

    /// The key in a key file: an identity file, or one encrypted with a
    /// passphrase (what [`AgeKey::export`] writes).
    pub fn from_key_file(bytes: &[u8], passphrase: Option<&str>) -> Result<KeyFile, KeyError> {
        let text = if bytes.starts_with(b"age-encryption.org/v1") {
            Self::decrypt_key_file(bytes, passphrase)?
        } else {
            String::from_utf8(bytes.to_vec()).map_err(|_| KeyError::NoIdentity)?
        };
        Ok(KeyFile {
            key: AgeKey::from_identity_text(&text)?,
            names_hidden: text.lines().any(|l| l.trim() == NAMES_HIDDEN_LINE),
        })
    }

    fn decrypt_key_file(bytes: &[u8], passphrase: Option<&str>) -> Result<String, KeyError> {
        let passphrase = passphrase.ok_or(KeyError::NeedsPassphrase)?;
        let decryptor = age::Decryptor::new(bytes).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let with = age::scrypt::Identity::new(SecretString::from(passphrase.to_string()));
        let mut text = String::new();
        decryptor
            .decrypt(std::iter::once(&with as &dyn age::Identity))
            .map_err(|_| KeyError::WrongPassphrase)?
            .read_to_string(&mut text)
            .map_err(|_| KeyError::WrongPassphrase)?;
        Ok(text)
    }

    /// The identity file's text (what the keyring keeps).
    pub fn identity_text(&self) -> String {
        format!(
            "# public key: {}\n{}\n",
            self.recipient(),
            self.identity.to_string().expose_secret()
        )
    }

    /// The key that hides this destination's names (`--encrypt-names`).
    pub fn names(&self) -> NameKey {
        NameKey::new(blake3::derive_key(
            "shoebox 2026-12-01 age names",
            &self.files,
        ))
    }

    /// The public key, `age1…`.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The key file for `shoebox dest export-key`: the identity file,
    /// encrypted with `passphrase` (age's scrypt recipient), which stock
    /// `age -d -i FILE` accepts after asking for the passphrase.
    /// It records whether the destination hides names, so that a new
    /// computer given the file reads the names too.
    pub fn export(&self, passphrase: &str, names_hidden: bool) -> Vec<u8> {
        let text = format!(
            "# Shoebox destination key. Keep this file and its passphrase safe:\n\
             # without them, the encrypted backup cannot be read.\n{}{}",
            if names_hidden {
                format!("{NAMES_HIDDEN_LINE}\n")
            } else {
                String::new()
            },
            self.identity_text()
        );
        let encryptor =
            age::Encryptor::with_user_passphrase(SecretString::from(passphrase.to_string()));
        let mut out = Vec::new();
        let mut w = encryptor
            .wrap_output(&mut out)
            .expect("writing to memory does not fail");
        io::Write::write_all(&mut w, text.as_bytes()).expect("writing to memory does not fail");
        w.finish().expect("writing to memory does not fail");
        out
    }

    /// The content of an age file written for this key, as it is read.
    /// A damaged file, or one written for another key, reads as an error
    /// of kind `InvalidData` that says so.
    pub fn open<R: Read>(&self, sealed: R) -> io::Result<impl Read + use<R>> {
        let not_ours = |e: age::DecryptError| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it does not decrypt with the destination's key ({e}): it is damaged, or was encrypted with another key"
                ),
            )
        };
        let decryptor = age::Decryptor::new(io::BufReader::new(sealed)).map_err(not_ours)?;
        let plain = decryptor
            .decrypt(std::iter::once(&self.identity as &dyn age::Identity))
            .map_err(not_ours)?;
        Ok(Damaged(plain))
    }

    /// The file key, the ephemeral secret and the payload nonce for the
    /// content `hash` of `len` bytes.
    fn material(&self, hash: &Hash, len: u64) -> ([u8; 16], [u8; 32], [u8; 16]) {
        let mut input = [0u8; 40];
        input[..32].copy_from_slice(hash);
        input[32..].copy_from_slice(&len.to_le_bytes());
        let seed = blake3::keyed_hash(&self.files, &input);
        let part = |what: &str| blake3::derive_key(what, seed.as_bytes());
        let file_key = part("shoebox age file key");
        let nonce = part("shoebox age payload nonce");
        (
            file_key[..16].try_into().expect("16 bytes"),
            part("shoebox age ephemeral secret"),
            nonce[..16].try_into().expect("16 bytes"),
        )
    }

    /// The header and payload nonce of the age file for this content, and
    /// the payload key.
    fn preamble(&self, hash: &Hash, len: u64) -> (Vec<u8>, Key) {
        let (file_key, ephemeral, nonce) = self.material(hash, len);
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b);
        let ephemeral = x25519_dalek::StaticSecret::from(ephemeral);
        let share = x25519_dalek::PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(self.recipient));
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share.as_bytes());
        salt[32..].copy_from_slice(&self.recipient);
        let wrap_key = hkdf(&salt, b"age-encryption.org/v1/X25519", shared.as_bytes());
        let mut body = file_key.to_vec();
        ChaCha20Poly1305::new(&wrap_key)
            .encrypt_in_place(&Nonce::default(), b"", &mut body)
            .expect("a 16-byte key encrypts");
        let mut header = format!(
            "age-encryption.org/v1\n-> X25519 {}\n{}\n---",
            b64(share.as_bytes()),
            b64(&body)
        );
        let mac_key = hkdf(&[], b"header", &file_key);
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&mac_key)
            .expect("HMAC takes any key length");
        mac.update(header.as_bytes());
        header.push(' ');
        header.push_str(&b64(&mac.finalize().into_bytes()));
        header.push('\n');
        let mut out = header.into_bytes();
        debug_assert_eq!(out.len() as u64, HEADER_LEN);
        out.extend_from_slice(&nonce);
        (out, hkdf(&nonce, b"payload", &file_key))
    }

    /// An encoder of the `len` bytes of `source`, which must hash to `hash`.
    pub fn sealer<R: Read>(&self, source: R, hash: &Hash, len: u64) -> Sealer<R> {
        let (out, payload_key) = self.preamble(hash, len);
        Sealer {
            source,
            aead: ChaCha20Poly1305::new(&payload_key),
            len,
            expected: *hash,
            hasher: blake3::Hasher::new(),
            consumed: 0,
            counter: 0,
            out,
            pos: 0,
            done: false,
            emitted: 0,
        }
    }
}

impl Drop for AgeKey {
    fn drop(&mut self) {
        self.files = [0; 32];
    }
}

/// HKDF-SHA-256 to a 32-byte key, as the age format uses it.
fn hkdf(salt: &[u8], info: &[u8], ikm: &[u8]) -> Key {
    let mut okm = Key::default();
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .expect("32 bytes is a valid HKDF length");
    okm
}

/// The decoder's reader (see [`AgeKey::open`]), its errors made plain.
struct Damaged<R>(R);

impl<R: Read> Read for Damaged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("it is damaged: it does not decrypt with the destination's key ({e})"),
                )
            } else {
                e
            }
        })
    }
}

/// Reads `len` bytes of content from `source` and yields the age file for
/// them. The last chunk is held back until the content is proven to hash
/// to the expected value: content that does not (a file that changed
/// since it was hashed, or one shorter than expected) ends the output
/// short, so no destination can store it as a whole object.
pub struct Sealer<R> {
    source: R,
    aead: ChaCha20Poly1305,
    len: u64,
    expected: Hash,
    hasher: blake3::Hasher,
    consumed: u64,
    counter: u64,
    out: Vec<u8>,
    pos: usize,
    done: bool,
    emitted: u64,
}

impl<R> Sealer<R> {
    /// The content bytes read so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The encoded bytes yielded so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }
}

impl<R: Read> Sealer<R> {
    /// Encodes the next chunk into `out`; leaves `out` empty (and the
    /// sealer done) when the content ended early or is not the hashed one.
    fn next_chunk(&mut self) -> io::Result<()> {
        let want = CHUNK.min(self.len - self.consumed) as usize;
        self.out.clear();
        self.pos = 0;
        self.out.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match self.source.read(&mut self.out[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.hasher.update(&self.out[..filled]);
        self.consumed += filled as u64;
        let last = self.consumed == self.len;
        if filled < want || (last && self.hasher.finalize().as_bytes() != &self.expected) {
            self.out.clear();
            self.done = true;
            return Ok(());
        }
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        self.aead
            .encrypt_in_place(Nonce::from_slice(&nonce), b"", &mut self.out)
            .map_err(|_| io::Error::other("a chunk could not be encrypted"))?;
        self.counter += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for Sealer<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        self.emitted += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &AgeKey, data: &[u8]) -> Vec<u8> {
        let hash = *blake3::hash(data).as_bytes();
        let mut out = Vec::new();
        key.sealer(data, &hash, data.len() as u64)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn open(key: &AgeKey, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        key.open(sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn the_age_crate_decrypts_what_the_sealer_writes_at_every_chunk_boundary() {
        let key = AgeKey::generate();
        let c = CHUNK as usize;
        for len in [0, 1, c - 1, c, c + 1, 2 * c, 3 * c + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let sealed = seal(&key, &data);
            assert_eq!(
                sealed.len() as u64,
                sealed_len(len as u64),
                "length of {len}"
            );
            assert_eq!(plain_len(sealed.len() as u64), Some(len as u64));
            // The age crate's own decryptor, not ours.
            let identity =
                age::x25519::Identity::from_str(key.identity.to_string().expose_secret()).unwrap();
            let mut plain = Vec::new();
            age::Decryptor::new(&sealed[..])
                .unwrap()
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, data, "content of {len} bytes");
        }
    }

    #[test]
    fn the_same_content_seals_to_the_same_bytes_and_other_content_or_keys_do_not() {
        let key = AgeKey::generate();
        let a = seal(&key, b"the same photo");
        assert_eq!(a, seal(&key, b"the same photo"));
        assert_ne!(a, seal(&key, b"the same photo!"));
        assert_ne!(a, seal(&AgeKey::generate(), b"the same photo"));
    }

    #[test]
    fn content_that_is_not_the_hashed_version_ends_short() {
        let key = AgeKey::generate();
        let data = vec![5u8; 3 * CHUNK as usize];
        let hash = *blake3::hash(b"another version").as_bytes();
        let mut out = Vec::new();
        key.sealer(&data[..], &hash, data.len() as u64)
            .read_to_end(&mut out)
            .unwrap();
        assert!((out.len() as u64) < sealed_len(data.len() as u64));
        assert!(open(&key, &out).is_err(), "a cut-short file never decrypts");
        // A source shorter than announced ends short too.
        let hash = *blake3::hash(&data).as_bytes();
        let mut out = Vec::new();
        key.sealer(&data[..100], &hash, data.len() as u64)
            .read_to_end(&mut out)
            .unwrap();
        assert!((out.len() as u64) < sealed_len(data.len() as u64));
    }

    #[test]
    fn a_flipped_bit_or_another_key_reads_as_invalid_data() {
        let key = AgeKey::generate();
        let mut sealed = seal(&key, &[9u8; 1000]);
        let other = open(&AgeKey::generate(), &sealed).unwrap_err();
        assert_eq!(other.kind(), io::ErrorKind::InvalidData);
        let at = sealed.len() - 40;
        sealed[at] ^= 1;
        let flipped = open(&key, &sealed).unwrap_err();
        assert_eq!(flipped.kind(), io::ErrorKind::InvalidData, "{flipped}");
        assert!(flipped.to_string().contains("damaged"), "{flipped}");
    }

    #[test]
    fn an_exported_key_file_opens_with_its_passphrase_only() {
        let key = AgeKey::generate();
        let file = key.export("correct horse", true);
        let back = AgeKey::from_key_file(&file, Some("correct horse")).unwrap();
        assert_eq!(back.key.recipient(), key.recipient());
        assert!(back.names_hidden);
        assert!(matches!(
            AgeKey::from_key_file(&file, Some("wrong")),
            Err(KeyError::WrongPassphrase)
        ));
        assert!(matches!(
            AgeKey::from_key_file(&file, None),
            Err(KeyError::NeedsPassphrase)
        ));
        let text = AgeKey::from_key_file(key.identity_text().as_bytes(), None).unwrap();
        assert_eq!(text.key.recipient(), key.recipient());
        assert!(!text.names_hidden);
    }

    #[test]
    fn impossible_lengths_have_no_content_length() {
        assert_eq!(plain_len(0), None);
        assert_eq!(plain_len(HEADER_LEN + NONCE + TAG - 1), None);
        assert_eq!(plain_len(HEADER_LEN + NONCE + CHUNK + TAG + 1), None);
    }
}
