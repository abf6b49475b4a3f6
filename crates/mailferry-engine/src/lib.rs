//! mailferry's copy engine: one account from a source to a target, exactly and repeatably.
//!
//! # Layout
//! - [`account`]: one account's pass as a whole ([`run_account`]): mail, then groupware.
//! - [`mail`]: a run ([`mail::migrate`]): plan, then per folder dedup, copy, flags, deletions,
//!   with checkpoints in [`mailferry_store`] written ahead of every APPEND.
//! - [`verify`]: an independent comparison of source and target, no state involved.
//! - [`groupware`]: calendars, tasks and contacts over CalDAV/CardDAV: copy with dedup by
//!   UID and sync-token deltas, and an object-by-object verify.
//! - [`filters`]: Sieve scripts over ManageSieve: copied as served with folder names
//!   rewritten by the mail's mapping, the active one set active, nothing overwritten.
//! - [`folder_map`]: which target folder each source folder goes to.
//! - [`fingerprint`]: how a message is recognised on the other side.
//! - [`options`], [`report`], [`progress`], [`error`]: what is asked, what happened, how far.
//!
//! # Contract
//! The source is only read: EXAMINE, BODY.PEEK. Nothing is appended twice: a message is
//! recorded as pending before its APPEND and confirmed after; a pending one is looked up on
//! the target before it is sent again.

pub mod account;
pub mod error;
pub mod filters;
pub mod fingerprint;
pub mod folder_map;
pub mod groupware;
pub mod mail;
pub mod options;
pub mod progress;
pub mod report;
pub mod verify;

pub use account::{run_account, AccountParts};
pub use error::{EngineError, Side};
pub use mail::{migrate, Job, RoundTrips};
pub use options::{Account, CopyOptions};
pub use progress::{Progress, ProgressSnapshot};
pub use report::{FolderReport, MessageProblem, Outcome, Report};
