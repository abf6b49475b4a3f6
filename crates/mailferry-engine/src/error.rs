//! Errors of a run, naming the side.

use std::fmt;

use mailferry_imap::ImapError;
use mailferry_store::StoreError;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Side {
    Source,
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the {side} server")]
    Connect {
        side: Side,
        #[source]
        source: ImapError,
    },
    #[error("the {side} server failed")]
    Imap {
        side: Side,
        #[source]
        source: ImapError,
    },
    #[error("the state database failed")]
    Store(#[from] StoreError),
    #[error("stopped before the folder was finished (shutdown); the next run carries on")]
    Stopped,
    #[error("cannot spool a big message to disk")]
    Spool(#[source] std::io::Error),
    #[error("the {side} server sent no UIDVALIDITY for the folder `{folder}` (RFC 3501 requires one): its messages cannot be told apart from one pass to the next, so the folder is left out")]
    NoUidValidity { side: Side, folder: String },
}

impl EngineError {
    pub fn imap(side: Side) -> impl FnOnce(ImapError) -> EngineError {
        move |source| EngineError::Imap { side, source }
    }
    /// The side at fault, where the error says.
    pub fn side(&self) -> Option<Side> {
        match self {
            EngineError::Connect { side, .. }
            | EngineError::Imap { side, .. }
            | EngineError::NoUidValidity { side, .. } => Some(*side),
            _ => None,
        }
    }

    /// What to do about it, in the words of `surface`.
    pub fn hint(&self, surface: crate::account::Surface) -> Option<String> {
        crate::account::imap_hint(self.imap_error()?, self.side(), surface)
    }

    /// The IMAP error underneath, for hints.
    pub fn imap_error(&self) -> Option<&ImapError> {
        match self {
            EngineError::Connect { source, .. } | EngineError::Imap { source, .. } => Some(source),
            _ => None,
        }
    }
}
