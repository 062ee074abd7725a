//! One SSH connection to an SFTP server: the host key checked against the
//! pinned one, the sign-in (password, private key or ssh-agent), and the
//! `sftp` subsystem with the OpenSSH extensions it offers. Everything here
//! is async (russh); [`super::Sftp`] drives it from the engine's threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;

use crate::error::DestError;
use crate::store::SshAuth;

/// How long connecting, the key exchange and signing in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one SFTP request may wait for its answer.
pub(super) const REQUEST_TIMEOUT_SECS: u64 = 30;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    /// The password or the private key (OpenSSH text), as `auth` says;
    /// `None` for the agent.
    pub secret: Option<String>,
}

impl std::fmt::Debug for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A key's SHA-256 fingerprint as OpenSSH shows it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses a host key as OpenSSH writes public keys.
pub fn parse_host_key(text: &str) -> Result<PublicKey, String> {
    PublicKey::from_openssh(text.trim()).map_err(|e| format!("an unreadable host key ({e})"))
}

/// An open SFTP session and what its server can do.
pub(super) struct Conn {
    pub ssh: client::Handle<HostCheck>,
    pub sftp: Arc<RawSftpSession>,
    /// `posix-rename@openssh.com`: a rename that replaces the target.
    pub posix_rename: bool,
    /// `fsync@openssh.com`.
    pub fsync: bool,
    /// `hardlink@openssh.com`: a second name for the same bytes.
    pub hardlink: bool,
    /// `statvfs@openssh.com`: the free space of the server's disk.
    pub statvfs: bool,
}

/// Accepts exactly the pinned host key, and remembers the key the server
/// showed (to name it when it is refused, or to pin it at first use).
pub(super) struct HostCheck {
    pinned: Option<PublicKey>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not pinned; OpenSSH servers offer plain
        // keys unless configured otherwise.
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false);
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.clone());
        Ok(self
            .pinned
            .as_ref()
            .is_some_and(|p| p.key_data() == key.key_data()))
    }
}

fn unavailable(name: &str, why: String) -> DestError {
    DestError::Unavailable {
        name: name.to_string(),
        why,
    }
}

fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        // A dead link is noticed within a few minutes of idling.
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        nodelay: true,
        ..client::Config::default()
    })
}

/// Connects and completes the key exchange, accepting only `pinned`.
/// Returns the handle, or the error and the key the server showed.
async fn handshake(
    name: &str,
    host: &str,
    port: u16,
    pinned: Option<PublicKey>,
) -> Result<client::Handle<HostCheck>, (DestError, Option<PublicKey>)> {
    let seen = Arc::new(Mutex::new(None));
    let handler = HostCheck {
        pinned,
        seen: seen.clone(),
    };
    let attempt = async {
        let socket = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| {
                unavailable(
                    name,
                    format!(
                        "cannot reach {host} port {port} ({e}); check the address and that \
                         the server is up"
                    ),
                )
            })?;
        let _ = socket.set_nodelay(true);
        client::connect_stream(config(), socket, handler)
            .await
            .map_err(|e| {
                unavailable(
                    name,
                    format!("the SSH connection to {host} port {port} failed ({e})"),
                )
            })
    };
    let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(DestError::Interrupted {
            name: name.to_string(),
            what: format!("connect to {host} port {port}"),
            why: format!("no SSH answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
    };
    let key = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    result.map_err(|e| (e, key))
}

/// The host key a server shows, for pinning it when a destination is added
/// (the connection ends there: nothing is signed in).
pub async fn host_key_of(name: &str, host: &str, port: u16) -> Result<PublicKey, DestError> {
    match handshake(name, host, port, None).await {
        Err((_, Some(key))) => Ok(key),
        // Nothing is pinned, so a handshake that passes showed no key.
        Ok(_) => Err(unavailable(
            name,
            format!("{host} port {port} showed no host key"),
        )),
        Err((e, None)) => Err(e),
    }
}

/// Connects, checks the host key against `pinned`, signs in and opens the
/// `sftp` subsystem.
pub(super) async fn open(
    name: &str,
    target: &SshTarget,
    pinned: &PublicKey,
) -> Result<Conn, DestError> {
    let (host, port) = (target.host.as_str(), target.port);
    let mut ssh = match handshake(name, host, port, Some(pinned.clone())).await {
        Ok(ssh) => ssh,
        Err((_, Some(shown))) if shown.key_data() != pinned.key_data() => {
            let now = fingerprint(&shown);
            return Err(unavailable(
                name,
                format!(
                    "the server's host key has changed (it was {}, it is now {now}), so nothing \
                     is sent: the server may have been reinstalled, or someone may be \
                     intercepting the connection. Ask the server's administrator for its \
                     fingerprint (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the \
                     server); if it is {now}, run `shoebox dest edit {name} --trust-host-key \
                     {now}`",
                    fingerprint(pinned)
                ),
            ));
        }
        Err((e, _)) => return Err(e),
    };
    let signed_in = tokio::time::timeout(CONNECT_TIMEOUT, sign_in(name, &mut ssh, target))
        .await
        .unwrap_or_else(|_| {
            Err(DestError::Interrupted {
                name: name.to_string(),
                what: format!("sign in to {host}"),
                why: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })
        });
    if let Err(e) = signed_in {
        let _ = ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        return Err(e);
    }
    let lost = |what: &str, e: String| DestError::Interrupted {
        name: name.to_string(),
        what: what.to_string(),
        why: e,
    };
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| lost("open an SSH channel", e.to_string()))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| lost("start SFTP", e.to_string()))?;
    let mut sftp = RawSftpSession::new(channel.into_stream());
    sftp.set_timeout(REQUEST_TIMEOUT_SECS);
    let version = sftp.init().await.map_err(|e| {
        unavailable(
            name,
            format!(
                "{host} accepted the sign-in but offers no SFTP ({e}); enable its SFTP \
                 subsystem (`Subsystem sftp internal-sftp` in sshd_config)"
            ),
        )
    })?;
    let has = |ext: &str| version.extensions.contains_key(ext);
    if has("limits@openssh.com")
        && let Ok(limits) = sftp.limits().await
    {
        sftp.set_limits(limits.into());
    }
    Ok(Conn {
        posix_rename: has("posix-rename@openssh.com"),
        fsync: has("fsync@openssh.com"),
        hardlink: has("hardlink@openssh.com"),
        statvfs: has("statvfs@openssh.com"),
        sftp: Arc::new(sftp),
        ssh,
    })
}

async fn sign_in(
    name: &str,
    ssh: &mut client::Handle<HostCheck>,
    target: &SshTarget,
) -> Result<(), DestError> {
    let user = target.user.as_str();
    let refused = |what: &str| {
        unavailable(
            name,
            format!(
                "the server refused {what} for the user {user}; check them, then run `shoebox \
                 dest edit {name}` with the right ones"
            ),
        )
    };
    let failed = |e: russh::Error| unavailable(name, format!("signing in failed ({e})"));
    let missing = || {
        unavailable(
            name,
            format!(
                "its secret is missing: add it again, or set {}",
                crate::secrets::env_var(name)
            ),
        )
    };
    match target.auth {
        SshAuth::Password => {
            let password = target.secret.as_deref().ok_or_else(missing)?;
            let r = ssh
                .authenticate_password(user, password)
                .await
                .map_err(failed)?;
            if !r.success() {
                return Err(refused("the password"));
            }
        }
        SshAuth::Key => {
            let text = target.secret.as_deref().ok_or_else(missing)?;
            let key = russh::keys::decode_secret_key(text, None).map_err(|e| {
                unavailable(
                    name,
                    format!("its private key cannot be read ({e}); add the destination again"),
                )
            })?;
            let hash = ssh
                .best_supported_rsa_hash()
                .await
                .map_err(failed)?
                .flatten();
            let r = ssh
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(failed)?;
            if !r.success() {
                return Err(refused("the private key"));
            }
        }
        SshAuth::Agent => sign_in_with_agent(name, ssh, user).await?,
    }
    Ok(())
}

/// Tries each key the user's ssh-agent holds.
#[cfg(unix)]
async fn sign_in_with_agent(
    name: &str,
    ssh: &mut client::Handle<HostCheck>,
    user: &str,
) -> Result<(), DestError> {
    use russh::keys::agent::AgentIdentity;
    let no_agent = |e: String| {
        unavailable(
            name,
            format!(
                "it signs in with your ssh-agent, which cannot be reached ({e}); start it and \
                 add your key (`ssh-add`), with SSH_AUTH_SOCK set for Shoebox"
            ),
        )
    };
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| no_agent(e.to_string()))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| no_agent(e.to_string()))?;
    let hash = ssh
        .best_supported_rsa_hash()
        .await
        .map_err(|e| unavailable(name, format!("signing in failed ({e})")))?
        .flatten();
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        match ssh
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            _ => continue,
        }
    }
    Err(unavailable(
        name,
        format!(
            "the server accepted none of the keys in your ssh-agent for the user {user}; add \
             the right key with `ssh-add`"
        ),
    ))
}

#[cfg(not(unix))]
async fn sign_in_with_agent(
    name: &str,
    _ssh: &mut client::Handle<HostCheck>,
    _user: &str,
) -> Result<(), DestError> {
    Err(unavailable(
        name,
        "signing in with an ssh-agent is not supported on this system yet; add the \
         destination again with a key file or a password"
            .to_string(),
    ))
}
