//! Destination secrets (passwords, keys). They live in the OS keyring
//! (Secret Service on Linux, Keychain, Credential Manager) — never in the
//! store, a config file or a log. Where no keyring service runs (a headless
//! server), the secret comes from an environment variable named after the
//! destination, and every message says which.

use crate::error::{Error, Result};
use crate::home::APP_IDENTIFIER;

/// The environment variable that holds a destination's secret:
/// `SHOEBOX_SECRET_<NAME>` with the name upper-cased and anything other
/// than letters and digits turned into `_`.
pub fn env_var(dest: &str) -> String {
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
    format!("SHOEBOX_SECRET_{name}")
}

fn entry(dest: &str) -> std::result::Result<keyring::Entry, keyring::Error> {
    keyring::Entry::new(APP_IDENTIFIER, &format!("destination:{dest}"))
}

/// Stores a destination's secret in the OS keyring.
pub fn store(dest: &str, secret: &str) -> Result<()> {
    entry(dest).and_then(|e| e.set_password(secret)).map_err(|e| {
        Error::Invalid(format!(
            "the secret for destination {dest:?} could not be saved in the system keyring ({e}). \
             On a machine without a keyring service, leave it out and set {} in the environment \
             of every Shoebox command instead",
            env_var(dest)
        ))
    })
}

/// The secret of a destination: the environment variable if set, else the
/// keyring. `None` when neither has one.
pub fn load(dest: &str) -> Result<Option<String>> {
    if let Ok(v) = std::env::var(env_var(dest)) {
        return Ok(Some(v));
    }
    match entry(dest).and_then(|e| e.get_password()) {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(Error::Invalid(format!(
            "the secret for destination {dest:?} could not be read from the system keyring ({e}); \
             set {} in the environment instead",
            env_var(dest)
        ))),
    }
}

/// Forgets a destination's secret (when the destination is removed).
pub fn forget(dest: &str) {
    if let Ok(e) = entry(dest) {
        let _ = e.delete_credential();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_var_names_are_shell_friendly() {
        assert_eq!(super::env_var("nas"), "SHOEBOX_SECRET_NAS");
        assert_eq!(super::env_var("my-cloud.2"), "SHOEBOX_SECRET_MY_CLOUD_2");
    }
}
