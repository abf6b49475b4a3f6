//! Dev-only helpers for mailferry's integration tests: real servers on loopback,
//! a nasty mail corpus, an independent way to load it, and a proxy that breaks
//! connections on purpose. Modelled on `kanidm/kanidm server/testkit`.
//!
//! # Layout
//!
//! - [`dovecot`]: [`Dovecot`] runs a real Dovecot 2.3 (IMAP, POP3, LMTP, ManageSieve)
//!   in the foreground as a child process, in its own directory under `/tmp`, on free
//!   loopback ports, with fixed test users ([`ALICE`], [`SMALL`] with a 20 KiB quota,
//!   the master user [`MASTER_USER`], ...). [`DovecotBuilder`] chooses the maildir
//!   [`Layout`], namespace prefix and special-folder [`Naming`]. Stopped on drop.
//! - [`corpus`]: [`nasty_corpus`] (every awkward thing a migration must copy byte for
//!   byte: 8-bit and binary parts, bare LF, missing or duplicate Message-ID, header-only
//!   messages, odd flags, old dates, non-ASCII folder names) and [`bulk_corpus`]
//!   (realistic sizes for benchmarks). Both are deterministic.
//! - [`fill`](mod@fill): [`fill()`] loads a [`Corpus`] into an account over plain IMAP with
//!   its own minimal client, deliberately independent of `mailferry-imap`, so tests
//!   check the code under test against something else.
//! - [`postgres`]: [`Postgres`] runs a throw-away PostgreSQL 15 cluster (`initdb` +
//!   `pg_ctl`, as the user `postgres`) on a free loopback port with the database
//!   `mailferry`; [`Postgres::url`] connects to it. Stopped and removed on drop.
//! - [`dav`]: [`DavServer`] runs a real Radicale 3 (Basic auth, user [`DAV_USER`]) or
//!   Xandikos (no auth) on a free loopback port in its own directory, stopped on drop, with
//!   a small HTTP client of its own to load and inspect collections.
//! - [`groupware`](mod@groupware): [`groupware_corpus`]: recurring events with exceptions,
//!   all-day events, several time zones, tasks with due dates and priorities, a journal,
//!   vCard 3 and 4 contacts with photos and several addresses, a calendar named with spaces
//!   and non-ASCII; and bad objects one server keeps and another refuses
//!   ([`event_with_control_character`], [`two_cards_in_one`], [`event_and_task_in_one`]).
//! - [`proxy`]: [`FaultProxy`], a TCP proxy that can cut, delay or refuse connections.
//! - [`browser`]: [`Browser`], a headless Chromium driven over WebDriver (Debian's
//!   `chromedriver`) with a fresh profile, for end-to-end tests of the web UI.
//! - [`error`]: [`TestkitError`], the one error type.
//!
//! # Contract
//!
//! Everything is synchronous (std threads and processes), so it works the same from
//! plain `#[test]` and `#[tokio::test]` functions ([`Browser`] excepted: its blocking HTTP
//! client must not run on an async runtime's thread, so call it from a plain `#[test]` or
//! `spawn_blocking`). The Dovecot recipe needs root and the
//! Debian packages named in [`TestkitError::DovecotNotInstalled`]; a missing server is an
//! error that names the fix, never a silently skipped test. Set
//! `MAILFERRY_KEEP_SERVERS=1` to keep each server's directory (config, log, maildirs)
//! after the test for inspection.

pub mod browser;
pub mod corpus;
pub mod dav;
pub mod dovecot;
pub mod error;
pub mod fill;
pub mod groupware;
pub mod postgres;
pub mod proxy;
mod sandbox;

pub use browser::{Browser, Element};
pub use corpus::{
    bulk_corpus, nasty_corpus, Corpus, CorpusFolder, CorpusMessage, BIG_MESSAGE_SUBJECT,
    NASTY_FOLDERS,
};
pub use dav::{DavProduct, DavServer, HttpAnswer, DAV_PASSWORD, DAV_USER};
pub use dovecot::{
    stop_all, Dovecot, DovecotBuilder, Layout, Naming, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD,
    MASTER_PASSWORD, MASTER_SEPARATOR, MASTER_USER, SMALL, SMALL_PASSWORD, SMALL_QUOTA_BYTES,
    USER1, USER1_PASSWORD, USER2, USER2_PASSWORD,
};
pub use error::TestkitError;
pub use fill::{encode_mailbox_name, fill};
pub use groupware::{
    event_and_task_in_one, event_with_control_character, extra_event, groupware_corpus,
    two_cards_in_one, CorpusCollection, CorpusObject, GroupwareCorpus, GroupwareKind, ANNA_UID,
    STANDUP_UID, TEAM_CALENDAR_NAME,
};
pub use postgres::Postgres;
pub use proxy::FaultProxy;
