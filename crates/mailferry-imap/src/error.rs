//! Errors of the IMAP client, each naming the server, what failed, and (through
//! [`ImapError::hint`]) what an admin can do about it.

use std::io;

use crate::framing::FrameTooLarge;
use crate::parse::ParseError;
use crate::response::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot find the address of `{host}`")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to `{addr}`")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("`{addr}` did not answer within {seconds} s ({during})")]
    Timeout {
        addr: String,
        seconds: u64,
        during: &'static str,
    },
    #[error("the TLS certificate of `{addr}` does not verify: {reason}")]
    Certificate { addr: String, reason: String },
    #[error("the TLS handshake with `{addr}` failed")]
    Tls {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot use the CA file `{path}`: {reason}")]
    CaFile { path: String, reason: String },
    #[error("`{addr}` does not offer STARTTLS, and the password would travel unencrypted")]
    NoStartTls { addr: String },
    #[error("`{addr}` closed the connection {during}")]
    Closed { addr: String, during: &'static str },
    #[error("`{addr}` ended the session: {text}")]
    Bye { addr: String, text: String },
    #[error("`{addr}` does not look like an IMAP server: it greeted with `{greeting}`")]
    NotImap { addr: String, greeting: String },
    #[error("`{addr}` rejected the login of `{user}`: {said}")]
    LoginRejected {
        addr: String,
        user: String,
        said: String,
        code: Option<Code>,
    },
    #[error("`{addr}` does not support {capability}, which {purpose} needs")]
    MissingCapability {
        addr: String,
        capability: &'static str,
        purpose: &'static str,
    },
    #[error("{command} failed at `{addr}`: {}", status.said())]
    Command {
        addr: String,
        command: String,
        status: Box<Status>,
    },
    #[error("`{addr}` sent a response we cannot read")]
    Protocol {
        addr: String,
        #[source]
        source: ParseError,
    },
    #[error("`{addr}` sent a response too large to hold")]
    TooLarge {
        addr: String,
        #[source]
        source: FrameTooLarge,
    },
    #[error("the message UID {uid} vanished from the folder while it was being read")]
    Vanished { uid: u32 },
    #[error("connection to `{addr}` failed")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
}

impl ImapError {
    /// The server refused a command: NO or BAD, in its own words.
    pub fn command(addr: impl Into<String>, command: impl Into<String>, status: Status) -> Self {
        ImapError::Command {
            addr: addr.into(),
            command: command.into(),
            status: Box::new(status),
        }
    }

    /// What the admin can do, when we know.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ImapError::Resolve { .. } => "check the server name for typos and that this machine's DNS resolves it".into(),
            ImapError::Connect { .. } | ImapError::Timeout { .. } => {
                "check the host and port, and that no firewall blocks this machine; IMAP uses 993 (TLS) or 143 (STARTTLS)".into()
            }
            ImapError::Certificate { .. } => "trust the server's CA certificate, or for a lab server with a self-signed certificate accept it unverified".into(),
            ImapError::Tls { .. } => "check that the port speaks TLS: use imaps:// for port 993 and imap:// (STARTTLS) for port 143".into(),
            ImapError::CaFile { .. } => "the CA file must be readable and hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
            ImapError::NoStartTls { .. } => "use the server's TLS port (imaps://, 993), or allow an unencrypted login on a trusted network".into(),
            ImapError::LoginRejected { code, .. } => match code {
                Some(Code::Unavailable) => "the server could not check the password just now; try again later".into(),
                _ => "check the username and password; servers with two-factor login need an app password, Microsoft 365 needs OAuth2 (a bearer token)".into(),
            },
            ImapError::MissingCapability { .. } => "this server cannot be used for that; see the README's server notes".into(),
            ImapError::Closed { .. } | ImapError::Bye { .. } | ImapError::Io { .. } => {
                "the connection dropped; a migration reconnects and resumes, a probe can simply be run again".into()
            }
            _ => return None,
        })
    }

    /// Whether the connection is gone, so that a new one may help.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            ImapError::Closed { .. }
                | ImapError::Bye { .. }
                | ImapError::Io { .. }
                | ImapError::Timeout { .. }
        )
    }
}
