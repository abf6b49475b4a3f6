//! Login sessions of the web UI, their cookie, CSRF tokens and the login rate limit.
//!
//! A session is a random 256-bit value in the cookie `mailferry_session` (`HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`, and `Secure` when the service is reached over https or
//! configured so); the service keeps only its SHA-256, with the session's CSRF token, in
//! memory. A restart therefore logs everyone out, which is the safe direction. Sessions
//! end after [`SESSION_LIFETIME`] or at logout.
//!
//! The login form has no session yet: its CSRF token is a random value sent both as a
//! short-lived cookie and as a hidden field (double submit), so another site cannot log a
//! browser in behind its user's back.
//!
//! The rate limit counts failed logins per client address: after [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`], every login from that address is refused (even with the right
//! password) until the oldest failure is older than the window. An attempt counts as failed
//! *before* its password is checked (a success takes it back), so attempts sent at once
//! cannot pass the limit together; and at most [`PASSWORD_CHECKS`] password checks run at
//! once (argon2 takes about 19 MiB each), so unauthenticated requests cannot exhaust memory.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use sha2::{Digest, Sha256};

use super::{problem_page, Ui};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailferry_session";
/// The login form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "mailferry_login";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed logins from one address that are tolerated within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window over which failed logins are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The form field and the header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A logged-in browser, as handlers see it (an extension of the request).
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    expires: Instant,
}

/// The open sessions, by the SHA-256 of their cookie value.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session; returns the cookie value (shown to the browser only).
    pub fn open(&self) -> String {
        let cookie = random_token();
        let session = Session {
            csrf: random_token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        if let Ok(mut open) = self.open.lock() {
            let now = Instant::now();
            open.retain(|_, s| s.expires > now);
            open.insert(digest(&cookie), session);
        }
        cookie
    }

    /// The session of a cookie value, if it is open.
    pub fn find(&self, cookie: &str) -> Option<Session> {
        let open = self.open.lock().ok()?;
        open.get(&digest(cookie))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends a session.
    pub fn close(&self, cookie: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&digest(cookie));
        }
    }
}

/// Password checks (argon2) running at once, over all clients.
pub const PASSWORD_CHECKS: usize = 2;

/// Failed logins by client address, and the password checks under way.
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    checks: tokio::sync::Semaphore,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
            checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS),
        }
    }
}

impl LoginLimiter {
    /// Counts an attempt from `address` as failed before its password is checked (issue 19:
    /// counted after, attempts sent at once all passed the limit); [`LoginLimiter::succeeded`]
    /// takes it back. `Err(wait)` when the address must wait first.
    pub fn attempt(&self, address: IpAddr) -> Result<(), Duration> {
        if let Some(wait) = self.blocked(address) {
            return Err(wait);
        }
        let Ok(mut failures) = self.failures.lock() else {
            return Err(FAILURE_WINDOW);
        };
        let times = failures.entry(address).or_default();
        if times.len() >= MAX_FAILURES {
            return Err(FAILURE_WINDOW);
        }
        times.push_back(Instant::now());
        Ok(())
    }

    /// Whether `password` matches the argon2 `hash`, with at most [`PASSWORD_CHECKS`]
    /// checks at once (the rest wait their turn).
    pub async fn check_password(&self, password: String, hash: String) -> bool {
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || crate::api::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// How long `address` must still wait before it may try again, if it is blocked.
    pub fn blocked(&self, address: IpAddr) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let now = Instant::now();
        failures.retain(|_, times| {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
            {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = failures.get(&address)?;
        if times.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        Some(FAILURE_WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    pub fn failed(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures
                .entry(address)
                .or_default()
                .push_back(Instant::now());
        }
    }

    pub fn succeeded(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address);
        }
    }
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Whether cookies must be `Secure`: configured so, or the browser reached us over https
/// (a TLS-terminating proxy in front says so in `X-Forwarded-Proto`).
pub fn secure(ui: &Ui, headers: &HeaderMap) -> bool {
    ui.app.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address (from the connection); where the service runs without connection
/// info (a router driven directly in a test), every client counts as one.
pub fn client_address(request_extensions: &axum::http::Extensions) -> IpAddr {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// Guards the tabs: a request without an open session goes to the login page; a `POST`
/// must carry the session's CSRF token and come from this origin. The session is handed
/// to the handler as a request extension.
pub async fn require_session(State(ui): State<Arc<Ui>>, request: Request, next: Next) -> Response {
    let session = cookie(request.headers(), SESSION_COOKIE).and_then(|c| ui.sessions.find(&c));
    let Some(session) = session else {
        return to_login(&request);
    };
    let mut request = request;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        if !same_origin(request.headers()) {
            return refused_csrf();
        }
        let (checked, rebuilt) = carries_token(request, &session.csrf).await;
        if !checked {
            return refused_csrf();
        }
        request = rebuilt;
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// To the login page, coming back here afterwards (for a page); htmx is told to load the
/// login page as a whole.
fn to_login(request: &Request) -> Response {
    let back = if request.method() == Method::GET && !request.uri().path().ends_with("/events") {
        request.uri().path()
    } else {
        "/ui/migration"
    };
    let target = format!("/ui/login?next={}", back.replace('&', ""));
    if request.headers().contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    Redirect::to(&target).into_response()
}

fn refused_csrf() -> Response {
    problem_page(
        StatusCode::FORBIDDEN,
        "This form was refused",
        "It was sent without this session's security token (CSRF), or from another site. \
         Nothing was changed. Go back, reload the page and send the form again.",
    )
}

/// `Origin` (when the browser sends one) names this service (`Host`). A request from
/// another site's page carries that site's origin.
fn same_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Whether the request carries `token` in the `X-CSRF-Token` header or in its form's
/// `csrf` field (URL-encoded or multipart); the request is handed back with its body
/// intact for the handler.
async fn carries_token(request: Request, token: &str) -> (bool, Request) {
    if let Some(sent) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let ok = same_token(sent, token);
        return (ok, request);
    }
    let (parts, body) = request.into_parts();
    // The body was already read in full and limited by the router's body check.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let sent = form_field(&content_type, bytes.clone(), CSRF_FIELD).await;
    let ok = sent.is_some_and(|sent| same_token(&sent, token));
    (ok, Request::from_parts(parts, Body::from(bytes)))
}

/// The value of one field of a form body.
async fn form_field(content_type: &str, bytes: Bytes, name: &str) -> Option<String> {
    // A POST: on a GET, axum's `Form` reads the query string instead of the body.
    let copy = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .ok()?;
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(copy, &()).await.ok()?;
        while let Ok(Some(field)) = multipart.next_field().await {
            if field.name() == Some(name) {
                return field.text().await.ok();
            }
        }
        None
    } else {
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(copy, &())
            .await
            .ok()?;
        fields.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &random_token()));
        assert!(!same_token(&t, &t[..63]));
        assert!(!same_token("", ""));
    }

    #[test]
    fn attempts_count_before_the_check_and_a_success_takes_them_back() {
        let limiter = LoginLimiter::default();
        let a: IpAddr = "192.0.2.3".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.attempt(a).is_ok());
        }
        assert!(
            limiter.attempt(a).is_err(),
            "the sixth attempt at once waits"
        );
        limiter.succeeded(a);
        assert!(limiter.attempt(a).is_ok());
    }

    #[test]
    fn limiter_blocks_after_the_allowed_failures_and_forgets_on_success() {
        let limiter = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(a);
        }
        assert!(limiter.blocked(a).is_none());
        limiter.failed(a);
        let wait = limiter.blocked(a).unwrap();
        assert!(wait > FAILURE_WINDOW - Duration::from_secs(5) && wait <= FAILURE_WINDOW);
        assert!(
            limiter.blocked(b).is_none(),
            "another address is not blocked"
        );
        limiter.succeeded(a);
        assert!(limiter.blocked(a).is_none());
    }

    #[test]
    fn sessions_open_find_close() {
        let sessions = Sessions::default();
        let cookie = sessions.open();
        let session = sessions.find(&cookie).unwrap();
        assert_eq!(session.csrf.len(), 64);
        assert!(sessions.find(&random_token()).is_none());
        sessions.close(&cookie);
        assert!(sessions.find(&cookie).is_none());
    }

    #[test]
    fn cookies_and_origins_are_read_exactly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mailferry_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "mailferry"), None);
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: a same-site form");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        let text = set_cookie(SESSION_COOKIE, "v", "/ui", None, true);
        assert_eq!(
            text.to_str().unwrap(),
            "mailferry_session=v; Path=/ui; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
