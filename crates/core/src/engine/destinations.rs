//! Destinations as hosts configure them: add (a folder, WebDAV, S3), edit,
//! test, pin a certificate, reset, remove. Secrets go to the keyring. See
//! docs/ARCHITECTURE.md.

use super::*;
use crate::error::DestError;
use crate::store::DestKind;

/// A destination as hosts show it.
#[derive(Debug, Clone, Serialize)]
pub struct DestInfo {
    pub name: String,
    pub kind: DestKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// S3 only: the bucket, its region and the key prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// The user allowed plain http:// for this destination.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
    /// The destination trusts one certificate of its own (not the system's roots).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pinned_certificate: bool,
    /// SFTP only: how it signs in, and the fingerprint of the server's
    /// pinned host key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<crate::store::SshAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Encrypted: the age public key every object is encrypted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_to: Option<String>,
    /// Encrypted, and the key file was never exported.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub key_not_exported: bool,
    /// Encrypted, with album and file names hidden too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub names_hidden: bool,
}

/// What a host gives to add an SFTP destination.
#[derive(Debug, Clone)]
pub struct SftpSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The folder on the server (relative paths start at the account's
    /// home); created if missing.
    pub path: String,
    pub sign_in: SftpSignIn,
    /// The fingerprint (`SHA256:…`) the user confirmed for a server that
    /// `~/.ssh/known_hosts` does not know.
    pub trust_host_key: Option<String>,
}

/// How a new SFTP destination signs in.
#[derive(Clone)]
pub enum SftpSignIn {
    Password(String),
    /// A private key as [`crate::dest::sftp::private_key_text`] gives it.
    Key(String),
    /// The keys in the user's ssh-agent.
    Agent,
}

impl std::fmt::Debug for SftpSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SftpSignIn::Password(_) => "Password(…)",
            SftpSignIn::Key(_) => "Key(…)",
            SftpSignIn::Agent => "Agent",
        })
    }
}

/// What a host gives to add an S3-compatible destination.
#[derive(Debug, Clone, Default)]
pub struct S3Spec {
    pub name: String,
    pub endpoint: String,
    pub bucket: String,
    /// Defaults to us-east-1.
    pub region: Option<String>,
    pub prefix: String,
    pub path_style: bool,
    pub access_key_id: String,
    /// `None`: taken from the keyring or the environment variable.
    pub secret: Option<String>,
    pub allow_insecure_http: bool,
}

/// Changes to a remote destination's connection; `None` keeps a setting.
#[derive(Debug, Clone, Default)]
pub struct DestEdit {
    pub name: String,
    pub url: Option<String>,
    pub user: Option<String>,
    pub secret: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub allow_insecure_http: Option<bool>,
    /// `Some(Some(pem))`: trust exactly this server certificate (PEM text);
    /// `Some(None)`: trust the system's roots only again.
    pub trust_certificate: Option<Option<Vec<u8>>>,
    /// SFTP: trust the server's host key again, after it changed, when it
    /// has this fingerprint.
    pub trust_host_key: Option<String>,
}

impl Engine {
    pub(super) fn dest_path(&self, d: &DestRow) -> PathBuf {
        d.path.clone().unwrap_or_else(|| self.home.library_dir())
    }

    pub(super) fn dest_info(&self, d: &DestRow) -> DestInfo {
        DestInfo {
            name: d.name.clone(),
            kind: d.kind,
            path: match d.kind {
                DestKind::Local => Some(display(&self.dest_path(d))),
                DestKind::Sftp => d.path.as_ref().map(|p| p.to_string_lossy().into_owned()),
                DestKind::Webdav | DestKind::S3 | DestKind::Immich => None,
            },
            url: d.url.clone(),
            user: d.username.clone(),
            bucket: d.s3.as_ref().map(|s| s.bucket.clone()),
            region: d.s3.as_ref().map(|s| s.region.clone()),
            prefix: d.s3.as_ref().map(|s| s.prefix.clone()),
            path_style: d.s3.as_ref().map(|s| s.path_style),
            insecure_http: d.insecure_http,
            pinned_certificate: d.tls_cert.is_some(),
            sign_in: d.ssh.as_ref().map(|s| s.auth),
            host_key: d.ssh.as_ref().and_then(|s| {
                crate::dest::sftp::parse_host_key(&s.host_key)
                    .ok()
                    .map(|k| crate::dest::sftp::fingerprint(&k))
            }),
            encrypted_to: d.encryption.clone(),
            key_not_exported: d.encryption.is_some() && d.key_exported_at.is_none(),
            names_hidden: d.encryption.is_some() && d.hide_names,
        }
    }

    pub fn destinations(&self) -> Result<Vec<DestInfo>> {
        Ok(self
            .store
            .destinations()?
            .iter()
            .map(|d| self.dest_info(d))
            .collect())
    }

    /// A destination just inserted, announced to a running engine.
    fn added(&self, name: &str, notices: Vec<String>) -> Result<(DestInfo, Vec<String>)> {
        crate::local_api::changed(&self.home);
        let row = self
            .store
            .destination_by_name(name)?
            .expect("just inserted");
        Ok((self.dest_info(&row), notices))
    }

    pub(super) fn check_new_dest_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a destination needs a name of printable characters".into(),
            ));
        }
        if self.store.destination_by_name(name)?.is_some() {
            return Err(Error::Invalid(format!(
                "a destination named {name:?} already exists; choose another name or remove it first"
            )));
        }
        Ok(())
    }

    /// Adds a WebDAV destination. The password goes to the OS keyring (or,
    /// where there is none, must come from the environment variable the
    /// error names); it is never stored anywhere else.
    pub fn add_webdav_destination(
        &self,
        name: &str,
        url: &str,
        user: Option<&str>,
        password: Option<&str>,
        allow_insecure_http: bool,
    ) -> Result<(DestInfo, Vec<String>)> {
        let name = name.trim();
        self.check_new_dest_name(name)?;
        let mut notices = Vec::new();
        let secret = match password {
            Some(p) => Some(p.to_string()),
            // Only to validate the plain-HTTP rule: a missing keyring is fine here.
            None => crate::secrets::load(name).ok().flatten(),
        };
        // Validates the URL and the plain-HTTP rule before anything is saved.
        crate::dest::WebDav::new(
            name,
            url,
            user.map(str::to_string),
            secret,
            allow_insecure_http,
            None,
            &self.home.engine_id()?,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        if password.is_some() {
            notices = self.keep_secret(name, password, "password")?;
        }
        self.store.insert_remote_destination(
            name,
            DestKind::Webdav,
            url,
            user,
            allow_insecure_http,
        )?;
        self.added(name, notices)
    }

    /// Adds an Immich server. The API key goes to the OS keyring (or, where
    /// there is none, must come from the environment variable the error
    /// names); it is never stored anywhere else. The server is not asked
    /// anything here: `dest test` checks the key and its permissions.
    pub fn add_immich_destination(
        &self,
        name: &str,
        url: &str,
        api_key: Option<&str>,
        allow_insecure_http: bool,
    ) -> Result<(DestInfo, Vec<String>)> {
        let name = name.trim();
        self.check_new_dest_name(name)?;
        // Validates the address and the plain-HTTP rule before anything is saved.
        crate::dest::immich::api_base(name, url, allow_insecure_http)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let notices = self.keep_secret(name, api_key, "API key")?;
        self.store.insert_remote_destination(
            name,
            DestKind::Immich,
            url.trim(),
            None,
            allow_insecure_http,
        )?;
        self.added(name, notices)
    }

    /// Adds an S3-compatible destination. The secret key goes to the OS
    /// keyring (or, where there is none, must come from the environment
    /// variable the error names); it is never stored anywhere else.
    pub fn add_s3_destination(&self, spec: &S3Spec) -> Result<(DestInfo, Vec<String>)> {
        let name = spec.name.trim();
        self.check_new_dest_name(name)?;
        let settings = crate::store::S3Settings {
            bucket: spec.bucket.clone(),
            region: spec.region.clone().unwrap_or_else(|| "us-east-1".into()),
            prefix: crate::dest::s3::normalize_prefix(&spec.prefix),
            path_style: spec.path_style,
        };
        crate::dest::s3::check_bucket_name(&settings.bucket).map_err(Error::Invalid)?;
        if spec.access_key_id.trim().is_empty() {
            return Err(Error::Invalid("--access-key-id must not be empty".into()));
        }
        // Validates the endpoint and the plain-HTTP rule before anything is saved.
        crate::dest::http::parse_url(name, &spec.endpoint, true, spec.allow_insecure_http)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let notices = self.keep_secret(name, spec.secret.as_deref(), "secret key")?;
        self.store.insert_s3_destination(
            name,
            &spec.endpoint,
            spec.access_key_id.trim(),
            spec.allow_insecure_http,
            &settings,
        )?;
        self.added(name, notices)
    }

    /// Adds an SFTP destination. The server's host key is pinned: the one
    /// `~/.ssh/known_hosts` records, else the one whose fingerprint the
    /// user confirmed ([`Error::HostKeyUnknown`] shows it). The server must
    /// be reachable: the key, the sign-in and the folder are checked before
    /// anything is saved. The password or key goes to the keyring only.
    pub fn add_sftp_destination(&self, spec: &SftpSpec) -> Result<(DestInfo, Vec<String>)> {
        use crate::dest::sftp;
        let name = spec.name.trim();
        self.check_new_dest_name(name)?;
        let (host, user) = (spec.host.trim(), spec.user.trim());
        for (value, flag) in [
            (host, "--host"),
            (user, "--user"),
            (spec.path.trim(), "--path"),
        ] {
            if value.is_empty() {
                return Err(Error::Invalid(format!("{flag} must not be empty")));
            }
        }
        let invalid = |e: DestError| Error::Invalid(e.to_string());
        let key = sftp::server_host_key(name, host, spec.port).map_err(invalid)?;
        let shown = sftp::fingerprint(&key);
        match russh::keys::check_known_hosts(host, spec.port, &key) {
            Ok(true) => {}
            Err(russh::keys::Error::KeyChanged { line }) => {
                return Err(Error::Invalid(format!(
                    "{host} shows the host key {shown}, but ~/.ssh/known_hosts records another \
                     one for it (line {line}): the server may have been reinstalled, or someone \
                     may be intercepting the connection. Ask the server's administrator; if the \
                     key changed on purpose, remove the old one with `ssh-keygen -R {host}` and \
                     add the destination again"
                )));
            }
            // Not recorded (or no known_hosts): the user must confirm it.
            Ok(false) | Err(_) => match spec.trust_host_key.as_deref().map(str::trim) {
                Some(given) if given == shown => {}
                Some(given) => {
                    return Err(Error::Invalid(format!(
                        "{host} shows the host key {shown}, not {given}; nothing was added. If \
                         the fingerprint you were given is right, someone may be intercepting \
                         the connection"
                    )));
                }
                None => {
                    return Err(Error::HostKeyUnknown {
                        host: host.to_string(),
                        port: spec.port,
                        fingerprint: shown,
                    });
                }
            },
        }
        let (auth, secret) = match &spec.sign_in {
            SftpSignIn::Password(p) => (crate::store::SshAuth::Password, Some(p.clone())),
            SftpSignIn::Key(k) => (crate::store::SshAuth::Key, Some(k.clone())),
            SftpSignIn::Agent => (crate::store::SshAuth::Agent, None),
        };
        let host_key = key
            .to_openssh()
            .map_err(|e| Error::Invalid(format!("the host key of {host}: {e}")))?;
        let target = sftp::SshTarget {
            host: host.to_string(),
            port: spec.port,
            user: user.to_string(),
            auth,
            secret: secret.clone(),
        };
        let engine_id = self.home.engine_id()?;
        let root = crate::dest::Sftp::new(name, target, key, spec.path.trim(), &engine_id)
            .and_then(|d| d.resolve_root())
            .map_err(invalid)?;
        let notices = match &secret {
            Some(s) => self.keep_secret(
                name,
                Some(s),
                if auth == crate::store::SshAuth::Key {
                    "private key"
                } else {
                    "password"
                },
            )?,
            None => Vec::new(),
        };
        self.store.insert_sftp_destination(
            name,
            &sftp::address(host, spec.port),
            user,
            &root,
            &crate::store::SshSettings { auth, host_key },
        )?;
        self.added(name, notices)
    }

    /// Pins an SFTP server's host key again after it changed on purpose,
    /// when it has the fingerprint the user confirmed.
    fn trust_host_key_again(&self, row: &mut DestRow, given: &str) -> Result<()> {
        use crate::dest::sftp;
        let (host, port) = sftp::host_port(row.url.as_deref().unwrap_or_default())
            .map_err(|why| Error::Invalid(format!("destination {}: {why}", row.name)))?;
        let key = sftp::server_host_key(&row.name, &host, port)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let shown = sftp::fingerprint(&key);
        if given.trim() != shown {
            return Err(Error::Invalid(format!(
                "{host} shows the host key {shown}, not {}; nothing was changed. If the \
                 fingerprint you were given is right, someone may be intercepting the connection",
                given.trim()
            )));
        }
        let ssh = row.ssh.as_mut().ok_or_else(|| {
            Error::Invalid(format!("destination {} is not an SFTP server", row.name))
        })?;
        ssh.host_key = key
            .to_openssh()
            .map_err(|e| Error::Invalid(format!("the host key of {host}: {e}")))?;
        Ok(())
    }

    /// Puts a secret in the keyring; without a keyring the environment
    /// variable must hold it (a notice says so), else the error says how.
    pub(super) fn keep_secret(
        &self,
        name: &str,
        secret: Option<&str>,
        what: &str,
    ) -> Result<Vec<String>> {
        let var = crate::secrets::env_var(name);
        match secret {
            Some(s) => match crate::secrets::store(name, s) {
                Ok(()) => Ok(Vec::new()),
                Err(_) if std::env::var_os(&var).is_some() => Ok(vec![format!(
                    "no system keyring is available; the {what} is taken from {var} each time"
                )]),
                Err(e) => Err(e),
            },
            None if std::env::var_os(&var).is_some() => {
                Ok(vec![format!("the {what} is taken from {var} each time")])
            }
            None => Err(Error::Invalid(format!(
                "destination {name} needs {} {what}: give it on the prompt or with --secret-stdin, or set {var}",
                if what.starts_with(['a', 'A', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                }
            ))),
        }
    }

    /// Checks that a destination can be used: one line per check.
    pub fn test_destination(&self, name: &str) -> Result<Vec<crate::dest::Check>> {
        let Some(row) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        Ok(crate::dest::open(&self.home, &row)?.check())
    }

    pub fn add_local_destination(&self, name: &str, path: &Path) -> Result<DestInfo> {
        let name = name.trim();
        self.check_new_dest_name(name)?;
        let path = fs::canonicalize(path).map_err(|e| {
            Error::Invalid(format!(
                "the folder {} cannot be used as a destination: {e}. Create it (or connect its drive) first",
                path.display()
            ))
        })?;
        if !path.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a folder",
                path.display()
            )));
        }
        for w in self.store.watches()? {
            if overlaps(&path, &w.root) {
                return Err(Error::Invalid(format!(
                    "{} overlaps the watched folder {}; a destination must be outside every watched folder",
                    path.display(),
                    w.root.display()
                )));
            }
        }
        self.store
            .insert_destination(name, DestKind::Local, Some(&path))?;
        crate::local_api::changed(&self.home);
        let row = self
            .store
            .destination_by_name(name)?
            .expect("just inserted");
        Ok(self.dest_info(&row))
    }

    /// Changes how a remote destination is reached: its address, account,
    /// secret, region, addressing and the plain-HTTP consent. Where the
    /// albums live (bucket, prefix, local folder) cannot change: the index
    /// records what is there. The new settings are checked before saving,
    /// and a running engine reopens its destinations.
    pub fn edit_destination(&self, edit: &DestEdit) -> Result<(DestInfo, Vec<String>)> {
        let Some(mut row) = self.store.destination_by_name(&edit.name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {:?}; see `shoebox dest list`",
                edit.name
            )));
        };
        if row.kind == DestKind::Local {
            return Err(Error::Invalid(format!(
                "destination {:?} is a folder: it has no connection settings to edit",
                edit.name
            )));
        }
        if row.kind == DestKind::Sftp {
            return self.edit_sftp_destination(edit, row);
        }
        if edit.trust_host_key.is_some() {
            return Err(Error::Invalid(format!(
                "destination {:?} is not an SFTP server: it has no host key",
                edit.name
            )));
        }
        if let Some(url) = &edit.url {
            row.url = Some(url.trim().to_string());
        }
        if let Some(user) = &edit.user {
            let user = user.trim();
            row.username = (!user.is_empty()).then(|| user.to_string());
        }
        if let Some(insecure) = edit.allow_insecure_http {
            row.insecure_http = insecure;
        }
        if let Some(pem) = &edit.trust_certificate {
            row.tls_cert = match pem {
                Some(pem) => Some(crate::dest::tls::parse_pem(pem).map_err(|why| {
                    Error::Invalid(format!("the certificate for {:?}: {why}", row.name))
                })?),
                None => None,
            };
        }
        if let Some(s3) = row.s3.as_mut() {
            if let Some(region) = &edit.region {
                s3.region = region.trim().to_string();
            }
            if let Some(path_style) = edit.path_style {
                s3.path_style = path_style;
            }
        }
        let has_secret =
            edit.secret.is_some() || crate::secrets::load(&row.name).ok().flatten().is_some();
        let url = row.url.clone().unwrap_or_default();
        crate::dest::http::parse_url(
            &row.name,
            &url,
            matches!(row.kind, DestKind::S3 | DestKind::Immich)
                || row.username.is_some() && has_secret,
            row.insecure_http,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        if row.kind == DestKind::S3 && row.username.is_none() {
            return Err(Error::Invalid(
                "an S3 destination needs an access key id".into(),
            ));
        }
        self.save_edit(&row, edit.secret.as_deref())
    }

    /// Saves an edited destination and its new secret, if any; a running
    /// engine reopens its destinations.
    fn save_edit(&self, row: &DestRow, secret: Option<&str>) -> Result<(DestInfo, Vec<String>)> {
        let notices = match secret {
            Some(secret) => self.keep_secret(&row.name, Some(secret), "secret")?,
            None => Vec::new(),
        };
        self.store.update_destination(row)?;
        self.store.set_setting(
            crate::daemon::DEST_EPOCH_KEY,
            &crate::store::now_ms().to_string(),
        )?;
        crate::local_api::changed(&self.home);
        Ok((self.dest_info(row), notices))
    }

    /// `edit_destination` for SFTP: the account, its password or key, and
    /// the host key after it changed. The address and folder stay.
    fn edit_sftp_destination(
        &self,
        edit: &DestEdit,
        mut row: DestRow,
    ) -> Result<(DestInfo, Vec<String>)> {
        // A form sends every field; only a change is refused.
        let moves = edit
            .url
            .as_deref()
            .is_some_and(|u| Some(u.trim()) != row.url.as_deref());
        if moves
            || edit.region.is_some()
            || edit.path_style == Some(true)
            || edit.allow_insecure_http == Some(true)
            || matches!(edit.trust_certificate, Some(Some(_)))
        {
            return Err(Error::Invalid(format!(
                "destination {:?} is an SFTP server: only its --user, its password or key \
                 (--secret-stdin) and --trust-host-key can change; for another server, add a \
                 new destination",
                edit.name
            )));
        }
        if let Some(user) = &edit.user {
            let user = user.trim();
            if user.is_empty() {
                return Err(Error::Invalid("--user must not be empty".into()));
            }
            row.username = Some(user.to_string());
        }
        if let Some(given) = &edit.trust_host_key {
            self.trust_host_key_again(&mut row, given)?;
        }
        let auth = row.ssh.as_ref().map(|s| s.auth);
        if edit.secret.is_some() && auth == Some(crate::store::SshAuth::Agent) {
            return Err(Error::Invalid(format!(
                "destination {:?} signs in with your ssh-agent: it keeps no secret to change",
                edit.name
            )));
        }
        let secret = match (edit.secret.as_deref(), auth) {
            // A new key: kept as the keyring keeps keys.
            (Some(text), Some(crate::store::SshAuth::Key)) => Some(
                crate::dest::sftp::private_key_text(text, None).map_err(|e| {
                    Error::Invalid(format!(
                        "the new key cannot be used ({e}); give an OpenSSH private key \
                         without a passphrase"
                    ))
                })?,
            ),
            (s, _) => s.map(str::to_string),
        };
        self.save_edit(&row, secret.as_deref())
    }

    /// Trusts exactly the certificate in the PEM text `pem` for the remote
    /// destination `name` (`None`: the system's roots only again).
    pub fn pin_certificate(&self, name: &str, pem: Option<Vec<u8>>) -> Result<DestInfo> {
        let edit = DestEdit {
            name: name.to_string(),
            trust_certificate: Some(pem),
            ..DestEdit::default()
        };
        Ok(self.edit_destination(&edit)?.0)
    }

    /// Starts a destination's backup again: forgets what the store recorded
    /// there and its identity marker, so that the next sync writes a new
    /// marker and backs every file up to it again (objects still there
    /// whole are adopted, not sent twice). For a drive replaced on purpose
    /// or a backup folder that was deleted. Refused while an engine runs.
    /// Returns how many files were queued again.
    pub fn reset_destination(&self, name: &str) -> Result<u64> {
        let Some(d) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        let _lock = self.lock("dest reset")?;
        self.store.reset_destination(d.id)
    }

    pub fn remove_destination(&self, name: &str) -> Result<()> {
        let Some(d) = self.store.destination_by_name(name)? else {
            return Err(Error::Invalid(format!(
                "there is no destination named {name:?}; see `shoebox dest list`"
            )));
        };
        if name == LIBRARY_DEST {
            return Err(Error::Invalid(
                "the built-in library destination cannot be removed".into(),
            ));
        }
        let users: Vec<_> = self
            .store
            .watches()?
            .into_iter()
            .filter(|w| w.dest_id == d.id)
            .collect();
        if let Some(w) = users.first() {
            return Err(Error::Invalid(format!(
                "destination {name:?} is used by the watch of {} ({} watch(es) in all); remove those watches first",
                w.root.display(),
                users.len()
            )));
        }
        self.store.delete_destination(d.id)?;
        crate::secrets::forget(name);
        crate::local_api::changed(&self.home);
        Ok(())
    }
}
