//! Encrypted destinations as hosts configure them: turning encryption on
//! (a new key, or the key file of an existing backup) and exporting the
//! key file. The key itself goes to the keyring only. See
//! docs/ENCRYPTION.md.

use super::*;
use crate::error::KeyFileProblem;
use crate::seal::{AgeKey, KeyError};
use crate::secrets::Slot;

/// Where an encrypted destination's key comes from.
pub enum KeySource {
    /// A new random key (a new backup).
    New,
    /// A key file exported earlier (`export-key`), or any age identity
    /// file: the backup already exists, as on a new computer.
    File {
        bytes: Vec<u8>,
        passphrase: Option<String>,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySource::New => "New",
            KeySource::File { .. } => "File(…)",
        })
    }
}

/// The warning every host shows once a destination is encrypted, until
/// its key is exported.
pub fn key_warning(dest: &str) -> String {
    format!(
        "Everything backed up to {dest} is encrypted with a key that only this computer holds. \
         Export it now with `shoebox dest export-key {dest} --out FILE` (or Export key… in the \
         window) and keep that file and its passphrase away from this computer: in a password \
         manager, or on a USB stick in a drawer. If this computer is lost and the key file is \
         too, the backup is lost: no one, not even Shoebox, can decrypt it."
    )
}

/// Why an Immich destination is never encrypted.
pub const IMMICH_UNENCRYPTED: &str = "Immich cannot show or index encrypted photos, so an Immich \
     destination is not encrypted: for an encrypted backup, use a folder, S3, WebDAV or SFTP";

impl Engine {
    /// Encrypts everything the destination will hold with an age key: a new
    /// one, or the key of an existing backup. Only a destination that holds
    /// nothing and that no watch uses yet can be encrypted (a destination
    /// just added, the library before its first watch), so that no engine
    /// is sending files to it meanwhile. Returns the public key and notices.
    ///
    /// With `hide_names`, album and file names are hidden too; a key file
    /// exported from a destination that hid them hides them again. For a
    /// destination already encrypted, its key file puts the key back in
    /// the keyring.
    pub fn encrypt_destination(
        &self,
        name: &str,
        key: KeySource,
        hide_names: bool,
    ) -> Result<(String, Vec<String>)> {
        let Some(row) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        if let Some(recipient) = &row.encryption {
            return self.give_key_back(&row, recipient, key);
        }
        if row.kind == crate::store::DestKind::Immich {
            return Err(Error::Invalid(IMMICH_UNENCRYPTED.to_string()));
        }
        if self.store.has_entries(row.id)? {
            return Err(Error::Invalid(format!(
                "destination {name} already holds files backed up without encryption, and they \
                 would stay readable there: add a new destination with --encrypt instead, and \
                 point the watches at it"
            )));
        }
        if let Some(w) = self.store.watches()?.iter().find(|w| w.dest_id == row.id) {
            return Err(Error::Invalid(format!(
                "destination {name} is used by the watch of {}: encrypt a destination before any \
                 watch uses it (remove the watch, encrypt, then add it again)",
                w.root.display()
            )));
        }
        let new = matches!(key, KeySource::New);
        let (key, hide_names) = match key {
            KeySource::New => (AgeKey::generate(), hide_names),
            KeySource::File { bytes, passphrase } => {
                let file =
                    AgeKey::from_key_file(&bytes, passphrase.as_deref()).map_err(key_file_error)?;
                (file.key, hide_names || file.names_hidden)
            }
        };
        let var = Slot::Identity.env_var(name);
        let mut notices = Vec::new();
        if let Err(e) = crate::secrets::store_in(Slot::Identity, name, &key.identity_text()) {
            let from_env = crate::secrets::load_from(Slot::Identity, name)
                .ok()
                .flatten()
                .and_then(|t| AgeKey::from_identity_text(&t).ok());
            match from_env {
                Some(k) if k.recipient() == key.recipient() => notices.push(format!(
                    "no system keyring is available; the key is taken from {var} each time"
                )),
                _ if new => {
                    tracing::warn!("the new key of {name} cannot go to the keyring: {e}");
                    return Err(Error::Invalid(format!(
                        "no system keyring is available to keep the new key. Without a \
                         keyring, make a key with `age-keygen -o FILE`, set {var} to its \
                         AGE-SECRET-KEY-1… line, and give the file with --identity FILE"
                    )));
                }
                _ => return Err(e),
            }
        }
        self.store
            .set_destination_encryption(row.id, &key.recipient(), hide_names)?;
        if new {
            notices.push(key_warning(name));
        } else {
            // It came from a key file, which the user therefore has.
            self.store.set_key_exported(row.id)?;
        }
        crate::local_api::changed(&self.home);
        Ok((key.recipient(), notices))
    }

    /// The key file of a destination that is already encrypted, given
    /// back after the keyring lost it (a cleared keyring, another account
    /// on the same computer): it goes to the keyring again if it is the
    /// destination's key.
    fn give_key_back(
        &self,
        row: &DestRow,
        recipient: &str,
        key: KeySource,
    ) -> Result<(String, Vec<String>)> {
        let name = &row.name;
        let KeySource::File { bytes, passphrase } = key else {
            return Err(Error::Invalid(format!(
                "destination {name} is already encrypted (to {recipient}); to give it its key \
                 back, run `shoebox dest encrypt {name} --identity FILE` with the key file you \
                 exported"
            )));
        };
        let file = AgeKey::from_key_file(&bytes, passphrase.as_deref()).map_err(key_file_error)?;
        if file.key.recipient() != recipient {
            return Err(Error::Invalid(format!(
                "the key file holds the key {}, but destination {name} is encrypted to \
                 {recipient}: give the key file exported for {name}",
                file.key.recipient()
            )));
        }
        crate::secrets::store_in(Slot::Identity, name, &file.key.identity_text())?;
        self.store.set_key_exported(row.id)?;
        crate::local_api::changed(&self.home);
        Ok((
            recipient.to_string(),
            vec![format!("the key of {name} is in the system keyring again")],
        ))
    }

    /// Writes the destination's key file to `to` (a new file only its owner
    /// can read), protected by `passphrase`: stock `age -d -i FILE` can use
    /// it. Records that the key was exported.
    pub fn export_key(&self, name: &str, passphrase: &str, to: &Path) -> Result<()> {
        let Some(row) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        let Some(recipient) = &row.encryption else {
            return Err(Error::Invalid(format!(
                "destination {name} is not encrypted, so it has no key to export"
            )));
        };
        if passphrase.chars().count() < 8 {
            return Err(Error::Invalid(
                "the passphrase must be at least 8 characters long: it is all that protects \
                 the key file"
                    .into(),
            ));
        }
        let key = crate::dest::key_of(&row, recipient)?;
        let io_err = |what, source| Error::Io {
            what,
            path: to.to_path_buf(),
            source,
        };
        let mut file = crate::platform::create_private_file(to).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Invalid(format!(
                    "{} already exists, and an existing file is never replaced: choose another name",
                    to.display()
                ))
            } else {
                io_err("could not create the key file", e)
            }
        })?;
        std::io::Write::write_all(&mut file, &key.export(passphrase, row.hide_names))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err("could not write the key file", e))?;
        self.store.set_key_exported(row.id)?;
        Ok(())
    }

    /// Encrypted destinations whose key was never exported.
    pub fn keys_not_exported(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .destinations()?
            .into_iter()
            .filter(|d| d.encryption.is_some() && d.key_exported_at.is_none())
            .map(|d| d.name)
            .collect())
    }
}

fn key_file_error(e: KeyError) -> Error {
    let problem = match e {
        KeyError::NeedsPassphrase => KeyFileProblem::NeedsPassphrase,
        KeyError::WrongPassphrase => KeyFileProblem::WrongPassphrase,
        KeyError::NoIdentity | KeyError::Invalid(_) => KeyFileProblem::NotAKey,
    };
    Error::KeyFile {
        problem,
        why: format!("the key file cannot be used: {e}"),
    }
}
