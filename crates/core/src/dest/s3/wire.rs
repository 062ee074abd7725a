//! The S3 wire format: object URLs (path-style or virtual-host), SigV4
//! request signing (the `aws-sigv4` crate), key encoding, the XML bodies
//! Shoebox reads and writes, and S3 error codes turned into [`DestError`]s.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::blocking::{Client, RequestBuilder};
use url::Url;

use crate::error::DestError;

/// Characters S3 keys keep unencoded in a URL path (RFC 3986 unreserved).
const KEY_CHARS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes an object key for a URL path: every byte but the unreserved
/// characters and `/`, exactly as SigV4's canonical form wants it.
pub(crate) fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|seg| utf8_percent_encode(seg, KEY_CHARS).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// A query parameter's value, percent-encoded (`/` too).
pub(crate) fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, KEY_CHARS).to_string()
}

/// Where a bucket lives and how to sign for it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub endpoint: Url,
    pub bucket: String,
    pub region: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret: String,
}

impl Endpoint {
    /// The bucket's URL (ending in `/`), path-style or virtual-host.
    pub fn bucket_url(&self) -> Url {
        let mut u = self.endpoint.clone();
        let base = u.path().trim_end_matches('/').to_string();
        if self.path_style {
            u.set_path(&format!("{base}/{}/", encode_key(&self.bucket)));
        } else {
            let host = u.host_str().unwrap_or_default().to_string();
            // A valid bucket name is a valid host label; the URL was checked.
            let _ = u.set_host(Some(&format!("{}.{host}", self.bucket)));
            u.set_path(&format!("{base}/"));
        }
        u
    }

    /// The URL of an object, with an optional query (already encoded).
    pub fn object_url(&self, key: &str, query: &str) -> Url {
        let mut u = self.bucket_url();
        let path = format!("{}{}", u.path(), encode_key(key));
        u.set_path(&path);
        u.set_query((!query.is_empty()).then_some(query));
        u
    }

    /// A signed request. `headers` are signed too; the body is sent
    /// unsigned (`UNSIGNED-PAYLOAD`), its integrity is checked by MD5.
    pub fn request(
        &self,
        client: &Client,
        method: &str,
        url: Url,
        headers: &[(&str, &str)],
    ) -> Result<RequestBuilder, String> {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity =
            Credentials::new(&self.access_key_id, &self.secret, None, None, "shoebox").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(crate::clock::wall())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let all: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain([("host", host.as_str())])
            .collect();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            all.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut r = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?,
            url,
        );
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            r = r.header(k, v);
        }
        Ok(r)
    }
}

/// The text of the first element named `tag` in an XML document.
pub(crate) fn xml_text(body: &str, tag: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(body).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or_default().to_string())
}

/// The CompleteMultipartUpload body.
pub(crate) fn complete_body(parts: &[(u32, String)]) -> String {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        let etag = etag
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;");
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s
}

/// Turns an S3 error answer into an error that says what to fix.
pub(crate) fn s3_error(
    dest: &str,
    what: &str,
    status: u16,
    body: &str,
    retry_after: Option<u64>,
    access_key_id: &str,
) -> DestError {
    let code = xml_text(body, "Code").unwrap_or_default();
    let message = xml_text(body, "Message").unwrap_or_default();
    let detail = if code.is_empty() {
        format!("HTTP {status}")
    } else if message.is_empty() {
        format!("{code}, HTTP {status}")
    } else {
        format!("{code}: {message}, HTTP {status}")
    };
    let unavailable = |why: String| DestError::Unavailable {
        name: dest.to_string(),
        why,
    };
    let refused = || {
        unavailable(format!(
            "the server refused the credentials ({detail}); check the access key id ({access_key_id}), \
             the secret key and that the key may write to the bucket (add the destination again, or set {})",
            crate::secrets::env_var(dest)
        ))
    };
    match code.as_str() {
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "AccessDenied"
        | "InvalidToken"
        | "ExpiredToken" => refused(),
        "NoSuchBucket" => unavailable(format!(
            "the bucket does not exist ({detail}); create it, or check the bucket name and endpoint"
        )),
        "AuthorizationHeaderMalformed" | "InvalidRegion" | "IllegalLocationConstraintException" => {
            unavailable(format!(
                "the region does not match the bucket ({detail}); add the destination again with the right --region"
            ))
        }
        "QuotaExceeded" | "InsufficientStorage" | "StorageFull" => DestError::Full {
            name: dest.to_string(),
            source: std::io::Error::other(format!("{what}: {detail}")),
        },
        _ if status == 507 => DestError::Full {
            name: dest.to_string(),
            source: std::io::Error::other(format!("{what}: {detail}")),
        },
        // HEAD answers carry no error code.
        _ if status == 401 || status == 403 => refused(),
        _ => DestError::Http {
            name: dest.to_string(),
            what: format!("{what} ({detail})"),
            status,
            transient: super::super::http::transient_status(status)
                || matches!(
                    code.as_str(),
                    "SlowDown" | "RequestTimeout" | "InternalError"
                ),
            retry_after,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path_style: bool) -> Endpoint {
        Endpoint {
            endpoint: Url::parse("https://s3.example.com:9000").unwrap(),
            bucket: "photos".into(),
            region: "garage".into(),
            path_style,
            access_key_id: "AK".into(),
            secret: "SK".into(),
        }
    }

    #[test]
    fn path_style_puts_the_bucket_in_the_path_and_virtual_host_in_the_host() {
        let key = "Holiday 2024/IMG (1)+ü.jpg";
        assert_eq!(
            endpoint(true).object_url(key, "").as_str(),
            "https://s3.example.com:9000/photos/Holiday%202024/IMG%20%281%29%2B%C3%BC.jpg"
        );
        assert_eq!(
            endpoint(false).object_url(key, "uploads").as_str(),
            "https://photos.s3.example.com:9000/Holiday%202024/IMG%20%281%29%2B%C3%BC.jpg?uploads"
        );
    }

    #[test]
    fn keys_keep_only_unreserved_characters_and_slashes() {
        assert_eq!(encode_key("a/b c/~x_y-z.j"), "a/b%20c/~x_y-z.j");
        assert_eq!(encode_key("100%/#?&="), "100%25/%23%3F%26%3D");
    }

    #[test]
    fn error_codes_become_messages_that_say_what_to_fix() {
        let body = "<Error><Code>InvalidAccessKeyId</Code><Message>no such key</Message></Error>";
        let e = s3_error("nas", "upload", 403, body, None, "GK123");
        assert!(
            e.is_destination_wide(),
            "bad credentials stop the destination"
        );
        assert!(e.to_string().contains("GK123"), "{e}");
        let e = s3_error(
            "nas",
            "upload",
            404,
            "<Error><Code>NoSuchBucket</Code></Error>",
            None,
            "",
        );
        assert!(e.to_string().contains("bucket does not exist"), "{e}");
        let e = s3_error(
            "nas",
            "upload",
            503,
            "<Error><Code>SlowDown</Code></Error>",
            Some(2),
            "",
        );
        assert!(e.is_transient() && !e.is_destination_wide());
        assert!(matches!(
            e,
            DestError::Http {
                retry_after: Some(2),
                ..
            }
        ));
        let e = s3_error("nas", "upload", 507, "", None, "");
        assert!(
            matches!(e, DestError::Full { .. }),
            "507 pauses the destination"
        );
        let e = s3_error(
            "nas",
            "upload",
            413,
            "<Error><Code>EntityTooLarge</Code></Error>",
            None,
            "",
        );
        assert!(
            !e.is_transient() && !e.is_destination_wide(),
            "413 fails the one file"
        );
    }

    #[test]
    fn the_completion_body_escapes_etags() {
        assert_eq!(
            complete_body(&[(1, "\"a\"".into())]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
