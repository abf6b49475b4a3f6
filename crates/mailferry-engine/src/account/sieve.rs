//! An account's ManageSieve endpoint: the one given (`host`, `host:port`, `sieve://host[:port]`,
//! port 4190 by default), else, for a type whose filters are on ManageSieve, the mail host
//! on port 4190 with the mail's TLS settings and login. A derived address that refuses the
//! connection means "no ManageSieve here", not an error.

use mailferry_imap::Security;
use mailferry_sieve::SieveEndpoint;

use super::{EndpointProblem, Filters, ServerType};
use crate::filters::SieveAccount;
use crate::options::Account;

/// ManageSieve's registered port (RFC 5804).
pub const SIEVE_PORT: u16 = 4190;

/// The ManageSieve account of an account of type `kind` with mail account `mail`;
/// `Ok(None)` when the type keeps its filters elsewhere and no address was given.
pub fn sieve_account(
    kind: &ServerType,
    mail: &Account,
    explicit: Option<&str>,
) -> Result<Option<SieveAccount>, EndpointProblem> {
    let security = match mail.endpoint.security {
        Security::Plain => Security::Plain,
        Security::Tls | Security::StartTls => Security::StartTls,
    };
    let endpoint = |host: String, port: u16| SieveEndpoint {
        host,
        port,
        security,
        tls: mail.endpoint.tls.clone(),
        allow_plaintext: mail.endpoint.allow_plaintext,
    };
    if let Some(explicit) = explicit.map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = parse_address(explicit)?;
        return Ok(Some(SieveAccount {
            endpoint: endpoint(host, port),
            auth: mail.auth.clone(),
            derived: false,
        }));
    }
    match kind.filters {
        Filters::NotManageSieve(_) => Ok(None),
        Filters::ManageSieve => Ok(Some(SieveAccount {
            endpoint: endpoint(mail.endpoint.host.clone(), SIEVE_PORT),
            auth: mail.auth.clone(),
            derived: true,
        })),
    }
}

/// `host`, `host:port`, `[v6]:port` or `sieve://host[:port][/]`.
fn parse_address(address: &str) -> Result<(String, u16), EndpointProblem> {
    let problem = |message: String| EndpointProblem {
        field: "sieve",
        message,
    };
    let rest = match address.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sieve") => rest,
        Some((scheme, _)) => {
            return Err(problem(format!(
            "`{address}`: a ManageSieve address is host:port or sieve://host:port, not {scheme}://"
        )))
        }
        None => address,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| problem(format!("`{address}`: `[` without `]`")))?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host.to_string(), Some(port)),
            _ => (rest.to_string(), None),
        }
    };
    let port = match port {
        None => SIEVE_PORT,
        Some(port) => port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            problem(format!(
                "`{port}` in `{address}` is not a port number (1-65535)"
            ))
        })?,
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(problem(format!(
            "`{address}` is not a host name (give host or host:port)"
        )));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::server_type;
    use mailferry_imap::{Auth, Endpoint, TlsOptions};
    use secrecy::SecretString;

    fn mail(host: &str) -> Account {
        Account {
            endpoint: Endpoint {
                host: host.into(),
                port: 993,
                security: Security::Tls,
                tls: TlsOptions::default(),
                allow_plaintext: false,
            },
            auth: Auth::Password {
                user: "alice".into(),
                password: SecretString::from("pw"),
            },
        }
    }

    #[test]
    fn addresses_follow_the_type_or_what_was_given() {
        let imap = server_type("imap").unwrap();
        let derived = sieve_account(imap, &mail("mx.example.org"), None)
            .unwrap()
            .unwrap();
        assert_eq!(derived.endpoint.addr(), "mx.example.org:4190");
        assert!(derived.derived);
        assert_eq!(derived.endpoint.security, Security::StartTls);
        let zimbra = server_type("zimbra").unwrap();
        assert!(sieve_account(zimbra, &mail("z"), None).unwrap().is_none());
        let given = sieve_account(zimbra, &mail("z"), Some("sieve://s.example.org:2000/"))
            .unwrap()
            .unwrap();
        assert_eq!(given.endpoint.addr(), "s.example.org:2000");
        assert!(!given.derived);
        assert_eq!(
            sieve_account(imap, &mail("h"), Some("[::1]:4190"))
                .unwrap()
                .unwrap()
                .endpoint
                .host,
            "::1"
        );
        assert_eq!(
            sieve_account(imap, &mail("h"), Some("h2"))
                .unwrap()
                .unwrap()
                .endpoint
                .port,
            4190
        );
        for bad in ["h:0", "h:x", "https://h/", "a b", "[::1"] {
            let e = sieve_account(imap, &mail("h"), Some(bad)).unwrap_err();
            assert_eq!(e.field, "sieve", "{bad}");
            assert!(e.message.contains('`'), "{bad}: {}", e.message);
        }
    }
}
