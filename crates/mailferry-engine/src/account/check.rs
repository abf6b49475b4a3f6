//! One login check for every endpoint of an account, before anything is stored or copied:
//! its IMAP login and, where it has one, its CalDAV/CardDAV login. The API, lists, the web
//! form and the CLI all use it, so that a wrong password or address shows at submit, not
//! when the pass runs (issue 12: lists used to try IMAP only).

use std::time::Duration;

use mailferry_dav::DavEndpoint;
use mailferry_imap::{Session, SessionOptions};

use super::hint::{dav_hint, imap_hint, Surface};
use crate::error::Side;
use crate::options::Account;

/// One login that failed, in the server's words, with what to do where known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoginFailure {
    pub side: Side,
    pub reason: String,
    pub hint: Option<String>,
}

/// Tries one side's logins at once, each within `timeout`: IMAP, and DAV when `dav` is
/// given. Every failure is kept.
pub async fn check_account(
    side: Side,
    mail: &Account,
    dav: Option<&DavEndpoint>,
    timeout: Duration,
    surface: Surface,
) -> Result<(), Vec<LoginFailure>> {
    let (mail, dav) = tokio::join!(check_mail(side, mail, timeout, surface), async {
        match dav {
            Some(dav) => check_dav(side, dav, timeout, surface).await,
            None => Ok(()),
        }
    });
    let failures: Vec<LoginFailure> = [mail.err(), dav.err()].into_iter().flatten().collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// The IMAP login of one side.
pub async fn check_mail(
    side: Side,
    account: &Account,
    timeout: Duration,
    surface: Surface,
) -> Result<(), LoginFailure> {
    let options = SessionOptions {
        timeout,
        ..SessionOptions::default()
    };
    let attempt = async {
        let mut session = Session::connect(&account.endpoint, options).await?;
        session.login(&account.auth).await?;
        session.logout().await;
        Ok::<(), mailferry_imap::ImapError>(())
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LoginFailure {
            side,
            reason: e.to_string(),
            hint: imap_hint(&e, Some(side), surface),
        }),
        Err(_) => Err(LoginFailure {
            side,
            reason: format!(
                "no answer from `{}` within {} s",
                account.endpoint.addr(),
                timeout.as_secs()
            ),
            hint: Some("check the server name and port, and that this machine may reach it".into()),
        }),
    }
}

/// The CalDAV/CardDAV login of one side (one PROPFIND of its principal).
pub async fn check_dav(
    side: Side,
    endpoint: &DavEndpoint,
    timeout: Duration,
    surface: Surface,
) -> Result<(), LoginFailure> {
    let failure = |reason: String, hint: Option<String>| LoginFailure {
        side,
        reason: format!("calendars and contacts (CalDAV/CardDAV): {reason}"),
        hint,
    };
    let hint = |e: &mailferry_dav::DavError| dav_hint(e, Some(side), surface);
    let client =
        mailferry_dav::DavClient::new(endpoint).map_err(|e| failure(e.to_string(), hint(&e)))?;
    match tokio::time::timeout(
        timeout + Duration::from_secs(1),
        mailferry_dav::check_login(&client, &endpoint.url),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(failure(e.to_string(), hint(&e))),
        Err(_) => Err(failure(
            format!(
                "no answer from `{}` within {} s",
                endpoint.describe(),
                timeout.as_secs()
            ),
            Some("check the address, and that this machine may reach it".into()),
        )),
    }
}
