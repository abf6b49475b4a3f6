//! Errors of the ManageSieve client, each naming the server, what failed, and (through
//! [`SieveError::hint`]) what an admin can do about it.
//!
//! A password or token never appears in an error: only user names and the server's words.

use std::fmt;
use std::io;

/// A command the server refused with `NO`, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The response code, uppercased: `QUOTA/MAXSCRIPTS`, `NONEXISTENT`, `TRYLATER`, ...
    pub code: Option<String>,
    /// The server's human-readable text (may span lines, e.g. a script's syntax errors).
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.trim_end();
        match (&self.code, message.is_empty()) {
            (Some(code), true) => write!(f, "({code})"),
            (Some(code), false) => write!(f, "{message} ({code})"),
            (None, true) => f.write_str("no reason given"),
            (None, false) => f.write_str(message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    #[error("Cannot find the address of the ManageSieve server `{host}`.")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot connect to the ManageSieve server `{addr}`.")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("`{addr}` did not answer within {seconds} s ({during}).")]
    Timeout {
        addr: String,
        seconds: u64,
        during: &'static str,
    },
    #[error("The TLS handshake with `{addr}` failed.")]
    Tls {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("The TLS certificate of `{addr}` does not verify: {reason}.")]
    Certificate { addr: String, reason: String },
    #[error("Cannot use the CA file `{path}`: {reason}.")]
    CaFile { path: String, reason: String },
    #[error("`{addr}` does not offer STARTTLS on ManageSieve, and the password would travel unencrypted.")]
    NoStartTls { addr: String },
    #[error("`{addr}` does not look like a ManageSieve server: it greeted with `{greeting}`.")]
    NotSieve { addr: String, greeting: String },
    #[error("`{addr}` rejected the login of `{user}`: {said}")]
    LoginRejected {
        addr: String,
        user: String,
        said: String,
    },
    #[error("`{addr}` does not offer the SASL mechanism {mechanism} (it offers: {}).", offered_list(.offered))]
    NoMechanism {
        addr: String,
        mechanism: &'static str,
        offered: Vec<String>,
    },
    #[error("`{addr}` ended the ManageSieve session: {text}")]
    Bye { addr: String, text: String },
    #[error("`{addr}` closed the connection {during}.")]
    Closed { addr: String, during: &'static str },
    #[error("`{addr}` sent a ManageSieve response we cannot read: {detail}.")]
    Protocol { addr: String, detail: String },
    #[error("`{addr}` does not support the ManageSieve command {command}.")]
    Unsupported { addr: String, command: &'static str },
    #[error("{command} failed at `{addr}`: {refusal}")]
    Refused {
        addr: String,
        command: &'static str,
        refusal: Refusal,
    },
    #[error("`{addr}` sent a ManageSieve response larger than {limit} bytes.")]
    TooBig { addr: String, limit: usize },
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        "none".into()
    } else {
        offered.join(" ")
    }
}

impl SieveError {
    /// What the admin can do.
    pub fn hint(&self) -> &'static str {
        match self {
            SieveError::Resolve { .. } => {
                "check the server name for typos and that this machine's DNS resolves it"
            }
            SieveError::Connect { .. } => {
                "check the host and port (ManageSieve listens on 4190) and that no firewall blocks this machine; some providers offer no ManageSieve at all"
            }
            SieveError::Timeout { .. } => {
                "check the host and port (ManageSieve listens on 4190) and that no firewall drops the connection; a port that expects TLS from the first byte stays silent when spoken to in plain text"
            }
            SieveError::Tls { .. } => {
                "check that the port speaks what was asked: ManageSieve on 4190 normally starts in plain text and upgrades with STARTTLS"
            }
            SieveError::Certificate { .. } => {
                "trust the server's CA certificate (a CA file), or for a lab server with a self-signed certificate accept it unverified (--insecure)"
            }
            SieveError::CaFile { .. } => {
                "the CA file must be readable and hold PEM certificates (-----BEGIN CERTIFICATE-----)"
            }
            SieveError::NoStartTls { .. } => {
                "enable TLS for ManageSieve on the server, or allow an unencrypted login on a trusted network"
            }
            SieveError::NotSieve { .. } => {
                "check the port: ManageSieve listens on 4190 (2000 on some old servers), not on the IMAP or SMTP ports"
            }
            SieveError::LoginRejected { .. } => {
                "check the username and password; servers with two-factor login need an app password, and ManageSieve may need to be enabled for the account"
            }
            SieveError::NoMechanism { .. } => {
                "the server does not offer this way of logging in over ManageSieve; use a password login, or enable the mechanism on the server"
            }
            SieveError::Bye { .. } | SieveError::Closed { .. } => {
                "the connection dropped; run again, and check the server's log if it keeps happening"
            }
            SieveError::Protocol { .. } => {
                "the server does not speak ManageSieve as RFC 5804 describes; check the port, and report the server's name and version"
            }
            SieveError::Unsupported { .. } => {
                "the server implements an older ManageSieve draft without this command; the scripts can still be copied"
            }
            SieveError::Refused { .. } => {
                "the server refused a command that should always work; check the account's Sieve settings and the server's log"
            }
            SieveError::TooBig { .. } => {
                "a script or response this large is not plausible; check the server's log and the script on the server"
            }
        }
    }

    /// The server's `host:port` (the host alone for [`SieveError::Resolve`]), or `None` for a
    /// local problem.
    pub fn addr(&self) -> Option<&str> {
        match self {
            SieveError::Resolve { host, .. } => Some(host),
            SieveError::CaFile { .. } => None,
            SieveError::Connect { addr, .. }
            | SieveError::Timeout { addr, .. }
            | SieveError::Tls { addr, .. }
            | SieveError::Certificate { addr, .. }
            | SieveError::NoStartTls { addr }
            | SieveError::NotSieve { addr, .. }
            | SieveError::LoginRejected { addr, .. }
            | SieveError::NoMechanism { addr, .. }
            | SieveError::Bye { addr, .. }
            | SieveError::Closed { addr, .. }
            | SieveError::Protocol { addr, .. }
            | SieveError::Unsupported { addr, .. }
            | SieveError::Refused { addr, .. }
            | SieveError::TooBig { addr, .. } => Some(addr),
        }
    }

    /// Nothing listens on the port: on a default port, the server has no ManageSieve.
    pub fn is_connect_refused(&self) -> bool {
        matches!(self, SieveError::Connect { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sentences_naming_the_server() {
        let e = SieveError::LoginRejected {
            addr: "mail.example.org:4190".into(),
            user: "alice".into(),
            said: "Authentication failed.".into(),
        };
        assert_eq!(
            e.to_string(),
            "`mail.example.org:4190` rejected the login of `alice`: Authentication failed."
        );
        assert_eq!(e.addr(), Some("mail.example.org:4190"));
        let e = SieveError::NoMechanism {
            addr: "h:4190".into(),
            mechanism: "XOAUTH2",
            offered: vec!["PLAIN".into(), "LOGIN".into()],
        };
        assert_eq!(
            e.to_string(),
            "`h:4190` does not offer the SASL mechanism XOAUTH2 (it offers: PLAIN LOGIN)."
        );
        let e = SieveError::Refused {
            addr: "h:4190".into(),
            command: "GETSCRIPT",
            refusal: Refusal {
                code: Some("NONEXISTENT".into()),
                message: "Script does not exist.".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "GETSCRIPT failed at `h:4190`: Script does not exist. (NONEXISTENT)"
        );
        assert!(!e.hint().is_empty());
    }

    #[test]
    fn connect_refused() {
        let e = SieveError::Connect {
            addr: "h:4190".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(e.is_connect_refused());
        let e = SieveError::Connect {
            addr: "h:4190".into(),
            source: io::Error::from(io::ErrorKind::TimedOut),
        };
        assert!(!e.is_connect_refused());
    }
}
