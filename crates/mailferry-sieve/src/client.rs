//! The ManageSieve commands (RFC 5804): greeting and capabilities, STARTTLS, AUTHENTICATE
//! (PLAIN with an authorization identity, XOAUTH2, OAUTHBEARER), LISTSCRIPTS, GETSCRIPT,
//! PUTSCRIPT, CHECKSCRIPT, SETACTIVE, HAVESPACE, DELETESCRIPT and LOGOUT.
//!
//! Commands that change scripts answer `Result<Result<_, Refusal>, SieveError>`: the outer
//! error means the session is gone or the server misbehaved, the inner [`Refusal`] is a `NO`
//! the caller can report per script (a syntax error, an unknown extension, a quota) and go
//! on. Scripts travel as literals byte for byte; nothing here changes them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mailferry_imap::{Auth, Security, TlsOptions};
use secrecy::zeroize::Zeroizing;
use secrecy::ExposeSecret;

use crate::error::{Refusal, SieveError};
use crate::parse::{Done, Item, Response, Status, MAX_RESPONSE};
use crate::transport::Connection;

/// Strings at least this long are sent as literals.
const MAX_QUOTED: usize = 1024;
/// Challenges answered in one AUTHENTICATE before giving up on the server.
const MAX_CHALLENGES: usize = 4;

/// A ManageSieve server and how to reach it.
#[derive(Debug, Clone)]
pub struct SieveEndpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub tls: TlsOptions,
    /// Allow a login without TLS when the server offers no STARTTLS (always allowed on
    /// loopback).
    pub allow_plaintext: bool,
}

impl SieveEndpoint {
    /// `host:port`, or `[v6]:port`, as errors show it.
    pub fn addr(&self) -> String {
        let host = bare_host(&self.host);
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn is_loopback(&self) -> bool {
        let host = bare_host(&self.host);
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The host without the brackets of an IPv6 address written `[::1]`.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// What the server announced in its greeting (or after STARTTLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `IMPLEMENTATION`, e.g. `Dovecot Pigeonhole`.
    pub implementation: Option<String>,
    /// `SIEVE`: the Sieve extensions the server knows, lowercased.
    pub sieve: Vec<String>,
    /// `SASL`: login mechanisms, uppercased.
    pub sasl: Vec<String>,
    /// `STARTTLS` is offered.
    pub starttls: bool,
    /// `VERSION`: `1.0` for RFC 5804 servers (which have CHECKSCRIPT); absent on drafts.
    pub version: Option<String>,
    /// `MAXREDIRECTS`: how many `redirect` actions a script may take.
    pub max_redirects: Option<u32>,
    /// `NOTIFY`: notification methods, lowercased.
    pub notify: Vec<String>,
    /// `OWNER`: the authenticated user (after login).
    pub owner: Option<String>,
}

/// Capability names of RFC 5804 (and `LANGUAGE`): after AUTHENTICATE a line with one of
/// these is a capability, not a SASL challenge.
const CAPABILITY_NAMES: [&str; 10] = [
    "IMPLEMENTATION",
    "SASL",
    "SIEVE",
    "STARTTLS",
    "NOTIFY",
    "MAXREDIRECTS",
    "VERSION",
    "OWNER",
    "UNAUTHENTICATE",
    "LANGUAGE",
];

impl Capabilities {
    /// Whether the server knows the Sieve extension `name` (case-insensitive).
    pub fn has_extension(&self, name: &str) -> bool {
        self.sieve.iter().any(|e| e.eq_ignore_ascii_case(name))
    }

    /// Takes in one capability line; unknown capabilities are ignored.
    fn add(&mut self, items: &[Item]) {
        let Some(name) = items.first().and_then(Item::text) else {
            return;
        };
        let value = items.get(1).and_then(Item::text);
        let words = |value: &Option<String>| -> Vec<String> {
            value
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        match name.to_ascii_uppercase().as_str() {
            "IMPLEMENTATION" => self.implementation = value,
            "SIEVE" => {
                self.sieve = words(&value)
                    .into_iter()
                    .map(|w| w.to_ascii_lowercase())
                    .collect()
            }
            "SASL" => {
                self.sasl = words(&value)
                    .into_iter()
                    .map(|w| w.to_ascii_uppercase())
                    .collect()
            }
            "STARTTLS" => self.starttls = true,
            "VERSION" => self.version = value,
            "MAXREDIRECTS" => self.max_redirects = value.and_then(|v| v.trim().parse().ok()),
            "NOTIFY" => {
                self.notify = words(&value)
                    .into_iter()
                    .map(|w| w.to_ascii_lowercase())
                    .collect()
            }
            "OWNER" => self.owner = value,
            other => tracing::trace!(capability = other, "ignoring a ManageSieve capability"),
        }
    }
}

/// A script of LISTSCRIPTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEntry {
    pub name: String,
    /// The script the server runs on delivery (at most one is).
    pub active: bool,
}

/// A logged-in (or about to log in) ManageSieve session.
pub struct SieveClient {
    conn: Connection,
    capabilities: Capabilities,
    addr: String,
}

impl fmt::Debug for SieveClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SieveClient")
            .field("addr", &self.addr)
            .field("tls", &self.conn.is_tls())
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl SieveClient {
    /// Connects, reads the greeting, and upgrades with STARTTLS when the endpoint asks for
    /// it (then reads the capabilities again, as RFC 5804 requires). Without STARTTLS on
    /// offer the session stays plain only on loopback or with `allow_plaintext`.
    pub async fn connect(
        endpoint: &SieveEndpoint,
        timeout: Duration,
    ) -> Result<SieveClient, SieveError> {
        let addr = endpoint.addr();
        let host = bare_host(&endpoint.host);
        let tls_first = (endpoint.security == Security::Tls).then_some(&endpoint.tls);
        let conn =
            Connection::connect(host, endpoint.port, addr.clone(), tls_first, timeout).await?;
        let mut client = SieveClient {
            conn,
            capabilities: Capabilities::default(),
            addr,
        };
        client.capabilities = client.read_capabilities(true).await?;
        if endpoint.security == Security::StartTls {
            if client.capabilities.starttls {
                client
                    .conn
                    .write(b"STARTTLS\r\n", "while starting TLS")
                    .await?;
                let (_, done) = client.finish("while starting TLS").await?;
                if done.status != Status::Ok {
                    return Err(SieveError::Refused {
                        addr: client.addr.clone(),
                        command: "STARTTLS",
                        refusal: refusal(done),
                    });
                }
                client.conn.start_tls(host, &endpoint.tls).await?;
                client.capabilities = client.read_capabilities(false).await?;
            } else if endpoint.allow_plaintext || endpoint.is_loopback() {
                tracing::warn!(
                    addr = %client.addr,
                    "the ManageSieve server offers no STARTTLS; logging in unencrypted"
                );
            } else {
                return Err(SieveError::NoStartTls { addr: client.addr });
            }
        }
        Ok(client)
    }

    /// What the server announced (after STARTTLS, the second announcement).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// AUTHENTICATE with PLAIN (for [`Auth::Password`] and [`Auth::AsUser`], the latter with
    /// the authorization identity), XOAUTH2 or OAUTHBEARER, each with an initial response.
    pub async fn authenticate(&mut self, auth: &Auth) -> Result<(), SieveError> {
        let (mechanism, user, initial): (&'static str, String, Zeroizing<Vec<u8>>) = match auth {
            Auth::Password { user, password } => (
                "PLAIN",
                user.clone(),
                plain("", user, password.expose_secret()),
            ),
            Auth::AsUser {
                admin,
                password,
                authorize_as,
            } => (
                "PLAIN",
                format!("{admin} acting as {authorize_as}"),
                plain(authorize_as, admin, password.expose_secret()),
            ),
            Auth::XOAuth2 { user, token } => (
                "XOAUTH2",
                user.clone(),
                Zeroizing::new(
                    format!(
                        "user={user}\x01auth=Bearer {}\x01\x01",
                        token.expose_secret()
                    )
                    .into_bytes(),
                ),
            ),
            Auth::OAuthBearer { user, token } => {
                let (host, port) = self
                    .addr
                    .rsplit_once(':')
                    .map(|(h, p)| (h.trim_start_matches('[').trim_end_matches(']'), p))
                    .unwrap_or_default();
                (
                    "OAUTHBEARER",
                    user.clone(),
                    Zeroizing::new(
                        format!(
                            "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
                            token.expose_secret()
                        )
                        .into_bytes(),
                    ),
                )
            }
        };
        if !self.capabilities.sasl.iter().any(|m| m == mechanism) {
            return Err(SieveError::NoMechanism {
                addr: self.addr.clone(),
                mechanism,
                offered: self.capabilities.sasl.clone(),
            });
        }
        let during = "while logging in";
        let encoded = Zeroizing::new(BASE64.encode(initial.as_slice()));
        let mut line = Zeroizing::new(Vec::with_capacity(encoded.len() + 40));
        line.extend_from_slice(b"AUTHENTICATE ");
        push_string(&mut line, mechanism.as_bytes());
        line.push(b' ');
        push_string(&mut line, encoded.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.conn.write(&line, during).await?;

        let mut challenges = 0;
        let mut server_said = None;
        loop {
            match self.conn.read_response(during).await? {
                Response::Done(done) => match done.status {
                    Status::Ok => return Ok(()),
                    Status::No => {
                        let mut said = refusal(done).to_string();
                        if let Some(extra) = server_said {
                            said = format!("{said} ({extra})");
                        }
                        return Err(SieveError::LoginRejected {
                            addr: self.addr.clone(),
                            user,
                            said,
                        });
                    }
                    Status::Bye => return Err(self.bye(done)),
                },
                Response::Line(items) if is_capability_line(&items) => {
                    // Some servers announce capabilities again after login: not needed.
                }
                Response::Line(items) => {
                    challenges += 1;
                    if challenges > MAX_CHALLENGES {
                        return Err(self.protocol("it keeps sending SASL challenges"));
                    }
                    if mechanism == "PLAIN" {
                        // PLAIN with an initial response needs no challenge: cancel.
                        self.conn.write(b"*\r\n", during).await?;
                        let _ = self.finish(during).await?;
                        return Err(self.protocol(
                            "it sent a SASL challenge to AUTHENTICATE PLAIN, which needs none",
                        ));
                    }
                    // An OAuth failure: the challenge is a JSON error; answer with the dummy
                    // response the mechanism defines, then the server sends NO.
                    server_said = items
                        .first()
                        .and_then(Item::as_string)
                        .and_then(|b64| BASE64.decode(b64).ok())
                        .map(|json| String::from_utf8_lossy(&json).into_owned());
                    let reply: &[u8] = if mechanism == "OAUTHBEARER" {
                        b"\"AQ==\"\r\n"
                    } else {
                        b"\"\"\r\n"
                    };
                    self.conn.write(reply, during).await?;
                }
            }
        }
    }

    /// The account's scripts and which one is active.
    pub async fn list_scripts(&mut self) -> Result<Vec<ScriptEntry>, SieveError> {
        let during = "while listing scripts";
        self.conn.write(b"LISTSCRIPTS\r\n", during).await?;
        let (lines, done) = self.finish(during).await?;
        if done.status != Status::Ok {
            return Err(self.refused("LISTSCRIPTS", done));
        }
        let mut scripts = Vec::with_capacity(lines.len());
        for items in lines {
            let Some(name) = items.first().and_then(Item::as_string) else {
                return Err(self.protocol("a LISTSCRIPTS line does not start with a script name"));
            };
            let name = utf8_name(name, &self.addr);
            let active = items
                .get(1)
                .and_then(Item::text)
                .is_some_and(|flag| flag.eq_ignore_ascii_case("ACTIVE"));
            scripts.push(ScriptEntry { name, active });
        }
        Ok(scripts)
    }

    /// A script's bytes, exactly as the server serves them.
    pub async fn get_script(&mut self, name: &str) -> Result<Vec<u8>, SieveError> {
        let during = "while reading a script";
        let mut line = b"GETSCRIPT ".to_vec();
        push_string(&mut line, name.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.conn.write(&line, during).await?;
        let (lines, done) = self.finish(during).await?;
        if done.status != Status::Ok {
            return Err(self.refused("GETSCRIPT", done));
        }
        let mut strings = lines
            .into_iter()
            .filter_map(|items| items.into_iter().next())
            .filter_map(|item| match item {
                Item::String(bytes) => Some(bytes),
                _ => None,
            });
        match (strings.next(), strings.next()) {
            (Some(script), None) => Ok(script),
            (None, _) => Err(self.protocol("GETSCRIPT answered OK without a script")),
            (Some(_), Some(_)) => Err(self.protocol("GETSCRIPT answered with several scripts")),
        }
    }

    /// Stores (or replaces) a script. `Ok(Ok(warnings))` when stored, with the server's
    /// warnings if it had any; `Ok(Err(refusal))` when the server refused the script.
    pub async fn put_script(
        &mut self,
        name: &str,
        content: &[u8],
    ) -> Result<Result<Option<String>, Refusal>, SieveError> {
        let mut line = b"PUTSCRIPT ".to_vec();
        push_string(&mut line, name.as_bytes());
        line.push(b' ');
        push_literal(&mut line, content);
        line.extend_from_slice(b"\r\n");
        self.checked("while storing a script", &line).await
    }

    /// Asks whether the server would accept a script, without storing it.
    pub async fn check_script(
        &mut self,
        content: &[u8],
    ) -> Result<Result<Option<String>, Refusal>, SieveError> {
        if self.capabilities.version.is_none() {
            return Err(SieveError::Unsupported {
                addr: self.addr.clone(),
                command: "CHECKSCRIPT",
            });
        }
        let mut line = b"CHECKSCRIPT ".to_vec();
        push_literal(&mut line, content);
        line.extend_from_slice(b"\r\n");
        self.checked("while checking a script", &line).await
    }

    /// Makes `name` the active script; `""` deactivates all.
    pub async fn set_active(&mut self, name: &str) -> Result<Result<(), Refusal>, SieveError> {
        let mut line = b"SETACTIVE ".to_vec();
        push_string(&mut line, name.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.simple("while activating a script", &line).await
    }

    /// Whether a script `name` of `size` bytes would fit the account's quota.
    pub async fn have_space(
        &mut self,
        name: &str,
        size: u64,
    ) -> Result<Result<(), Refusal>, SieveError> {
        let mut line = b"HAVESPACE ".to_vec();
        push_string(&mut line, name.as_bytes());
        line.extend_from_slice(format!(" {size}\r\n").as_bytes());
        self.simple("while checking the quota", &line).await
    }

    /// Deletes a script (servers refuse to delete the active one).
    pub async fn delete_script(&mut self, name: &str) -> Result<Result<(), Refusal>, SieveError> {
        let mut line = b"DELETESCRIPT ".to_vec();
        push_string(&mut line, name.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.simple("while deleting a script", &line).await
    }

    /// LOGOUT, then closes the connection. A server that just hangs up is fine.
    pub async fn logout(mut self) -> Result<(), SieveError> {
        let during = "while logging out";
        let result = match self.conn.write(b"LOGOUT\r\n", during).await {
            Ok(()) => loop {
                match self.conn.read_response(during).await {
                    Ok(Response::Done(_)) | Err(SieveError::Closed { .. }) => break Ok(()),
                    Ok(Response::Line(_)) => {}
                    Err(e) => break Err(e),
                }
            },
            Err(SieveError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        self.conn.shutdown().await;
        result
    }

    /// The greeting (or the announcement after STARTTLS): capability lines, then OK.
    async fn read_capabilities(&mut self, greeting: bool) -> Result<Capabilities, SieveError> {
        let during = if greeting {
            "while reading the greeting"
        } else {
            "while reading the capabilities after STARTTLS"
        };
        let mut capabilities = Capabilities::default();
        let mut first = true;
        loop {
            let response = match self.conn.read_response(during).await {
                Ok(response) => response,
                Err(SieveError::Protocol { .. }) if greeting && first => {
                    return Err(self.not_sieve(self.conn.pending_text()))
                }
                Err(e) => return Err(e),
            };
            match response {
                Response::Line(items) => {
                    if !matches!(items.first(), Some(Item::String(_))) {
                        if greeting && first {
                            let text = items
                                .iter()
                                .filter_map(Item::text)
                                .collect::<Vec<_>>()
                                .join(" ");
                            return Err(self.not_sieve(text));
                        }
                        return Err(self.protocol("a capability line does not start with a name"));
                    }
                    capabilities.add(&items);
                }
                Response::Done(done) => match done.status {
                    Status::Ok => return Ok(capabilities),
                    Status::No | Status::Bye => return Err(self.bye(done)),
                },
            }
            first = false;
        }
    }

    /// Reads up to the completion of a command: the data lines and the OK or NO. A BYE is
    /// the session's end and so an error.
    async fn finish(&mut self, during: &'static str) -> Result<(Vec<Vec<Item>>, Done), SieveError> {
        let mut lines = Vec::new();
        let mut held = 0usize;
        loop {
            match self.conn.read_response(during).await? {
                Response::Line(items) => {
                    held += items.iter().map(item_size).sum::<usize>();
                    if held > MAX_RESPONSE {
                        return Err(SieveError::TooBig {
                            addr: self.addr.clone(),
                            limit: MAX_RESPONSE,
                        });
                    }
                    lines.push(items);
                }
                Response::Done(done) if done.status == Status::Bye => return Err(self.bye(done)),
                Response::Done(done) => return Ok((lines, done)),
            }
        }
    }

    /// A command whose OK may carry warnings (PUTSCRIPT, CHECKSCRIPT).
    async fn checked(
        &mut self,
        during: &'static str,
        line: &[u8],
    ) -> Result<Result<Option<String>, Refusal>, SieveError> {
        self.conn.write(line, during).await?;
        let (_, done) = self.finish(during).await?;
        Ok(match done.status {
            Status::Ok => Ok(done
                .code
                .filter(|code| code.name == "WARNINGS")
                .map(|_| done.text.unwrap_or_default())),
            _ => Err(refusal(done)),
        })
    }

    /// A command answered by OK or NO alone.
    async fn simple(
        &mut self,
        during: &'static str,
        line: &[u8],
    ) -> Result<Result<(), Refusal>, SieveError> {
        self.conn.write(line, during).await?;
        let (_, done) = self.finish(during).await?;
        Ok(match done.status {
            Status::Ok => Ok(()),
            _ => Err(refusal(done)),
        })
    }

    fn bye(&self, done: Done) -> SieveError {
        SieveError::Bye {
            addr: self.addr.clone(),
            text: refusal(done).to_string(),
        }
    }

    fn refused(&self, command: &'static str, done: Done) -> SieveError {
        SieveError::Refused {
            addr: self.addr.clone(),
            command,
            refusal: refusal(done),
        }
    }

    fn protocol(&self, detail: &str) -> SieveError {
        SieveError::Protocol {
            addr: self.addr.clone(),
            detail: detail.to_string(),
        }
    }

    fn not_sieve(&self, greeting: String) -> SieveError {
        let mut greeting = greeting;
        if greeting.len() > 200 {
            let mut cut = 200;
            while !greeting.is_char_boundary(cut) {
                cut -= 1;
            }
            greeting.truncate(cut);
            greeting.push('…');
        }
        SieveError::NotSieve {
            addr: self.addr.clone(),
            greeting,
        }
    }
}

fn refusal(done: Done) -> Refusal {
    Refusal {
        code: done.code.map(|code| code.name),
        message: done.text.unwrap_or_default(),
    }
}

fn is_capability_line(items: &[Item]) -> bool {
    items.first().and_then(Item::text).is_some_and(|name| {
        CAPABILITY_NAMES
            .iter()
            .any(|known| known.eq_ignore_ascii_case(&name))
    })
}

fn item_size(item: &Item) -> usize {
    match item {
        Item::Atom(atom) => atom.len(),
        Item::String(bytes) => bytes.len(),
        Item::List(items) => items.iter().map(item_size).sum(),
    }
}

/// A script name as UTF-8; a server that stores other bytes gets them replaced, loudly.
fn utf8_name(bytes: &[u8], addr: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(name) => name.to_string(),
        Err(_) => {
            let name = String::from_utf8_lossy(bytes).into_owned();
            tracing::warn!(%addr, name = %name, "a script name is not UTF-8");
            name
        }
    }
}

/// `authz NUL authc NUL password` (RFC 4616).
fn plain(authz: &str, authc: &str, password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        authz.len() + authc.len() + password.len() + 2,
    ));
    out.extend_from_slice(authz.as_bytes());
    out.push(0);
    out.extend_from_slice(authc.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// A quoted string when short, UTF-8 and on one line; else a literal.
fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < MAX_QUOTED
        && std::str::from_utf8(s).is_ok()
        && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if quotable {
        // The same quoting as IMAP's: `"` and `\` escaped.
        out.extend_from_slice(&mailferry_imap::session::quote(s));
    } else {
        push_literal(out, s);
    }
}

/// `{n+}` CRLF and the bytes: a non-synchronising literal, which RFC 5804 clients always use.
fn push_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}+}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_response;

    #[test]
    fn strings_are_quoted_or_literal() {
        let mut out = Vec::new();
        push_string(&mut out, "a \"b\" \\ é".as_bytes());
        assert_eq!(out, "\"a \\\"b\\\" \\\\ é\"".as_bytes());
        // What we send, the server-side grammar reads back as the same string.
        let mut line = out.clone();
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response(&line).unwrap().unwrap().0,
            Response::Line(vec![Item::String("a \"b\" \\ é".as_bytes().to_vec())])
        );
        let mut out = Vec::new();
        push_string(&mut out, b"two\r\nlines");
        assert_eq!(out, b"{10+}\r\ntwo\r\nlines");
        let mut out = Vec::new();
        push_string(&mut out, &[b'x'; MAX_QUOTED]);
        assert!(out.starts_with(b"{1024+}\r\n"));
        let mut out = Vec::new();
        push_string(&mut out, b"\xff");
        assert_eq!(out, b"{1+}\r\n\xff");
    }

    #[test]
    fn capabilities_from_the_greeting() {
        let mut caps = Capabilities::default();
        for line in [
            &b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n"[..],
            b"\"SIEVE\" \"fileinto Reject envelope\"\r\n",
            b"\"NOTIFY\" \"mailto\"\r\n",
            b"\"SASL\" \"plain LOGIN\"\r\n",
            b"\"STARTTLS\"\r\n",
            b"\"MAXREDIRECTS\" \"4\"\r\n",
            b"\"VERSION\" \"1.0\"\r\n",
            b"\"OWNER\" \"alice\"\r\n",
            b"\"X-UNKNOWN\" \"whatever\"\r\n",
        ] {
            let Response::Line(items) = parse_response(line).unwrap().unwrap().0 else {
                panic!("not a line")
            };
            caps.add(&items);
        }
        assert_eq!(
            caps,
            Capabilities {
                implementation: Some("Dovecot Pigeonhole".into()),
                sieve: vec!["fileinto".into(), "reject".into(), "envelope".into()],
                sasl: vec!["PLAIN".into(), "LOGIN".into()],
                starttls: true,
                version: Some("1.0".into()),
                max_redirects: Some(4),
                notify: vec!["mailto".into()],
                owner: Some("alice".into()),
            }
        );
        assert!(caps.has_extension("FileInto"));
        assert!(!caps.has_extension("vacation"));
    }

    #[test]
    fn endpoint_addresses() {
        let mut e = SieveEndpoint {
            host: "mail.example.org".into(),
            port: 4190,
            security: Security::StartTls,
            tls: TlsOptions::default(),
            allow_plaintext: false,
        };
        assert_eq!(e.addr(), "mail.example.org:4190");
        assert!(!e.is_loopback());
        e.host = "::1".into();
        assert_eq!(e.addr(), "[::1]:4190");
        assert!(e.is_loopback());
        e.host = "[::1]".into();
        assert_eq!(e.addr(), "[::1]:4190");
        e.host = "localhost".into();
        assert!(e.is_loopback());
    }

    #[test]
    fn plain_initial_response() {
        assert_eq!(
            plain("alice", "master", "pw").as_slice(),
            b"alice\0master\0pw"
        );
    }
}
