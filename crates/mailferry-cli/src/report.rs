//! Errors as an admin reads them: the failure, its causes, and what to do.
//!
//! ```text
//! error: cannot log in to the source server
//!   Caused by: `mail.example.com:993` rejected the login of `alice`: NO [AUTHENTICATIONFAILED] ...
//!
//! hint: check the username and password; ...
//! ```

use mailferry_imap::ImapError;

/// The hint of the first error in the chain that has one.
pub fn hint_of(error: &anyhow::Error) -> Option<String> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ImapError>().and_then(ImapError::hint))
}

pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  Caused by: {cause}");
    }
    if let Some(hint) = hint_of(error) {
        eprintln!("\nhint: {hint}");
    }
}
