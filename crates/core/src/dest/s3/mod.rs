//! An S3-compatible bucket as a destination (AWS S3, Garage, MinIO, Ceph,
//! Backblaze B2, Cloudflare R2): albums are key prefixes,
//! `<prefix><album>/<name>`.
//!
//! No partial object is ever visible under its final name: S3 makes an
//! object visible only when its upload completes. Files up to 64 MiB go in
//! one streamed PUT whose last bytes are held back until the content is
//! proven to be the hashed version (otherwise the body is cut short and the
//! server stores nothing). Larger files use multipart uploads (several parts
//! in flight, each checked by Content-MD5) that are recorded in the store,
//! so a restarted engine sends only the parts the server does not have.
//! Renames and copies are server-side: no bytes are sent again.

mod copy;
mod list;
use copy::guarded_copy;
mod multipart;
mod put;
mod wire;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest, Md5};
use reqwest::blocking::{Body, Client, Response};
use url::Url;

use super::http;
use super::{Check, Destination, Listed, Staged, Upload};
use crate::error::DestError;
use crate::store::{Hash, MultipartLog, S3Settings};
use crate::transfer::rate::paced;
use wire::{Endpoint, encode_key};

/// Files above this size use multipart uploads.
const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Files up to this size (most photos) are read into memory and sent in one
/// PUT with Content-MD5: no pipe, no extra thread, checked by the server.
const BUFFERED_PUT: u64 = 16 * 1024 * 1024;
/// The smallest part; parts grow so that no upload needs over 10,000.
const MIN_PART: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Parts sent at once for one file.
const PARTS_IN_FLIGHT: usize = 3;
/// CopyObject's limit; larger objects are copied part by part.
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Recorded uploads not finished for this long are given up (aborted).
const STALE_UPLOAD_SECS: i64 = 7 * 24 * 3600;

const STAGING: &str = ".shoebox-staging";

/// Everything needed to open an S3 destination.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub settings: S3Settings,
    pub access_key_id: String,
    pub secret: String,
    pub insecure_http: bool,
    /// The one server certificate (DER) to trust, if any.
    pub tls_cert: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    ep: Endpoint,
    prefix: String,
    client: Client,
    log: MultipartLog,
    /// New names written since the last [`Destination::names_lost`], with
    /// the ETag each write got, to check that they are still ours.
    written: std::sync::Mutex<Vec<Written>>,
}

/// A new object this engine wrote: album, name, key and the ETag it got.
#[derive(Debug)]
struct Written {
    album: String,
    name: String,
    key: String,
    etag: String,
}

/// An S3 bucket (cheap to clone).
#[derive(Debug, Clone)]
pub struct S3 {
    inner: Arc<Inner>,
}

/// Checks a bucket name (3–63 lower-case letters, digits, dots, hyphens).
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a valid bucket name: use 3 to 63 lower-case letters, digits, dots or hyphens"
        ))
    }
}

/// Normalises a key prefix: no leading `/`, and a trailing `/` if not empty.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

impl S3 {
    /// Validates the configuration (URL, plain-HTTP rule, bucket name).
    pub fn new(name: &str, cfg: S3Config, db: &Path, dest_id: i64) -> Result<S3, DestError> {
        let bad = |why: String| DestError::Unavailable {
            name: name.to_string(),
            why,
        };
        let endpoint = http::parse_url(name, &cfg.endpoint, true, cfg.insecure_http)?;
        check_bucket_name(&cfg.settings.bucket).map_err(bad)?;
        let log = MultipartLog::open(db, dest_id).map_err(|e| bad(e.to_string()))?;
        Ok(S3 {
            inner: Arc::new(Inner {
                name: name.to_string(),
                ep: Endpoint {
                    endpoint,
                    bucket: cfg.settings.bucket,
                    region: cfg.settings.region,
                    path_style: cfg.settings.path_style,
                    access_key_id: cfg.access_key_id,
                    secret: cfg.secret,
                },
                prefix: normalize_prefix(&cfg.settings.prefix),
                written: Default::default(),
                client: http::client(name, cfg.tls_cert.as_deref())?,
                log,
            }),
        })
    }

    fn key(&self, album: &str, name: &str) -> String {
        format!("{}{album}/{name}", self.inner.prefix)
    }

    fn store_err(&self, e: crate::error::Error) -> DestError {
        DestError::Io {
            name: self.inner.name.clone(),
            path: "the multipart log".into(),
            source: io::Error::other(e.to_string()),
        }
    }

    /// Sends a signed request; statuses outside `ok` (any 2xx when empty)
    /// become errors that say what to fix.
    fn send(
        &self,
        what: &str,
        method: &str,
        url: Url,
        headers: &[(&str, &str)],
        body: Option<(Body, u64)>,
        ok: &[u16],
    ) -> Result<Response, DestError> {
        let len = body.as_ref().map_or(0, |(_, n)| *n);
        let mut r = self
            .signed(method, url, headers)?
            .timeout(http::timeout_for(len));
        if let Some((b, _)) = body {
            r = r.body(b);
        }
        self.answer(what, r, ok)
    }

    /// A signed request, not sent yet.
    fn signed(
        &self,
        method: &str,
        url: Url,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::blocking::RequestBuilder, DestError> {
        let i = &self.inner;
        i.ep.request(&i.client, method, url, headers)
            .map_err(|why| DestError::Unavailable {
                name: i.name.clone(),
                why: format!("cannot sign the request ({why})"),
            })
    }

    /// Sends `r` and turns an answer outside `ok` into an error.
    fn answer(
        &self,
        what: &str,
        r: reqwest::blocking::RequestBuilder,
        ok: &[u16],
    ) -> Result<Response, DestError> {
        let i = &self.inner;
        let resp = r
            .send()
            .map_err(|e| http::transport_error(&i.name, &i.ep.endpoint, what, &e))?;
        let status = resp.status().as_u16();
        if ok.contains(&status) || ok.is_empty() && resp.status().is_success() {
            return Ok(resp);
        }
        let retry_after = http::retry_after(&resp);
        let text = resp.text().unwrap_or_default();
        Err(self.error(what, status, &text, retry_after))
    }

    fn error(&self, what: &str, status: u16, body: &str, retry_after: Option<u64>) -> DestError {
        let i = &self.inner;
        // HEAD answers have no body: name the likely cause from the status.
        let body = if body.is_empty() && status == 404 && what == "open the bucket" {
            "<Error><Code>NoSuchBucket</Code></Error>"
        } else {
            body
        };
        wire::s3_error(
            &i.name,
            what,
            status,
            body,
            retry_after,
            &i.ep.access_key_id,
        )
    }

    /// A 200 answer that carries an `<Error>` (CompleteMultipartUpload and
    /// CopyObject may fail after the status line was sent).
    fn read_ok_body(&self, what: &str, resp: Response) -> Result<String, DestError> {
        let text = resp.text().map_err(|e| {
            http::transport_error(&self.inner.name, &self.inner.ep.endpoint, what, &e)
        })?;
        if wire::xml_text(&text, "Code").is_some() && text.contains("<Error") {
            return Err(self.error(what, 500, &text, None));
        }
        Ok(text)
    }

    /// Which of an album's new names (`written`, sorted by name) no longer
    /// hold what this engine wrote, in the fewest requests: one listing
    /// page of the range they span pays for itself only while it spares a
    /// HEAD, so it gets at most as many pages as there are names, and the
    /// names beyond where it got are looked up one by one.
    fn lost_in_album(&self, album: &str, written: &[Written]) -> Result<Vec<bool>, DestError> {
        let range = match written {
            [] | [_] => None,
            [first, .., last] => {
                Some(self.etags_between(album, (&first.name, &last.name), written.len() - 1)?)
            }
        };
        let mut gone = Vec::with_capacity(written.len());
        for w in written {
            let listed = range
                .as_ref()
                .filter(|r| r.through.as_ref().is_none_or(|t| w.name <= *t));
            let etag = match listed {
                Some(r) => r.etags.get(&w.name).cloned(),
                None => self.head_etag(&w.key)?.map(|(_, etag)| etag),
            };
            gone.push(etag.is_none_or(|e| e != w.etag));
        }
        Ok(gone)
    }

    fn head(&self, key: &str) -> Result<Option<u64>, DestError> {
        Ok(self.head_etag(key)?.map(|(len, _)| len))
    }

    /// The size and ETag of an object, if it exists.
    fn head_etag(&self, key: &str) -> Result<Option<(u64, String)>, DestError> {
        let url = self.inner.ep.object_url(key, "");
        let r = self.send("look up", "HEAD", url, &[], None, &[200, 404])?;
        // The header, not `content_length()`: a HEAD answer has no body.
        let header = |h| {
            r.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_matches('"')
                .to_string()
        };
        let len = header(reqwest::header::CONTENT_LENGTH).parse().unwrap_or(0);
        Ok((r.status().as_u16() == 200).then(|| (len, header(reqwest::header::ETAG))))
    }

    /// Deletes an object if it exists. Deleting a key that has no object
    /// is not harmless on S3: it writes a delete marker, which on some
    /// servers (Garage) also ends a multipart upload in progress for that
    /// key, one that a restarted engine is about to continue.
    fn delete_key(&self, key: &str) -> Result<(), DestError> {
        if self.head(key)?.is_none() {
            return Ok(());
        }
        let url = self.inner.ep.object_url(key, "");
        self.send("delete", "DELETE", url, &[], None, &[200, 204, 404])
            .map(drop)
    }

    fn abort(&self, key: &str, upload_id: &str) -> Result<(), DestError> {
        let q = format!("uploadId={}", encode_key(upload_id));
        let url = self.inner.ep.object_url(key, &q);
        self.send(
            "abort an unfinished upload",
            "DELETE",
            url,
            &[],
            None,
            &[200, 204, 404],
        )?;
        self.inner
            .log
            .forget(upload_id)
            .map_err(|e| self.store_err(e))
    }

    /// Aborts multipart uploads under our prefix that no record explains
    /// (left by a lost store or another tool) and recorded ones gone stale.
    /// Gives up this engine's own unfinished uploads that are over a week
    /// old. Only uploads the store recorded are touched: an unfinished
    /// upload no record explains may be another program's (or another
    /// computer's) in progress, and is left to it (or to the bucket's
    /// lifecycle rule for incomplete multipart uploads).
    fn abort_orphans(&self) -> Result<(), DestError> {
        let recorded = self.inner.log.uploads().map_err(|e| self.store_err(e))?;
        let now = crate::store::now_secs();
        for (id, key, started_at) in &recorded {
            if now - started_at > STALE_UPLOAD_SECS {
                tracing::info!(dest = %self.inner.name, "giving up a week-old unfinished upload of {key}");
                self.abort(key, id)?;
            }
        }
        Ok(())
    }
}

/// The parts of a multipart upload: (part, ETag) in order, every part's
/// MD5, and the bytes read from the file.
type SentParts = (Vec<(u32, String)>, Vec<[u8; 16]>, u64);

/// The ETag of an answer, without its quotes ("" when there is none).
fn etag_of(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A single PUT: the object is already in place once its body completed.
struct Visible;

impl Staged for Visible {
    fn commit(self: Box<Self>) -> Result<(), DestError> {
        Ok(())
    }
}

impl Destination for S3 {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capabilities(&self) -> crate::dest::Capabilities {
        // CopyObject; a rename is a copy and a delete.
        crate::dest::Capabilities::ALL
    }

    /// S3 servers without conditional writes (Garage among them) let a
    /// second writer replace an object between the name's check and the
    /// write: each new object written is looked at again, and one whose
    /// ETag is no longer ours was lost to another writer. An album's new
    /// names are looked at together, in a listing of the range they span
    /// (up to 1,000 names a request), or by a HEAD each where that takes
    /// fewer requests.
    fn names_lost(&self) -> Result<Vec<(String, String)>, DestError> {
        let mut written = std::mem::take(&mut *self.inner.written.lock().expect("lock"));
        written.sort_by(|a, b| (&a.album, &a.name).cmp(&(&b.album, &b.name)));
        let checked: Result<Vec<Vec<(String, String)>>, DestError> = written
            .chunk_by(|a, b| a.album == b.album)
            .map(|album| {
                let gone = self.lost_in_album(&album[0].album, album)?;
                Ok(album
                    .iter()
                    .zip(gone)
                    .filter(|(_, gone)| *gone)
                    .map(|(w, _)| (w.album.clone(), w.name.clone()))
                    .collect())
            })
            .collect();
        checked.map(|lost| lost.concat()).inspect_err(|_| {
            // Every name is looked at again next time.
            self.inner.written.lock().expect("lock").extend(written);
        })
    }

    fn reach(&self) -> Result<(), DestError> {
        let url = self.inner.ep.bucket_url();
        self.send("open the bucket", "HEAD", url, &[], None, &[])?;
        // A catch-all server answers success for anything: ask for an
        // object that cannot exist.
        let absent = format!("{}{STAGING}/{}", self.inner.prefix, http::absent_name());
        if self.head(&absent)?.is_some() {
            return Err(http::not_behaving(
                &self.inner.name,
                "S3",
                "the server says an object that cannot exist is there".to_string(),
            ));
        }
        Ok(())
    }

    fn prepare(&self) -> Result<(), DestError> {
        self.reach()?;
        self.abort_orphans()
    }

    fn list_album(&self, album: &str) -> Result<Option<Vec<Listed>>, DestError> {
        self.list_keys(album).map(Some)
    }

    fn albums(&self) -> Result<Option<Vec<String>>, DestError> {
        self.list_albums().map(Some)
    }

    fn stored_modified(
        &self,
        album: &str,
        name: &str,
    ) -> Result<Option<std::time::SystemTime>, DestError> {
        self.mtime_of(&self.key(album, name))
    }

    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        Ok(self.head(&self.key(album, name))?.is_some())
    }

    /// One GET: its status says whether the object exists, its length
    /// whether it is the one asked for, and its metadata its date.
    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<super::ReadBack>, DestError> {
        let url = self.inner.ep.object_url(&self.key(album, name), "");
        // The download's time allowance grows with the object's size.
        let get = self
            .signed("GET", url, &[])?
            .timeout(http::timeout_for(len));
        let resp = self.answer("read an existing object back", get, &[200, 404])?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let modified = list::mtime_in(resp.headers());
        Ok(http::body_of(resp, len).map(|bytes| super::ReadBack { bytes, modified }))
    }

    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let key = self.key(upload.album, upload.name);
        let staged = if upload.len > MULTIPART_THRESHOLD {
            self.put_multipart(&key, upload, source)
        } else if upload.len <= BUFFERED_PUT {
            self.put_buffered(&key, upload, source)
        } else {
            self.put_streamed(&key, upload, source)
        };
        match staged {
            // A conditional PUT found the name taken meanwhile.
            Err(DestError::Http { status: 412, .. }) => Err(DestError::NameTaken {
                name: self.inner.name.clone(),
                album: upload.album.to_string(),
                object: upload.name.to_string(),
            }),
            other => other,
        }
    }

    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        let (from, to) = (self.key(from.0, from.1), self.key(to.0, to.1));
        match self.copy_key(&from, &to) {
            Ok(()) => {}
            // Already copied (a crash came between the move and its record).
            Err(DestError::Http { status: 404, .. }) if self.head(&to)?.is_some() => {}
            Err(e) => return Err(e),
        }
        self.delete_key(&from)
    }

    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.copy_key(&self.key(from.0, from.1), &self.key(to.0, to.1))
    }

    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        self.delete_key(&self.key(album, name))
    }

    fn set_modified(
        &self,
        album: &str,
        name: &str,
        t: std::time::SystemTime,
    ) -> Result<bool, DestError> {
        self.set_mtime(&self.key(album, name), t).map(|()| true)
    }

    fn check(&self) -> Vec<Check> {
        let i = &self.inner;
        let mut out = Vec::new();
        let reach = i
            .client
            .get(i.ep.endpoint.clone())
            .timeout(http::timeout_for(0))
            .send();
        out.push(Check::new(
            "reachable",
            reach
                .as_ref()
                .map(|r| format!("{} answers ({})", i.ep.endpoint, r.status()))
                .map_err(|e| {
                    http::transport_error(&i.name, &i.ep.endpoint, "reach the server", e)
                        .to_string()
                }),
        ));
        if reach.is_err() {
            return out;
        }
        let bucket = self.send("open the bucket", "HEAD", i.ep.bucket_url(), &[], None, &[]);
        out.push(Check::new(
            "credentials",
            bucket
                .as_ref()
                .map(|_| format!("accepted for bucket {}", i.ep.bucket))
                .map_err(ToString::to_string),
        ));
        if bucket.is_err() {
            return out;
        }
        let key = format!("{}{STAGING}/write-test-{}", i.prefix, std::process::id());
        let probe = b"shoebox write test";
        let write = self
            .send(
                "write a test object",
                "PUT",
                i.ep.object_url(&key, ""),
                &[],
                Some((Body::from(&probe[..]), probe.len() as u64)),
                &[],
            )
            .and_then(|_| self.delete_key(&key))
            .map(|()| "a test object was written and removed".to_string())
            .map_err(|e| e.to_string());
        out.push(Check::new("write permission", write));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multipart::part_size;

    #[test]
    fn parts_are_at_least_8_mib_and_never_more_than_10000() {
        assert_eq!(part_size(65 * 1024 * 1024), MIN_PART);
        for len in [200u64 << 20, 80 << 30, 5 << 40] {
            let size = part_size(len);
            assert!(size >= MIN_PART && size.is_multiple_of(1 << 20));
            assert!(
                len.div_ceil(size) <= MAX_PARTS,
                "{len} needs {size}-byte parts"
            );
        }
    }

    #[test]
    fn a_guarded_copy_withholds_the_end_of_content_that_is_not_the_hashed_version() {
        let data = vec![7u8; 600 * 1024];
        let right = *blake3::hash(&data).as_bytes();
        let mut out = Vec::new();
        let g = guarded_copy(&mut &data[..], &mut out, data.len() as u64, Some(&right)).unwrap();
        assert!(g.matches && g.read == data.len() as u64);
        assert_eq!(out, data, "the hashed version goes through whole");
        assert_eq!(hex(&g.md5), hex(&Md5::digest(&data)));

        let wrong = [0u8; 32];
        let mut out = Vec::new();
        let g = guarded_copy(&mut &data[..], &mut out, data.len() as u64, Some(&wrong)).unwrap();
        assert!(!g.matches);
        assert!(
            out.len() < data.len(),
            "a body that is not the hashed version must end short, so the server stores nothing"
        );
    }

    #[test]
    fn prefixes_and_bucket_names_are_checked() {
        assert_eq!(normalize_prefix("/backups/laptop/"), "backups/laptop/");
        assert_eq!(normalize_prefix(""), "");
        assert!(check_bucket_name("photos-2024").is_ok());
        for bad in ["ab", "Photos", "-x-", "a_b", &"x".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad} is refused");
        }
    }
}
