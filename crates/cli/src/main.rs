//! `shoebox`: the headless host of the Shoebox engine. Parses the command
//! line, opens the engine on the data directory and prints results; every
//! decision is the engine's.

mod keys;
mod output;
mod service;
mod sftp;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use shoebox_core::{
    AlbumMode, AlbumNames, DateFormat, DestEdit, Engine, Home, LIBRARY_DEST, OnDelete, S3Spec,
    SyncOptions, WatchSpec,
};

/// Shoebox keeps folders of photos and videos backed up into albums.
#[derive(Debug, Parser)]
#[command(name = "shoebox", version, about)]
struct Cli {
    /// Keep all state, settings, logs and the default library in DIR
    /// (default: the platform's app data folder).
    #[arg(long, global = true, env = "SHOEBOX_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// More detail in the log on stderr (-v: info, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Places albums are stored.
    #[command(subcommand)]
    Dest(DestCommand),
    /// Folders that are backed up.
    #[command(subcommand)]
    Watch(WatchCommand),
    /// How considerate background work is: the upload limit, the upload
    /// hours, and what uploads do on battery and on a metered network.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the engine (`shoebox run`) in the background from login: a
    /// systemd user unit on Linux, a launchd agent on macOS, a scheduled
    /// task on Windows.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print the shell completion script for SHELL (bash: save it as
    /// /usr/share/bash-completion/completions/shoebox, or source it).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `shoebox man | man -l -`).
    Man,
    /// Scan every watched folder, upload everything pending, then exit.
    Sync {
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Reconcile every watch, then watch the folders and upload what settles,
    /// until stopped (Ctrl-C / SIGTERM).
    Run {
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        engine: EngineArgs,
        /// Full rescan of every watch this often, even with a working watcher
        /// (±25 %).
        #[arg(long, default_value = "1h", value_parser = at_least_a_second)]
        full_scan_every: std::time::Duration,
        /// Rescan folders that cannot be watched live (network drives, too
        /// many folders for the OS limit) this often.
        #[arg(long, default_value = "60s", value_parser = at_least_a_second)]
        poll_every: std::time::Duration,
        /// Assume the OS allows only this many directory watches (default: ask
        /// the OS, e.g. fs.inotify.max_user_watches).
        #[arg(long, value_name = "N")]
        watch_limit: Option<u64>,
        /// Check that the destinations still hold what was backed up
        /// (presence and size, as `shoebox verify`) this often, when idle.
        #[arg(long, default_value = "30days", value_parser = at_least_a_second)]
        check_every: std::time::Duration,
    },
    /// Pause syncing (persisted; a running engine stops uploading at once).
    Pause,
    /// Resume syncing.
    Resume {
        /// Also back up now through what holds the running engine (quiet
        /// hours, the battery, a metered network), until it ends.
        #[arg(long)]
        anyway: bool,
    },
    /// What is watched and how far the backup is.
    Status {
        /// List what the scans left out on purpose (junk, hidden files, not
        /// photos or videos), with the reason for each.
        #[arg(long)]
        ignored: bool,
        /// List every file: how far its backup is, its album and name on
        /// the destination, and when it was taken (and where that date was
        /// read: metadata, takeout, file-name or modified).
        #[arg(long, conflicts_with = "ignored")]
        files: bool,
        /// Keep following the running engine: the status line whenever it
        /// changes and a line for each file done, failed or removed (with
        /// `--json`, one object per line), until the engine stops.
        #[arg(long, conflicts_with_all = ["ignored", "files"])]
        follow: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Restore albums (or everything) from a destination into a folder, with
    /// their names and dates. Never overwrites: a taken name gets a number.
    /// Run it again after an interruption to continue.
    Restore {
        /// The destination to restore from (on a new machine, add it first
        /// with `dest add`, with the backup's address and credentials).
        /// Without it: the one destination besides the library, or the
        /// library when there is no other.
        #[arg(long)]
        dest: Option<String>,
        /// Only this album (repeat for more).
        #[arg(long = "album", value_name = "ALBUM")]
        albums: Vec<String>,
        /// Only files whose ALBUM/NAME matches this pattern, e.g.
        /// '2024-*/*.heic' (`*` stays within a name; repeat for more).
        #[arg(long = "path", value_name = "GLOB")]
        paths: Vec<String>,
        /// The folder to restore into (`DIR/<album>/<file>`).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        #[command(flatten)]
        json: Json,
    },
    /// Check that every file the index records is on its destination,
    /// whole: missing, damaged and unexpected objects, one line each (exit
    /// 1 if any is missing or damaged).
    Verify {
        /// Only this destination.
        #[arg(long)]
        dest: Option<String>,
        /// Read every object back and compare its content (not only its
        /// presence and size).
        #[arg(long)]
        deep: bool,
        /// Queue missing and damaged files to be sent again by the next
        /// sync (a damaged copy is replaced).
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Check the database for damage; `--repair` sets a damaged one aside and
    /// rebuilds it (settings kept, file index rebuilt by the next sync,
    /// nothing uploaded twice).
    Doctor {
        /// Rebuild a damaged database.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        json: Json,
    },
}

#[derive(Debug, Args)]
struct EngineArgs {
    /// Parallel uploads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// How long a file must stay unchanged before it is read (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    settle: std::time::Duration,
}

impl EngineArgs {
    fn sync_options(&self) -> SyncOptions {
        SyncOptions {
            workers: usize::from(self.workers),
            settle: self.settle,
        }
    }
}

#[derive(Debug, Args)]
struct Json {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum DestCommand {
    /// List destinations.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Add a destination.
    Add {
        /// A name for it, used with `watch add --dest`.
        name: String,
        #[command(subcommand)]
        kind: DestKind,
        #[command(flatten)]
        encrypt: keys::EncryptArgs,
    },
    /// Encrypt a destination that holds nothing yet (the library before its
    /// first backup), with a new key or, on a new computer, the key file of
    /// the backup already there.
    Encrypt(keys::EncryptCommand),
    /// Write an encrypted destination's key to a file protected by a
    /// passphrase. Without this file, the backup cannot be decrypted if
    /// this computer is lost.
    ExportKey(keys::ExportCommand),
    /// Remove a destination (refused while a watch uses it). Deletes no files.
    Remove { name: String },
    /// Check reachability, credentials and write permission, one line each.
    Test { name: String },
    /// Back everything up to a destination again, as to a new one: for a
    /// drive replaced on purpose, or a backup there that was deleted.
    /// Deletes nothing; what is still there whole is not sent again.
    Reset { name: String },
    /// Change how a remote destination is reached (address, account, secret,
    /// region); where its albums live cannot change.
    Edit {
        name: String,
        /// The new WebDAV URL or S3 endpoint.
        #[arg(long, alias = "endpoint")]
        url: Option<String>,
        /// The new WebDAV user or S3 access key id.
        #[arg(long, alias = "access-key-id")]
        user: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        path_style: Option<bool>,
        #[arg(long)]
        allow_insecure_http: Option<bool>,
        /// Read a new password, secret key or API key from standard input.
        #[arg(long, aliases = ["password-stdin", "api-key-stdin"])]
        secret_stdin: bool,
        /// Trust exactly this server certificate (PEM file): for your own
        /// server with a self-signed certificate. Others are verified
        /// against the system's roots.
        #[arg(long, value_name = "PEM")]
        trust_certificate: Option<PathBuf>,
        /// Stop trusting the certificate given with --trust-certificate.
        #[arg(long, conflicts_with = "trust_certificate")]
        forget_certificate: bool,
        /// SFTP: trust the server's new host key, after it changed on
        /// purpose, when it has this fingerprint (`SHA256:…`).
        #[arg(long, value_name = "FINGERPRINT")]
        trust_host_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DestKind {
    /// A local or network folder.
    Local {
        #[arg(long, value_name = "DIR")]
        path: PathBuf,
    },
    /// A WebDAV server (Nextcloud, ownCloud, Synology, Apache, rclone serve…).
    Webdav {
        /// The folder (collection) albums go into, e.g. https://cloud.example/remote.php/dav/files/me/Photos
        #[arg(long)]
        url: String,
        #[arg(long)]
        user: Option<String>,
        /// Read the password from standard input (otherwise it is asked for
        /// on the terminal). It is kept in the system keyring only.
        #[arg(long)]
        password_stdin: bool,
        /// Allow sending the password over plain http:// (trusted networks only).
        #[arg(long)]
        allow_insecure_http: bool,
        /// Trust exactly this server certificate (PEM file): for your own
        /// server with a self-signed certificate. Others are verified
        /// against the system's roots.
        #[arg(long, value_name = "PEM")]
        trust_certificate: Option<PathBuf>,
    },
    /// S3-compatible object storage (AWS S3, Garage, MinIO, Ceph, B2, R2…).
    S3 {
        /// The service address, e.g. https://s3.eu-central-1.amazonaws.com
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        /// The signing region (default us-east-1; Garage's is usually "garage").
        #[arg(long)]
        region: Option<String>,
        /// A key prefix albums go under, e.g. laptop/
        #[arg(long, default_value = "")]
        prefix: String,
        /// Address the bucket in the path (https://host/bucket/…), as Garage and
        /// MinIO need, instead of in the host name (https://bucket.host/…).
        #[arg(long)]
        path_style: bool,
        #[arg(long, value_name = "ID")]
        access_key_id: String,
        /// Read the secret key from standard input (otherwise it is asked for
        /// on the terminal). It is kept in the system keyring only.
        #[arg(long)]
        secret_stdin: bool,
        /// Allow plain http:// (trusted networks only: data is not encrypted).
        #[arg(long)]
        allow_insecure_http: bool,
        /// Trust exactly this server certificate (PEM file): for your own
        /// server with a self-signed certificate. Others are verified
        /// against the system's roots.
        #[arg(long, value_name = "PEM")]
        trust_certificate: Option<PathBuf>,
    },
    /// An SSH server, over SFTP (OpenSSH on a NAS, a VPS, a Raspberry Pi…).
    Sftp(sftp::SftpArgs),
    /// An Immich server: each album becomes an Immich album, and a deletion
    /// goes to Immich's trash.
    Immich {
        /// The server's address, e.g. https://photos.example.com (its /api
        /// is found from it).
        #[arg(long)]
        url: String,
        /// Read the API key from standard input (otherwise it is asked for
        /// on the terminal). It is kept in the system keyring only. Make it
        /// in Immich under Account Settings → API Keys.
        #[arg(long)]
        api_key_stdin: bool,
        /// Allow sending the API key over plain http:// (trusted networks only).
        #[arg(long)]
        allow_insecure_http: bool,
        /// Trust exactly this server certificate (PEM file): for your own
        /// server with a self-signed certificate. Others are verified
        /// against the system's roots.
        #[arg(long, value_name = "PEM")]
        trust_certificate: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Write the service definition for this data folder and start it.
    Install {
        /// Write the definition only; do not start it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop the service and remove its definition.
    Remove,
    /// Whether the service is installed, and whether it runs.
    Status,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Every setting, its value and what it does.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// One setting's value.
    Get {
        /// The setting (`shoebox config list` shows them).
        key: String,
        #[command(flatten)]
        json: Json,
    },
    /// Changes a setting; a running engine applies it at once.
    Set {
        /// The setting (`shoebox config list` shows them).
        key: String,
        /// Its new value, such as `2MB/s` or `off` for `bandwidth`.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
enum WatchCommand {
    /// Start backing up a folder.
    Add {
        folder: PathBuf,
        /// single: one album for everything; per-folder: one album per
        /// folder; by-date: one album per capture month (see --date-format).
        #[arg(long, default_value = "single")]
        mode: AlbumMode,
        /// per-folder: name an album after its folder (leaf: `100CANON`'s
        /// photos go to the card's album, as cameras' own folders are passed
        /// over) or after the folder's path (path: `card-2024-06 › 100CANON`).
        #[arg(long, default_value = "leaf")]
        album_names: AlbumNames,
        /// by-date: how an album is named after the capture date, in
        /// strftime fields: %Y year, %m month, %d day, %B month name
        /// (`%Y` gives one album a year; `/` becomes `_`).
        #[arg(long, default_value = "%Y-%m")]
        date_format: DateFormat,
        /// Album name (default: the folder's name).
        #[arg(long)]
        album: Option<String>,
        /// Destination name (see `shoebox dest list`).
        #[arg(long, default_value = LIBRARY_DEST)]
        dest: String,
        /// When a file is deleted from the folder: keep it in the album, or remove it.
        #[arg(long, default_value = "keep")]
        on_delete: OnDelete,
        /// Back up every regular file, not only photos and videos.
        #[arg(long)]
        all_files: bool,
    },
    /// List watched folders.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Stop backing up a folder. Deletes nothing anywhere.
    Remove { folder: PathBuf },
    /// Carry out the deletions held because many files vanished at once.
    ConfirmDeletions { folder: PathBuf },
    /// Drop the held deletions: the files stay in their albums.
    KeepFiles { folder: PathBuf },
}

/// How many ignored entries `status --ignored` lists per watched folder.
const IGNORED_SHOWN: usize = 10_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A rescan interval: shorter than a second would keep the engine busy.
fn at_least_a_second(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!("{s} is too short: use at least 1s"));
    }
    Ok(d)
}

/// The password for a new destination: from stdin, or asked on the terminal.
/// Things the engine wants the user to know (not errors), on stderr.
fn print_notes(notices: &[String]) {
    for n in notices {
        eprintln!("note: {n}");
    }
}

/// The text of a certificate file given with --trust-certificate, checked.
fn read_certificate(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>> {
    path.map(shoebox_core::read_pem_file)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// Trusts the certificate `pem` for the destination just added.
fn pin_new(engine: &Engine, name: &str, pem: Option<Vec<u8>>) -> Result<()> {
    if pem.is_some() {
        engine.pin_certificate(name, pem)?;
    }
    Ok(())
}

fn read_secret(needed: bool, from_stdin: bool, prompt: &str) -> Result<Option<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let secret = line.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(
            !secret.is_empty(),
            "standard input had no {}; pipe it in, e.g. `printf %s \"$SECRET\" | shoebox dest add …`",
            prompt.to_lowercase()
        );
        return Ok(Some(secret.to_string()));
    }
    if !needed {
        return Ok(None);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(Some(rpassword::prompt_password(format!("{prompt}: "))?));
    }
    Ok(None) // the keyring or the environment variable must provide it
}

/// `dest add NAME KIND …`, before any encryption.
fn add_destination(engine: &Engine, name: String, kind: DestKind) -> Result<()> {
    match kind {
        DestKind::Local { path } => {
            let d = engine.add_local_destination(&name, &path)?;
            println!(
                "added destination {} ({})",
                d.name,
                d.path.unwrap_or_default()
            );
        }
        DestKind::Webdav {
            url,
            user,
            password_stdin,
            allow_insecure_http,
            trust_certificate,
        } => {
            let pem = read_certificate(trust_certificate.as_deref())?;
            let password = read_secret(user.is_some(), password_stdin, "Password")?;
            let (d, notices) = engine.add_webdav_destination(
                &name,
                &url,
                user.as_deref(),
                password.as_deref(),
                allow_insecure_http,
            )?;
            pin_new(engine, &d.name, pem)?;
            print_notes(&notices);
            println!(
                "added destination {} ({})",
                d.name,
                d.url.unwrap_or_default()
            );
        }
        DestKind::S3 {
            endpoint,
            bucket,
            region,
            prefix,
            path_style,
            access_key_id,
            secret_stdin,
            allow_insecure_http,
            trust_certificate,
        } => {
            let pem = read_certificate(trust_certificate.as_deref())?;
            let secret = read_secret(true, secret_stdin, "Secret key")?;
            let spec = S3Spec {
                name,
                endpoint,
                bucket,
                region,
                prefix,
                path_style,
                access_key_id,
                secret,
                allow_insecure_http,
            };
            let (d, notices) = engine.add_s3_destination(&spec)?;
            pin_new(engine, &d.name, pem)?;
            print_notes(&notices);
            println!(
                "added destination {} ({}, bucket {})",
                d.name,
                d.url.unwrap_or_default(),
                d.bucket.unwrap_or_default()
            );
        }
        DestKind::Sftp(args) => sftp::add(engine, name, args)?,
        DestKind::Immich {
            url,
            api_key_stdin,
            allow_insecure_http,
            trust_certificate,
        } => {
            let pem = read_certificate(trust_certificate.as_deref())?;
            let key = read_secret(true, api_key_stdin, "API key")?;
            let (d, notices) =
                engine.add_immich_destination(&name, &url, key.as_deref(), allow_insecure_http)?;
            pin_new(engine, &d.name, pem)?;
            print_notes(&notices);
            println!(
                "added destination {} ({}); check it with `shoebox dest test {}`",
                d.name,
                d.url.unwrap_or_default(),
                d.name
            );
        }
    }
    Ok(())
}

/// `shoebox doctor`: exit 0 when the database is usable (healthy, missing
/// or repaired), 1 when it is damaged and was only checked.
fn doctor(home: &Home, repair: bool, json: bool) -> Result<ExitCode> {
    use shoebox_core::Health;
    let health = shoebox_core::check_store(home)?;
    if !repair || !matches!(health, Health::Damaged { .. }) {
        output::health(&health, &home.db_path(), json)?;
        return Ok(match health {
            Health::Damaged { .. } => ExitCode::from(1),
            Health::TooNew { .. } => ExitCode::from(2),
            Health::Healthy | Health::Missing => ExitCode::SUCCESS,
        });
    }
    let r = shoebox_core::repair_store(home)?;
    output::repaired(&r, json)?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode> {
    use clap::CommandFactory;
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "shoebox",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let home = Home::open(cli.home)?;
    let _log = shoebox_core::logging::init(&home, cli.verbose);
    match cli.command {
        Command::Doctor { repair, json } => return doctor(&home, repair, json.json),
        Command::Service(what) => {
            println!(
                "{}",
                match what {
                    ServiceCommand::Install { no_start } => {
                        let me = service::Service {
                            exe: std::env::current_exe()?,
                            home: std::path::absolute(home.dir())?,
                        };
                        service::install(&me, !no_start)?
                    }
                    ServiceCommand::Remove => service::remove()?,
                    ServiceCommand::Status => service::status()?,
                }
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let engine = Engine::open(home)?;
    match cli.command {
        Command::Dest(DestCommand::List { json }) => {
            output::dests(&engine.destinations()?, json.json)?
        }
        Command::Dest(DestCommand::Add {
            name,
            kind,
            encrypt,
        }) => {
            anyhow::ensure!(
                !(matches!(kind, DestKind::Immich { .. }) && encrypt.requested()),
                shoebox_core::IMMICH_UNENCRYPTED
            );
            add_destination(&engine, name.clone(), kind)?;
            keys::encrypt_added(&engine, name.trim(), &encrypt)?;
        }
        Command::Dest(DestCommand::Encrypt(cmd)) => keys::encrypt_command(&engine, &cmd)?,
        Command::Dest(DestCommand::ExportKey(cmd)) => keys::export(&engine, &cmd)?,
        Command::Dest(DestCommand::Edit {
            name,
            url,
            user,
            region,
            path_style,
            allow_insecure_http,
            secret_stdin,
            trust_certificate,
            forget_certificate,
            trust_host_key,
        }) => {
            let secret = if secret_stdin {
                read_secret(true, true, "Secret")?
            } else {
                None
            };
            let edit = DestEdit {
                name,
                url,
                user,
                secret,
                region,
                path_style,
                allow_insecure_http,
                trust_certificate: if forget_certificate {
                    Some(None)
                } else {
                    read_certificate(trust_certificate.as_deref())?.map(Some)
                },
                trust_host_key,
            };
            let (d, notices) = engine.edit_destination(&edit)?;
            print_notes(&notices);
            println!("updated destination {}", d.name);
        }
        Command::Dest(DestCommand::Test { name }) => {
            let checks = engine.test_destination(&name)?;
            for c in &checks {
                println!(
                    "{} {}: {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.check,
                    c.detail
                );
            }
            if checks.iter().any(|c| !c.ok) {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Dest(DestCommand::Reset { name }) => {
            let n = engine.reset_destination(&name)?;
            println!(
                "destination {name} starts again: {n} file(s) will be backed up to it at the next sync \
                 (what it still holds whole is not sent again)"
            );
        }
        Command::Dest(DestCommand::Remove { name }) => {
            engine.remove_destination(&name)?;
            println!("removed destination {name} (no files were deleted)");
        }
        Command::Watch(WatchCommand::Add {
            folder,
            mode,
            album_names,
            date_format,
            album,
            dest,
            on_delete,
            all_files,
        }) => {
            let spec = WatchSpec {
                folder,
                mode,
                album_names,
                date_format,
                album,
                dest,
                on_delete,
                all_files,
            };
            let (w, notices) = engine.add_watch(&spec)?;
            print_notes(&notices);
            println!(
                "watching {} → album {:?} ({}) on {}",
                w.folder,
                w.album,
                output::mode_text(&w),
                w.dest
            );
        }
        Command::Watch(WatchCommand::List { json }) => {
            output::watches(&engine.watches()?, json.json)?
        }
        Command::Watch(WatchCommand::Remove { folder }) => {
            let w = engine.remove_watch(&folder)?;
            println!("stopped watching {} (nothing was deleted)", w.folder);
        }
        Command::Status {
            ignored: true,
            json,
            ..
        } => output::ignored(&engine.ignored(IGNORED_SHOWN)?, json.json)?,
        Command::Status {
            files: true, json, ..
        } => output::files(&engine.files()?, json.json)?,
        Command::Status {
            follow: true, json, ..
        } => output::follow(&engine, json.json)?,
        Command::Status { json, .. } => output::status(&engine.status()?, json.json)?,
        Command::Restore {
            dest,
            albums,
            paths,
            to,
            json,
        } => {
            let opts = shoebox_core::RestoreOptions {
                dest,
                albums,
                paths,
                to,
            };
            let mut shown = output::RestoreProgress::new(json.json);
            let report = engine.restore(&opts, &mut |e| shown.event(e))?;
            shown.finish(&report)?;
            if report.failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Verify {
            dest,
            deep,
            repair,
            json,
        } => {
            let opts = shoebox_core::VerifyOptions { dest, deep, repair };
            let report = engine.verify(&opts, &mut |p| output::verify_problem(p, json.json))?;
            output::verify_report(&report, repair, json.json)?;
            if !report.is_clean() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Doctor { .. }
        | Command::Service(_)
        | Command::Completions { .. }
        | Command::Man => unreachable!("handled before the engine opens"),
        Command::Config(ConfigCommand::List { json }) => {
            output::config(&engine.config_list()?, json.json)?
        }
        Command::Config(ConfigCommand::Get { key, json }) => {
            let e = engine.config_get(&key)?;
            if json.json {
                output::print_json(&e)?;
            } else {
                println!("{}", e.value);
            }
        }
        Command::Config(ConfigCommand::Set { key, value }) => {
            let e = engine.config_set(&key, &value)?;
            println!("{} is now {}", e.key, e.value);
        }
        Command::Pause => {
            engine.set_paused(true)?;
            println!("syncing is paused; `shoebox resume` resumes it");
        }
        Command::Resume { anyway } => {
            engine.set_paused(false)?;
            if anyway {
                engine.back_up_now_anyway()?;
                println!(
                    "syncing resumed, through what held it (quiet hours, battery, a metered \
                     network) until that ends"
                );
            } else {
                println!("syncing resumed");
            }
        }
        Command::Watch(WatchCommand::ConfirmDeletions { folder }) => {
            let n = engine.confirm_deletions(&folder)?;
            println!(
                "{n} held deletions will be carried out by the running engine or the next sync"
            );
        }
        Command::Watch(WatchCommand::KeepFiles { folder }) => {
            let n = engine.keep_files(&folder)?;
            println!("{n} vanished files stay in their albums; nothing will be deleted");
        }
        Command::Run {
            json,
            engine: args,
            full_scan_every,
            poll_every,
            watch_limit,
            check_every,
        } => {
            let lock = engine.lock("shoebox run")?;
            let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
            ctrlc::set_handler(move || {
                let _ = stop_tx.try_send(());
            })?;
            output::warn_keys_not_exported(&engine.keys_not_exported()?);
            let base = args.sync_options();
            let opts = shoebox_core::RunOptions {
                workers: base.workers,
                settle: base.settle,
                full_scan_every,
                poll_every,
                watch_limit,
                check_every,
            };
            eprintln!(
                "shoebox is running on {}; stop it with Ctrl-C",
                engine.home().dir().display()
            );
            engine.run(&lock, &opts, &stop_rx, &|e| {
                output::live_event(e, json.json)
            })?;
            eprintln!("stopped");
        }
        Command::Sync { json, engine: args } => {
            output::warn_keys_not_exported(&engine.keys_not_exported()?);
            let lock = engine.lock("shoebox sync")?;
            let progress = std::cell::RefCell::new(output::SyncProgress::new(json.json));
            let report = engine.sync(&lock, &args.sync_options(), &|e| {
                progress.borrow_mut().event(e)
            })?;
            progress.into_inner().finish(&report)?;
            return Ok(if report.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
