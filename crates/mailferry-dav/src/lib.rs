//! mailferry's CalDAV (RFC 4791) and CardDAV (RFC 6352) client.
//!
//! # Layout
//! - [`request`]: the requests as plain values (PROPFIND, REPORT multiget and
//!   sync-collection, MKCALENDAR, extended MKCOL, PROPPATCH, GET, PUT, DELETE) and
//!   [`Response`]; no I/O, unit-tested.
//! - [`xml`]: request bodies and multistatus answers (roxmltree), namespaces by URI.
//! - [`transport`]: the one file with I/O: [`DavClient`] sends requests with reqwest over
//!   rustls, Basic auth, no automatic redirects; [`DavEndpoint`], [`DavUrl`], hrefs.
//! - [`discovery`]: home sets from well-known URLs, per-product paths ([`ServerKind`]),
//!   principals.
//! - [`collection`]: calendars and address books with their properties; creating them.
//! - [`object`]: listing with ETags, multiget, sync-collection, PUT and DELETE with
//!   preconditions.
//! - [`content`]: UID and kind of an object, and its normal form (calcard).
//! - [`error`]: [`DavError`], with the server's words and a hint.
//!
//! # Contract
//! Nothing is written without a precondition: new objects go with `If-None-Match: *`,
//! changes and deletions with `If-Match` on the ETag last seen, so an object that is not
//! ours, or that changed since, is never overwritten. A source is only read.
//!
//! # Why not libdav
//! `libdav` (STYLE.md's first choice) has the request API and sync-collection from 0.9.6
//! on, and those versions need Rust 1.86 (0.11 also pulls `domain` 0.12, Rust 1.87); the
//! workspace builds with 1.85. Its request values and our [`request`] module have the same
//! shape, so switching later is local to this crate.

pub mod collection;
pub mod content;
pub mod discovery;
pub mod error;
pub mod object;
pub mod request;
pub mod transport;
pub mod xml;

pub use collection::{create_collection, list_collections, read_collection, Collection};
pub use content::{first_difference, inspect, normalise, Inspected, ObjectKind};
pub use discovery::{check_login, discover, Homes, ServerKind};
pub use error::DavError;
pub use object::{
    delete_object, fetch_objects, get_object, list_objects, put_object, sync_changes,
    FetchedObject, Listing, ObjectRef, SyncOutcome, WriteOutcome,
};
pub use request::{CollectionKind, Precondition, Request, Response};
pub use transport::{normalise_href, DavClient, DavEndpoint, DavUrl};
