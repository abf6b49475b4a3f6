//! The one file that does I/O: sends a [`Request`] with reqwest over rustls and returns
//! the [`Response`]. Redirects are never followed by themselves (a redirect to another
//! server would carry the password there); discovery follows the well-known ones itself.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::discovery::ServerKind;
use crate::error::{excerpt, DavError};
use crate::request::{Request, Response};

/// One account on a CalDAV/CardDAV server: where, who, and how to trust it.
#[derive(Debug, Clone)]
pub struct DavEndpoint {
    /// Scheme, host, port and a starting path (a context path, principal or home set, or
    /// just `/`); never credentials.
    pub url: Url,
    pub user: String,
    pub password: SecretString,
    /// Accept a certificate that does not verify (lab servers).
    pub insecure: bool,
    /// Trust the CA certificates (PEM) in this file, besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Per request.
    pub timeout: Duration,
    /// Which product, for the paths discovery tries when well-known URLs fail.
    pub server: ServerKind,
}

impl DavEndpoint {
    /// `user@host:port`, for reports (never a secret).
    pub fn describe(&self) -> String {
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}@{}{}{}",
            self.user,
            self.url.host_str().unwrap_or(""),
            port,
            self.url.path()
        )
    }
}

/// A DAV address as written by an admin: `https://USER@HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavUrl {
    /// Without user or password.
    pub url: Url,
    pub user: Option<String>,
}

impl DavUrl {
    pub fn parse(text: &str) -> Result<Self, DavError> {
        let bad = |reason: &str| DavError::BadUrl {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "it must start with https:// (or http:// on a trusted network)",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it names no host"));
        }
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            return Err(DavError::BadUrl {
                url: url.to_string(),
                reason:
                    "it holds a password; passwords never go in addresses: use the password options"
                        .into(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it has a `?query` or `#fragment`; give only the path"));
        }
        let user = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(|u| percent_decode_str(u).decode_utf8_lossy().into_owned());
        let _ = url.set_username("");
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(DavUrl { url, user })
    }
}

/// What is percent-encoded in the hrefs we build and compare: controls, space, and the
/// characters that end or confuse a path; non-ASCII always.
const HREF_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// The one spelling of an href: path only, percent-encoding redone the same way, so that
/// `/a/b%20c/` and `http://host/a/b c/` compare equal.
pub fn normalise_href(href: &str) -> String {
    let path = match href.find("://") {
        Some(i) => match href[i + 3..].find('/') {
            Some(j) => &href[i + 3 + j..],
            None => "/",
        },
        None => href,
    };
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    utf8_percent_encode(&decoded, HREF_ENCODE).to_string()
}

/// One path segment, encoded for an href (also `/`).
pub fn encode_segment(segment: &str) -> String {
    const SEGMENT_ENCODE: &AsciiSet = &HREF_ENCODE.add(b'/');
    utf8_percent_encode(segment, SEGMENT_ENCODE).to_string()
}

/// The decoded last segment of an href: `/alice/team%20paris/` → `team paris`.
pub fn last_segment(href: &str) -> String {
    let path = normalise_href(href);
    let segment = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    percent_decode_str(&segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// A logged-in HTTP client for one endpoint.
#[derive(Debug)]
pub struct DavClient {
    http: reqwest::Client,
    origin: Url,
    user: String,
    password: SecretString,
    timeout: Duration,
}

impl DavClient {
    pub fn new(endpoint: &DavEndpoint) -> Result<Self, DavError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(endpoint.timeout)
            .danger_accept_invalid_certs(endpoint.insecure);
        if let Some(path) = &endpoint.ca_file {
            let ca_error = |reason: String| DavError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("no PEM certificate in it".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| DavError::Client(e.to_string()))?;
        let mut origin = endpoint.url.clone();
        origin.set_path("/");
        Ok(DavClient {
            http,
            origin,
            user: endpoint.user.clone(),
            password: endpoint.password.clone(),
            timeout: endpoint.timeout,
        })
    }

    /// `host:port`, for messages.
    pub fn host(&self) -> String {
        match self.origin.port() {
            Some(port) => format!("{}:{port}", self.origin.host_str().unwrap_or("")),
            None => self.origin.host_str().unwrap_or("").to_string(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The URL of an href: a path on this server, or an absolute URL that must be on it.
    pub fn url_for(&self, href: &str) -> Result<Url, DavError> {
        if href.contains("://") {
            let url = Url::parse(href).map_err(|e| DavError::BadUrl {
                url: href.to_string(),
                reason: e.to_string(),
            })?;
            if url.origin() != self.origin.origin() {
                return Err(DavError::ForeignRedirect {
                    href: href.to_string(),
                    location: href.to_string(),
                });
            }
            return Ok(url);
        }
        let mut url = self.origin.clone();
        url.set_path(&normalise_href(href));
        Ok(url)
    }

    /// Sends a request; any HTTP answer is `Ok`, only network failures are errors.
    pub async fn send(&self, request: &Request) -> Result<Response, DavError> {
        let url = self.url_for(&request.href)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| DavError::Client(e.to_string()))?;
        let mut builder = self
            .http
            .request(method, url)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .timeout(self.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some((content_type, body)) = &request.body {
            builder = builder
                .header("Content-Type", content_type)
                .body(body.clone());
        }
        tracing::debug!(method = request.method, href = %request.href, "dav request");
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                DavError::Timeout {
                    host: self.host(),
                    method: request.method.to_string(),
                    href: request.href.clone(),
                    seconds: self.timeout.as_secs(),
                }
            } else {
                DavError::Unreachable {
                    host: self.host(),
                    reason: chain(&error),
                }
            }
        };
        let answer = builder.send().await.map_err(failed)?;
        let status = answer.status();
        let headers = answer
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = answer.bytes().await.map_err(failed)?.to_vec();
        Ok(Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            headers,
            body,
        })
    }

    /// Sends a request and wants a 2xx answer: 401 is a rejected login, anything else a
    /// refusal in the server's words.
    pub async fn expect_success(&self, request: &Request) -> Result<Response, DavError> {
        let response = self.send(request).await?;
        if response.is_success() {
            return Ok(response);
        }
        Err(self.refusal(request, &response))
    }

    /// The error for an answer that is not what was wanted.
    pub fn refusal(&self, request: &Request, response: &Response) -> DavError {
        if response.status == 401 {
            return DavError::LoginRejected {
                host: self.host(),
                user: self.user.clone(),
                status: response.status_line(),
            };
        }
        DavError::Refused {
            method: request.method.to_string(),
            href: request.href.clone(),
            status: response.status_line(),
            said: excerpt(&response.body),
        }
    }

    /// An answer that cannot be read.
    pub fn unreadable(&self, request: &Request, reason: String) -> DavError {
        DavError::BadResponse {
            method: request.method.to_string(),
            href: request.href.clone(),
            reason,
        }
    }
}

/// An error and its causes, `: `-joined (reqwest's own message alone says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_the_user_and_refuse_passwords() {
        let u =
            DavUrl::parse("https://alice%40example.com@dav.example.com/remote.php/dav").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice@example.com"));
        assert_eq!(u.url.as_str(), "https://dav.example.com/remote.php/dav/");
        let leak = DavUrl::parse("https://a:secret-pw@h/")
            .unwrap_err()
            .to_string();
        assert!(
            !leak.contains("secret-pw") && leak.contains("***"),
            "{leak}"
        );
        assert!(DavUrl::parse("imap://a@h/").is_err());
        assert!(DavUrl::parse("http://").is_err());
        assert!(DavUrl::parse("http://h/?x=1").is_err());
        assert_eq!(DavUrl::parse("http://h:5232").unwrap().user, None);
    }

    #[test]
    fn hrefs_compare_whatever_their_spelling() {
        assert_eq!(normalise_href("/a/team%20paris/"), "/a/team%20paris/");
        assert_eq!(
            normalise_href("http://h:1/a/team paris/"),
            "/a/team%20paris/"
        );
        assert_eq!(normalise_href("/a/%C3%A9t%c3%a9/"), "/a/%C3%A9t%C3%A9/");
        assert_eq!(normalise_href("/a/été/"), "/a/%C3%A9t%C3%A9/");
        assert_eq!(normalise_href("/a/x@y.ics"), "/a/x@y.ics");
        assert_eq!(last_segment("/alice/team%20paris/"), "team paris");
        assert_eq!(last_segment("/alice/e.ics"), "e.ics");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
