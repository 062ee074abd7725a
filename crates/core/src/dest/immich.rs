//! Immich (immich.app) as a destination: albums of assets, not folders of
//! files, spoken to through its REST API with an API key (`x-api-key`).
//!
//! Immich has no file names. An entry's `<album>/<name>` is a name that
//! [`AssetNames`] (in the store) maps to the asset holding it, so:
//! - a new name uploads the content unless the server already holds it
//!   (`POST /assets/bulk-upload-check`, by SHA-1; an asset in the trash is
//!   restored from it), then adds the asset to the album;
//! - a rename inside an album changes nothing on the server, and a move
//!   between albums changes album membership only; a copy is membership;
//! - an edit (an overwrite of this engine's own earlier version) uploads the
//!   new version, copies the old asset's albums, favourite and sidecar to it
//!   (`PUT /assets/copy`), and moves the old asset to the trash;
//! - a deletion moves the asset to Immich's trash once no name keeps it,
//!   never deleting it for good.
//!
//! Major versions 2 and 3 are spoken: v2 requires `deviceAssetId` and
//! `deviceId` on an upload, v3 refuses them. An older server is refused
//! with its version named.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use sha1::Digest;
use url::Url;

use super::{Capabilities, Check, Destination, Listed, ReadBack, Staged, Upload, http};
use crate::error::DestError;
use crate::store::AssetNames;

/// What an API key needs for everything Shoebox does (named as Immich's
/// key settings name them).
const PERMISSIONS: [&str; 10] = [
    "asset.upload",
    "asset.read",
    "asset.update",
    "asset.download",
    "asset.copy",
    "asset.delete",
    "album.create",
    "album.read",
    "albumAsset.create",
    "albumAsset.delete",
];

/// The oldest major version spoken.
const OLDEST_MAJOR: u64 = 2;

/// An Immich server. Cheap to share: a staged upload holds it too.
pub struct Immich(Arc<Server>);

impl std::ops::Deref for Immich {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

/// The connection to one server and what is known of it.
pub struct Server {
    name: String,
    /// The API's base, ending in `/api/`.
    api: Url,
    key: String,
    client: Client,
    names: AssetNames,
    /// Where an upload waits while its SHA-1 is checked (the data folder).
    spool: PathBuf,
    /// The server's major version, once read.
    major: Mutex<Option<u64>>,
    /// Album name → album id, as the server listed or created them.
    albums: Mutex<Option<HashMap<String, String>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Immich")
            .field("name", &self.name)
            .field("api", &self.api.as_str())
            .finish_non_exhaustive()
    }
}

/// A connection's settings, from the destination row and the keyring.
pub struct ImmichConfig<'a> {
    pub url: &'a str,
    pub key: String,
    pub insecure_http: bool,
    pub tls_cert: Option<&'a [u8]>,
    /// The store, for the names, and its destination id.
    pub db: &'a Path,
    pub dest_id: i64,
}

/// The API's base for the address a user gives: the server
/// (`https://photos.example`) or its API (`…/api`).
pub(crate) fn api_base(name: &str, url: &str, insecure_http: bool) -> Result<Url, DestError> {
    let mut api = http::parse_url(name, url.trim(), true, insecure_http)?;
    let path = api.path().trim_end_matches('/').to_string();
    let path = if path.ends_with("/api") {
        format!("{path}/")
    } else {
        format!("{path}/api/")
    };
    api.set_path(&path);
    api.set_query(None);
    Ok(api)
}

impl Immich {
    pub fn new(name: &str, cfg: ImmichConfig<'_>) -> Result<Immich, DestError> {
        let unusable = |why: String| DestError::Unavailable {
            name: name.to_string(),
            why,
        };
        let api = api_base(name, cfg.url, cfg.insecure_http)?;
        let names = AssetNames::open(cfg.db, cfg.dest_id).map_err(|e| unusable(e.to_string()))?;
        let spool = cfg
            .db
            .parent()
            .unwrap_or(Path::new("."))
            .join("immich-spool");
        Ok(Immich(Arc::new(Server {
            name: name.to_string(),
            api,
            key: cfg.key,
            client: http::client(name, cfg.tls_cert)?,
            names,
            spool,
            major: Mutex::new(None),
            albums: Mutex::new(None),
        })))
    }
}

impl Server {
    fn url(&self, path: &str) -> Url {
        self.api.join(path).expect("API paths are relative URLs")
    }

    fn req(&self, method: Method, path: &str, body_len: u64) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &self.key)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(http::timeout_for(body_len))
    }

    fn json_req(&self, method: Method, path: &str, body: &Value) -> RequestBuilder {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.req(method, path, bytes.len() as u64)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
    }

    /// Sends a request; an answer outside 2xx (or `also`) is an error that
    /// says what to do.
    fn send(&self, what: &str, r: RequestBuilder, also: &[u16]) -> Result<Response, DestError> {
        let resp = r
            .send()
            .map_err(|e| http::transport_error(&self.name, &self.api, what, &e))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() || also.contains(&status) {
            return Ok(resp);
        }
        Err(self.status_error(what, resp))
    }

    fn status_error(&self, what: &str, resp: Response) -> DestError {
        if let Some(e) = http::redirected(&self.name, what, &resp) {
            return e;
        }
        let status = resp.status().as_u16();
        let retry_after = http::retry_after(&resp);
        let message = server_message(resp);
        match status {
            401 => DestError::Unavailable {
                name: self.name.clone(),
                why: format!(
                    "Immich refused the API key (HTTP 401{message}). Make a new key in Immich \
                     (Account Settings → API Keys) and give it with `shoebox dest edit {} \
                     --api-key-stdin`, or set {}",
                    self.name,
                    crate::secrets::env_var(&self.name)
                ),
            },
            403 => DestError::Unavailable {
                name: self.name.clone(),
                why: format!(
                    "the API key may not {what} (HTTP 403{message}). Give the key these \
                     permissions in Immich (Account Settings → API Keys): {}",
                    PERMISSIONS.join(", ")
                ),
            },
            413 => DestError::Http {
                name: self.name.clone(),
                what: format!(
                    "{what}: it is larger than the server accepts (its upload limit, or that of \
                     a proxy in front of it such as nginx's client_max_body_size); raise the \
                     limit{message}"
                ),
                status,
                transient: false,
                retry_after,
            },
            _ => DestError::Http {
                name: self.name.clone(),
                what: format!("{what}{message}"),
                status,
                transient: http::transient_status(status),
                retry_after,
            },
        }
    }

    fn json(&self, what: &str, resp: Response) -> Result<Value, DestError> {
        let bytes = resp.bytes().map_err(|e| DestError::Interrupted {
            name: self.name.clone(),
            what: what.to_string(),
            why: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            http::not_behaving(
                &self.name,
                "Immich",
                format!("its answer to the request to {what} is not JSON ({e})"),
            )
        })
    }

    /// The server's major version: read once, refused when too old.
    fn major(&self) -> Result<u64, DestError> {
        if let Some(m) = *self.major.lock().expect("lock") {
            return Ok(m);
        }
        let what = "read the server's version";
        let resp = self.send(what, self.req(Method::GET, "server/version", 0), &[])?;
        let v = self.json(what, resp)?;
        let part = |k: &str| v.get(k).and_then(Value::as_u64);
        let (Some(major), Some(minor), Some(patch)) = (part("major"), part("minor"), part("patch"))
        else {
            return Err(http::not_behaving(
                &self.name,
                "Immich",
                format!(
                    "{} does not give an Immich version",
                    self.url("server/version")
                ),
            ));
        };
        if major < OLDEST_MAJOR {
            return Err(DestError::Unavailable {
                name: self.name.clone(),
                why: format!(
                    "the server runs Immich {major}.{minor}.{patch}, and Shoebox speaks Immich \
                     {OLDEST_MAJOR} and later: update the server"
                ),
            });
        }
        *self.major.lock().expect("lock") = Some(major);
        Ok(major)
    }

    /// The albums by name, listed from the server once (again after
    /// `prepare`). Of two albums with one name, the first listed is used.
    fn known_albums(&self) -> Result<MutexGuard<'_, Option<HashMap<String, String>>>, DestError> {
        let mut known = self.albums.lock().expect("lock");
        if known.is_none() {
            let what = "list the albums";
            let resp = self.send(what, self.req(Method::GET, "albums", 0), &[])?;
            let list = self.json(what, resp)?;
            let mut map = HashMap::new();
            for a in list.as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (
                    a.get("albumName").and_then(Value::as_str),
                    a.get("id").and_then(Value::as_str),
                ) {
                    map.entry(name.to_string())
                        .or_insert_with(|| id.to_string());
                }
            }
            *known = Some(map);
        }
        Ok(known)
    }

    /// The id of the album named `album`, created when `create` and absent.
    fn album_id(&self, album: &str, create: bool) -> Result<Option<String>, DestError> {
        let mut known = self.known_albums()?;
        let map = known.as_mut().expect("listed by known_albums");
        if let Some(id) = map.get(album) {
            return Ok(Some(id.clone()));
        }
        if !create {
            return Ok(None);
        }
        let what = format!("create the album {album}");
        let resp = self.send(
            &what,
            self.json_req(Method::POST, "albums", &json!({ "albumName": album })),
            &[],
        )?;
        let id = self
            .json(&what, resp)?
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                http::not_behaving(&self.name, "Immich", format!("it did not {what}"))
            })?;
        map.insert(album.to_string(), id.clone());
        Ok(Some(id))
    }

    /// Adds (`add`) or removes an asset from an album. Already in it (or
    /// already out) is fine.
    fn membership(&self, album: &str, asset: &str, add: bool) -> Result<(), DestError> {
        let Some(id) = self.album_id(album, add)? else {
            return Ok(());
        };
        let (method, what) = if add {
            (Method::PUT, format!("add an asset to the album {album}"))
        } else {
            (
                Method::DELETE,
                format!("take an asset out of the album {album}"),
            )
        };
        let path = format!("albums/{id}/assets");
        let resp = self.send(
            &what,
            self.json_req(method, &path, &json!({ "ids": [asset] })),
            &[],
        )?;
        let results = self.json(&what, resp)?;
        for r in results.as_array().into_iter().flatten() {
            let ok = r.get("success").and_then(Value::as_bool) == Some(true);
            let error = r.get("error").and_then(Value::as_str).unwrap_or("unknown");
            let fine = if add { "duplicate" } else { "not_found" };
            if !ok && error != fine {
                return Err(DestError::Http {
                    name: self.name.clone(),
                    what: format!("{what} (the server says {error})"),
                    status: 200,
                    transient: false,
                    retry_after: None,
                });
            }
        }
        Ok(())
    }

    /// The still and the motion asset of a Live Photo whose half `name`
    /// (asset `asset`) just got its place in `album`: a still (HEIC or
    /// JPEG) and a QuickTime clip of one stem, as an iPhone names them and
    /// as their numbered names keep them (`item.rs`). Either half may come
    /// first; the pair is linked when the second arrives.
    fn live_pair(
        &self,
        album: &str,
        name: &str,
        asset: &str,
    ) -> Result<Option<(String, String)>, DestError> {
        const STILLS: [&str; 4] = ["HEIC", "JPG", "JPEG", "HEIF"];
        let Some((stem, ext)) = name.rsplit_once('.') else {
            return Ok(None);
        };
        let ext = ext.to_ascii_uppercase();
        let (partners, motion_first): (&[&str], bool) = if ext == "MOV" {
            (&STILLS, true)
        } else if STILLS.contains(&ext.as_str()) {
            (&["MOV"], false)
        } else {
            return Ok(None);
        };
        for partner in partners {
            for cased in [partner.to_string(), partner.to_ascii_lowercase()] {
                let other = format!("{stem}.{cased}");
                if let Some(found) = self
                    .names
                    .asset(album, &other)
                    .map_err(|e| self.store_err(e))?
                {
                    return Ok(Some(if motion_first {
                        (found, asset.to_string())
                    } else {
                        (asset.to_string(), found)
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Links a Live Photo's still to its motion, whatever the server's own
    /// pairing made of them.
    fn link_live_photo(&self, still: &str, motion: &str) -> Result<(), DestError> {
        self.send(
            "link a Live Photo's still to its motion",
            self.json_req(
                Method::PUT,
                &format!("assets/{still}"),
                &json!({ "livePhotoVideoId": motion }),
            ),
            &[],
        )
        .map(drop)
    }

    /// Moves assets to Immich's trash (never a permanent delete).
    fn trash(&self, asset: &str) -> Result<(), DestError> {
        self.send(
            "move an asset to the trash",
            self.json_req(Method::DELETE, "assets", &json!({ "ids": [asset] })),
            &[400],
        )
        .map(drop)
    }

    /// The asset's description, or `None` when the server has no such asset.
    fn asset(&self, asset: &str) -> Result<Option<Value>, DestError> {
        let what = "look an asset up";
        let resp = self.send(
            what,
            self.req(Method::GET, &format!("assets/{asset}"), 0),
            &[400, 404],
        )?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        self.json(what, resp).map(Some)
    }

    /// The asset an album's name is: the one recorded, else (a machine whose
    /// index knows nothing, as for `restore`) the album's asset uploaded
    /// under that file name.
    fn asset_of(&self, album: &str, name: &str) -> Result<Option<String>, DestError> {
        if let Some(a) = self
            .names
            .asset(album, name)
            .map_err(|e| self.store_err(e))?
        {
            return Ok(Some(a));
        }
        Ok(self
            .album_assets(album)?
            .into_iter()
            .find(|a| a.get("originalFileName").and_then(Value::as_str) == Some(name))
            .and_then(|a| a.get("id").and_then(Value::as_str).map(str::to_string)))
    }

    /// The assets of an album, as the server lists them.
    fn album_assets(&self, album: &str) -> Result<Vec<Value>, DestError> {
        let Some(id) = self.album_id(album, false)? else {
            return Ok(Vec::new());
        };
        let what = format!("list the album {album}");
        let resp = self.send(
            &what,
            self.req(Method::GET, &format!("albums/{id}"), 0),
            &[],
        )?;
        let mut album = self.json(&what, resp)?;
        Ok(match album.get_mut("assets").map(Value::take) {
            Some(Value::Array(assets)) => assets,
            _ => Vec::new(),
        })
    }

    fn store_err(&self, e: crate::error::Error) -> DestError {
        DestError::Unavailable {
            name: self.name.clone(),
            why: format!("cannot keep its names in the index: {e}"),
        }
    }

    /// Checks that `<album>/<name>` is free, or already `asset`.
    fn free_for(&self, (album, name): (&str, &str), asset: &str) -> Result<(), DestError> {
        match self
            .names
            .asset(album, name)
            .map_err(|e| self.store_err(e))?
        {
            Some(there) if there != asset => Err(DestError::NameTaken {
                name: self.name.clone(),
                album: album.to_string(),
                object: name.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The asset `<album>/<name>` is, for an operation (`what`) on it.
    fn recorded(&self, (album, name): (&str, &str), what: &str) -> Result<String, DestError> {
        self.names
            .asset(album, name)
            .map_err(|e| self.store_err(e))?
            .ok_or_else(|| DestError::Http {
                name: self.name.clone(),
                what: format!("{what} {album}/{name}: it has no asset on the server"),
                status: 404,
                transient: false,
                retry_after: None,
            })
    }

    /// Writes the source to a spool file, hashing it with SHA-1 (what
    /// Immich checks duplicates by); returns the file, its length and hash.
    fn spool(
        &self,
        source: &mut (dyn Read + Send),
    ) -> Result<(std::fs::File, u64, String), DestError> {
        let io = |e: std::io::Error| DestError::Io {
            name: self.name.clone(),
            path: self.spool.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(&self.spool).map_err(io)?;
        // Unnamed where the platform allows: nothing is left after a crash.
        let mut file = tempfile::tempfile_in(&self.spool).map_err(io)?;
        let mut sha = sha1::Sha1::new();
        let mut buf = vec![0; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(DestError::Interrupted {
                        name: self.name.clone(),
                        what: "read the file to upload".into(),
                        why: e.to_string(),
                    });
                }
            };
            sha.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io)?;
            len += n as u64;
        }
        file.rewind().map_err(io)?;
        use base64::Engine as _;
        let checksum = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
        Ok((file, len, checksum))
    }

    /// Asks whether the server holds this content; returns the asset and
    /// whether it sits in the trash.
    fn held(&self, checksum: &str) -> Result<Option<(String, bool)>, DestError> {
        let what = "check whether the server holds the photo";
        let body = json!({ "assets": [{ "id": "0", "checksum": checksum }] });
        let resp = self.send(
            what,
            self.json_req(Method::POST, "assets/bulk-upload-check", &body),
            &[],
        )?;
        let answer = self.json(what, resp)?;
        let result = answer
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        if result.get("action").and_then(Value::as_str) != Some("reject") {
            return Ok(None);
        }
        Ok(result.get("assetId").and_then(Value::as_str).map(|id| {
            let trashed = result.get("isTrashed").and_then(Value::as_bool) == Some(true);
            (id.to_string(), trashed)
        }))
    }

    /// Uploads the spooled content as a new asset; returns its id and
    /// whether the server created it (rather than finding a duplicate).
    fn post_asset(
        &self,
        upload: &Upload<'_>,
        file: std::fs::File,
        len: u64,
        checksum: &str,
    ) -> Result<(String, bool), DestError> {
        let major = self.major()?;
        let boundary = format!("shoebox-{}", crate::platform::random_hex(16));
        let modified = upload
            .modified
            .map(iso_time)
            .unwrap_or_else(|| iso_time(std::time::SystemTime::now()));
        let created = upload
            .taken
            .and_then(|t| {
                use chrono::TimeZone;
                chrono::Local.from_local_datetime(&t).earliest()
            })
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            })
            .unwrap_or_else(|| modified.clone());
        let mut fields = vec![
            ("fileCreatedAt", created),
            ("fileModifiedAt", modified),
            ("isFavorite", "false".to_string()),
        ];
        if major < 3 {
            // v2 needs them (v3 refuses them): the content names the asset.
            let id: String = upload.hash[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            fields.push(("deviceAssetId", format!("shoebox-{id}")));
            fields.push(("deviceId", "shoebox".to_string()));
        }
        let mut head = String::new();
        for (k, v) in &fields {
            head.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            form_quoted(upload.name)
        ));
        // An XMP sidecar beside the photo goes with it, as Immich's own
        // client sends it: `IMG_1.xmp` or `IMG_1.JPG.xmp`.
        let mut sidecar_part = Vec::new();
        if let Some(xmp) = upload.source.and_then(sidecar_of) {
            sidecar_part.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"sidecarData\"; \
                     filename=\"{}.xmp\"\r\nContent-Type: application/rdf+xml\r\n\r\n",
                    form_quoted(upload.name)
                )
                .as_bytes(),
            );
            sidecar_part.extend_from_slice(&xmp);
        }
        let tail = format!("\r\n--{boundary}--\r\n");
        let total = head.len() as u64 + len + sidecar_part.len() as u64 + tail.len() as u64;
        let body = std::io::Cursor::new(head.into_bytes())
            .chain(file)
            .chain(std::io::Cursor::new(sidecar_part))
            .chain(std::io::Cursor::new(tail.into_bytes()));
        let body = match crate::transfer::rate::UPLOADS.rate() {
            Some(_) => reqwest::blocking::Body::sized(crate::transfer::rate::paced(body), total),
            None => reqwest::blocking::Body::sized(body, total),
        };
        let what = format!("upload {}", upload.name);
        let resp = self.send(
            &what,
            self.req(Method::POST, "assets", total)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .header("x-immich-checksum", checksum)
                .body(body),
            &[],
        )?;
        let answer = self.json(&what, resp)?;
        let id = answer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                http::not_behaving(
                    &self.name,
                    "Immich",
                    format!("its answer to {what} has no asset id"),
                )
            })?;
        let created = answer.get("status").and_then(Value::as_str) == Some("created");
        Ok((id, created))
    }
}

/// The largest XMP sidecar sent along (a sidecar is a few kilobytes).
const MAX_SIDECAR: u64 = 4 * 1024 * 1024;

/// The XMP sidecar beside a photo, as darktable, Lightroom and digiKam
/// name it (`IMG_1.xmp`, `IMG_1.JPG.xmp`, either case), if one is there.
fn sidecar_of(photo: &Path) -> Option<Vec<u8>> {
    let name = photo.file_name()?;
    let stem = photo.file_stem()?;
    let mut candidates = Vec::new();
    for ext in [".xmp", ".XMP"] {
        for base in [stem, name] {
            let mut n = base.to_os_string();
            n.push(ext);
            candidates.push(photo.with_file_name(n));
        }
    }
    candidates.into_iter().find_map(|p| {
        let file = std::fs::File::open(&p).ok()?;
        if file.metadata().ok()?.len() > MAX_SIDECAR {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_SIDECAR).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    })
}

/// A file name inside a quoted form-data parameter: quotes and line breaks
/// escaped as browsers do.
fn form_quoted(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A time as Immich's dates are written (RFC 3339, UTC, milliseconds).
fn iso_time(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `: <message>` from an Immich error answer, if it has one.
fn server_message(resp: Response) -> String {
    let Some(v) = resp
        .bytes()
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return String::new();
    };
    match v.get("message") {
        Some(Value::String(m)) => format!(": {m}"),
        Some(Value::Array(ms)) => {
            let ms: Vec<_> = ms.iter().filter_map(Value::as_str).collect();
            format!(": {}", ms.join("; "))
        }
        _ => String::new(),
    }
}

/// An upload whose asset is on the server but in no album yet.
struct StagedAsset {
    dest: Arc<Server>,
    album: String,
    name: String,
    asset: String,
    overwrite: bool,
    /// The server made this asset for this upload (it held no copy).
    created: bool,
    /// A commit was tried: whatever became of it, the asset may be in
    /// use, and the next attempt finds it by its checksum.
    commit_tried: bool,
}

impl Staged for StagedAsset {
    fn commit(mut self: Box<Self>) -> Result<(), DestError> {
        self.commit_tried = true;
        let d = self.dest.clone();
        let (album, name) = (self.album.as_str(), self.name.as_str());
        let old = d.names.asset(album, name).map_err(|e| d.store_err(e))?;
        if let Some(old) = &old
            && !self.overwrite
            && *old != self.asset
        {
            return Err(DestError::NameTaken {
                name: d.name.clone(),
                album: album.to_string(),
                object: name.to_string(),
            });
        }
        d.membership(album, &self.asset, true)?;
        match old.filter(|old| *old != self.asset) {
            // An edit: the new version takes the old one's place everywhere.
            Some(old) if self.overwrite => {
                d.send(
                    "copy an edited photo's albums and details to its new version",
                    d.json_req(
                        Method::PUT,
                        "assets/copy",
                        &json!({ "sourceId": old, "targetId": self.asset }),
                    ),
                    &[],
                )?;
                d.names
                    .set(album, name, &self.asset)
                    .map_err(|e| d.store_err(e))?;
                if d.names
                    .names_of(&old)
                    .map_err(|e| d.store_err(e))?
                    .is_empty()
                {
                    d.trash(&old)?;
                }
            }
            _ => d
                .names
                .set(album, name, &self.asset)
                .map_err(|e| d.store_err(e))?,
        }
        if let Some((still, motion)) = d.live_pair(album, name, &self.asset)? {
            d.link_live_photo(&still, &motion)?;
        }
        Ok(())
    }
}

impl Drop for StagedAsset {
    fn drop(&mut self) {
        // An asset made for an upload that was never committed (the
        // source changed while it was read) goes to the trash, unless a
        // name holds it meanwhile.
        if self.created && !self.commit_tried {
            let unused = self
                .dest
                .names
                .names_of(&self.asset)
                .is_ok_and(|names| names.is_empty());
            if unused && let Err(e) = self.dest.trash(&self.asset) {
                tracing::warn!(dest = %self.dest.name, "an unused upload stays on the server: {e}");
            }
        }
    }
}

impl Destination for Immich {
    fn name(&self) -> &str {
        &self.name
    }

    fn reach(&self) -> Result<(), DestError> {
        self.major()?;
        // Any valid key may read itself, whatever its permissions.
        self.send("sign in", self.req(Method::GET, "api-keys/me", 0), &[])
            .map(drop)
    }

    fn prepare(&self) -> Result<(), DestError> {
        *self.albums.lock().expect("lock") = None;
        *self.major.lock().expect("lock") = None;
        self.reach()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        let Some(asset) = self
            .names
            .asset(album, name)
            .map_err(|e| self.store_err(e))?
        else {
            return Ok(false);
        };
        // Deleted in Immich itself: the name is free again.
        if self.asset(&asset)?.is_none() {
            self.names
                .remove(album, name)
                .map_err(|e| self.store_err(e))?;
            return Ok(false);
        }
        Ok(true)
    }

    fn read_back(&self, album: &str, name: &str, len: u64) -> Result<Option<ReadBack>, DestError> {
        let Some(asset) = self.asset_of(album, name)? else {
            return Ok(None);
        };
        let resp = self.send(
            "read a photo back",
            self.req(Method::GET, &format!("assets/{asset}/original"), len),
            &[400, 404],
        )?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(http::body_of(resp, len).map(ReadBack::undated))
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let (file, len, checksum) = self.spool(source)?;
        let (asset, created) = match self.held(&checksum)? {
            Some((asset, trashed)) => {
                if trashed {
                    self.send(
                        "restore a photo from the trash",
                        self.json_req(
                            Method::POST,
                            "trash/restore/assets",
                            &json!({ "ids": [asset] }),
                        ),
                        &[],
                    )?;
                }
                (asset, false)
            }
            None => self.post_asset(upload, file, len, &checksum)?,
        };
        Ok((
            Box::new(StagedAsset {
                dest: self.0.clone(),
                album: upload.album.to_string(),
                name: upload.name.to_string(),
                asset,
                overwrite: upload.overwrite,
                created,
                commit_tried: false,
            }),
            len,
        ))
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let asset = self.recorded(from, "move")?;
        self.free_for(to, &asset)?;
        if from.0 != to.0 {
            self.membership(to.0, &asset, true)?;
        }
        self.names
            .rename(from, to, &asset)
            .map_err(|e| self.store_err(e))?;
        let still_there = self
            .names
            .names_of(&asset)
            .map_err(|e| self.store_err(e))?
            .iter()
            .any(|(album, _)| album == from.0);
        if from.0 != to.0 && !still_there {
            self.membership(from.0, &asset, false)?;
        }
        Ok(())
    }

    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let asset = self.recorded(from, "copy")?;
        self.free_for(to, &asset)?;
        self.membership(to.0, &asset, true)?;
        self.names
            .set(to.0, to.1, &asset)
            .map_err(|e| self.store_err(e))
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        let Some(asset) = self
            .names
            .asset(album, name)
            .map_err(|e| self.store_err(e))?
        else {
            return Ok(());
        };
        let mut others = self.names.names_of(&asset).map_err(|e| self.store_err(e))?;
        others.retain(|(a, n)| (a.as_str(), n.as_str()) != (album, name));
        if !others.iter().any(|(a, _)| a == album) {
            self.membership(album, &asset, false)?;
        }
        if others.is_empty() {
            self.trash(&asset)?;
        }
        self.names
            .remove(album, name)
            .map_err(|e| self.store_err(e))
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        let mut assets = self.album_assets(album)?;
        // A server whose album listing leaves out the file sizes gives them
        // with each asset's own details: those are asked asset by asset.
        for a in &mut assets {
            if a.pointer("/exifInfo/fileSizeInByte").is_none()
                && let Some(id) = a.get("id").and_then(Value::as_str).map(str::to_string)
                && let Some(full) = self.asset(&id)?
            {
                *a = full;
            }
        }
        let mut by_id: HashMap<&str, &Value> = HashMap::new();
        for a in &assets {
            if let Some(id) = a.get("id").and_then(Value::as_str) {
                by_id.insert(id, a);
            }
        }
        let listed = |name: String, a: &Value| Listed {
            name,
            len: a
                .pointer("/exifInfo/fileSizeInByte")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            modified: a
                .get("fileModifiedAt")
                .and_then(Value::as_str)
                .and_then(parse_time),
        };
        let mut out = Vec::new();
        let mut named = std::collections::HashSet::new();
        for (name, asset) in self.names.names_in(album).map_err(|e| self.store_err(e))? {
            if let Some(a) = by_id.get(asset.as_str()) {
                named.insert(asset);
                out.push(listed(name, a));
            }
        }
        // Assets the index does not name (another machine's, or a lost
        // data folder): by the file name they were uploaded with.
        for a in &assets {
            let id = a.get("id").and_then(Value::as_str).unwrap_or_default();
            if !named.contains(id)
                && let Some(n) = a.get("originalFileName").and_then(Value::as_str)
            {
                out.push(listed(n.to_string(), a));
            }
        }
        Ok(Some(out))
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        *self.albums.lock().expect("lock") = None;
        let known = self.known_albums()?;
        Ok(known.as_ref().map(|m| m.keys().cloned().collect()))
    }

    fn stored_modified(
        &self,
        album: &str,
        name: &str,
    ) -> Result<Option<std::time::SystemTime>, DestError> {
        let Some(asset) = self.asset_of(album, name)? else {
            return Ok(None);
        };
        Ok(self.asset(&asset)?.and_then(|a| {
            a.get("fileModifiedAt")
                .and_then(Value::as_str)
                .and_then(parse_time)
        }))
    }

    fn check(&self) -> Vec<Check> {
        let reached = self.reach();
        let mut out = vec![super::reach_check(&reached)];
        if reached.is_err() {
            return out;
        }
        let what = "read the API key's permissions";
        let permissions = self
            .send(what, self.req(Method::GET, "api-keys/me", 0), &[])
            .and_then(|resp| self.json(what, resp))
            .map_err(|e| e.to_string())
            .and_then(|key| {
                let has: Vec<&str> = key
                    .get("permissions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if has.contains(&"all") {
                    return Ok("the API key has every permission".to_string());
                }
                let missing: Vec<&str> = PERMISSIONS
                    .iter()
                    .copied()
                    .filter(|p| !has.contains(p))
                    .collect();
                if missing.is_empty() {
                    Ok("the API key has the permissions Shoebox needs".to_string())
                } else {
                    Err(format!(
                        "the API key lacks {}: give it these permissions in Immich (Account \
                         Settings → API Keys), or make a key with all of them",
                        missing.join(", ")
                    ))
                }
            });
        out.push(Check::new("permissions", permissions));
        out
    }
}

/// An RFC 3339 time from an Immich answer.
fn parse_time(text: &str) -> Option<std::time::SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(std::time::SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_base_is_found_from_the_server_or_the_api_address() {
        for (given, want) in [
            ("https://photos.example", "https://photos.example/api/"),
            ("https://photos.example/", "https://photos.example/api/"),
            ("https://photos.example/api", "https://photos.example/api/"),
            (
                "https://example.org/immich/api/",
                "https://example.org/immich/api/",
            ),
            (
                "https://example.org/immich",
                "https://example.org/immich/api/",
            ),
        ] {
            assert_eq!(api_base("im", given, false).unwrap().as_str(), want);
        }
        let plain = api_base("im", "http://nas.local:2283", false).unwrap_err();
        assert!(
            plain.to_string().contains("--allow-insecure-http"),
            "an API key never crosses plain HTTP without consent: {plain}"
        );
        assert!(api_base("im", "http://nas.local:2283", true).is_ok());
    }

    #[test]
    fn a_file_name_cannot_break_out_of_its_form_field() {
        assert_eq!(form_quoted("a\"b\r\n.jpg"), "a%22b%0D%0A.jpg");
    }

    #[test]
    fn dates_are_written_and_read_as_immich_does() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_500_000_000_123);
        let text = iso_time(t);
        assert_eq!(text, "2017-07-14T02:40:00.123Z");
        assert_eq!(parse_time(&text), Some(t));
    }
}
