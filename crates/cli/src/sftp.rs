//! `shoebox dest add NAME sftp`: the sign-in (a key file, a password or
//! the ssh-agent) and the host key, confirmed on the terminal the first
//! time a server is seen.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use shoebox_core::{Engine, Error, KeyProblem, SftpSignIn, SftpSpec};

#[derive(Debug, Args)]
pub struct SftpArgs {
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 22)]
    port: u16,
    #[arg(long)]
    user: String,
    /// The folder albums go into on the server (a relative path starts at
    /// the account's home folder); created if missing.
    #[arg(long, value_name = "DIR")]
    path: String,
    /// Sign in with this private key. It is copied into the system keyring
    /// (decrypted with its passphrase, asked for or read from standard
    /// input with --password-stdin). Without --key or --password-stdin,
    /// Shoebox signs in with your ssh-agent.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Read the password (with --key: the key's passphrase) from standard
    /// input. It is kept in the system keyring only.
    #[arg(long)]
    password_stdin: bool,
    /// Sign in with a password, asked for on the terminal.
    #[arg(long, conflicts_with_all = ["key", "password_stdin"])]
    password: bool,
    /// Trust the server's host key when it has this fingerprint
    /// (`SHA256:…`), for a server ~/.ssh/known_hosts does not know. Without
    /// it, the fingerprint is shown and asked about on the terminal.
    #[arg(long, value_name = "FINGERPRINT")]
    trust_host_key: Option<String>,
}

/// Adds the destination `name`; returns what to print.
pub fn add(engine: &Engine, name: String, args: SftpArgs) -> Result<()> {
    let terminal = std::io::stdin().is_terminal();
    let sign_in = match (&args.key, args.password_stdin || args.password) {
        (Some(file), _) => SftpSignIn::Key(read_key(file, args.password_stdin, terminal)?),
        (None, true) => SftpSignIn::Password(
            crate::read_secret(true, args.password_stdin, "Password")?
                .context("no password was given: pipe it in with --password-stdin")?,
        ),
        (None, false) => SftpSignIn::Agent,
    };
    let mut spec = SftpSpec {
        name,
        host: args.host,
        port: args.port,
        user: args.user,
        path: args.path,
        sign_in,
        trust_host_key: args.trust_host_key,
    };
    let (d, notices) = match engine.add_sftp_destination(&spec) {
        Err(Error::HostKeyUnknown {
            host, fingerprint, ..
        }) if terminal && spec.trust_host_key.is_none() => {
            if !confirm(&host, &fingerprint)? {
                anyhow::bail!("the host key of {host} was not trusted; nothing was added");
            }
            spec.trust_host_key = Some(fingerprint);
            engine.add_sftp_destination(&spec)?
        }
        other => other?,
    };
    crate::print_notes(&notices);
    println!(
        "added destination {} ({}{}, host key {})",
        d.name,
        d.url.unwrap_or_default(),
        d.path.unwrap_or_default(),
        d.host_key.unwrap_or_default()
    );
    Ok(())
}

/// The key file's key, decrypted with its passphrase if it has one.
fn read_key(file: &std::path::Path, passphrase_stdin: bool, terminal: bool) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("the key file {} cannot be read", file.display()))?;
    let passphrase = if passphrase_stdin {
        crate::read_secret(true, true, "Passphrase")?
    } else {
        None
    };
    match shoebox_core::private_key_text(&text, passphrase.as_deref()) {
        Ok(key) => Ok(key),
        Err(KeyProblem::NeedsPassphrase) if terminal && passphrase.is_none() => {
            let p = rpassword::prompt_password(format!("Passphrase for {}: ", file.display()))?;
            shoebox_core::private_key_text(&text, Some(&p)).map_err(|e| key_error(file, e))
        }
        Err(e) => Err(key_error(file, e)),
    }
}

fn key_error(file: &std::path::Path, problem: KeyProblem) -> anyhow::Error {
    match problem {
        KeyProblem::NeedsPassphrase => anyhow::anyhow!(
            "the key {} is protected by a passphrase: give it with --password-stdin, or load the \
             key into your ssh-agent (`ssh-add {}`) and leave out --key",
            file.display(),
            file.display()
        ),
        KeyProblem::Unreadable(why) => anyhow::anyhow!(
            "the key {} cannot be used: {why}. Give an OpenSSH private key (as ssh-keygen writes)",
            file.display()
        ),
    }
}

/// Shows a new server's fingerprint and asks whether to trust it.
fn confirm(host: &str, fingerprint: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "{host} is not known to this computer yet.\nIts host key fingerprint is {fingerprint}.\n\
         Check it with the server's administrator before you trust it.\nTrust it? [y/N] "
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
