//! One IMAP connection and its state: capabilities, the selected folder, commands in flight.
//!
//! Commands are written as soon as they are issued and their completions are matched by tag,
//! so several can be in flight at once (RFC 3501 §5.5). Untagged data that arrives while
//! waiting is handed to the caller of the command that is waiting, or kept in
//! [`Session::take_unsolicited`] when nobody asked for it.

use std::collections::VecDeque;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::CommandCodec;
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint::{Auth, Endpoint, Security};
use crate::error::ImapError;
use crate::fetch::Fetch;
use crate::framing::Framer;
use crate::response::{parse_response, Code, Response, Status, StatusKind, Untagged};
use crate::transport::{self, Stream};

/// Tunables of a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Time allowed to connect, and to wait for any single response.
    pub timeout: Duration,
    /// The largest single response accepted. Bodies bigger than a chunk are fetched in partial
    /// ranges, so this bounds memory; it is generous because metadata responses of huge
    /// folders arrive as many small responses, never one big one.
    pub max_response: usize,
    /// A bandwidth cap on what is read, shared with other sessions.
    pub read_limit: Option<std::sync::Arc<crate::rate_limit::RateLimit>>,
    /// COMPRESS=DEFLATE (RFC 4978) after login where the server offers it: fewer bytes on a
    /// slow link, more CPU on both ends.
    pub compress: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_response: 64 * 1024 * 1024,
            read_limit: None,
            compress: false,
        }
    }
}

/// Counters for tests and reports: round trips are what a delta pass must keep few.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Commands sent.
    pub commands: u64,
    /// Times the session had to wait for the server with nothing else to do.
    pub round_trips: u64,
    /// Bytes received, as they travelled: compressed once COMPRESS=DEFLATE is active.
    pub bytes_read: u64,
    /// Bytes sent, as they travelled: compressed once COMPRESS=DEFLATE is active.
    pub bytes_written: u64,
}

/// The answer to a command: its status and the untagged data that came with it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: Status,
    pub data: Vec<Untagged>,
}

/// Capabilities, upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    pub fn new(items: impl IntoIterator<Item = String>) -> Self {
        Self(items.into_iter().map(|c| c.to_ascii_uppercase()).collect())
    }
    pub fn has(&self, capability: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(capability))
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    /// Non-synchronising literals are allowed for this many bytes.
    pub fn non_sync_literal_limit(&self) -> usize {
        if self.has("LITERAL+") {
            usize::MAX
        } else if self.has("LITERAL-") {
            4096
        } else {
            0
        }
    }
}

/// One connection to an IMAP server.
pub struct Session {
    stream: Stream,
    framer: Framer,
    addr: String,
    options: SessionOptions,
    next_tag: u64,
    in_flight: VecDeque<String>,
    capabilities: Capabilities,
    greeting: String,
    unsolicited: Vec<Untagged>,
    /// Completions of pipelined commands read while waiting for another one.
    completed: Vec<(String, Completion)>,
    /// Untagged data gathered for the oldest command in flight.
    gathering: Vec<Untagged>,
    stats: SessionStats,
    authenticated: bool,
    utf8_enabled: bool,
    enabled: Vec<String>,
}

impl Session {
    /// Connects, reads the greeting, and upgrades with STARTTLS where the endpoint says so.
    pub async fn connect(endpoint: &Endpoint, options: SessionOptions) -> Result<Self, ImapError> {
        let addr = endpoint.addr();
        let tcp = transport::connect_tcp(&endpoint.host, endpoint.port, options.timeout).await?;
        let stream = match endpoint.security {
            Security::Tls => tokio::time::timeout(
                options.timeout,
                transport::start_tls(tcp, &endpoint.host, endpoint.port, &endpoint.tls),
            )
            .await
            .map_err(|_| ImapError::Timeout {
                addr: addr.clone(),
                seconds: options.timeout.as_secs(),
                during: "the TLS handshake",
            })??,
            Security::StartTls | Security::Plain => Stream::Plain(tcp),
        };
        let mut session = Self {
            stream,
            framer: Framer::new(options.max_response),
            addr,
            options,
            next_tag: 1,
            in_flight: VecDeque::new(),
            capabilities: Capabilities::default(),
            greeting: String::new(),
            unsolicited: Vec::new(),
            completed: Vec::new(),
            gathering: Vec::new(),
            stats: SessionStats::default(),
            authenticated: false,
            utf8_enabled: false,
            enabled: Vec::new(),
        };
        session.read_greeting().await?;
        if endpoint.security == Security::StartTls {
            if session.capabilities.0.is_empty() {
                session.refresh_capabilities().await?;
            }
            if session.capabilities.has("STARTTLS") {
                session.run_ok("STARTTLS", b"STARTTLS\r\n").await?;
                let Stream::Plain(tcp) = session.stream else {
                    unreachable!("STARTTLS is only issued on a plain connection")
                };
                if session.framer.buffered() > 0 {
                    // RFC 3207-style injection guard: nothing may follow the OK in plaintext.
                    return Err(ImapError::Tls {
                        addr: session.addr.clone(),
                        source: std::io::Error::other(
                            "the server sent plaintext data after its STARTTLS answer",
                        ),
                    });
                }
                session.stream = tokio::time::timeout(
                    session.options.timeout,
                    transport::start_tls(tcp, &endpoint.host, endpoint.port, &endpoint.tls),
                )
                .await
                .map_err(|_| ImapError::Timeout {
                    addr: session.addr.clone(),
                    seconds: session.options.timeout.as_secs(),
                    during: "the TLS handshake after STARTTLS",
                })??;
                session.refresh_capabilities().await?;
            } else if !(endpoint.allow_plaintext || endpoint.is_loopback()) {
                return Err(ImapError::NoStartTls {
                    addr: session.addr.clone(),
                });
            } else {
                tracing::warn!(server = %session.addr, "no STARTTLS on offer: logging in without encryption");
            }
        }
        Ok(session)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }
    pub fn greeting(&self) -> &str {
        &self.greeting
    }
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    pub fn stats(&self) -> SessionStats {
        let mut stats = self.stats;
        if let Some(c) = self.stream.compression() {
            // The session counted inflated and not-yet-deflated bytes: swap in the wire's.
            stats.bytes_read = stats.bytes_read.saturating_sub(c.plain_read) + c.wire_read;
            stats.bytes_written =
                stats.bytes_written.saturating_sub(c.plain_written) + c.wire_written;
        }
        stats
    }
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
    /// Whether COMPRESS=DEFLATE is active ([`Session::compress`]).
    pub fn is_compressed(&self) -> bool {
        self.stream.compression().is_some()
    }
    /// Whether UTF8=ACCEPT is enabled: folder names then travel as UTF-8, not modified UTF-7.
    pub fn utf8_enabled(&self) -> bool {
        self.utf8_enabled
    }
    /// Extensions the server confirmed with ENABLED.
    pub fn enabled(&self) -> &[String] {
        &self.enabled
    }
    /// Untagged data nobody asked for (EXISTS, EXPUNGE, VANISHED, alerts), taken out.
    pub fn take_unsolicited(&mut self) -> Vec<Untagged> {
        std::mem::take(&mut self.unsolicited)
    }

    async fn read_greeting(&mut self) -> Result<(), ImapError> {
        let response = self.read_response("waiting for the greeting").await?;
        match response {
            Response::Untagged(Untagged::Status(status)) => {
                self.greeting = status.text.clone();
                match status.kind {
                    StatusKind::Ok => {}
                    StatusKind::PreAuth => self.authenticated = true,
                    StatusKind::Bye => {
                        return Err(ImapError::Bye {
                            addr: self.addr.clone(),
                            text: status.text,
                        })
                    }
                    _ => {
                        return Err(ImapError::NotImap {
                            addr: self.addr.clone(),
                            greeting: status.said(),
                        })
                    }
                }
                if let Some(Code::Capability(caps)) = status.code {
                    self.capabilities = Capabilities::new(caps);
                }
                Ok(())
            }
            other => Err(ImapError::NotImap {
                addr: self.addr.clone(),
                greeting: format!("{other:?}"),
            }),
        }
    }

    /// Asks for CAPABILITY again (after STARTTLS and login the list changes).
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let done = self.run_ok("CAPABILITY", b"CAPABILITY\r\n").await?;
        for item in done.data {
            if let Untagged::Capability(caps) = item {
                self.capabilities = Capabilities::new(caps);
            }
        }
        Ok(())
    }

    /// Logs in, then learns the capabilities of the authenticated state.
    pub async fn login(&mut self, auth: &Auth) -> Result<(), ImapError> {
        if self.authenticated {
            return Ok(());
        }
        let account = auth.account().to_string();
        let status = match auth {
            Auth::Password { user, password } => {
                if self.capabilities.has("AUTH=PLAIN") {
                    self.authenticate("PLAIN", plain(None, user, password.expose_secret()))
                        .await?
                } else if self.capabilities.has("LOGINDISABLED") {
                    return Err(ImapError::MissingCapability {
                        addr: self.addr.clone(),
                        capability:
                            "a password login (it announces LOGINDISABLED and no AUTH=PLAIN)",
                        purpose: "logging in with a password",
                    });
                } else {
                    let command = CommandBody::login(user.as_str(), password.expose_secret()).map_err(|_| ImapError::LoginRejected {
                        addr: self.addr.clone(),
                        user: user.clone(),
                        said: "the user name or password holds characters IMAP cannot send (NUL, CR or LF)".into(),
                        code: None,
                    })?;
                    self.run_codec(command).await?.status
                }
            }
            Auth::AsUser {
                admin,
                password,
                authorize_as,
            } => {
                self.require(
                    "AUTH=PLAIN",
                    "logging in as another user with an admin or master password",
                )?;
                self.authenticate(
                    "PLAIN",
                    plain(Some(authorize_as), admin, password.expose_secret()),
                )
                .await?
            }
            Auth::XOAuth2 { user, token } => {
                self.require("AUTH=XOAUTH2", "an OAuth2 login")?;
                let ir = format!(
                    "user={user}\x01auth=Bearer {}\x01\x01",
                    token.expose_secret()
                );
                self.authenticate("XOAUTH2", ir.into_bytes()).await?
            }
            Auth::OAuthBearer { user, token } => {
                self.require("AUTH=OAUTHBEARER", "an OAUTHBEARER login")?;
                let host = self
                    .addr
                    .rsplit_once(':')
                    .map(|(h, _)| h.to_string())
                    .unwrap_or_default();
                let port = self
                    .addr
                    .rsplit_once(':')
                    .map(|(_, p)| p.to_string())
                    .unwrap_or_default();
                let ir = format!(
                    "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
                    token.expose_secret()
                );
                self.authenticate("OAUTHBEARER", ir.into_bytes()).await?
            }
        };
        if status.kind != StatusKind::Ok {
            return Err(ImapError::LoginRejected {
                addr: self.addr.clone(),
                user: account,
                said: status.said(),
                code: status.code,
            });
        }
        self.authenticated = true;
        match status.code {
            Some(Code::Capability(caps)) => self.capabilities = Capabilities::new(caps),
            _ => self.refresh_capabilities().await?,
        }
        Ok(())
    }

    fn require(&self, capability: &'static str, purpose: &'static str) -> Result<(), ImapError> {
        if self.capabilities.has(capability) {
            Ok(())
        } else {
            Err(ImapError::MissingCapability {
                addr: self.addr.clone(),
                capability,
                purpose,
            })
        }
    }

    /// AUTHENTICATE with an initial response (SASL-IR when offered, else after the `+`).
    /// The secret is never logged: the command goes out through `write_secret`.
    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Vec<u8>,
    ) -> Result<Status, ImapError> {
        let encoded = zeroize::Zeroizing::new(BASE64.encode(&initial));
        drop(zeroize::Zeroizing::new(initial));
        let tag = self.new_tag();
        if self.capabilities.has("SASL-IR") {
            let line = zeroize::Zeroizing::new(format!(
                "{tag} AUTHENTICATE {mechanism} {}\r\n",
                encoded.as_str()
            ));
            self.write_command(&tag, line.as_bytes()).await?;
        } else {
            let line = format!("{tag} AUTHENTICATE {mechanism}\r\n");
            self.write_command(&tag, line.as_bytes()).await?;
            match self
                .read_response("waiting for the AUTHENTICATE challenge")
                .await?
            {
                Response::Continuation(_) => {
                    let line = zeroize::Zeroizing::new(format!("{}\r\n", encoded.as_str()));
                    self.write_raw(line.as_bytes()).await?;
                }
                Response::Tagged { tag: got, status } if got == tag => {
                    self.in_flight.retain(|t| t != &tag);
                    return Ok(status);
                }
                other => return Err(self.unexpected(other)),
            }
        }
        loop {
            match self.read_response("waiting for the login result").await? {
                // A challenge after our response is an error report (XOAUTH2 sends JSON):
                // answer with an empty line to get the final NO.
                Response::Continuation(_) => self.write_raw(b"\r\n").await?,
                Response::Tagged { tag: got, status } if got == tag => {
                    self.in_flight.retain(|t| t != &tag);
                    return Ok(status);
                }
                Response::Tagged { .. } => {}
                Response::Untagged(data) => self.note_untagged(data),
            }
        }
    }

    /// ENABLE what the server offers of `wanted` (e.g. CONDSTORE, QRESYNC, UTF8=ACCEPT).
    pub async fn enable(&mut self, wanted: &[&str]) -> Result<Vec<String>, ImapError> {
        if !self.capabilities.has("ENABLE") {
            return Ok(Vec::new());
        }
        let offered: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| self.capabilities.has(c))
            .collect();
        if offered.is_empty() {
            return Ok(Vec::new());
        }
        let line = format!("ENABLE {}\r\n", offered.join(" "));
        let done = self.run_ok("ENABLE", line.as_bytes()).await?;
        for item in done.data {
            if let Untagged::Enabled(caps) = item {
                self.enabled
                    .extend(caps.into_iter().map(|c| c.to_ascii_uppercase()));
            }
        }
        self.utf8_enabled = self.enabled.iter().any(|c| c == "UTF8=ACCEPT");
        Ok(self.enabled.clone())
    }

    /// ID (RFC 2971): tells the server who we are, returns what it says of itself.
    pub async fn id(&mut self) -> Result<Vec<(String, Option<String>)>, ImapError> {
        if !self.capabilities.has("ID") {
            return Ok(Vec::new());
        }
        let line = format!(
            "ID (\"name\" \"mailferry\" \"version\" \"{}\")\r\n",
            env!("CARGO_PKG_VERSION")
        );
        let done = self.run_ok("ID", line.as_bytes()).await?;
        Ok(done
            .data
            .into_iter()
            .find_map(|d| match d {
                Untagged::Id(params) => Some(params),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// COMPRESS DEFLATE (RFC 4978): from its OK on, both directions are raw deflate. It trades
    /// CPU on both ends for fewer bytes, so it pays on slow links only. Returns whether
    /// compression is active: `false` when the server does not offer COMPRESS=DEFLATE or
    /// declines with NO. Call it with no command in flight, best right after login.
    pub async fn compress(&mut self) -> Result<bool, ImapError> {
        if self.is_compressed() {
            return Ok(true);
        }
        if !self.capabilities.has("COMPRESS=DEFLATE") {
            return Ok(false);
        }
        let done = self.run("COMPRESS", b"COMPRESS DEFLATE\r\n").await?;
        match done.status.kind {
            StatusKind::Ok => {}
            StatusKind::No => {
                tracing::info!(server = %self.addr, said = %done.status.said(), "the server declined COMPRESS");
                return Ok(false);
            }
            _ => {
                return Err(ImapError::command(
                    self.addr.clone(),
                    "COMPRESS",
                    done.status,
                ))
            }
        }
        if self.framer.buffered() > 0 {
            // Bytes after the OK were sent compressed but read as plain text: the stream
            // cannot be resynchronised.
            return Err(ImapError::Io {
                addr: self.addr.clone(),
                source: std::io::Error::other(
                    "the server sent uncompressed data after its COMPRESS answer",
                ),
            });
        }
        self.stream.start_compression();
        Ok(true)
    }

    /// LOGOUT, ignoring a connection already gone.
    pub async fn logout(mut self) {
        let _ = self.run("LOGOUT", b"LOGOUT\r\n").await;
        let _ = self.stream.shutdown().await;
    }

    // ---------------------------------------------------------------- plumbing

    pub(crate) fn new_tag(&mut self) -> String {
        let tag = format!("M{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Sends `line` (without tag, ending in CRLF) and returns its tag; does not wait.
    pub async fn send(&mut self, line: &[u8]) -> Result<String, ImapError> {
        let tag = self.new_tag();
        let mut buf = Vec::with_capacity(tag.len() + 1 + line.len());
        buf.extend_from_slice(tag.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(line);
        self.write_command(&tag, &buf).await?;
        Ok(tag)
    }

    /// Starts a command whose bytes the caller writes in parts (APPEND with literals).
    pub(crate) async fn write_command(&mut self, tag: &str, bytes: &[u8]) -> Result<(), ImapError> {
        self.in_flight.push_back(tag.to_string());
        self.stats.commands += 1;
        self.write_raw(bytes).await
    }

    /// Writes with the session's timeout: a server that stops reading (its buffers full,
    /// the process stalled) must not hang the pass (issue 19).
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        self.stats.bytes_written += bytes.len() as u64;
        let (timeout, addr) = (self.options.timeout, &self.addr);
        sending(timeout, addr, self.stream.write_all(bytes)).await
    }

    pub(crate) async fn flush(&mut self) -> Result<(), ImapError> {
        let (timeout, addr) = (self.options.timeout, &self.addr);
        sending(timeout, addr, self.stream.flush()).await
    }

    /// Reads the next response from the wire.
    pub(crate) async fn read_response(
        &mut self,
        during: &'static str,
    ) -> Result<Response, ImapError> {
        let mut waited = false;
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => {
                    let response =
                        parse_response(frame.bytes).map_err(|source| ImapError::Protocol {
                            addr: self.addr.clone(),
                            source,
                        })?;
                    return Ok(response);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ImapError::TooLarge {
                        addr: self.addr.clone(),
                        source,
                    })
                }
            }
            if !waited {
                self.flush().await?;
                self.stats.round_trips += 1;
                waited = true;
            }
            let buffer = self.framer.buffer_mut();
            buffer.reserve(64 * 1024);
            let read =
                tokio::time::timeout(self.options.timeout, self.stream.read_buf(buffer)).await;
            match read {
                Err(_) => {
                    return Err(ImapError::Timeout {
                        addr: self.addr.clone(),
                        seconds: self.options.timeout.as_secs(),
                        during,
                    })
                }
                Ok(Err(source)) => {
                    return Err(ImapError::Io {
                        addr: self.addr.clone(),
                        source,
                    })
                }
                Ok(Ok(0)) => return Err(self.closed(during)),
                Ok(Ok(n)) => {
                    self.stats.bytes_read += n as u64;
                    if let Some(limit) = &self.options.read_limit {
                        limit.take(n).await;
                    }
                }
            }
        }
    }

    fn closed(&self, during: &'static str) -> ImapError {
        if let Some(Untagged::Status(bye)) = self
            .unsolicited
            .iter()
            .rev()
            .find(|u| matches!(u, Untagged::Status(s) if s.kind == StatusKind::Bye))
        {
            return ImapError::Bye {
                addr: self.addr.clone(),
                text: bye.text.clone(),
            };
        }
        ImapError::Closed {
            addr: self.addr.clone(),
            during,
        }
    }

    fn unexpected(&self, response: Response) -> ImapError {
        ImapError::Protocol {
            addr: self.addr.clone(),
            source: crate::parse::ParseError {
                expected: "a different response",
                at: 0,
                excerpt: format!("{response:?}"),
            },
        }
    }

    pub(crate) fn note_untagged(&mut self, data: Untagged) {
        match &data {
            Untagged::Exists(_)
            | Untagged::Expunge(_)
            | Untagged::Vanished { .. }
            | Untagged::Recent(_)
            | Untagged::Status(_) => self.unsolicited.push(data),
            _ => self.gathering.push(data),
        }
    }

    pub(crate) fn forget_in_flight(&mut self, tag: &str) {
        self.in_flight.retain(|t| t != tag);
    }

    /// Reads the answers of every command still in flight and drops them, with completions
    /// kept for later: after a command failed in the middle of a pipeline, the session is
    /// in a known state again and can go on.
    pub async fn drain(&mut self) -> Result<(), ImapError> {
        while let Some(tag) = self.in_flight.front().cloned() {
            self.wait(&tag).await?;
            self.in_flight.retain(|t| t != &tag);
        }
        self.completed.clear();
        self.gathering.clear();
        Ok(())
    }

    /// Keeps the completion of a pipelined command read while waiting for something else.
    pub(crate) fn keep_completion(&mut self, tag: String, status: Status) {
        let data = std::mem::take(&mut self.gathering);
        self.completed.push((tag, Completion { status, data }));
    }

    /// Waits for the completion of `tag`, keeping completions of other pipelined commands.
    pub async fn wait(&mut self, tag: &str) -> Result<Completion, ImapError> {
        if let Some(i) = self.completed.iter().position(|(t, _)| t == tag) {
            return Ok(self.completed.remove(i).1);
        }
        loop {
            match self.read_response("waiting for an answer").await? {
                Response::Tagged { tag: got, status } => {
                    let data = std::mem::take(&mut self.gathering);
                    self.in_flight.retain(|t| t != &got);
                    if status.kind == StatusKind::Bad && got.is_empty() {
                        return Err(ImapError::command(self.addr.clone(), "?", status));
                    }
                    if got == tag {
                        return Ok(Completion { status, data });
                    }
                    self.completed.push((got, Completion { status, data }));
                }
                Response::Untagged(data) => self.note_untagged(data),
                Response::Continuation(_) => {
                    return Err(self.unexpected(Response::Continuation(Bytes::from_static(
                        b"(unexpected continuation)",
                    ))))
                }
            }
        }
    }

    /// Waits for the next FETCH response of the command `tag`; `None` once it completes
    /// (its completion is then kept for [`Session::wait_completed`]).
    pub async fn next_fetch_or_done(&mut self, tag: &str) -> Result<Option<Fetch>, ImapError> {
        if self.completed.iter().any(|(t, _)| t == tag) {
            return Ok(None);
        }
        loop {
            match self.read_response("waiting for FETCH data").await? {
                Response::Untagged(Untagged::Fetch(fetch)) => return Ok(Some(*fetch)),
                Response::Untagged(data) => self.note_untagged(data),
                Response::Tagged { tag: got, status } => {
                    self.in_flight.retain(|t| t != &got);
                    let data = std::mem::take(&mut self.gathering);
                    let done = got == tag;
                    self.completed.push((got, Completion { status, data }));
                    if done {
                        return Ok(None);
                    }
                }
                other @ Response::Continuation(_) => return Err(self.unexpected(other)),
            }
        }
    }

    /// Takes the completion of `tag` read earlier; NO and BAD become errors naming `command`.
    pub fn wait_completed(
        &mut self,
        tag: &str,
        command: &str,
        folder: &[u8],
    ) -> Result<Completion, ImapError> {
        let i = self
            .completed
            .iter()
            .position(|(t, _)| t == tag)
            .ok_or_else(|| {
                self.unexpected(Response::Continuation(Bytes::from_static(
                    b"(completion missing)",
                )))
            })?;
        let (_, done) = self.completed.remove(i);
        if done.status.kind == StatusKind::Ok {
            Ok(done)
        } else {
            let command = if folder.is_empty() {
                command.to_string()
            } else {
                format!("{command} {}", String::from_utf8_lossy(folder))
            };
            Err(ImapError::Command {
                addr: self.addr.clone(),
                command,
                status: Box::new(done.status),
            })
        }
    }

    /// Waits for the next FETCH response of `tag`; `None` once it completed with OK.
    pub async fn next_fetch(&mut self, tag: &str) -> Result<Option<Fetch>, ImapError> {
        match self.next_fetch_or_done(tag).await? {
            Some(fetch) => Ok(Some(fetch)),
            None => {
                let done = self.wait_completed(tag, "UID FETCH", b"")?;
                self.unsolicited.extend(done.data);
                Ok(None)
            }
        }
    }

    /// Sends a command and waits for its completion, whatever its status.
    pub async fn run(&mut self, _name: &str, line: &[u8]) -> Result<Completion, ImapError> {
        let tag = self.send(line).await?;
        self.wait(&tag).await
    }

    /// Like [`Session::run`], but NO and BAD become errors.
    pub async fn run_ok(&mut self, name: &str, line: &[u8]) -> Result<Completion, ImapError> {
        let done = self.run(name, line).await?;
        if done.status.kind == StatusKind::Ok {
            Ok(done)
        } else {
            Err(ImapError::command(
                self.addr.clone(),
                name.to_string(),
                done.status,
            ))
        }
    }

    /// Sends a command built with imap-codec, waiting for `+` before each synchronising
    /// literal unless the server takes LITERAL+.
    pub async fn run_codec(&mut self, body: CommandBody<'_>) -> Result<Completion, ImapError> {
        let tag = self.new_tag();
        let command = Command::new(tag.as_str(), body)
            .map_err(|_| self.unexpected(Response::Continuation(Bytes::new())))?;
        let limit = self.capabilities.non_sync_literal_limit();
        let mut first = true;
        for fragment in CommandCodec::default().encode(&command) {
            match fragment {
                Fragment::Line { data } => {
                    if first {
                        self.write_command(&tag, &data).await?;
                        first = false;
                    } else {
                        self.write_raw(&data).await?;
                    }
                }
                Fragment::Literal { data, mode } => {
                    if mode == LiteralMode::Sync && data.len() > limit {
                        loop {
                            match self
                                .read_response("waiting for the server to accept a literal")
                                .await?
                            {
                                Response::Continuation(_) => break,
                                Response::Tagged { tag: got, status } if got == tag => {
                                    self.in_flight.retain(|t| t != &tag);
                                    return Ok(Completion {
                                        status,
                                        data: std::mem::take(&mut self.gathering),
                                    });
                                }
                                Response::Untagged(data) => self.note_untagged(data),
                                other => return Err(self.unexpected(other)),
                            }
                        }
                    }
                    self.write_raw(&data).await?;
                }
            }
        }
        self.wait(&tag).await
    }
}

/// SASL PLAIN (RFC 4616): authzid NUL authcid NUL password.
fn plain(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or("").as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// A write to the server within `timeout`, its failure named after `addr`.
async fn sending(
    timeout: Duration,
    addr: &str,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<(), ImapError> {
    match tokio::time::timeout(timeout, write).await {
        Ok(written) => written.map_err(|source| ImapError::Io {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(ImapError::Timeout {
            addr: addr.to_string(),
            seconds: timeout.as_secs(),
            during: "sending to the server (it stopped reading)",
        }),
    }
}

/// A mailbox name as a quoted string (names are ASCII in modified UTF-7, or UTF-8 under
/// UTF8=ACCEPT, where quoted strings may hold UTF-8).
pub fn quote(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.push(b'"');
    for &b in raw {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}
