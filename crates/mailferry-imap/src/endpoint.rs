//! Where and how to log in: `imap://user@host:port` or `imaps://...`, and the credentials.

use std::fmt;
use std::net::IpAddr;

use secrecy::SecretString;

use crate::transport::TlsOptions;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993).
    Tls,
    /// Plain connect, then STARTTLS (`imap://`, port 143). Without STARTTLS on offer the login
    /// goes ahead unencrypted only on a loopback address or when plaintext is allowed.
    StartTls,
    /// No TLS at all, even where STARTTLS is offered: only when asked for explicitly, for
    /// trusted networks and benchmarks on loopback. Passwords and mail travel in the clear.
    Plain,
}

/// How to authenticate.
#[derive(Clone)]
pub enum Auth {
    /// LOGIN, or AUTHENTICATE PLAIN when the server prefers it.
    Password {
        user: String,
        password: SecretString,
    },
    /// AUTHENTICATE PLAIN acting as `authorize_as` with an admin's or master user's
    /// credentials (Dovecot master users, Cyrus proxy authorization).
    AsUser {
        admin: String,
        password: SecretString,
        authorize_as: String,
    },
    /// AUTHENTICATE XOAUTH2 (Gmail, Microsoft 365).
    XOAuth2 { user: String, token: SecretString },
    /// AUTHENTICATE OAUTHBEARER (RFC 7628).
    OAuthBearer { user: String, token: SecretString },
}

impl Auth {
    /// The account whose mail is read or written.
    pub fn account(&self) -> &str {
        match self {
            Auth::Password { user, .. }
            | Auth::XOAuth2 { user, .. }
            | Auth::OAuthBearer { user, .. } => user,
            Auth::AsUser { authorize_as, .. } => authorize_as,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password { user, .. } => {
                write!(f, "Password {{ user: {user:?}, password: *** }}")
            }
            Auth::AsUser {
                admin,
                authorize_as,
                ..
            } => {
                write!(
                    f,
                    "AsUser {{ admin: {admin:?}, authorize_as: {authorize_as:?}, password: *** }}"
                )
            }
            Auth::XOAuth2 { user, .. } => write!(f, "XOAuth2 {{ user: {user:?}, token: *** }}"),
            Auth::OAuthBearer { user, .. } => {
                write!(f, "OAuthBearer {{ user: {user:?}, token: *** }}")
            }
        }
    }
}

/// An IMAP server and how to reach it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub tls: TlsOptions,
    /// Allow a login without TLS when the server offers no STARTTLS (always allowed on loopback).
    pub allow_plaintext: bool,
}

impl Endpoint {
    /// `host:port`, as errors show it.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// A URL that does not name an IMAP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{url}` is not an IMAP address: {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: &'static str,
}

/// The parts of `imap[s]://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    pub security: Security,
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl ImapUrl {
    /// Parses `imap://user@host:143` or `imaps://user@host`; the user may be percent-encoded
    /// (`alice%40example.com`) or contain a plain `@` (the last `@` separates the host).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let fail = |reason| UrlError {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| fail("it must start with imap:// or imaps://"))?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "imap" => (Security::StartTls, 143),
            "imaps" => (Security::Tls, 993),
            _ => {
                return Err(fail(
                    "the scheme must be imap:// (STARTTLS) or imaps:// (TLS)",
                ))
            }
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') {
            return Err(fail("it must not have a path; write only user@host:port"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => (
                Some(percent_decode(user).ok_or_else(|| fail("the user name has a bad %-escape"))?),
                hostport,
            ),
            None => (None, rest),
        };
        if user.as_deref() == Some("") {
            return Err(fail("the user name before `@` is empty"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| fail("an IPv6 address needs a closing `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| fail("the port must be a number from 1 to 65535"))?,
                None if after.is_empty() => default_port,
                None => return Err(fail("unexpected text after the IPv6 address")),
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (
                    host.to_string(),
                    port.parse()
                        .map_err(|_| fail("the port must be a number from 1 to 65535"))?,
                ),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(fail("the host is missing"));
        }
        if port == 0 {
            return Err(fail("the port must be a number from 1 to 65535"));
        }
        Ok(Self {
            security,
            user,
            host,
            port,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ImapUrl::parse("imap://alice@127.0.0.1:12143").unwrap();
        assert_eq!(
            (u.security, u.user.as_deref(), u.host.as_str(), u.port),
            (Security::StartTls, Some("alice"), "127.0.0.1", 12143)
        );
        let u = ImapUrl::parse("imaps://alice%40example.com@mail.example.com").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.port),
            (Some("alice@example.com"), 993)
        );
        let u = ImapUrl::parse("imaps://bob@example.com@[::1]:9933/").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.host.as_str(), u.port),
            (Some("bob@example.com"), "::1", 9933)
        );
        assert!(ImapUrl::parse("pop3://x@y").is_err());
        assert!(ImapUrl::parse("imap://x@y:99999").is_err());
        assert!(ImapUrl::parse("imap://@y").is_err());
        assert!(ImapUrl::parse("mail.example.com").is_err());
    }
}
