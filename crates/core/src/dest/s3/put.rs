//! Uploads in one request: a PUT from memory for small files, a streamed
//! PUT whose last bytes wait until the content is proven, the conditions
//! and metadata they carry, and the check that the server stored the bytes
//! sent. See docs/ARCHITECTURE.md.

use super::*;

impl S3 {
    /// The header that makes a PUT of a new name conditional: where the server
    /// supports it (AWS S3 since 2024, MinIO, Ceph), an object someone else put
    /// there meanwhile is never overwritten (412 instead).
    fn no_replace(upload: &Upload<'_>) -> Vec<(&'static str, &'static str)> {
        if upload.overwrite {
            Vec::new()
        } else {
            vec![("if-none-match", "*")]
        }
    }

    /// The headers of a PUT of `upload`: the condition of a new name, and
    /// the source's modification time as the `mtime` metadata rclone reads
    /// (`mtime` holds its text).
    fn put_headers<'a>(
        upload: &Upload<'_>,
        mtime: &'a Option<String>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut headers = Self::no_replace(upload);
        headers.extend(Self::metadata(mtime));
        headers
    }

    /// The object metadata headers: the source's modification time.
    pub(super) fn metadata(mtime: &Option<String>) -> Option<(&'static str, &str)> {
        mtime.as_deref().map(|m| ("x-amz-meta-mtime", m))
    }

    /// Remembers a new name written, with the ETag the server gave it.
    pub(super) fn remember_write(
        &self,
        upload: &Upload<'_>,
        key: &str,
        resp: &reqwest::blocking::Response,
    ) {
        let etag = etag_of(resp);
        if !upload.overwrite && !etag.is_empty() {
            self.inner.written.lock().expect("lock").push(Written {
                album: upload.album.to_string(),
                name: upload.name.to_string(),
                key: key.to_string(),
                etag,
            });
        }
    }

    /// Checks that a PUT the server acknowledged stored these bytes. An
    /// ETag that is an MD5 must be ours (others come from server-side
    /// encryption and say nothing about the bytes); without one, a HEAD
    /// must find the object with its full length.
    pub(super) fn verify_put(
        &self,
        key: &str,
        resp: &reqwest::blocking::Response,
        md5: &str,
        len: u64,
    ) -> Result<(), DestError> {
        let etag = etag_of(resp);
        if is_md5_hex(&etag) {
            if etag != md5 {
                return Err(DestError::Interrupted {
                    name: self.inner.name.clone(),
                    what: format!("upload {key}"),
                    why: format!("the server stored different bytes (MD5 {etag}, sent {md5})"),
                });
            }
            return Ok(());
        }
        if !etag.is_empty() {
            return Ok(());
        }
        match self.head(key)? {
            Some(n) if n == len => Ok(()),
            found => Err(http::not_behaving(
                &self.inner.name,
                "S3",
                match found {
                    Some(n) => format!(
                        "the server said {key} was stored ({len} bytes), but it holds {n} bytes"
                    ),
                    None => format!("the server said {key} was stored, but it is not there"),
                },
            )),
        }
    }

    /// One PUT of the whole file from memory, sent only once its content is
    /// proven to be the hashed version.
    pub(super) fn put_buffered(
        &self,
        key: &str,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let mut buf = Vec::with_capacity(upload.len as usize);
        source
            .take(upload.len)
            .read_to_end(&mut buf)
            .map_err(|e| DestError::Io {
                name: self.inner.name.clone(),
                path: key.to_string(),
                source: e,
            })?;
        let read = buf.len() as u64;
        if read != upload.len || (!upload.encoded && blake3::hash(&buf).as_bytes() != upload.hash) {
            // Not the hashed version: nothing is sent; the caller sees why.
            return Ok((Box::new(Visible), read));
        }
        let digest = Md5::digest(&buf);
        let md5 = base64::engine::general_purpose::STANDARD.encode(digest);
        let url = self.inner.ep.object_url(key, "");
        let mtime = upload.modified.and_then(crate::dest::mtime_text);
        let mut headers = vec![("content-md5", md5.as_str())];
        headers.extend(Self::put_headers(upload, &mtime));
        let resp = self.send(
            "upload",
            "PUT",
            url,
            &headers,
            Some((http::paced_bytes(buf), read)),
            &[],
        )?;
        self.verify_put(key, &resp, &hex(&digest), read)?;
        self.remember_write(upload, key, &resp);
        Ok((Box::new(Visible), read))
    }

    /// One streamed PUT whose last bytes are sent only once the content is
    /// proven to hash to `upload.hash`.
    pub(super) fn put_streamed(
        &self,
        key: &str,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn Staged>, u64), DestError> {
        let io_err = |e: io::Error| DestError::Io {
            name: self.inner.name.clone(),
            path: key.to_string(),
            source: e,
        };
        let (pipe_r, mut pipe_w) = io::pipe().map_err(io_err)?;
        let len = upload.len;
        let url = self.inner.ep.object_url(key, "");
        let mtime = upload.modified.and_then(crate::dest::mtime_text);
        let headers = Self::put_headers(upload, &mtime);
        let (sent, guarded) = std::thread::scope(|s| {
            let copier = s.spawn(move || {
                guarded_copy(
                    source,
                    &mut pipe_w,
                    len,
                    (!upload.encoded).then_some(upload.hash),
                )
            });
            let sent = self.send(
                "upload",
                "PUT",
                url,
                &headers,
                Some((Body::sized(paced(pipe_r), len), len)),
                &[],
            );
            (sent, copier.join().expect("the copier does not panic"))
        });
        let guarded = guarded.map_err(io_err)?;
        if guarded.receiver_gone {
            sent?;
            return Err(DestError::Interrupted {
                name: self.inner.name.clone(),
                what: format!("upload {key}"),
                why: "the connection stopped taking the file's bytes".into(),
            });
        }
        if !guarded.matches {
            // The file is not the hashed version: the body was cut short,
            // so the server stored nothing. The caller sees the mismatch.
            if sent.is_ok() {
                self.delete_key(key)?;
            }
            return Ok((Box::new(Visible), guarded.read));
        }
        let resp = sent?;
        self.verify_put(key, &resp, &hex(&guarded.md5), guarded.read)?;
        self.remember_write(upload, key, &resp);
        Ok((Box::new(Visible), guarded.read))
    }
}
