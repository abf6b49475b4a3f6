//! Server types of PRODUCT.md and how an entered server becomes an IMAP endpoint.

use mailferry_imap::{Endpoint, ImapUrl, Security, TlsOptions};

/// The types a migration may name, with what each migrates in this version.
pub const SERVER_TYPES: &[(&str, &str)] = &[
    ("imap", "any IMAP server: folders, messages, flags, dates"),
    (
        "zimbra",
        "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/dav/)",
    ),
    ("exchange", "IMAP (groupware not yet)"),
    (
        "office365",
        "IMAP with an OAuth2 token or app password (groupware not yet)",
    ),
    ("gmail", "IMAP with an app password (labels as folders)"),
    (
        "kolab",
        "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/iRony/)",
    ),
    (
        "openxchange",
        "IMAP, and calendars, tasks and contacts over CalDAV/CardDAV (https://HOST/servlet/dav/)",
    ),
    ("pop3", "not supported yet"),
    ("maildir", "not supported yet"),
    ("mbox", "not supported yet"),
];

/// The CalDAV/CardDAV address of one side: the explicit one (`source.dav`), else the type's
/// usual one on the IMAP host (zimbra, kolab, openxchange); none for types without
/// groupware here (imap, gmail) or whose groupware needs EWS or Graph (exchange, office365).
pub fn dav_address(server_type: &str, imap_host: &str, explicit: Option<&str>) -> Option<String> {
    if let Some(explicit) = explicit {
        return Some(explicit.to_string());
    }
    match server_type {
        "zimbra" | "kolab" | "openxchange" => {
            mailferry_dav::ServerKind::parse(server_type)?.default_url(imap_host)
        }
        _ => None,
    }
}

/// Types of PRODUCT.md that this version cannot migrate yet.
const UNSUPPORTED: [&str; 3] = ["pop3", "maildir", "mbox"];

/// Why a type or server cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointProblem {
    /// `type` or `server`.
    pub field: &'static str,
    pub message: String,
}

/// The IMAP endpoint for a type and a server field: `host` (TLS on 993), `host:port`
/// (STARTTLS on 143, TLS otherwise), or an `imap://` / `imaps://` URL.
pub fn imap_endpoint(
    server_type: &str,
    server: &str,
    insecure: bool,
) -> Result<Endpoint, EndpointProblem> {
    let known = SERVER_TYPES.iter().any(|(t, _)| *t == server_type);
    if !known {
        let names: Vec<&str> = SERVER_TYPES
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !UNSUPPORTED.contains(t))
            .collect();
        return Err(EndpointProblem {
            field: "type",
            message: format!(
                "unknown server type `{server_type}`: use one of {} (lower case)",
                names.join(", ")
            ),
        });
    }
    if UNSUPPORTED.contains(&server_type) {
        return Err(EndpointProblem {
            field: "type",
            message: format!("server type `{server_type}` is not supported by this version yet"),
        });
    }
    let server = server.trim();
    let server = if server.is_empty() {
        match server_type {
            "office365" => "outlook.office365.com",
            "gmail" => "imap.gmail.com",
            _ => {
                return Err(EndpointProblem {
                    field: "server",
                    message:
                        "the server is missing: give a host name, host:port or an imaps:// URL"
                            .into(),
                })
            }
        }
    } else {
        server
    };
    let tls = TlsOptions {
        ca_file: None,
        insecure,
    };
    if server.contains("://") {
        let url = ImapUrl::parse(server).map_err(|e| EndpointProblem {
            field: "server",
            message: e.to_string(),
        })?;
        return Ok(Endpoint {
            host: url.host,
            port: url.port,
            security: url.security,
            tls,
            allow_plaintext: false,
        });
    }
    let (host, port) = match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            let port: u16 =
                port.parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| EndpointProblem {
                        field: "server",
                        message: format!("`{port}` is not a port number (1-65535)"),
                    })?;
            (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
            )
        }
        _ => (server.to_string(), 993),
    };
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(EndpointProblem {
            field: "server",
            message: format!("`{server}` is not a host name"),
        });
    }
    let security = if port == 143 {
        Security::StartTls
    } else {
        Security::Tls
    };
    Ok(Endpoint {
        host,
        port,
        security,
        tls,
        allow_plaintext: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let e = imap_endpoint("imap", "mail.example.com", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("mail.example.com", 993, Security::Tls)
        );
        let e = imap_endpoint("imap", "mail.example.com:143", false).unwrap();
        assert_eq!(e.security, Security::StartTls);
        let e = imap_endpoint("gmail", "", false).unwrap();
        assert_eq!(e.host, "imap.gmail.com");
        let e = imap_endpoint("imap", "imap://127.0.0.1:12143", true).unwrap();
        assert_eq!(
            (e.port, e.security, e.tls.insecure),
            (12143, Security::StartTls, true)
        );
        assert_eq!(
            imap_endpoint("imapx", "h", false).unwrap_err().field,
            "type"
        );
        assert_eq!(
            imap_endpoint("imap", "", false).unwrap_err().field,
            "server"
        );
        assert_eq!(
            imap_endpoint("imap", "h:99999", false).unwrap_err().field,
            "server"
        );
        assert_eq!(imap_endpoint("pop3", "h", false).unwrap_err().field, "type");
    }
}
