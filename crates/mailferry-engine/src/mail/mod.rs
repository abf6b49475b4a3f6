//! The mail part of a migration, by job: [`plan`] holds the decisions that need no server
//! (skip a folder or not, which messages are candidates, which copies the target lost).
//! The run itself is in [`crate::copy`].

pub(crate) mod plan;
pub(crate) mod rename;
