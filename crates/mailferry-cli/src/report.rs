//! Errors as an admin reads them: the failure, its causes, and what to do.
//!
//! ```text
//! error: cannot log in to the source server
//!   Caused by: `mail.example.com:993` rejected the login of `alice`: NO [AUTHENTICATIONFAILED] ...
//!
//! hint: check the username and password; ...
//! ```

use mailferry_dav::DavError;
use mailferry_engine::account::{dav_hint, imap_hint, Surface};
use mailferry_engine::{EngineError, Side};
use mailferry_imap::ImapError;

/// The hint of the first error in the chain that has one, naming the flags of the side the
/// chain says failed (`--to-ca-file`); IMAP and CalDAV/CardDAV errors alike.
pub fn hint_of(error: &anyhow::Error) -> Option<String> {
    let mut side: Option<Side> = None;
    for cause in error.chain() {
        if let Some(failed) = cause.downcast_ref::<LoginFailed>() {
            if let Some(hint) = failed.0.iter().find_map(|f| f.hint.clone()) {
                return Some(hint);
            }
        }
        if let Some(engine) = cause.downcast_ref::<EngineError>() {
            side = engine.side().or(side);
        }
        if let Some(imap) = cause.downcast_ref::<ImapError>() {
            if let Some(hint) = imap_hint(imap, side, Surface::Cli) {
                return Some(hint);
            }
        }
        if let Some(dav) = cause.downcast_ref::<DavError>() {
            if let Some(hint) = dav_hint(dav, side, Surface::Cli) {
                return Some(hint);
            }
        }
    }
    None
}

/// Logins that failed before a run started: each side's words, and the first hint.
#[derive(Debug)]
pub struct LoginFailed(pub Vec<mailferry_engine::account::LoginFailure>);

impl std::fmt::Display for LoginFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<String> = self
            .0
            .iter()
            .map(|failure| format!("{}: {}", failure.side, failure.reason))
            .collect();
        write!(
            f,
            "cannot log in, so nothing was started: {}",
            words.join("; ")
        )
    }
}

impl std::error::Error for LoginFailed {}

pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  Caused by: {cause}");
    }
    if let Some(hint) = hint_of(error) {
        eprintln!("\nhint: {hint}");
    }
}
