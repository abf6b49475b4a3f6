//! An account as the service stores it (type, server, login, password, explicit DAV address)
//! and the endpoints it becomes: its IMAP account and, where its type or address gives one,
//! its CalDAV/CardDAV endpoint. The submit check and the worker both read an account
//! through this, so what was checked is what runs.

use std::path::PathBuf;
use std::time::Duration;

use mailferry_dav::DavEndpoint;
use mailferry_imap::Auth;
use secrecy::SecretString;

use super::{dav_endpoint, mail_endpoint, server_type, sieve_account, ServerType};
use crate::filters::SieveAccount;
use crate::mail::describe_error;
use crate::options::Account;

/// One side of a migration, as entered.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    pub server_type: String,
    /// `host`, `host:port` or an `imap(s)://` URL; empty for the type's usual host.
    pub server: String,
    pub username: String,
    pub password: SecretString,
    /// Accept the servers' certificates unverified (lab servers).
    pub insecure: bool,
    /// More CA certificates to trust, for mail and DAV alike.
    pub ca_file: Option<PathBuf>,
    /// The CalDAV/CardDAV address, over the type's usual one.
    pub dav: Option<String>,
    /// The ManageSieve address (`host[:port]`), over the mail host's port 4190.
    pub sieve: Option<String>,
}

/// What an account reaches.
#[derive(Debug, Clone)]
pub struct AccountEndpoints {
    pub kind: &'static ServerType,
    pub mail: Account,
    /// `None` when the account has no calendars and contacts this version can reach (its
    /// type has none, or they are behind EWS or Graph and no address was given); a problem
    /// with them leaves the mail usable.
    pub groupware: Result<Option<DavEndpoint>, SpecProblem>,
    /// Its filters' ManageSieve account; `None` when its type keeps filters elsewhere. A
    /// problem with it leaves the rest usable.
    pub filters: Result<Option<SieveAccount>, SpecProblem>,
}

/// Why an account gives no endpoints: the field at fault (`type`, `server`, `dav`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub field: &'static str,
    pub message: String,
}

impl AccountSpec {
    /// The account's endpoints; the DAV one with `dav_timeout` per request.
    pub fn endpoints(&self, dav_timeout: Duration) -> Result<AccountEndpoints, SpecProblem> {
        let kind = server_type(&self.server_type).map_err(|e| SpecProblem {
            field: "type",
            message: e.to_string(),
        })?;
        let mut endpoint =
            mail_endpoint(kind.name, &self.server, self.insecure).map_err(|p| SpecProblem {
                field: p.field,
                message: p.message,
            })?;
        endpoint.tls.ca_file.clone_from(&self.ca_file);
        let mail = Account {
            auth: Auth::Password {
                user: self.username.clone(),
                password: self.password.clone(),
            },
            endpoint,
        };
        let address = kind
            .dav_address(&mail.endpoint.host, self.dav.as_deref())
            .ok()
            .flatten();
        let groupware = match address {
            None => Ok(None),
            Some(address) => dav_endpoint(
                kind,
                &address,
                &mail.auth,
                self.insecure,
                self.ca_file.clone(),
                dav_timeout,
            )
            .map(Some)
            .map_err(|e| SpecProblem {
                field: "dav",
                message: describe_error(&e),
            }),
        };
        let filters = sieve_account(kind, &mail, self.sieve.as_deref()).map_err(|p| SpecProblem {
            field: p.field,
            message: p.message,
        });
        Ok(AccountEndpoints {
            kind,
            mail,
            groupware,
            filters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, server: &str, dav: Option<&str>) -> AccountSpec {
        AccountSpec {
            server_type: kind.into(),
            server: server.into(),
            username: "alice".into(),
            password: SecretString::from("pw".to_string()),
            insecure: false,
            ca_file: None,
            dav: dav.map(str::to_string),
            sieve: None,
        }
    }

    #[test]
    fn an_account_becomes_its_mail_and_groupware_endpoints() {
        let t = Duration::from_secs(5);
        let kolab = spec("kolab", "mail.example.org", None)
            .endpoints(t)
            .unwrap();
        assert_eq!(kolab.mail.endpoint.port, 993);
        let dav = kolab.groupware.unwrap().unwrap();
        assert_eq!(dav.url.as_str(), "https://mail.example.org/iRony/");
        assert_eq!(dav.user, "alice");
        let imap = spec("imap", "mail.example.org:143", None)
            .endpoints(t)
            .unwrap();
        assert!(imap.groupware.unwrap().is_none());
        let given = spec("imap", "h", Some("https://bob@dav.h/"))
            .endpoints(t)
            .unwrap();
        assert_eq!(given.groupware.unwrap().unwrap().user, "bob");
        // Behind EWS: the mail alone, unless an address is given.
        assert!(spec("exchange", "h", None)
            .endpoints(t)
            .unwrap()
            .groupware
            .unwrap()
            .is_none());
        assert_eq!(
            spec("pop3", "h", None).endpoints(t).unwrap_err().field,
            "type"
        );
        assert_eq!(
            spec("imap", "h:0", None).endpoints(t).unwrap_err().field,
            "server"
        );
        // A DAV address that cannot be used spoils the groupware, not the mail.
        let bad = spec("imap", "h", Some("ftp://x/")).endpoints(t).unwrap();
        assert_eq!(bad.groupware.unwrap_err().field, "dav");
    }
}
