//! Server-side copies (CopyObject, part by part above 5 GiB, keeping the
//! `mtime` metadata either way), and the
//! guarded reader that withholds the end of a body until its content is
//! proven to be the hashed version.

use super::*;

impl S3 {
    /// Server-side copy: CopyObject, or part by part above 5 GiB. Either
    /// way the copy keeps the source's `mtime` metadata.
    pub(super) fn copy_key(&self, from: &str, to: &str) -> Result<(), DestError> {
        let source = format!("/{}/{}", self.inner.ep.bucket, encode_key(from));
        let Some((len, mtime)) = self.head_dated(from)? else {
            return Err(DestError::Http {
                name: self.inner.name.clone(),
                what: format!("copy {from} (it is not in the bucket)"),
                status: 404,
                transient: false,
                retry_after: None,
            });
        };
        if len > MAX_COPY {
            return self
                .copy_multipart(&source, to, len, mtime.as_deref())
                .map_err(|e| self.copy_refused(e, from));
        }
        let url = self.inner.ep.object_url(to, "");
        let resp = self
            .send(
                "copy",
                "PUT",
                url,
                &[("x-amz-copy-source", &source)],
                None,
                &[],
            )
            .map_err(|e| self.copy_refused(e, from))?;
        self.read_ok_body("copy", resp).map(drop)
    }

    /// An object's length and its `mtime` metadata as stored, if it exists.
    fn head_dated(&self, key: &str) -> Result<Option<(u64, Option<String>)>, DestError> {
        let url = self.inner.ep.object_url(key, "");
        let r = self.send("look up", "HEAD", url, &[], None, &[200, 404])?;
        if r.status().as_u16() != 200 {
            return Ok(None);
        }
        let header = |h: &str| r.headers().get(h).and_then(|v| v.to_str().ok());
        let len = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some((len, header("x-amz-meta-mtime").map(str::to_string))))
    }

    /// A copy whose source the server says is missing, right after a HEAD
    /// found it: the server misread the source's name.
    fn copy_refused(&self, e: DestError, from: &str) -> DestError {
        match e {
            DestError::Http { status: 404, .. } => DestError::CopyRefused {
                name: self.inner.name.clone(),
                object: from.to_string(),
            },
            other => other,
        }
    }

    /// Replaces an object's `mtime` metadata by copying it onto itself (its
    /// bytes stay on the server; above the 5 GiB a single copy takes, part
    /// by part). An object gone meanwhile is left as it is.
    pub(super) fn set_mtime(&self, key: &str, t: std::time::SystemTime) -> Result<(), DestError> {
        let (Some(len), Some(mtime)) = (self.head(key)?, crate::dest::mtime_text(t)) else {
            return Ok(());
        };
        let source = format!("/{}/{}", self.inner.ep.bucket, encode_key(key));
        if len > MAX_COPY {
            return match self.copy_multipart(&source, key, len, Some(&mtime)) {
                Err(DestError::Http { status: 404, .. }) => Ok(()),
                other => other,
            };
        }
        let url = self.inner.ep.object_url(key, "");
        let resp = match self.send(
            "give an object its date",
            "PUT",
            url,
            &[
                ("x-amz-copy-source", &source),
                ("x-amz-metadata-directive", "REPLACE"),
                ("x-amz-meta-mtime", &mtime),
            ],
            None,
            &[],
        ) {
            // Gone meanwhile, or a name the server misreads in a copy.
            Err(DestError::Http { status: 404, .. }) => return Ok(()),
            other => other?,
        };
        self.read_ok_body("give an object its date", resp).map(drop)
    }

    /// A copy part by part (UploadPartCopy), for objects above 5 GiB. The
    /// new object's metadata is the one its upload starts with, so `mtime`
    /// (the source's, or a new date) is given there.
    fn copy_multipart(
        &self,
        source: &str,
        to: &str,
        len: u64,
        mtime: Option<&str>,
    ) -> Result<(), DestError> {
        const PART: u64 = 1024 * 1024 * 1024;
        let url = self.inner.ep.object_url(to, "uploads=");
        let meta: Vec<(&str, &str)> = mtime.map(|t| ("x-amz-meta-mtime", t)).into_iter().collect();
        let resp = self.send("start a multipart copy", "POST", url, &meta, None, &[])?;
        let text = self.read_ok_body("start a multipart copy", resp)?;
        let id = wire::xml_text(&text, "UploadId").unwrap_or_default();
        let mut parts = Vec::new();
        let result = (|| {
            for (i, start) in (0..len).step_by(PART as usize).enumerate() {
                let n = i as u32 + 1;
                let end = (start + PART).min(len) - 1;
                let q = format!("partNumber={n}&uploadId={}", encode_key(&id));
                let range = format!("bytes={start}-{end}");
                let resp = self.send(
                    "copy a part",
                    "PUT",
                    self.inner.ep.object_url(to, &q),
                    &[
                        ("x-amz-copy-source", source),
                        ("x-amz-copy-source-range", &range),
                    ],
                    None,
                    &[],
                )?;
                let text = self.read_ok_body("copy a part", resp)?;
                parts.push((n, wire::xml_text(&text, "ETag").unwrap_or_default()));
            }
            self.complete(to, &id, &parts)
        })();
        if result.is_err() {
            let q = format!("uploadId={}", encode_key(&id));
            let _ = self.send(
                "abort",
                "DELETE",
                self.inner.ep.object_url(to, &q),
                &[],
                None,
                &[],
            );
        }
        result
    }
}

/// What a guarded copy saw.
pub(super) struct Guarded {
    pub(super) read: u64,
    pub(super) matches: bool,
    /// The request stopped taking the body (the connection failed).
    pub(super) receiver_gone: bool,
    pub(super) md5: [u8; 16],
}

/// Copies `len` bytes of `source` to `out`, holding back the last chunk
/// until the BLAKE3 hash of everything read equals `expected` (where the
/// bytes are the content itself; an encoder checks its own). A mismatch
/// (or a short file) ends the output early, so the request body is cut
/// short and the server stores nothing.
pub(super) fn guarded_copy(
    source: &mut (dyn Read + Send),
    out: &mut impl Write,
    len: u64,
    expected: Option<&Hash>,
) -> io::Result<Guarded> {
    let mut blake = blake3::Hasher::new();
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    let mut limited = source.take(len);
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read += n as u64;
        blake.update(&buf[..n]);
        md5.update(&buf[..n]);
        if read == len && expected.is_some_and(|h| blake.finalize().as_bytes() != h) {
            return Ok(Guarded {
                read,
                matches: false,
                receiver_gone: false,
                md5: md5.finalize().into(),
            });
        }
        // The receiver may be gone (the request failed): the request's
        // own error says why.
        if out.write_all(&buf[..n]).is_err() {
            return Ok(Guarded {
                read,
                matches: false,
                receiver_gone: true,
                md5: md5.finalize().into(),
            });
        }
    }
    let matches = read == len && expected.is_none_or(|h| blake.finalize().as_bytes() == h);
    Ok(Guarded {
        read,
        matches,
        receiver_gone: false,
        md5: md5.finalize().into(),
    })
}
