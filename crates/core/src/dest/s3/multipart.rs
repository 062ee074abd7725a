//! Multipart uploads: large files go up in parts, several in flight, each
//! checked by Content-MD5 and recorded in the store, so that a restarted
//! engine sends only the parts the server does not have. Completing the
//! upload makes the object visible.

use super::*;

/// The part size for a file of `len` bytes: at least 8 MiB, whole MiB, and
/// large enough for 10,000 parts to hold the file.
pub(super) fn part_size(len: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    MIN_PART.max(len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// The ETag S3 gives a completed multipart object: the MD5 of the parts'
/// MD5s, a dash, and the number of parts.
pub(super) fn multipart_etag(md5s: &[[u8; 16]]) -> String {
    let mut all = Md5::new();
    for m in md5s {
        all.update(m);
    }
    format!("{}-{}", hex(&all.finalize()), md5s.len())
}

/// What one multipart upload reads and sends: the object's key, the part
/// size, the length to read, the part count and the parts the server
/// already holds (by number: ETag and MD5).
struct Feed<'a> {
    key: &'a str,
    size: u64,
    len: u64,
    count: u32,
    done: &'a HashMap<u32, (String, [u8; 16])>,
}

/// What the parts of one upload came to: the parts sent or kept (number
/// and ETag), every part's MD5 in order, the bytes read, the first failure.
#[derive(Default)]
struct PartsRead {
    parts: Vec<(u32, String)>,
    md5s: Vec<[u8; 16]>,
    read: u64,
    failure: Option<DestError>,
}

impl PartsRead {
    /// Records a part's answer; false when it failed.
    fn record(&mut self, n: u32, answer: Result<String, DestError>) -> bool {
        match answer {
            Ok(etag) => {
                self.parts.push((n, etag));
                true
            }
            Err(e) => {
                self.failure.get_or_insert(e);
                false
            }
        }
    }
}

impl S3 {
    /// Starts or continues the multipart upload of `key`.
    pub(super) fn put_multipart(
        &self,
        key: &str,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let size = part_size(upload.len);
        let log = &self.inner.log;
        let (upload_id, done) = match log.find(key).map_err(|e| self.store_err(e))? {
            Some(rec)
                if rec.content == *upload.hash
                    && rec.size == upload.len
                    && rec.part_size == size =>
            {
                tracing::info!(
                    dest = %self.inner.name,
                    "continuing the upload of {key}: {} of {} parts are on the server",
                    rec.parts.len(),
                    upload.len.div_ceil(size)
                );
                let done: HashMap<u32, (String, [u8; 16])> = rec
                    .parts
                    .into_iter()
                    .map(|(n, etag, md5)| (n, (etag, md5)))
                    .collect();
                (rec.upload_id, done)
            }
            other => {
                if let Some(old) = other {
                    // Another version of the file: its parts are useless.
                    self.abort(&old.object_key, &old.upload_id)?;
                }
                (self.create_multipart(key, upload, size)?, HashMap::new())
            }
        };
        let (parts, md5s, read) =
            self.send_parts(key, &upload_id, size, upload.len, &done, source)?;
        Ok((
            Box::new(Multipart {
                dest: self.clone(),
                key: key.to_string(),
                upload_id,
                parts,
                etag: multipart_etag(&md5s),
                len: upload.len,
                state: MultipartState::Pending,
                new_name: (!upload.overwrite)
                    .then(|| (upload.album.to_string(), upload.name.to_string())),
            }),
            read,
        ))
    }

    pub(super) fn create_multipart(
        &self,
        key: &str,
        upload: &Upload<'_>,
        size: u64,
    ) -> Result<String, DestError> {
        let url = self.inner.ep.object_url(key, "uploads=");
        let mtime = upload.modified.and_then(crate::dest::mtime_text);
        let headers: Vec<_> = Self::metadata(&mtime).into_iter().collect();
        let resp = self.send("start a multipart upload", "POST", url, &headers, None, &[])?;
        let text = self.read_ok_body("start a multipart upload", resp)?;
        let id = wire::xml_text(&text, "UploadId").ok_or_else(|| DestError::Http {
            name: self.inner.name.clone(),
            what: "start a multipart upload (the answer had no UploadId)".into(),
            status: 200,
            transient: true,
            retry_after: None,
        })?;
        self.inner
            .log
            .start(key, &id, upload.hash, upload.len, size)
            .map_err(|e| self.store_err(e))?;
        Ok(id)
    }

    /// Reads the file part by part (every byte is read, so the caller's
    /// hash covers the whole file) and sends the parts the server lacks,
    /// several at once. Returns the (part, ETag) list, every part's MD5 and
    /// the bytes read.
    pub(super) fn send_parts(
        &self,
        key: &str,
        upload_id: &str,
        size: u64,
        len: u64,
        done: &HashMap<u32, (String, [u8; 16])>,
        source: &mut (dyn Read + Send),
    ) -> Result<SentParts, DestError> {
        let count = len.div_ceil(size).max(1) as u32;
        let (tx, rx) = crossbeam_channel::bounded::<(u32, Vec<u8>, [u8; 16])>(0);
        let (res_tx, res_rx) = crossbeam_channel::unbounded();
        let mut out = PartsRead::default();
        std::thread::scope(|s| {
            for _ in 0..PARTS_IN_FLIGHT {
                let rx = rx.clone();
                let res_tx = res_tx.clone();
                s.spawn(move || {
                    for (n, buf, md5) in rx {
                        let r = self.send_part(key, upload_id, n, buf, &md5);
                        if res_tx.send((n, r)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(rx);
            drop(res_tx);
            let feed = Feed {
                key,
                size,
                len,
                count,
                done,
            };
            self.feed_parts(&feed, source, &tx, &res_rx, &mut out);
            drop(tx);
            for (n, r) in res_rx.iter() {
                out.record(n, r);
            }
        });
        if let Some(e) = out.failure {
            return Err(e);
        }
        out.parts.sort_by_key(|(n, _)| *n);
        Ok((out.parts, out.md5s, out.read))
    }

    /// Reads the parts from `source` in order and hands those the server
    /// does not hold yet to the senders; stops at the first failure.
    fn feed_parts(
        &self,
        feed: &Feed<'_>,
        source: &mut (dyn Read + Send),
        tx: &crossbeam_channel::Sender<(u32, Vec<u8>, [u8; 16])>,
        results: &crossbeam_channel::Receiver<(u32, Result<String, DestError>)>,
        out: &mut PartsRead,
    ) {
        for n in 1..=feed.count {
            let want = feed.size.min(feed.len - out.read);
            let mut buf = Vec::with_capacity(want as usize);
            match source.take(want).read_to_end(&mut buf) {
                Ok(got) if got as u64 == want => {}
                Ok(got) => {
                    out.read += got as u64;
                    return; // shorter than recorded: the caller sees it
                }
                Err(e) => {
                    out.failure = Some(DestError::Io {
                        name: self.inner.name.clone(),
                        path: feed.key.to_string(),
                        source: e,
                    });
                    return;
                }
            }
            out.read += want;
            let md5: [u8; 16] = Md5::digest(&buf).into();
            out.md5s.push(md5);
            match feed.done.get(&n) {
                Some((etag, sent_md5)) if *sent_md5 == md5 => out.parts.push((n, etag.clone())),
                _ => {
                    if tx.send((n, buf, md5)).is_err() {
                        return;
                    }
                }
            }
            // Stop reading once a part failed.
            if let Ok((n, r)) = results.try_recv()
                && !out.record(n, r)
            {
                return;
            }
        }
    }

    pub(super) fn send_part(
        &self,
        key: &str,
        upload_id: &str,
        n: u32,
        buf: Vec<u8>,
        md5: &[u8; 16],
    ) -> Result<String, DestError> {
        let q = format!("partNumber={n}&uploadId={}", encode_key(upload_id));
        let url = self.inner.ep.object_url(key, &q);
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(md5);
        let len = buf.len() as u64;
        let resp = match self.send(
            "upload a part",
            "PUT",
            url,
            &[("content-md5", &md5_b64)],
            Some((http::paced_bytes(buf), len)),
            &[],
        ) {
            Err(DestError::Http { status: 404, .. }) => {
                // The upload is gone on the server (aborted or completed):
                // forget it, so the retry starts a new one.
                self.inner
                    .log
                    .forget(upload_id)
                    .map_err(|e| self.store_err(e))?;
                return Err(DestError::Http {
                    name: self.inner.name.clone(),
                    what: "upload a part (the server no longer knows the upload; starting over)"
                        .into(),
                    status: 404,
                    transient: true,
                    retry_after: None,
                });
            }
            other => other?,
        };
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.inner
            .log
            .part_done(upload_id, n, &etag, md5)
            .map_err(|e| self.store_err(e))?;
        Ok(etag)
    }

    pub(super) fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), DestError> {
        let q = format!("uploadId={}", encode_key(upload_id));
        let url = self.inner.ep.object_url(key, &q);
        let body = wire::complete_body(parts);
        let len = body.len() as u64;
        let resp = self.send(
            "finish the upload",
            "POST",
            url,
            &[("content-type", "application/xml")],
            Some((Body::from(body), len)),
            &[],
        )?;
        self.read_ok_body("finish the upload", resp).map(drop)
    }
}

pub(super) enum MultipartState {
    /// Not yet completed: dropping it aborts the upload (the file changed).
    Pending,
    /// Completion was attempted: keep the parts for a retry.
    Kept,
}

/// A multipart upload whose parts are all on the server; completing it
/// makes the object visible.
pub(super) struct Multipart {
    dest: S3,
    key: String,
    upload_id: String,
    parts: Vec<(u32, String)>,
    /// The ETag S3 gives the completed object: MD5 of the parts' MD5s.
    etag: String,
    len: u64,
    state: MultipartState,
    /// The album and name, when the upload creates a new name.
    new_name: Option<(String, String)>,
}

impl Staged for Multipart {
    fn commit(mut self: Box<Self>) -> Result<(), DestError> {
        self.state = MultipartState::Kept;
        let dest = &self.dest;
        match dest.complete(&self.key, &self.upload_id, &self.parts) {
            Ok(()) => {}
            // Completed by an earlier attempt whose answer was lost: the
            // object is there if it has exactly this upload's ETag.
            Err(DestError::Http { status: 404, .. })
                if dest.head_etag(&self.key)?.as_ref().map(|(_, e)| e) == Some(&self.etag) => {}
            Err(DestError::Http { status: 404, .. }) => {
                // The upload is gone (aborted, expired, or its object was
                // removed after it completed): continuing it can never work,
                // so the next attempt starts a new one.
                dest.inner
                    .log
                    .forget(&self.upload_id)
                    .map_err(|e| dest.store_err(e))?;
                return Err(DestError::Interrupted {
                    name: dest.inner.name.clone(),
                    what: format!("finish the upload of {}", self.key),
                    why: "the server no longer knows this multipart upload; it starts again"
                        .to_string(),
                });
            }
            Err(e) => return Err(e),
        }
        let stored = dest.head_etag(&self.key)?;
        dest.inner
            .log
            .forget(&self.upload_id)
            .map_err(|e| dest.store_err(e))?;
        match stored {
            Some((len, _)) if len == self.len => {
                if let Some((album, name)) = self.new_name.take() {
                    dest.inner.written.lock().expect("lock").push(Written {
                        album,
                        name,
                        key: self.key.clone(),
                        etag: self.etag.clone(),
                    });
                }
                Ok(())
            }
            other => Err(DestError::Interrupted {
                name: dest.inner.name.clone(),
                what: format!("upload {}", self.key),
                why: format!(
                    "the server reports {} bytes after the upload, not {}",
                    other.map_or(0, |(n, _)| n),
                    self.len
                ),
            }),
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if matches!(self.state, MultipartState::Pending) {
            let _ = self.dest.abort(&self.key, &self.upload_id);
        }
    }
}
