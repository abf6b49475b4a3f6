//! mailferry-imap against real Dovecot from mailferry-testkit.

mod client;
mod compress;
