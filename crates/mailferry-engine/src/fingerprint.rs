//! How a message is recognised on the other side without trusting UIDs.
//!
//! A fingerprint is the message's size as the server serves it, its internal date as an
//! instant, and its Message-ID. Where the Message-ID is missing, the body's SHA-256 decides
//! between candidates (see `copy`).
//!
//! Where it can be fooled, and what we do about it:
//! - Two different messages with the same Message-ID, size and internal date: taken as one
//!   and the same. Real mail does not do this; a generator that stamps every message with one
//!   ID and one date might. Counting multiplicity keeps identical copies apart (two in the
//!   source, two on the target).
//! - A server that rewrites messages on APPEND (Exchange, Microsoft 365) changes the size:
//!   such targets need a fingerprint without the size (server-type quirks, later).
//! - A server that does not keep the internal date (some give the arrival time): a rerun
//!   would copy again. Dovecot, Cyrus, Gmail and Exchange keep it.

use sha2::{Digest, Sha256};

use mailferry_imap::datetime::internal_date_to_unix;
use mailferry_imap::MessageMeta;

/// The identity of a message across servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds since the epoch, `None` when the server sent no parseable date.
    pub date: Option<i64>,
    /// SHA-256 of the normalised Message-ID, first 16 bytes in hex; `None` without one.
    pub message_id: Option<String>,
}

impl Fingerprint {
    pub fn of(meta: &MessageMeta) -> Self {
        Self {
            size: meta.size,
            date: internal_date_to_unix(&meta.internal_date),
            message_id: meta
                .message_id
                .as_deref()
                .and_then(message_id_value)
                .map(|id| {
                    let digest = Sha256::digest(id.as_bytes());
                    hex::encode(&digest[..16])
                }),
        }
    }

    /// The form kept in the state database.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.size,
            self.date.map(|d| d.to_string()).unwrap_or_default(),
            self.message_id.as_deref().unwrap_or("")
        )
    }
}

/// The Message-ID value of a `Message-ID:` header field as fetched with
/// `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]`: unfolded, whitespace collapsed.
pub fn message_id_value(field: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(field);
    let value = text.split_once(':').map(|(_, v)| v)?;
    let value: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
    (!value.is_empty()).then_some(value)
}

/// SHA-256 of a body, for messages without a Message-ID.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64, date: &str, id: Option<&str>) -> MessageMeta {
        MessageMeta {
            uid: mailferry_imap::Uid::new(1).unwrap(),
            flags: vec![],
            internal_date: date.into(),
            size,
            modseq: None,
            message_id: id.map(|i| i.as_bytes().to_vec()),
        }
    }

    #[test]
    fn same_instant_in_other_zones_and_folded_ids_match() {
        let a = Fingerprint::of(&meta(
            10,
            "02-Jan-2015 10:00:00 +0100",
            Some("Message-ID: <a@b>\r\n\r\n"),
        ));
        let b = Fingerprint::of(&meta(
            10,
            "02-Jan-2015 09:00:00 +0000",
            Some("Message-Id:\r\n <a@b>\r\n\r\n"),
        ));
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        let c = Fingerprint::of(&meta(
            11,
            "02-Jan-2015 09:00:00 +0000",
            Some("Message-Id: <a@b>\r\n"),
        ));
        assert_ne!(a, c);
        let none = Fingerprint::of(&meta(10, "02-Jan-2015 09:00:00 +0000", Some("\r\n")));
        assert_eq!(none.message_id, None);
    }
}
