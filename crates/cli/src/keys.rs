//! Encrypted destinations on the command line: `dest add … --encrypt`,
//! `dest encrypt` (the key of an existing backup, as on a new computer) and
//! `dest export-key`. Passphrases are asked for on the terminal, or read
//! from standard input with --passphrase-stdin.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use shoebox_core::{Engine, Error, KeyFileProblem, KeySource};

/// Encryption of a destination being added.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Encrypt every file (age format) with a new key kept in the system
    /// keyring. Export the key afterwards with `dest export-key`.
    #[arg(long, global = true)]
    encrypt: bool,
    /// Hide album and file names too (each becomes a token; a manifest,
    /// itself encrypted, lists them). Implies --encrypt.
    #[arg(long, global = true)]
    encrypt_names: bool,
    /// Encrypt with the key of an existing backup: the key file `dest
    /// export-key` wrote (or any age identity file). Implies --encrypt.
    #[arg(long, value_name = "FILE", global = true)]
    identity: Option<PathBuf>,
    /// Read the key file's passphrase from standard input.
    #[arg(long, global = true)]
    passphrase_stdin: bool,
}

impl EncryptArgs {
    /// True when any encryption was asked for.
    pub fn requested(&self) -> bool {
        self.encrypt || self.encrypt_names || self.identity.is_some()
    }
}

/// `dest encrypt NAME`: the key of a destination that holds nothing yet.
#[derive(Debug, Args)]
pub struct EncryptCommand {
    name: String,
    /// Hide album and file names too.
    #[arg(long)]
    encrypt_names: bool,
    /// The key file of an existing backup; without it, a new key.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Read the key file's passphrase from standard input.
    #[arg(long)]
    passphrase_stdin: bool,
}

/// `dest export-key NAME --out FILE`.
#[derive(Debug, Args)]
pub struct ExportCommand {
    name: String,
    /// Where to write the key file (never over an existing file).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Read the passphrase that protects the file from standard input.
    #[arg(long)]
    passphrase_stdin: bool,
}

impl EncryptArgs {
    pub fn wanted(&self) -> bool {
        self.encrypt || self.encrypt_names || self.identity.is_some()
    }
}

/// Encrypts the destination just added as asked; if that fails, the
/// destination is removed again, so that nothing is ever sent to it in
/// the clear by mistake.
pub fn encrypt_added(engine: &Engine, name: &str, args: &EncryptArgs) -> Result<()> {
    if !args.wanted() {
        return Ok(());
    }
    let done = encrypt(
        engine,
        name,
        args.identity.as_deref(),
        args.passphrase_stdin,
        args.encrypt_names,
    );
    if done.is_err() {
        let _ = engine.remove_destination(name);
    }
    done.context(format!("destination {name} was not added"))
}

/// `dest encrypt`.
pub fn encrypt_command(engine: &Engine, cmd: &EncryptCommand) -> Result<()> {
    encrypt(
        engine,
        &cmd.name,
        cmd.identity.as_deref(),
        cmd.passphrase_stdin,
        cmd.encrypt_names,
    )
}

fn encrypt(
    engine: &Engine,
    name: &str,
    identity: Option<&Path>,
    passphrase_stdin: bool,
    hide_names: bool,
) -> Result<()> {
    let (recipient, notices) = match identity {
        None => engine.encrypt_destination(name, KeySource::New, hide_names)?,
        Some(file) => {
            let bytes = std::fs::read(file)
                .with_context(|| format!("could not read the key file {}", file.display()))?;
            let passphrase = passphrase_stdin
                .then(|| read_passphrase(true, "Passphrase of the key file"))
                .transpose()?;
            let source = |passphrase| KeySource::File {
                bytes: bytes.clone(),
                passphrase,
            };
            match engine.encrypt_destination(name, source(passphrase.clone()), hide_names) {
                Err(Error::KeyFile {
                    problem: KeyFileProblem::NeedsPassphrase,
                    ..
                }) if passphrase.is_none() => {
                    let asked = read_passphrase(false, "Passphrase of the key file")?;
                    engine.encrypt_destination(name, source(Some(asked)), hide_names)?
                }
                other => other?,
            }
        }
    };
    for n in &notices {
        eprintln!("note: {n}");
    }
    println!("destination {name} is encrypted (age, public key {recipient})");
    Ok(())
}

/// `dest export-key`.
pub fn export(engine: &Engine, cmd: &ExportCommand) -> Result<()> {
    let passphrase = if cmd.passphrase_stdin {
        read_passphrase(true, "Passphrase")?
    } else {
        let first = read_passphrase(false, "Passphrase to protect the key file")?;
        let again = read_passphrase(false, "The same passphrase again")?;
        if first != again {
            bail!("the two passphrases differ; nothing was written");
        }
        first
    };
    engine.export_key(&cmd.name, &passphrase, &cmd.out)?;
    println!(
        "wrote the key of {} to {}. Keep it, and its passphrase, away from this computer; \
         `age -d -i {} FILE.age` decrypts any file of the backup, even without Shoebox",
        cmd.name,
        cmd.out.display(),
        cmd.out.display()
    );
    Ok(())
}

/// A passphrase from standard input (one line) or the terminal.
fn read_passphrase(from_stdin: bool, prompt: &str) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(!p.is_empty(), "standard input had no passphrase");
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed: give it on a terminal, or with --passphrase-stdin");
    }
    Ok(rpassword::prompt_password(format!("{prompt}: "))?)
}
