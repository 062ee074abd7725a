//! HTTP authentication for the WebDAV destination: Basic, or Digest (RFC
//! 7616, through the `digest_auth` crate) once the server asks for it. A
//! Digest challenge is kept and answered on every request (its nonce count
//! rising) until the server sends a new one.

use std::sync::Mutex;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use reqwest::blocking::{Request, Response};
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};

/// A user name and password, and the server's Digest challenge once it
/// made one.
pub(crate) struct Credentials {
    user: String,
    password: String,
    digest: Mutex<Option<WwwAuthenticateHeader>>,
}

/// The password never shows in a debug print.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(user: String, password: Option<String>) -> Credentials {
        Credentials {
            user,
            password: password.unwrap_or_default(),
            digest: Mutex::new(None),
        }
    }

    /// Sets `req`'s Authorization: the answer to the server's Digest
    /// challenge when it made one, else Basic.
    pub fn authorize(&self, req: &mut Request) {
        let value = match self.digest.lock().expect("lock").as_mut() {
            Some(challenge) => {
                let url = req.url();
                let uri = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                let method = HttpMethod::from(req.method().as_str().to_string());
                let context = AuthContext::new_with_method(
                    &self.user,
                    &self.password,
                    &uri,
                    None::<&[u8]>,
                    method,
                );
                challenge
                    .respond(&context)
                    .ok()
                    .map(|answer| answer.to_header_string())
            }
            None => None,
        };
        let value = value.unwrap_or_else(|| {
            use base64::Engine;
            let pair = format!("{}:{}", self.user, self.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, v);
        }
    }

    /// Takes the Digest challenge of a 401 answer. True when it is new (the
    /// first, or a fresh nonce): the request is then worth sending again.
    /// False when the server offers no Digest, or refused the answer to
    /// the challenge it already made (wrong credentials).
    pub fn take_challenge(&self, resp: &Response) -> bool {
        let Some(parsed) = offered(resp)
            .into_iter()
            .find(|c| scheme_of(c).eq_ignore_ascii_case("digest"))
            .and_then(|c| digest_auth::parse(&c).ok())
        else {
            return false;
        };
        let mut current = self.digest.lock().expect("lock");
        let new = match current.as_ref() {
            None => true,
            Some(old) => parsed.stale || parsed.nonce != old.nonce,
        };
        if new {
            *current = Some(parsed);
        }
        new
    }
}

/// The challenges of an answer's `WWW-Authenticate` headers.
fn offered(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

fn scheme_of(challenge: &str) -> &str {
    challenge
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(',')
}

/// The schemes a 401 answer asks for, for a message: `Basic`, `Digest`,
/// `NTLM` ….
pub(crate) fn schemes(resp: &Response) -> Vec<String> {
    let mut out: Vec<String> = offered(resp)
        .iter()
        .map(|c| scheme_of(c).to_string())
        .filter(|s| !s.is_empty())
        .collect();
    out.dedup();
    out
}
