//! mailferry's IMAP client, built for copying mailboxes exactly and fast.
//!
//! # Layout
//! - [`framing`]: splits the byte stream into whole responses (lines plus literals).
//! - [`response`]: parses a response: status lines and codes, FETCH ([`fetch`]) by hand,
//!   other untagged data through imap-codec.
//! - [`session`]: one connection: greeting, STARTTLS, login (LOGIN, PLAIN with an
//!   authorization identity, XOAUTH2, OAUTHBEARER), capabilities, ENABLE, ID, and the
//!   pipelining core (`send`, `wait`, `next_fetch`).
//! - [`mailbox`]: NAMESPACE, LIST with SPECIAL-USE and LIST-STATUS, STATUS, CREATE, SUBSCRIBE,
//!   SELECT/EXAMINE with CONDSTORE/QRESYNC.
//! - [`message`]: UID FETCH (metadata, bodies, partial ranges), UID STORE, APPEND pipelined
//!   with LITERAL+, MULTIAPPEND, streamed APPEND.
//! - [`pool`]: connections per endpoint under a per-host cap.
//! - [`mutf7`], [`uid`]: modified UTF-7 folder names and UID sets.
//! - `transport`: the only code that touches sockets (tokio, rustls).
//!
//! # Contract
//! The client never changes a message's bytes: bodies are taken as the server serves them and
//! appended as given. Memory stays bounded: a response larger than
//! [`session::SessionOptions::max_response`] is refused, so big messages are fetched with
//! [`Session::fetch_body_partial`] and appended with [`Session::append_stream`].

mod compress;
pub mod datetime;
pub mod endpoint;
pub mod error;
pub mod fetch;
pub mod framing;
pub mod mailbox;
pub mod message;
pub mod metadata;
pub mod mutf7;
mod parse;
pub mod pool;
pub mod rate_limit;
pub mod response;
pub mod session;
mod transport;
pub mod uid;

pub use endpoint::{Auth, Endpoint, ImapUrl, Security, UrlError};
pub use error::ImapError;
pub use mailbox::{Folder, Resync, Selected, SpecialUse};
pub use message::{AppendOutcome, AppendRequest, Appended, FetchRange, MessageMeta};
pub use metadata::{MetadataEntry, SetOutcome};
pub use parse::ParseError;
pub use pool::{ConnectionBudget, Pool, Pooled};
pub use rate_limit::RateLimit;
pub use session::{Capabilities, Completion, Session, SessionOptions, SessionStats};
pub use transport::{
    client_config as tls_client_config, connect_tcp, describe_certificate_error, TlsOptions,
};
pub use uid::{Uid, UidSet, UidValidity};
