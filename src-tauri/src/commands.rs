//! The commands the window may call (and only these: see build.rs and
//! capabilities/default.json). Each maps to one engine call; errors reach
//! the UI as `{code, message}`. None runs on the main thread (a sync
//! command is `async` to Tauri), so the window and the tray never wait on
//! a disk or the engine's lock; those that reach a destination over the
//! network also take their own engine connection (`on_own_engine`).

use std::path::PathBuf;

use serde::Serialize;
use shoebox_core::{AlbumMode, AlbumNames, DateFormat, DestKind, OnDelete, WatchInfo, WatchSpec};
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt;

use crate::host::{AUTOSTART_ASKED_KEY, Host, UiState, WORKERS_KEY};

/// An error as the UI receives it.
#[derive(Debug, Serialize)]
pub struct UiError {
    pub code: String,
    pub message: String,
    /// `host_key_unknown`: the fingerprint the user is asked to confirm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl From<shoebox_core::Error> for UiError {
    fn from(e: shoebox_core::Error) -> Self {
        let fingerprint = match &e {
            shoebox_core::Error::HostKeyUnknown { fingerprint, .. } => Some(fingerprint.clone()),
            _ => None,
        };
        UiError {
            code: e.code().into(),
            message: e.to_string(),
            fingerprint,
        }
    }
}

fn invalid(code: &str, message: impl Into<String>) -> UiError {
    UiError {
        code: code.into(),
        message: message.into(),
        fingerprint: None,
    }
}

type Res<T> = Result<T, UiError>;

/// Runs `work` on a thread of its own, with an engine connection of its
/// own: a server that never answers (until the request's time bound) then
/// holds neither the window's thread nor the engine every other command
/// reads through. For commands that reach a destination over the network.
async fn on_own_engine<T: Send + 'static>(
    host: &Host,
    work: impl FnOnce(&shoebox_core::Engine) -> Res<T> + Send + 'static,
) -> Res<T> {
    let home = host.home.clone();
    tauri::async_runtime::spawn_blocking(move || work(&shoebox_core::Engine::open(home)?))
        .await
        .map_err(|e| invalid("internal", format!("the request stopped: {e}")))?
}

#[tauri::command(async)]
pub fn get_state(app: AppHandle, host: State<'_, Host>) -> Res<UiState> {
    Ok(host.ui_state(&app)?)
}

#[tauri::command(async)]
pub fn list_destinations(host: State<'_, Host>) -> Res<Vec<shoebox_core::DestInfo>> {
    Ok(host.engine.lock().expect("lock").destinations()?)
}

fn parse_mode(mode: &str) -> Res<AlbumMode> {
    mode.parse().map_err(|e: String| invalid("invalid", e))
}

/// How per-folder albums are named; the form may leave it out (`leaf`).
fn parse_album_names(names: Option<&str>) -> Res<AlbumNames> {
    names
        .map_or(Ok(AlbumNames::Leaf), str::parse)
        .map_err(|e: String| invalid("invalid", e))
}

/// How by-date albums are named; the form may leave it out (`%Y-%m`).
fn parse_date_format(format: Option<&str>) -> Res<DateFormat> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => f.parse().map_err(|e: String| invalid("invalid", e)),
        None => Ok(DateFormat::default()),
    }
}

#[tauri::command(async)]
pub fn preview_albums(
    host: State<'_, Host>,
    folder: String,
    mode: String,
    album_names: Option<String>,
    date_format: Option<String>,
    album: Option<String>,
    all_files: bool,
) -> Res<Vec<shoebox_core::album::AlbumPreview>> {
    let album = album.filter(|a| !a.trim().is_empty());
    Ok(host.engine.lock().expect("lock").preview_albums(
        &PathBuf::from(folder),
        (
            parse_mode(&mode)?,
            parse_album_names(album_names.as_deref())?,
            &parse_date_format(date_format.as_deref())?,
        ),
        album.as_deref(),
        all_files,
    )?)
}

#[derive(Debug, Serialize)]
pub struct Added {
    pub watch: WatchInfo,
    pub notices: Vec<String>,
}

#[tauri::command(async)]
#[allow(clippy::too_many_arguments)]
pub fn add_watch(
    host: State<'_, Host>,
    folder: String,
    mode: String,
    album_names: Option<String>,
    date_format: Option<String>,
    album: Option<String>,
    dest: String,
    on_delete: String,
    all_files: bool,
) -> Res<Added> {
    let spec = WatchSpec {
        folder: PathBuf::from(folder.trim()),
        mode: parse_mode(&mode)?,
        album_names: parse_album_names(album_names.as_deref())?,
        date_format: parse_date_format(date_format.as_deref())?,
        album: album.filter(|a| !a.trim().is_empty()),
        dest,
        on_delete: on_delete
            .parse::<OnDelete>()
            .map_err(|e| invalid("invalid", e))?,
        all_files,
    };
    let (watch, notices) = host.engine.lock().expect("lock").add_watch(&spec)?;
    host.nudge();
    Ok(Added { watch, notices })
}

#[tauri::command(async)]
pub fn remove_watch(host: State<'_, Host>, folder: String) -> Res<()> {
    host.engine
        .lock()
        .expect("lock")
        .remove_watch(&PathBuf::from(folder))?;
    host.nudge();
    Ok(())
}

#[tauri::command(async)]
pub fn sync_now(host: State<'_, Host>) -> Res<()> {
    host.engine.lock().expect("lock").request_rescan()?;
    host.nudge();
    Ok(())
}

#[tauri::command(async)]
pub fn set_paused(host: State<'_, Host>, paused: bool) -> Res<()> {
    host.engine.lock().expect("lock").set_paused(paused)?;
    host.nudge();
    Ok(())
}

#[tauri::command(async)]
pub fn confirm_deletions(host: State<'_, Host>, folder: String) -> Res<u64> {
    let n = host
        .engine
        .lock()
        .expect("lock")
        .confirm_deletions(&PathBuf::from(folder))?;
    host.nudge();
    Ok(n)
}

#[tauri::command(async)]
pub fn keep_files(host: State<'_, Host>, folder: String) -> Res<u64> {
    let n = host
        .engine
        .lock()
        .expect("lock")
        .keep_files(&PathBuf::from(folder))?;
    host.nudge();
    Ok(n)
}

#[tauri::command(async)]
pub fn retry_failed(host: State<'_, Host>) -> Res<u64> {
    let n = host.engine.lock().expect("lock").retry_failed()?;
    host.nudge();
    Ok(n)
}

/// How many left-out entries the window lists per watched folder.
const IGNORED_SHOWN: usize = 500;

/// What the scans left out on purpose, with the reasons (read-only).
#[tauri::command(async)]
pub fn list_ignored(host: State<'_, Host>) -> Res<Vec<shoebox_core::IgnoredFile>> {
    Ok(host.engine.lock().expect("lock").ignored(IGNORED_SHOWN)?)
}

/// The native folder picker (not drivable by WebDriver: the UI also takes a
/// typed or dropped path).
#[tauri::command]
pub async fn pick_folder(app: AppHandle, title: Option<String>) -> Res<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    let picked = app
        .dialog()
        .file()
        .set_title(title.as_deref().unwrap_or("Choose a folder to back up"))
        .blocking_pick_folder();
    Ok(picked
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

#[tauri::command(async)]
pub fn set_autostart(app: AppHandle, enabled: bool) -> Res<bool> {
    // auto-launch creates ~/.config/autostart but not ~/.config, which a
    // fresh account may not have yet.
    #[cfg(target_os = "linux")]
    if enabled && let Some(home) = std::env::var_os("HOME") {
        let _ = std::fs::create_dir_all(PathBuf::from(home).join(".config/autostart"));
    }
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| {
        invalid(
            "autostart",
            format!("could not change launch at login: {e}"),
        )
    })?;
    launcher
        .is_enabled()
        .map_err(|e| invalid("autostart", e.to_string()))
}

/// The once-asked question after the first folder: launch at login?
#[tauri::command(async)]
pub fn answer_autostart_question(
    app: AppHandle,
    host: State<'_, Host>,
    enabled: bool,
) -> Res<bool> {
    let on = set_autostart(app, enabled)?;
    host.engine
        .lock()
        .expect("lock")
        .store()
        .set_flag(AUTOSTART_ASKED_KEY, true)?;
    host.nudge();
    Ok(on)
}

#[tauri::command(async)]
pub fn set_workers(host: State<'_, Host>, workers: u64) -> Res<u64> {
    if !(1..=16).contains(&workers) {
        return Err(invalid(
            "invalid",
            "parallel uploads must be between 1 and 16",
        ));
    }
    host.engine
        .lock()
        .expect("lock")
        .store()
        .set_setting(WORKERS_KEY, &workers.to_string())?;
    Ok(workers)
}

/// "Back up now anyway": through what holds uploads now (quiet hours,
/// battery, a metered network), until it ends.
#[tauri::command(async)]
pub fn back_up_now_anyway(host: State<'_, Host>) -> Res<()> {
    host.engine.lock().expect("lock").back_up_now_anyway()?;
    host.nudge();
    Ok(())
}

/// Changes a setting of `shoebox config` (the upload limit); the running
/// engine applies it at once.
#[tauri::command(async)]
pub fn set_config(
    host: State<'_, Host>,
    key: String,
    value: String,
) -> Res<shoebox_core::ConfigEntry> {
    Ok(host.engine.lock().expect("lock").config_set(&key, &value)?)
}

#[tauri::command(async)]
pub fn open_location(app: AppHandle, host: State<'_, Host>, which: String) -> Res<()> {
    use tauri_plugin_opener::OpenerExt;
    let path = match which.as_str() {
        "library" => host.home.library_dir(),
        "logs" => host.home.logs_dir(),
        other => return Err(invalid("invalid", format!("unknown location {other:?}"))),
    };
    let _ = std::fs::create_dir_all(&path);
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|e| invalid("open", format!("could not open {}: {e}", path.display())))
}

/// A destination as the "Add destination" form sends it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDestination {
    name: String,
    /// "local", "webdav" or "s3".
    kind: DestKind,
    #[serde(default)]
    path: String,
    /// WebDAV URL or S3 endpoint.
    #[serde(default)]
    url: String,
    /// WebDAV user or S3 access key id.
    #[serde(default)]
    user: String,
    /// Password or secret key; kept in the system keyring only.
    #[serde(default)]
    secret: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    path_style: bool,
    #[serde(default)]
    allow_insecure_http: bool,
    /// A PEM file: trust exactly this server certificate (empty: none).
    #[serde(default)]
    trust_certificate: String,
    /// SFTP: the port, the folder on the server, how it signs in (with
    /// `secret` as the password or the key's passphrase), the key file, and
    /// the host key fingerprint the user confirmed.
    #[serde(default = "ssh_port")]
    port: u16,
    #[serde(default)]
    remote_path: String,
    #[serde(default = "password_sign_in")]
    sign_in: shoebox_core::SshAuth,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    trust_host_key: String,
    /// Encrypt everything it will hold: with a new key, or with the key
    /// file (and its passphrase) of an existing backup.
    #[serde(default)]
    encrypt: bool,
    /// Hide album and file names too.
    #[serde(default)]
    encrypt_names: bool,
    #[serde(default)]
    identity_file: String,
    #[serde(default)]
    identity_passphrase: String,
}

fn ssh_port() -> u16 {
    22
}

fn password_sign_in() -> shoebox_core::SshAuth {
    shoebox_core::SshAuth::Password
}

/// How a new SFTP destination signs in, from the form.
fn sftp_sign_in(dest: &NewDestination) -> Res<shoebox_core::SftpSignIn> {
    use shoebox_core::{SftpSignIn, SshAuth};
    let secret = non_empty(&dest.secret);
    Ok(match dest.sign_in {
        SshAuth::Agent => SftpSignIn::Agent,
        SshAuth::Password => SftpSignIn::Password(
            secret.ok_or_else(|| invalid("invalid", "enter the account's password"))?,
        ),
        SshAuth::Key => {
            let file = non_empty(&dest.key_file)
                .ok_or_else(|| invalid("invalid", "name the private key file"))?;
            let path = home_relative(&file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "invalid",
                    format!("the key file {file} cannot be read: {e}"),
                )
            })?;
            let key = shoebox_core::private_key_text(&text, secret.as_deref()).map_err(|e| {
                let hint = match e {
                    shoebox_core::KeyProblem::NeedsPassphrase => {
                        "enter its passphrase in the passphrase field"
                    }
                    shoebox_core::KeyProblem::Unreadable(_) => {
                        "give an OpenSSH private key, as ssh-keygen writes"
                    }
                };
                invalid(
                    "invalid",
                    format!("the key {file} cannot be used: {e}; {hint}"),
                )
            })?;
            SftpSignIn::Key(key)
        }
    })
}

/// What adding or editing a destination did, and anything worth saying.
#[derive(Debug, Serialize)]
pub struct DestAdded {
    dest: shoebox_core::DestInfo,
    notices: Vec<String>,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The checked text of the certificate file a form names, if it names one.
fn certificate(path: &str) -> Res<Option<Vec<u8>>> {
    non_empty(path)
        .map(|p| shoebox_core::read_pem_file(std::path::Path::new(&p)))
        .transpose()
        .map_err(|why| invalid("invalid", why))
}

/// Adds a destination (an SFTP server is reached to check the key and the
/// sign-in, so it runs on its own engine connection).
#[tauri::command]
pub async fn add_destination(host: State<'_, Host>, dest: NewDestination) -> Res<DestAdded> {
    on_own_engine(&host, move |engine| add_destination_now(engine, dest)).await
}

fn add_destination_now(engine: &shoebox_core::Engine, dest: NewDestination) -> Res<DestAdded> {
    let secret = non_empty(&dest.secret);
    // A folder has no server, so no certificate (the field may hold a
    // value typed before the kind was changed).
    let pem = match dest.kind {
        DestKind::Local | DestKind::Sftp => None,
        DestKind::Webdav | DestKind::S3 | DestKind::Immich => certificate(&dest.trust_certificate)?,
    };
    let (mut info, notices) = match dest.kind {
        DestKind::Local => (
            engine.add_local_destination(&dest.name, &PathBuf::from(dest.path.trim()))?,
            Vec::new(),
        ),
        DestKind::Webdav => engine.add_webdav_destination(
            &dest.name,
            dest.url.trim(),
            non_empty(&dest.user).as_deref(),
            secret.as_deref(),
            dest.allow_insecure_http,
        )?,
        DestKind::S3 => engine.add_s3_destination(&shoebox_core::S3Spec {
            name: dest.name.clone(),
            endpoint: dest.url.trim().to_string(),
            bucket: dest.bucket.trim().to_string(),
            region: non_empty(&dest.region),
            prefix: dest.prefix.clone(),
            path_style: dest.path_style,
            access_key_id: dest.user.trim().to_string(),
            secret,
            allow_insecure_http: dest.allow_insecure_http,
        })?,
        DestKind::Immich => engine.add_immich_destination(
            &dest.name,
            dest.url.trim(),
            secret.as_deref(),
            dest.allow_insecure_http,
        )?,
        DestKind::Sftp => engine.add_sftp_destination(&shoebox_core::SftpSpec {
            name: dest.name.clone(),
            host: dest.url.trim().to_string(),
            port: dest.port,
            user: dest.user.trim().to_string(),
            path: dest.remote_path.trim().to_string(),
            sign_in: sftp_sign_in(&dest)?,
            trust_host_key: non_empty(&dest.trust_host_key),
        })?,
    };
    if pem.is_some() {
        info = engine.pin_certificate(&info.name, pem)?;
    }
    let mut notices = notices;
    if dest.encrypt {
        // Encrypted from the start, or not added at all: nothing may go to
        // it in the clear by mistake.
        let encrypted = key_source(&dest).and_then(|key| {
            engine
                .encrypt_destination(&info.name, key, dest.encrypt_names)
                .map_err(UiError::from)
        });
        match encrypted {
            Ok((_, more)) => notices.extend(more),
            Err(e) => {
                let _ = engine.remove_destination(&info.name);
                return Err(e);
            }
        }
        info = engine
            .destinations()?
            .into_iter()
            .find(|d| d.name == info.name)
            .unwrap_or(info);
    }
    Ok(DestAdded {
        dest: info,
        notices,
    })
}

/// The key a new encrypted destination gets, from the form.
fn key_source(dest: &NewDestination) -> Res<shoebox_core::KeySource> {
    let Some(file) = non_empty(&dest.identity_file) else {
        return Ok(shoebox_core::KeySource::New);
    };
    let path = home_relative(&file);
    let bytes = std::fs::read(&path).map_err(|e| {
        invalid(
            "invalid",
            format!("the key file {file} cannot be read: {e}"),
        )
    })?;
    Ok(shoebox_core::KeySource::File {
        bytes,
        passphrase: non_empty(&dest.identity_passphrase),
    })
}

/// A path the user typed, with `~/` meaning their home folder.
fn home_relative(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(path),
    }
}

/// Writes an encrypted destination's key file, protected by `passphrase`
/// (never over an existing file). Returns the file's path.
#[tauri::command(async)]
pub fn export_key(
    host: State<'_, Host>,
    name: String,
    to: String,
    passphrase: String,
) -> Res<String> {
    let to = non_empty(&to).ok_or_else(|| invalid("invalid", "name the key file to write"))?;
    let path = home_relative(&to);
    host.engine
        .lock()
        .expect("lock")
        .export_key(&name, &passphrase, &path)?;
    Ok(path.display().to_string())
}

/// Changes to a destination's connection, as the "Edit" form sends them.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditDestination {
    name: String,
    url: String,
    user: String,
    /// Empty: keep the saved secret.
    #[serde(default)]
    secret: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    path_style: bool,
    #[serde(default)]
    allow_insecure_http: bool,
    /// A PEM file to trust from now on (empty: keep what is trusted).
    #[serde(default)]
    trust_certificate: String,
    /// Stop trusting the pinned certificate.
    #[serde(default)]
    forget_certificate: bool,
    /// SFTP: trust the server's new host key when it has this fingerprint.
    #[serde(default)]
    trust_host_key: String,
}

/// Changes a destination's connection (an SFTP server is reached for its
/// host key, so it runs on its own engine connection).
#[tauri::command]
pub async fn edit_destination(host: State<'_, Host>, edit: EditDestination) -> Res<DestAdded> {
    let trust_certificate = if edit.forget_certificate {
        Some(None)
    } else {
        certificate(&edit.trust_certificate)?.map(Some)
    };
    on_own_engine(&host, move |engine| {
        let (info, notices) = engine.edit_destination(&shoebox_core::DestEdit {
            name: edit.name,
            url: Some(edit.url),
            user: Some(edit.user),
            secret: non_empty(&edit.secret),
            region: non_empty(&edit.region),
            path_style: Some(edit.path_style),
            allow_insecure_http: Some(edit.allow_insecure_http),
            trust_certificate,
            trust_host_key: non_empty(&edit.trust_host_key),
        })?;
        Ok(DestAdded {
            dest: info,
            notices,
        })
    })
    .await
}

/// Tests a destination. Read-only is fine: a test changes nothing.
#[tauri::command]
pub async fn test_destination(
    host: State<'_, Host>,
    name: String,
) -> Res<Vec<shoebox_core::Check>> {
    on_own_engine(&host, move |engine| Ok(engine.test_destination(&name)?)).await
}

/// Restores every album of a destination into a folder. It runs on a
/// thread of its own with its own engine connection, so a long restore
/// holds nothing the window needs; each file is sent to the window as a
/// `restore` event.
#[tauri::command]
pub async fn restore_destination(
    app: AppHandle,
    host: State<'_, Host>,
    name: String,
    to: String,
) -> Res<shoebox_core::RestoreReport> {
    let to = non_empty(&to).ok_or_else(|| invalid("invalid", "choose a folder to restore into"))?;
    let home = host.home.clone();
    let restored = tauri::async_runtime::spawn_blocking(move || {
        let engine = shoebox_core::Engine::open(home)?;
        let opts = shoebox_core::RestoreOptions {
            dest: Some(name),
            albums: Vec::new(),
            paths: Vec::new(),
            to: PathBuf::from(to),
        };
        engine.restore(&opts, &mut |e| {
            let _ = tauri::Emitter::emit(&app, "restore", e);
        })
    })
    .await
    .map_err(|e| invalid("restore", format!("the restore stopped: {e}")))?;
    Ok(restored?)
}

#[tauri::command(async)]
pub fn remove_destination(host: State<'_, Host>, name: String) -> Res<()> {
    Ok(host
        .engine
        .lock()
        .expect("lock")
        .remove_destination(&name)?)
}

/// A recent upload's thumbnail, as the Activity view shows it.
#[derive(Debug, Serialize)]
pub struct UiThumbnail {
    /// `photo`, `video` or `other`: the icon that stands in for it, and
    /// whether its picture is a video's poster frame.
    kind: &'static str,
    /// A `data:` URL of a small JPEG; none when nothing on this computer
    /// can show the file (or it is gone): the view shows its kind's icon.
    url: Option<String>,
}

/// The thumbnail of recent upload `id` (made on a thread of its own, one
/// at a time, and cached in the data folder). Only files in the recent
/// list can be asked for.
#[tauri::command]
pub async fn thumbnail(host: State<'_, Host>, id: u64) -> Res<UiThumbnail> {
    use base64::Engine as _;
    let Some(path) = host.recent_path(id) else {
        return Ok(UiThumbnail {
            kind: shoebox_thumbnail::Kind::Other.as_str(),
            url: None,
        });
    };
    let thumbnails = host.thumbnails().map_err(|e| {
        invalid(
            "io",
            format!(
                "cannot keep thumbnails in {}: {e}",
                host.home.dir().join("thumbnails").display()
            ),
        )
    })?;
    let made = tauri::async_runtime::spawn_blocking(move || thumbnails.get(&path))
        .await
        .map_err(|e| invalid("internal", format!("the thumbnail was not made: {e}")))?;
    Ok(UiThumbnail {
        kind: made.kind.as_str(),
        url: made.jpeg.map(|jpeg| {
            format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            )
        }),
    })
}
