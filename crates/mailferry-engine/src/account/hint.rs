//! What to do about an error, in the words of the surface that shows it (issue 12): the
//! terminal names `mailferry`'s flags for the side at fault (`--from-ca-file`), the web form
//! and the API name their fields (`source.insecure`) and the service's settings
//! (`MAILFERRY_CA_FILE`). The protocol crates' own hints name no control at all.

use mailferry_dav::DavError;
use mailferry_imap::ImapError;

use crate::error::Side;

/// Where a hint is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `mailferry migrate`, `verify`, `probe`: flags.
    Cli,
    /// `mailferry serve`'s API and web form: fields and service settings.
    Service,
}

/// The flag of `side` (`--from-insecure`), or the side-less one of `probe` (`--insecure`).
fn flag(side: Option<Side>, name: &str) -> String {
    match side {
        Some(Side::Source) => format!("--from-{name}"),
        Some(Side::Target) => format!("--to-{name}"),
        None => format!("--{name}"),
    }
}

/// The field of `side` (`source.insecure`); `insecure` alone when the side is unknown.
fn field(side: Option<Side>, name: &str) -> String {
    match side {
        Some(side) => format!("{side}.{name}"),
        None => name.to_string(),
    }
}

/// What to do about an IMAP error of `side`, for `surface`.
pub fn imap_hint(error: &ImapError, side: Option<Side>, surface: Surface) -> Option<String> {
    Some(match (error, surface) {
        (ImapError::Certificate { .. }, Surface::Cli) => format!(
            "give the server's CA certificate with {} FILE, or for a lab server with a self-signed certificate accept it unverified with {}",
            flag(side, "ca-file"),
            flag(side, "insecure")
        ),
        (ImapError::Certificate { .. }, Surface::Service) => format!(
            "give the service the server's CA certificate (MAILFERRY_CA_FILE), or for a lab server with a self-signed certificate submit it with {} = true (the form's \"accept an unverified certificate\")",
            field(side, "insecure")
        ),
        (ImapError::CaFile { .. }, Surface::Service) => {
            "MAILFERRY_CA_FILE must name a readable file of PEM certificates (-----BEGIN CERTIFICATE-----)".into()
        }
        (ImapError::NoStartTls { .. }, Surface::Cli) => format!(
            "use imaps:// if the server has a TLS port, or allow an unencrypted login with {} on a trusted network",
            "--allow-plaintext"
        ),
        (ImapError::NoStartTls { .. }, Surface::Service) => format!(
            "give {} as the server's TLS port (host:993 or imaps://host): the service logs in unencrypted only on this machine's loopback",
            field(side, "server")
        ),
        (ImapError::LoginRejected { .. }, Surface::Service) => format!(
            "check {} and {}; servers with two-factor login need an app password",
            field(side, "username"),
            field(side, "password")
        ),
        (ImapError::Connect { .. } | ImapError::Timeout { .. }, Surface::Service) => format!(
            "check {} (host, or host:port; IMAP uses 993 for TLS, 143 for STARTTLS) and that this machine may reach it",
            field(side, "server")
        ),
        _ => return error.hint(),
    })
}

/// What to do about a CalDAV/CardDAV error of `side`, for `surface`.
pub fn dav_hint(error: &DavError, side: Option<Side>, surface: Surface) -> Option<String> {
    Some(match (error, surface) {
        (DavError::NoHome { .. } | DavError::Unreachable { .. }, Surface::Cli) => format!(
            "give the account's CalDAV/CardDAV address with {} URL (in a job file: `dav`), or leave calendars and contacts out with --no-groupware",
            flag(side, "dav")
        ),
        (DavError::NoHome { .. } | DavError::Unreachable { .. }, Surface::Service) => format!(
            "give the account's CalDAV/CardDAV address in {}",
            field(side, "dav")
        ),
        (DavError::LoginRejected { .. }, Surface::Service) => format!(
            "check {} and {}: calendars and contacts log in as the mail does, unless {} names another user",
            field(side, "username"),
            field(side, "password"),
            field(side, "dav")
        ),
        _ => return error.hint(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_controls_of_their_surface_and_side() {
        let error = ImapError::Certificate {
            addr: "mail.example:993".into(),
            reason: "unknown issuer".into(),
        };
        let cli = imap_hint(&error, Some(Side::Target), Surface::Cli).unwrap();
        assert!(
            cli.contains("--to-ca-file") && cli.contains("--to-insecure"),
            "{cli}"
        );
        let probe = imap_hint(&error, None, Surface::Cli).unwrap();
        assert!(
            probe.contains("--ca-file") && probe.contains("--insecure"),
            "{probe}"
        );
        let web = imap_hint(&error, Some(Side::Source), Surface::Service).unwrap();
        assert!(
            web.contains("source.insecure") && !web.contains("--"),
            "{web}"
        );
        let no_tls = ImapError::NoStartTls {
            addr: "mail.example:143".into(),
        };
        let web = imap_hint(&no_tls, Some(Side::Source), Surface::Service).unwrap();
        assert!(!web.contains("--allow-plaintext"), "{web}");
        // The protocol crate's own words name no flag.
        for error in [&error, &no_tls] {
            let plain = error.hint().unwrap_or_default();
            assert!(!plain.contains("--"), "{plain}");
        }
    }
}
