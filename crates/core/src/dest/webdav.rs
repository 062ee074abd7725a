//! A WebDAV server as a destination (Nextcloud, ownCloud, Synology, Apache
//! mod_dav, rclone serve …): albums are collections under the destination's
//! URL. Uploads stream into `.shoebox-staging/` and are then MOVEd to their
//! final name, so no partial file is ever visible there. One HTTP client per
//! destination (timeouts, user agent, HTTP/2 when offered, system roots).

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use url::Url;

use super::http_auth::{self, Credentials};
use super::{Check, Destination, Listed, Staged, Upload, http};
use crate::error::DestError;
use crate::transfer::rate::paced;

const STAGING: &str = ".shoebox-staging";

/// What stays raw in a path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone)]
pub struct WebDav {
    name: String,
    base: Url,
    client: Client,
    /// None for a server without accounts.
    auth: Option<Arc<Credentials>>,
    /// Album collections known to exist, so each is created once (and
    /// concurrent uploads do not race to create it).
    collections: Arc<Mutex<HashSet<String>>>,
    /// This engine's staging collection inside [`STAGING`].
    engine: String,
    /// Set when the server cuts a MOVE's or COPY's Destination at a `;`
    /// (WsgiDAV 4 decodes the header, then parses `;…` off as path
    /// parameters): such names are then stored with the full-width `；`,
    /// as names FAT refuses are. Found by [`WebDav::probe_semicolons`].
    cuts_at_semicolon: Arc<AtomicBool>,
}

/// How a server that cuts Destination headers at `;` gets a name's `;`.
const SEMICOLON_LOOKALIKE: &str = "\u{FF1B}";

/// What sending a request came to.
enum Sent {
    Answered(Response),
    /// A new Digest challenge came for a request that cannot be sent twice
    /// (a streamed upload): sent again, it answers the challenge.
    Challenged,
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("a valid WebDAV method name")
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

impl WebDav {
    /// `url` is the collection albums go into. Credentials over plain HTTP
    /// are refused unless `insecure_http`.
    pub fn new(
        name: &str,
        url: &str,
        user: Option<String>,
        password: Option<String>,
        insecure_http: bool,
        tls_cert: Option<&[u8]>,
        engine: &str,
    ) -> Result<WebDav, DestError> {
        let mut base = http::parse_url(name, url, password.is_some(), insecure_http)?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let client = http::client(name, tls_cert)?;
        Ok(WebDav {
            name: name.to_string(),
            base,
            client,
            auth: user.map(|u| Arc::new(Credentials::new(u, password))),
            collections: Arc::default(),
            engine: engine.to_string(),
            cuts_at_semicolon: Arc::default(),
        })
    }

    /// The URL of `parts` below the base. Every byte but the unreserved
    /// ones is percent-encoded: RFC 3986 allows `;`, `+`, `&`, `=`, `[`
    /// and `]` raw in a path, but servers read them as path parameters or
    /// query syntax (WsgiDAV stored `b;c.jpg` as `b`), and the encoded
    /// form means the same to every server that gets it right.
    fn url(&self, parts: &[&str], collection: bool) -> Url {
        if self.cuts_at_semicolon.load(Ordering::Relaxed) {
            let mapped: Vec<String> = parts
                .iter()
                .map(|p| p.replace(';', SEMICOLON_LOOKALIKE))
                .collect();
            let mapped: Vec<&str> = mapped.iter().map(String::as_str).collect();
            return self.exact_url(&mapped, collection);
        }
        self.exact_url(parts, collection)
    }

    /// The URL of `parts` exactly as given (see [`WebDav::url`]).
    fn exact_url(&self, parts: &[&str], collection: bool) -> Url {
        let mut path = self.base.path().trim_end_matches('/').to_string();
        for p in parts {
            path.push('/');
            path.extend(utf8_percent_encode(p, SEGMENT));
        }
        if collection {
            path.push('/');
        }
        let mut u = self.base.clone();
        u.set_path(&path);
        u
    }

    /// A request, without its credentials: [`WebDav::execute`] adds them.
    fn req(&self, m: &str, url: Url) -> RequestBuilder {
        self.client
            .request(method(m), url)
            .timeout(http::timeout_for(0))
    }

    /// Sends a request with the credentials. A 401 that brings a new
    /// Digest challenge is answered by sending the request again with the
    /// answer; a streamed upload cannot be sent twice, so it fails as
    /// transient and its retry answers the challenge.
    fn execute(&self, r: RequestBuilder) -> reqwest::Result<Sent> {
        let mut req = r.build()?;
        let Some(auth) = &self.auth else {
            return self.client.execute(req).map(Sent::Answered);
        };
        auth.authorize(&mut req);
        let again = req.try_clone();
        let resp = self.client.execute(req)?;
        if resp.status() != StatusCode::UNAUTHORIZED || !auth.take_challenge(&resp) {
            return Ok(Sent::Answered(resp));
        }
        match again {
            Some(mut req) => {
                auth.authorize(&mut req);
                self.client.execute(req).map(Sent::Answered)
            }
            None => Ok(Sent::Challenged),
        }
    }

    /// Sends a request and turns failures into errors that say what to do.
    fn send(
        &self,
        what: &str,
        r: RequestBuilder,
        ok: &[StatusCode],
    ) -> Result<Response, DestError> {
        let sent = self
            .execute(r)
            .map_err(|e| http::transport_error(&self.name, &self.base, what, &e))?;
        let resp = match sent {
            Sent::Answered(resp) => resp,
            Sent::Challenged => {
                return Err(DestError::Http {
                    name: self.name.clone(),
                    what: format!("{what} (the server renewed its Digest challenge)"),
                    status: 401,
                    transient: true,
                    retry_after: None,
                });
            }
        };
        let status = resp.status();
        if ok.contains(&status) || status.is_success() && ok.is_empty() {
            return Ok(resp);
        }
        Err(self.status_error(what, status, &resp))
    }

    fn status_error(&self, what: &str, status: StatusCode, resp: &Response) -> DestError {
        if let Some(e) = http::redirected(&self.name, what, resp) {
            return e;
        }
        let retry_after = http::retry_after(resp);
        match status.as_u16() {
            401 | 403 => DestError::Unavailable {
                name: self.name.clone(),
                why: self.refused(status, resp),
            },
            507 => DestError::Full {
                name: self.name.clone(),
                source: io::Error::other(format!(
                    "{what}: the server says it is out of space ({status})"
                )),
            },
            code => DestError::Http {
                name: self.name.clone(),
                what: what.to_string(),
                status: code,
                // 423: locked by a concurrent request (e.g. two uploads
                // creating one album folder); 409 on MOVE: the album folder
                // vanished and is made again on retry.
                transient: matches!(code, 409 | 423) || http::transient_status(code),
                retry_after,
            },
        }
    }

    /// Why a 401 or 403 stopped the destination, and what to do: wrong
    /// credentials, or a scheme Shoebox does not speak (named).
    fn refused(&self, status: StatusCode, resp: &Response) -> String {
        let schemes = http_auth::schemes(resp);
        let spoken =
            |s: &String| s.eq_ignore_ascii_case("basic") || s.eq_ignore_ascii_case("digest");
        if status == StatusCode::UNAUTHORIZED && !schemes.is_empty() && !schemes.iter().any(spoken)
        {
            return format!(
                "the server asks for {} authentication, which Shoebox does not speak (it speaks \
                 Basic and Digest): allow one of those on the server, or use another address",
                schemes.join(" or ")
            );
        }
        format!(
            "the server refused the credentials ({status}); check the user name and the password \
             (add the destination again, or set {})",
            crate::secrets::env_var(&self.name)
        )
    }

    /// Makes sure an album collection exists (MKCOL once per album;
    /// "already there" is fine).
    fn make_collection(&self, parts: &[&str]) -> Result<(), DestError> {
        let key = parts.join("/");
        let mut known = self.collections.lock().expect("lock");
        if known.contains(&key) {
            return Ok(());
        }
        let url = self.url(parts, true);
        self.send(
            "create a folder",
            self.req("MKCOL", url),
            &[
                StatusCode::CREATED,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::OK,
            ],
        )?;
        known.insert(key);
        Ok(())
    }

    fn name_taken(&self, album: &str, name: &str) -> DestError {
        DestError::NameTaken {
            name: self.name.clone(),
            album: album.to_string(),
            object: name.to_string(),
        }
    }

    /// The members of the collection at `url` (PROPFIND, `Depth: 1`).
    fn members(&self, url: Url) -> Result<Vec<Member>, DestError> {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><propfind xmlns=\"DAV:\"><prop>\
            <resourcetype/><getcontentlength/><getlastmodified/></prop></propfind>";
        let r = self
            .req("PROPFIND", url.clone())
            .header("Depth", "1")
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(body);
        let resp = self.send("list a folder", r, &[StatusCode::MULTI_STATUS])?;
        let text = resp.text().map_err(|e| DestError::Interrupted {
            name: self.name.clone(),
            what: "list a folder".to_string(),
            why: e.to_string(),
        })?;
        multistatus_members(&text, url.path()).map_err(|why| {
            http::not_behaving(
                &self.name,
                "WebDAV",
                format!("the server answered a listing with {why}"),
            )
        })
    }

    /// Opens the root collection (PROPFIND), which proves that the server
    /// is reached and accepts the credentials.
    fn open_root(&self) -> Result<(), DestError> {
        let r = self.req("PROPFIND", self.base.clone()).header("Depth", "0");
        match self.send(
            "open the destination folder",
            r,
            &[StatusCode::MULTI_STATUS, StatusCode::OK],
        ) {
            Err(DestError::Http { status: 404, .. }) => Err(DestError::Unavailable {
                name: self.name.clone(),
                why: format!(
                    "the folder {} does not exist on the server; create it there first",
                    self.base
                ),
            }),
            other => other.map(drop),
        }?;
        // A catch-all server answers success for anything: ask for a file
        // that cannot exist.
        let absent = self.url(&[STAGING, &http::absent_name()], false);
        if self.exists_url(absent)? {
            return Err(http::not_behaving(
                &self.name,
                "WebDAV",
                "the server says a file that cannot exist is there".to_string(),
            ));
        }
        Ok(())
    }

    /// After a MOVE or upload the server said was done: one HEAD proves
    /// that the object is there with its full length.
    fn verify_stored(&self, album: &str, name: &str, len: u64) -> Result<(), DestError> {
        let resp = self.send(
            "check the stored file",
            self.req("HEAD", self.url(&[album, name], false)),
            &[StatusCode::OK, StatusCode::NOT_FOUND],
        )?;
        // The header, not `content_length()`: a HEAD answer has no body.
        let found = (resp.status() == StatusCode::OK).then(|| {
            resp.headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        });
        match found {
            Some(None) => Ok(()), // no length given: presence is what it proves
            Some(Some(n)) if n == len => Ok(()),
            Some(Some(n)) => Err(http::not_behaving(
                &self.name,
                "WebDAV",
                format!(
                    "the server said {album}/{name} was stored ({len} bytes), but it holds {n} bytes there"
                ),
            )),
            None => Err(http::not_behaving(
                &self.name,
                "WebDAV",
                format!("the server said {album}/{name} was stored, but it is not there"),
            )),
        }
    }

    /// Finds out whether the server keeps a `;` in a MOVE's Destination:
    /// moves an empty staged object to a name with one and looks for it.
    fn probe_semicolons(&self) -> Result<(), DestError> {
        let at = |name: &str| self.exact_url(&[STAGING, &self.engine, name], false);
        let ok = [StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK];
        self.send("upload a probe", self.req("PUT", at("probe")).body(""), &ok)?;
        // Cut at its `;`, this name is neither the probe's nor taken.
        let target = at("probe-moved;1");
        let r = self
            .req("MOVE", at("probe"))
            .header("Destination", target.as_str())
            .header("Overwrite", "T");
        self.send("move a probe", r, &ok)?;
        let kept = self.exists_url(target.clone())?;
        if !kept {
            tracing::warn!(
                dest = %self.name,
                "the server cuts names at ';' when it moves a file (a known WsgiDAV bug): \
                 names with ';' are stored with '{SEMICOLON_LOOKALIKE}' there"
            );
        }
        self.cuts_at_semicolon.store(!kept, Ordering::Relaxed);
        for probe in [target, at("probe-moved"), at("probe")] {
            let _ = self.execute(self.req("DELETE", probe));
        }
        Ok(())
    }

    /// Forgets that an album collection exists (it was found missing).
    fn forget_collection(&self, album: &str) {
        self.collections.lock().expect("lock").remove(album);
    }

    fn exists_url(&self, url: Url) -> Result<bool, DestError> {
        let r = self.send(
            "look up",
            self.req("HEAD", url),
            &[StatusCode::OK, StatusCode::NOT_FOUND],
        )?;
        Ok(r.status() == StatusCode::OK)
    }

    fn move_or_copy(&self, m: &str, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.make_collection(&[to.0])?;
        let target = self.url(&[to.0, to.1], false);
        let r = self
            .req(m, self.url(&[from.0, from.1], false))
            .header("Destination", target.as_str())
            .header("Overwrite", "F");
        match self.send(
            m,
            r,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
        ) {
            Ok(_) => Ok(()),
            Err(DestError::Http { status: 412, .. }) => Err(self.name_taken(to.0, to.1)),
            // Already moved (a crash came between the move and its record).
            Err(DestError::Http { status: 404, .. })
                if m == "MOVE" && self.exists_url(target)? =>
            {
                Ok(())
            }
            Err(e @ DestError::Http { status: 409, .. }) => {
                self.forget_collection(to.0);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

struct WebDavStaged {
    dest: WebDav,
    temp: Url,
    album: String,
    name: String,
    overwrite: bool,
    len: u64,
    committed: bool,
}

impl Staged for WebDavStaged {
    fn commit(mut self: Box<Self>) -> Result<(), DestError> {
        self.dest.make_collection(&[&self.album])?;
        let target = self.dest.url(&[&self.album, &self.name], false);
        let r = self
            .dest
            .req("MOVE", self.temp.clone())
            .header("Destination", target.as_str())
            .header("Overwrite", if self.overwrite { "T" } else { "F" });
        let moved = self.dest.send(
            "move the upload into place",
            r,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
        );
        match &moved {
            Err(DestError::Http { status: 409, .. }) => self.dest.forget_collection(&self.album),
            Err(DestError::Http { status: 412, .. }) => {
                return Err(self.dest.name_taken(&self.album, &self.name));
            }
            _ => {}
        }
        moved?;
        self.committed = true;
        self.dest.verify_stored(&self.album, &self.name, self.len)
    }
}

impl Drop for WebDavStaged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the next prepare() clears the staging area anyway.
            let _ = self
                .dest
                .execute(self.dest.req("DELETE", self.temp.clone()));
        }
    }
}

impl Destination for WebDav {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> super::Capabilities {
        // COPY and MOVE (RFC 4918); GET reads back.
        super::Capabilities::ALL
    }

    fn reach(&self) -> Result<(), DestError> {
        self.open_root()
    }

    fn prepare(&self) -> Result<(), DestError> {
        self.open_root()?;
        // Leftovers of this engine's interrupted uploads go (never another
        // engine's); if that fails, the next prepare() tries again (staged
        // names never collide).
        let _ = self.execute(self.req("DELETE", self.url(&[STAGING, &self.engine], true)));
        self.collections.lock().expect("lock").clear();
        self.make_collection(&[STAGING])?;
        self.make_collection(&[STAGING, &self.engine])?;
        self.probe_semicolons()
    }

    /// PROPFIND with `Depth: 1` on the album's collection.
    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        let members = match self.members(self.url(&[album], true)) {
            Err(DestError::Http { status: 404, .. }) => return Ok(Some(Vec::new())),
            other => other?,
        };
        // Names were sent with `；` for `;` to a server that cuts at `;`.
        let cuts = self.cuts_at_semicolon.load(Ordering::Relaxed);
        Ok(Some(
            members
                .into_iter()
                .filter(|m| !m.collection)
                .map(|m| Listed {
                    name: if cuts {
                        m.name.replace(SEMICOLON_LOOKALIKE, ";")
                    } else {
                        m.name
                    },
                    len: m.len,
                    modified: m.modified,
                })
                .collect(),
        ))
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        let members = self.members(self.base.clone())?;
        Ok(Some(
            members
                .into_iter()
                .filter(|m| m.collection && !m.name.starts_with('.'))
                .map(|m| m.name)
                .collect(),
        ))
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        self.exists_url(self.url(&[album, name], false))
    }

    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<super::ReadBack>, DestError> {
        let r = self
            .req("GET", self.url(&[album, name], false))
            .timeout(http::timeout_for(len));
        let resp = self.send(
            "read an existing object back",
            r,
            &[StatusCode::OK, StatusCode::NOT_FOUND],
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(http::body_of(resp, len).map(super::ReadBack::undated))
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        self.make_collection(&[STAGING])?;
        self.make_collection(&[STAGING, &self.engine])?;
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        let temp = self.url(
            &[
                STAGING,
                &self.engine,
                &format!("upload-{}-{n}.part", std::process::id()),
            ],
            false,
        );
        let io_err = |e: io::Error| DestError::Io {
            name: self.name.clone(),
            path: temp.to_string(),
            source: e,
        };
        // The body must own its reader: stream through a pipe from a thread
        // that borrows ours (nothing is held in memory).
        let (pipe_r, mut pipe_w) = io::pipe().map_err(io_err)?;
        let mut put = self
            .req("PUT", temp.clone())
            .timeout(http::timeout_for(upload.len));
        // The source's date, where the server keeps it (Nextcloud, ownCloud
        // and WsgiDAV with `honor_mtime_header` read this header; the MOVE
        // into place keeps it). Whole seconds: WsgiDAV refuses a fraction
        // with 400, and Nextcloud keeps whole seconds anyway.
        if let Some(d) = upload
            .modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            put = put.header("X-OC-Mtime", d.as_secs().to_string());
        }
        let (sent, copied) = std::thread::scope(|s| {
            let copier = s.spawn(move || {
                let r = io::copy(source, &mut pipe_w);
                drop(pipe_w);
                r
            });
            let sent = self.send(
                "upload",
                put.body(Body::sized(paced(pipe_r), upload.len)),
                &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
            );
            (sent, copier.join().expect("the copier does not panic"))
        });
        let staged = WebDavStaged {
            dest: self.clone(),
            temp: temp.clone(),
            album: upload.album.into(),
            name: upload.name.into(),
            overwrite: upload.overwrite,
            len: upload.len,
            committed: false,
        };
        // A failed request is the cause of a failed copy (broken pipe).
        sent?;
        let copied = copied.map_err(io_err)?;
        Ok((Box::new(staged), copied))
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.move_or_copy("MOVE", from, to)
    }

    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.move_or_copy("COPY", from, to)
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        let url = self.url(&[album, name], false);
        self.send(
            "delete",
            self.req("DELETE", url),
            &[
                StatusCode::OK,
                StatusCode::NO_CONTENT,
                StatusCode::NOT_FOUND,
            ],
        )
        .map(drop)
    }

    fn check(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let reach = self
            .client
            .request(Method::OPTIONS, self.base.clone())
            .timeout(http::timeout_for(0))
            .send();
        out.push(Check::new(
            "reachable",
            reach
                .as_ref()
                .map(|r| format!("{} answers ({})", self.base, r.status()))
                .map_err(|e| {
                    http::transport_error(&self.name, &self.base, "reach the server", e).to_string()
                }),
        ));
        if reach.is_err() {
            return out;
        }
        let auth = self.open_root();
        out.push(Check::new(
            "credentials",
            auth.as_ref()
                .map(|()| "accepted".to_string())
                .map_err(ToString::to_string),
        ));
        if auth.is_err() {
            return out;
        }
        out.push(super::write_check(self));
        out
    }
}
/// A member of a collection, from a `Depth: 1` multistatus answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    collection: bool,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// The members of the collection at `collection` (a URL path) in a
/// `Depth: 1` multistatus answer; the collection itself is left out.
fn multistatus_members(body: &str, collection: &str) -> Result<Vec<Member>, String> {
    const DAV: &str = "DAV:";
    let doc = roxmltree::Document::parse(body).map_err(|e| format!("unreadable XML ({e})"))?;
    if !doc.root_element().has_tag_name((DAV, "multistatus")) {
        return Err(format!(
            "a <{}> document",
            doc.root_element().tag_name().name()
        ));
    }
    let decode = |p: &str| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    };
    let own = decode(collection.trim_end_matches('/'));
    let mut out = Vec::new();
    for resp in doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name((DAV, "response")))
    {
        let Some(href) = resp
            .children()
            .find(|n| n.has_tag_name((DAV, "href")))
            .and_then(|n| n.text())
        else {
            return Err("a response without an href".to_string());
        };
        // An absolute URL or an absolute path.
        let path = Url::parse(href.trim())
            .map_or_else(|_| href.trim().to_string(), |u| u.path().to_string());
        let path = decode(path.trim_end_matches('/'));
        if path == own {
            continue;
        }
        let ok_props = resp
            .children()
            .filter(|n| n.has_tag_name((DAV, "propstat")))
            .filter(|ps| {
                ps.children()
                    .find(|n| n.has_tag_name((DAV, "status")))
                    .and_then(|n| n.text())
                    .is_some_and(|t| t.contains(" 200"))
            })
            .flat_map(|ps| ps.children().filter(|n| n.has_tag_name((DAV, "prop"))))
            .flat_map(|p| p.children());
        let mut member = Member {
            name: path.rsplit('/').next().unwrap_or_default().to_string(),
            collection: false,
            len: 0,
            modified: None,
        };
        for prop in ok_props {
            let text = prop.text().unwrap_or_default().trim();
            if prop.has_tag_name((DAV, "resourcetype")) {
                member.collection |= prop.children().any(|c| c.has_tag_name((DAV, "collection")));
            } else if prop.has_tag_name((DAV, "getcontentlength")) {
                member.len = text.parse().unwrap_or(0);
            } else if prop.has_tag_name((DAV, "getlastmodified")) {
                member.modified = chrono::DateTime::parse_from_rfc2822(text)
                    .ok()
                    .map(std::time::SystemTime::from);
            }
        }
        out.push(member);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_gives_the_album_s_files_with_their_lengths() {
        // As Apache answers: prefixed elements, the collection itself, a
        // sub-collection, an encoded name and an absolute URL.
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:">
<D:response><D:href>/photos/Trip%20one/</D:href>
<D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/photos/Trip%20one/a%20b.jpg</D:href>
<D:propstat><D:prop><D:resourcetype/><D:getcontentlength>1000</D:getcontentlength></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>http://nas:8080/photos/Trip%20one/caf%C3%A9.jpg</D:href>
<D:propstat><D:prop><D:getcontentlength>7</D:getcontentlength></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/photos/Trip%20one/deeper/</D:href>
<D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
</D:multistatus>"#;
        let members = multistatus_members(body, "/photos/Trip%20one/").unwrap();
        let files: Vec<(&str, bool, u64)> = members
            .iter()
            .map(|m| (m.name.as_str(), m.collection, m.len))
            .collect();
        assert_eq!(
            files,
            [
                ("a b.jpg", false, 1000),
                ("caf\u{e9}.jpg", false, 7),
                ("deeper", true, 0)
            ]
        );
        assert!(multistatus_members("<html/>", "/photos/").is_err());
    }
}
