//! Destination secrets: the sign-in secret (a password or key) and, for an
//! encrypted destination, its age identity. They live in the OS keyring
//! (Secret Service on Linux, Keychain, Credential Manager) — never in the
//! store, a config file or a log. Where no keyring service runs (a headless
//! server), a secret comes from an environment variable named after the
//! destination (`SHOEBOX_SECRET_<NAME>`, `SHOEBOX_IDENTITY_<NAME>`), and
//! every message says which.

use crate::error::{Error, Result};
use crate::home::APP_IDENTIFIER;

/// The environment variable that holds a destination's secret:
/// `SHOEBOX_SECRET_<NAME>` with the name upper-cased and anything other
/// than letters and digits turned into `_`.
pub fn env_var(dest: &str) -> String {
    Slot::SignIn.env_var(dest)
}

/// Which of a destination's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The password, secret key or SSH key it signs in with.
    SignIn,
    /// Its age identity (`seal.rs`), for an encrypted destination.
    Identity,
}

impl Slot {
    /// The environment variable that holds this secret.
    pub fn env_var(self, dest: &str) -> String {
        let name: String = dest
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        match self {
            Slot::SignIn => format!("SHOEBOX_SECRET_{name}"),
            Slot::Identity => format!("SHOEBOX_IDENTITY_{name}"),
        }
    }

    fn entry(self, dest: &str) -> std::result::Result<keyring::Entry, keyring::Error> {
        let user = match self {
            Slot::SignIn => format!("destination:{dest}"),
            Slot::Identity => format!("identity:{dest}"),
        };
        keyring::Entry::new(APP_IDENTIFIER, &user)
    }
}

/// Stores a destination's sign-in secret in the OS keyring.
pub fn store(dest: &str, secret: &str) -> Result<()> {
    store_in(Slot::SignIn, dest, secret)
}

/// Stores one of a destination's secrets in the OS keyring.
pub fn store_in(slot: Slot, dest: &str, secret: &str) -> Result<()> {
    let env_var = |d: &str| slot.env_var(d);
    slot.entry(dest).and_then(|e| e.set_password(secret)).map_err(|e| {
        Error::Invalid(format!(
            "the secret for destination {dest:?} could not be saved in the system keyring ({e}). \
             On a machine without a keyring service, leave it out and set {} in the environment \
             of every Shoebox command instead",
            env_var(dest)
        ))
    })
}

/// The sign-in secret of a destination: the environment variable if set,
/// else the keyring. `None` when neither has one.
pub fn load(dest: &str) -> Result<Option<String>> {
    load_from(Slot::SignIn, dest)
}

/// One of a destination's secrets, as [`load`] finds it.
pub fn load_from(slot: Slot, dest: &str) -> Result<Option<String>> {
    let env_var = |d: &str| slot.env_var(d);
    if let Ok(v) = std::env::var(env_var(dest)) {
        return Ok(Some(v));
    }
    match slot.entry(dest).and_then(|e| e.get_password()) {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(Error::Invalid(format!(
            "the secret for destination {dest:?} could not be read from the system keyring ({e}); \
             set {} in the environment instead",
            env_var(dest)
        ))),
    }
}

/// Forgets a destination's secrets (when the destination is removed).
pub fn forget(dest: &str) {
    for slot in [Slot::SignIn, Slot::Identity] {
        if let Ok(e) = slot.entry(dest) {
            let _ = e.delete_credential();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_var_names_are_shell_friendly() {
        assert_eq!(super::env_var("nas"), "SHOEBOX_SECRET_NAS");
        assert_eq!(super::env_var("my-cloud.2"), "SHOEBOX_SECRET_MY_CLOUD_2");
        assert_eq!(
            super::Slot::Identity.env_var("my-cloud.2"),
            "SHOEBOX_IDENTITY_MY_CLOUD_2"
        );
    }
}
