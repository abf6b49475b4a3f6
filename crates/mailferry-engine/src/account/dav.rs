//! An account's CalDAV/CardDAV endpoint, built in one place for the CLI, the API, lists and
//! the worker: at its address, as the address's user when it names one, else as the mail
//! login; an admin login on a user's behalf becomes the product's form of it where it has one
//! (Kolab's `admin**user`), else the account's groupware needs its own password.

use std::path::PathBuf;
use std::time::Duration;

use mailferry_dav::{DavEndpoint, DavError, DavUrl};
use mailferry_imap::Auth;

use super::ServerType;

/// Why an account has no usable DAV endpoint.
#[derive(Debug, thiserror::Error)]
pub enum DavProblem {
    #[error("the CalDAV/CardDAV address is not usable")]
    Address(#[source] DavError),
    #[error("it logs in to IMAP as an admin or with a token; its calendars and contacts need the account's own password")]
    NeedsOwnPassword,
}

/// The DAV endpoint at `address` of an account of type `kind` whose mail logs in with `auth`.
pub fn dav_endpoint(
    kind: &ServerType,
    address: &str,
    auth: &Auth,
    insecure: bool,
    ca_file: Option<PathBuf>,
    timeout: Duration,
) -> Result<DavEndpoint, DavProblem> {
    let parsed = DavUrl::parse(address).map_err(DavProblem::Address)?;
    let (user, password) = match auth {
        Auth::Password { user, password } => (
            parsed.user.clone().unwrap_or_else(|| user.clone()),
            password.clone(),
        ),
        Auth::AsUser {
            admin,
            password,
            authorize_as,
        } => match kind.dav_admin_login(admin, authorize_as) {
            Some(login) => (login, password.clone()),
            None => return Err(DavProblem::NeedsOwnPassword),
        },
        _ => return Err(DavProblem::NeedsOwnPassword),
    };
    Ok(DavEndpoint {
        url: parsed.url,
        user,
        password,
        insecure,
        ca_file,
        timeout,
        server: kind.dav_kind(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn password(user: &str) -> Auth {
        Auth::Password {
            user: user.into(),
            password: SecretString::from("pw".to_string()),
        }
    }

    #[test]
    fn the_login_is_the_addresss_user_else_the_mail_login() {
        let imap = super::super::server_type("imap").unwrap();
        let d = dav_endpoint(
            imap,
            "https://dav.example/",
            &password("alice"),
            false,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(d.user, "alice");
        let d = dav_endpoint(
            imap,
            "https://bob@dav.example/",
            &password("alice"),
            false,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(d.user, "bob");
        let admin = Auth::AsUser {
            admin: "master".into(),
            password: SecretString::from("pw".to_string()),
            authorize_as: "alice".into(),
        };
        assert!(matches!(
            dav_endpoint(
                imap,
                "https://dav.example/",
                &admin,
                false,
                None,
                Duration::ZERO
            ),
            Err(DavProblem::NeedsOwnPassword)
        ));
        let kolab = super::super::server_type("kolab").unwrap();
        let d = dav_endpoint(
            kolab,
            "https://k.example/iRony/",
            &admin,
            false,
            None,
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(d.user, "master**alice");
        assert!(matches!(
            dav_endpoint(
                imap,
                "ftp://x/",
                &password("a"),
                false,
                None,
                Duration::ZERO
            ),
            Err(DavProblem::Address(_))
        ));
    }
}
