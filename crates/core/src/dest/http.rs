//! What every HTTP destination shares: the client (timeouts, user agent,
//! HTTP/2 when offered, system TLS roots), the plain-HTTP rule, request
//! timeouts that grow with the body, and turning transport failures and
//! Retry-After into [`DestError`]s.

use std::time::Duration;

use reqwest::blocking::{Client, Response};
use url::Url;

use crate::error::DestError;

/// Seconds a request may take beyond its body's transfer before it is
/// abandoned as stalled. `SHOEBOX_HTTP_TIMEOUT` (seconds) overrides it.
const STALL_SECS: u64 = 60;

/// The client of one destination; `pinned`: the one certificate (DER) its
/// server may present, instead of one the system's roots vouch for.
/// Redirects are not followed: a destination answers at its own address,
/// and one that sends requests elsewhere (a login page, another server that
/// never sees the credentials) is reported, not believed.
pub(crate) fn client(name: &str, pinned: Option<&[u8]>) -> Result<Client, DestError> {
    let mut builder = Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(der) = pinned {
        let config = super::tls::pinned_config(der).map_err(|e| DestError::Unavailable {
            name: name.to_string(),
            why: format!("cannot set up TLS with the trusted certificate ({e})"),
        })?;
        builder = builder.use_preconfigured_tls(config);
    }
    builder
        .user_agent(concat!("Shoebox/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        // Each request gets its own timeout (see `timeout_for`).
        .timeout(None)
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| DestError::Unavailable {
            name: name.to_string(),
            why: format!("cannot set up HTTP ({e})"),
        })
}

/// A request body of `bytes`, paced by the upload limit as it is sent.
pub(crate) fn paced_bytes(bytes: Vec<u8>) -> reqwest::blocking::Body {
    let len = bytes.len() as u64;
    match crate::transfer::rate::UPLOADS.rate() {
        Some(_) => reqwest::blocking::Body::sized(
            crate::transfer::rate::paced(std::io::Cursor::new(bytes)),
            len,
        ),
        None => reqwest::blocking::Body::from(bytes),
    }
}

/// How long a request carrying `body` bytes may take: the stall allowance
/// plus one second per MiB (a floor of 1 MiB/s).
pub(crate) fn timeout_for(body: u64) -> Duration {
    let stall = std::env::var("SHOEBOX_HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(STALL_SECS);
    Duration::from_secs(stall + body / (1024 * 1024))
}

/// Parses `url` and applies the plain-HTTP rule: secrets (or, for S3, the
/// data signed with them) cross the network only encrypted unless the user
/// explicitly allowed plain HTTP for this destination.
pub(crate) fn parse_url(
    name: &str,
    url: &str,
    has_credentials: bool,
    insecure_http: bool,
) -> Result<Url, DestError> {
    let bad = |why: String| DestError::Unavailable {
        name: name.to_string(),
        why,
    };
    let parsed = Url::parse(url).map_err(|e| bad(format!("{url:?} is not a valid URL ({e})")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{url:?} has no host name")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Not echoed: the URL holds a secret that must not reach a log.
        return Err(bad(
            "the address contains a user name or password; give the user and the password \
             separately (--user and --password-stdin, or the app's fields) so that the password \
             is kept in the system keyring, not in the settings"
                .to_string(),
        ));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if !has_credentials || insecure_http => Ok(parsed),
        "http" => Err(bad(format!(
            "{url} is plain HTTP: credentials and data would cross the network unencrypted. Use https://, \
             or, if this network is trusted, allow plain HTTP for this destination \
             (--allow-insecure-http, or the box in the app)"
        ))),
        other => Err(bad(format!(
            "{url}: unsupported scheme {other:?}; use https:// (or http://)"
        ))),
    }
}

/// The error for an answer that sends the request elsewhere (3xx), if it
/// is one.
pub(crate) fn redirected(name: &str, what: &str, resp: &Response) -> Option<DestError> {
    if !resp.status().is_redirection() {
        return None;
    }
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("another address");
    Some(DestError::Unavailable {
        name: name.to_string(),
        why: format!(
            "the server sends the request to {what} to {to} (HTTP {}) instead of answering it. \
             If that is the right server, use its address for the destination \
             (`shoebox dest edit {name} --url …`); a login or web page there means the address \
             is not the storage endpoint",
            resp.status().as_u16()
        ),
    })
}

/// The error for a server that answers, but not as the protocol says a
/// server does (success for a file that cannot exist, a stored file that is
/// not there): a web page, a login or a catch-all application at that
/// address. Nothing more is sent to it.
pub(crate) fn not_behaving(name: &str, protocol: &str, what: String) -> DestError {
    DestError::Unavailable {
        name: name.to_string(),
        why: format!(
            "{what}, so it is not behaving like a {protocol} server (is a web page, a login or \
             another application answering at that address?). Check the destination's address \
             with `shoebox dest test {name}`"
        ),
    }
}

/// A name under which nothing can exist, to see whether a server says so.
pub(crate) fn absent_name() -> String {
    format!("absent-{}", crate::platform::random_hex(12))
}

/// A request that got no answer: the server is down or unreachable, which
/// concerns the whole destination (wait and probe, do not retry each file).
/// A timeout is different: the server may be slow, so that is worth a retry.
pub(crate) fn transport_error(
    name: &str,
    server: &Url,
    what: &str,
    e: &reqwest::Error,
) -> DestError {
    if e.is_timeout() || e.is_body() || e.is_request() && !e.is_connect() {
        return DestError::Interrupted {
            name: name.to_string(),
            what: what.to_string(),
            why: error_chain(e),
        };
    }
    let chain = error_chain(e);
    let advice = if chain.contains("certificate") {
        certificate_advice(name)
    } else {
        "check the address and that the server is up".to_string()
    };
    DestError::Unavailable {
        name: name.to_string(),
        why: format!("cannot reach {server} ({chain}); {advice}"),
    }
}

/// A GET answer's body to read back, unless the server announced another
/// length than `len`. (A body cut short by the network is then a read
/// error: an interruption, not "different".)
pub(crate) fn body_of(resp: Response, len: u64) -> Option<super::StoredBytes> {
    if resp.content_length().is_some_and(|n| n != len) {
        return None;
    }
    Some(Box::new(resp))
}

/// What to do when a server's certificate is not trusted.
fn certificate_advice(name: &str) -> String {
    format!(
        "the server's TLS certificate is not trusted. If it is your own server with its own \
         (self-signed) certificate, trust exactly that certificate for this destination: \
         `shoebox dest edit {name} --trust-certificate cert.pem`"
    )
}

/// The error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// The seconds a response asks us to wait (Retry-After in seconds).
pub(crate) fn retry_after(resp: &Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether an HTTP status is worth retrying.
pub(crate) fn transient_status(code: u16) -> bool {
    matches!(code, 408 | 429) || (500..600).contains(&code) && code != 501 && code != 507
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_inside_the_address_are_refused_without_repeating_them() {
        let err = parse_url("d", "https://me:hunter2@example.com/dav", true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--password-stdin"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the password is not repeated: {err}"
        );
    }

    #[test]
    fn plain_http_needs_consent_only_with_credentials() {
        assert!(parse_url("d", "http://nas.local/dav", false, false).is_ok());
        let refused = parse_url("d", "http://nas.local/dav", true, false).unwrap_err();
        assert!(
            refused.to_string().contains("--allow-insecure-http"),
            "the message names the way out: {refused}"
        );
        assert!(parse_url("d", "http://nas.local/dav", true, true).is_ok());
        assert!(parse_url("d", "https://nas.local/dav", true, false).is_ok());
        assert!(parse_url("d", "ftp://nas.local/", false, false).is_err());
        assert!(parse_url("d", "not a url", false, false).is_err());
    }

    #[test]
    fn throttling_and_server_errors_are_transient_but_not_full_or_unsupported() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(transient_status(code), "{code} is worth a retry");
        }
        for code in [400, 401, 403, 404, 413, 501, 507] {
            assert!(
                !transient_status(code),
                "{code} will not get better by retrying"
            );
        }
    }
}
