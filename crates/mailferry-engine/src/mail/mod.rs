//! The mail part of a migration, split by job:
//!
//! - [`run`]: a run ([`migrate`]): connect, plan the folders, spread them over workers.
//! - [`plan`]: the decisions that need no server (skip a folder or not, the candidates of a
//!   delta pass, the copies the target lost), pure and unit-tested.
//! - [`rename`]: folders renamed at the source, followed.
//! - [`folder`]: one folder's pass, from EXAMINE to the checkpoint.
//! - [`dedup`]: copies already on the target, by fingerprint.
//! - [`pipeline`]: fetching and appending, overlapped; one bad message fails alone.
//! - [`flags`], [`deletions`]: what changed at the source since the last pass.
//! - [`retry`]: what is tried again, and when.
//! - [`annotations`]: folder annotations (IMAP METADATA), copied once the folders exist.
//!
//! Per folder, in order: skip it when neither side changed since the last completed pass
//! (LIST-STATUS on both sides, no command for the folder); else EXAMINE the source (with
//! QRESYNC from the checkpoint where offered) and SELECT the target; decide per message:
//! already mapped, to copy, or already on the target by fingerprint; copy in batches, each
//! message recorded as pending before its APPEND and settled after; apply flag changes and
//! (with `sync_deletes`) deletions; save the checkpoint with what the target says it holds.

pub(crate) mod annotations;
pub(crate) mod dedup;
pub(crate) mod deletions;
pub(crate) mod flags;
pub(crate) mod folder;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod rename;
pub(crate) mod retry;
pub mod run;

pub use retry::throttle_pauses;
pub use run::{describe, describe_error, migrate, Job, RoundTrips};
