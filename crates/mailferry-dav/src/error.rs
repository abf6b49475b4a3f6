//! The crate's one error type: what failed, against which server, in the server's words.

/// Everything that can go wrong talking to a CalDAV/CardDAV server.
#[derive(Debug, thiserror::Error)]
pub enum DavError {
    /// The address cannot be used.
    #[error("`{url}` is not a usable CalDAV/CardDAV address: {reason}")]
    BadUrl { url: String, reason: String },

    /// A CA file could not be read or holds no certificate.
    #[error("cannot use the CA file `{path}`: {reason}")]
    CaFile { path: String, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),

    /// The server did not answer (connection refused, DNS, TLS handshake).
    #[error("cannot reach the DAV server `{host}`: {reason}")]
    Unreachable { host: String, reason: String },

    /// No answer in time.
    #[error("no answer from the DAV server `{host}` within {seconds} s ({method} {href})")]
    Timeout {
        host: String,
        method: String,
        href: String,
        seconds: u64,
    },

    /// 401 or 403 on the first requests: the login is wrong.
    #[error("the DAV server `{host}` refused the login of `{user}` ({status})")]
    LoginRejected {
        host: String,
        user: String,
        status: String,
    },

    /// An answer that is not the expected success; `said` is the server's own text.
    #[error(
        "the DAV server answered {method} {href} with {status}{}",
        said_suffix(said)
    )]
    Refused {
        method: String,
        href: String,
        status: String,
        said: String,
    },

    /// An answer that cannot be read (bad XML, missing parts).
    #[error("the DAV server's answer to {method} {href} cannot be read: {reason}")]
    BadResponse {
        method: String,
        href: String,
        reason: String,
    },

    /// A redirect to another server, which would carry the password elsewhere.
    #[error("the DAV server redirected {href} to another server (`{location}`); name that server's address instead")]
    ForeignRedirect { href: String, location: String },

    /// Discovery found neither calendars nor address books.
    #[error("no calendar or address book home found at `{url}` (tried: {tried})")]
    NoHome { url: String, tried: String },
}

fn said_suffix(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}

impl DavError {
    /// The HTTP status code of a refusal, if that is what this is.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DavError::Refused { status, .. } | DavError::LoginRejected { status, .. } => {
                status.split_whitespace().next()?.parse().ok()
            }
            _ => None,
        }
    }

    /// What an admin can do about it, where that is known.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DavError::LoginRejected { .. } => {
                "check the user name and password; servers with two-factor login need an app password".into()
            }
            DavError::Unreachable { .. } | DavError::Timeout { .. } => {
                "check the DAV address (scheme, host and port) and that this machine may reach it".into()
            }
            DavError::NoHome { .. } => {
                "name the CalDAV/CardDAV address of the account explicitly (e.g. https://dav.example.com/remote.php/dav/)".into()
            }
            DavError::BadUrl { .. } => "write it as https://USER@HOST/PATH or http://USER@HOST:PORT/PATH".into(),
            DavError::CaFile { .. } => "give a PEM file with one or more CA certificates".into(),
            _ => return None,
        })
    }
}

/// The first line or so of a server's answer body, for messages: tags removed, spaces
/// squeezed, at most 300 characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
        if out.chars().count() >= 300 {
            out.push('…');
            break;
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_tagless() {
        assert_eq!(
            excerpt(b"<html><body><h1>Forbidden</h1>\n<p>No  way</p></body></html>"),
            "Forbidden No way"
        );
        assert_eq!(excerpt(b""), "");
        assert!(excerpt("x".repeat(1000).as_bytes()).chars().count() <= 301);
    }

    #[test]
    fn refusals_carry_the_servers_words() {
        let e = DavError::Refused {
            method: "PUT".into(),
            href: "/alice/cal/a.ics".into(),
            status: "415 Unsupported Media Type".into(),
            said: "Item contains 0 components".into(),
        };
        assert_eq!(
            e.to_string(),
            "the DAV server answered PUT /alice/cal/a.ics with 415 Unsupported Media Type: Item contains 0 components"
        );
        assert_eq!(e.status_code(), Some(415));
    }
}
