//! mailferry's ManageSieve client (RFC 5804), for copying Sieve filter scripts between
//! servers along with the mail.
//!
//! # Layout
//! - [`parse`]: the response grammar, without I/O: strings, literals, status lines with
//!   response codes; incremental and bounded.
//! - `transport`: the only code that touches sockets (tokio TCP, rustls TLS and STARTTLS,
//!   with mailferry-imap's certificate settings).
//! - `client`: [`SieveClient`], the commands: capabilities, AUTHENTICATE, LISTSCRIPTS,
//!   GETSCRIPT, PUTSCRIPT, CHECKSCRIPT, SETACTIVE, HAVESPACE, DELETESCRIPT, LOGOUT.
//! - `error`: [`SieveError`] (with [`SieveError::hint`]) and [`Refusal`], a server's `NO`.
//!
//! # Contract
//! Scripts are read and written byte for byte. Server input never makes the client panic
//! or allocate more than [`parse::MAX_RESPONSE`] bytes; every read waits at most the
//! timeout given to [`SieveClient::connect`]. Passwords and tokens are never logged and
//! never part of an error.

mod client;
mod error;
pub mod parse;
mod transport;

pub use client::{Capabilities, ScriptEntry, SieveClient, SieveEndpoint};
pub use error::{Refusal, SieveError};
pub use mailferry_imap::{Auth, Security, TlsOptions};
