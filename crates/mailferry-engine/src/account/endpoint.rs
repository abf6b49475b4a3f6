//! How an entered server becomes the IMAP endpoint of an account of a type: `host` (TLS on
//! 993), `host:port` (STARTTLS on 143, TLS otherwise), or an `imap://` / `imaps://` URL; an
//! empty server is the type's usual host where it has one (Gmail, Microsoft 365).

use mailferry_imap::{Endpoint, ImapUrl, Security, TlsOptions};

/// Why a type or server cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointProblem {
    /// `type` or `server`.
    pub field: &'static str,
    pub message: String,
}

/// The IMAP endpoint for a type and a server field: `host` (TLS on 993), `host:port`
/// (STARTTLS on 143, TLS otherwise), or an `imap://` / `imaps://` URL.
pub fn mail_endpoint(
    server_type: &str,
    server: &str,
    insecure: bool,
) -> Result<Endpoint, EndpointProblem> {
    let kind = super::server_type(server_type).map_err(|e| EndpointProblem {
        field: "type",
        message: e.to_string(),
    })?;
    let server = server.trim();
    let server = if server.is_empty() {
        kind.default_host().ok_or_else(|| EndpointProblem {
            field: "server",
            message: "the server is missing: give a host name, host:port or an imaps:// URL".into(),
        })?
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
        let e = mail_endpoint("imap", "mail.example.com", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("mail.example.com", 993, Security::Tls)
        );
        let e = mail_endpoint("imap", "mail.example.com:143", false).unwrap();
        assert_eq!(e.security, Security::StartTls);
        let e = mail_endpoint("gmail", "", false).unwrap();
        assert_eq!(e.host, "imap.gmail.com");
        let e = mail_endpoint("imap", "imap://127.0.0.1:12143", true).unwrap();
        assert_eq!(
            (e.port, e.security, e.tls.insecure),
            (12143, Security::StartTls, true)
        );
        assert_eq!(
            mail_endpoint("imapx", "h", false).unwrap_err().field,
            "type"
        );
        assert_eq!(
            mail_endpoint("imap", "", false).unwrap_err().field,
            "server"
        );
        assert_eq!(
            mail_endpoint("imap", "h:99999", false).unwrap_err().field,
            "server"
        );
        assert_eq!(mail_endpoint("pop3", "h", false).unwrap_err().field, "type");
        assert!(mail_endpoint("nextcloud", "h", false).is_ok());
    }
}
