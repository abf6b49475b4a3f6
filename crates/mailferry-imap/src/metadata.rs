//! IMAP METADATA (RFC 5464): annotations of folders (`/private/comment`,
//! `/shared/vendor/kolab/folder-type`, `/private/specialuse` ...) and of the server (the
//! empty mailbox name). GETMETADATA reads every entry under `/private` and `/shared`;
//! SETMETADATA writes one entry, its value quoted when it is short text, else as a literal.
//! ANNOTATEMORE (the draft Cyrus and Kolab 2 spoke before RFC 5464) is not implemented.

use bytes::Bytes;

use crate::error::ImapError;
use crate::parse::{Cursor, ParseError};
use crate::response::{StatusKind, Untagged};
use crate::session::{quote, Session};

/// One annotation: its entry name and value (`None`: the entry is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    pub name: String,
    pub value: Option<Vec<u8>>,
}

/// Whether a SETMETADATA was taken, or what the server said when it was not (`[METADATA
/// TOOMANY]`, `[METADATA MAXSIZE n]`, `[METADATA NOPRIVATE]`, permission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    Stored,
    Refused(String),
}

/// Parses the rest of `* METADATA mailbox (entry value ...)` after the word METADATA.
pub(crate) fn parse_metadata(cursor: &mut Cursor) -> Result<Untagged, ParseError> {
    cursor.skip_spaces();
    let raw_name = astring(cursor)?.to_vec();
    cursor.skip_spaces();
    let mut entries = Vec::new();
    if cursor.eat(b'(') {
        loop {
            cursor.skip_spaces();
            if cursor.eat(b')') {
                break;
            }
            let name = String::from_utf8_lossy(&astring(cursor)?).into_owned();
            cursor.skip_spaces();
            let value = cursor.nstring()?.map(|b| b.to_vec());
            entries.push(MetadataEntry { name, value });
        }
    } else {
        // Unsolicited form (entry names only, RFC 5464 §4.4.2): nothing to copy.
        while !cursor.rest().is_empty() && !matches!(cursor.peek(), Some(b'\r' | b'\n')) {
            let name = String::from_utf8_lossy(&astring(cursor)?).into_owned();
            entries.push(MetadataEntry { name, value: None });
            cursor.skip_spaces();
        }
    }
    Ok(Untagged::Metadata { raw_name, entries })
}

fn astring(cursor: &mut Cursor) -> Result<Bytes, ParseError> {
    match cursor.peek() {
        Some(b'"') => Ok(Bytes::from(cursor.quoted()?)),
        Some(b'{') | Some(b'~') => cursor.literal(),
        _ => {
            let atom = cursor.atom();
            if atom.is_empty() {
                Err(cursor.error("a mailbox or entry name"))
            } else {
                Ok(Bytes::copy_from_slice(atom))
            }
        }
    }
}

impl Session {
    /// Whether the server speaks METADATA (folder annotations) at all.
    pub fn has_metadata(&self) -> bool {
        self.capabilities().has("METADATA")
    }

    /// Every annotation of a folder (or of the server, with `b""`) under `/private` and
    /// `/shared`, at any depth; entries without a value are left out.
    pub async fn get_metadata(&mut self, raw_name: &[u8]) -> Result<Vec<MetadataEntry>, ImapError> {
        let mut all = self.get_metadata_many(&[raw_name]).await?;
        all.pop().unwrap_or_else(|| Ok(Vec::new()))
    }

    /// [`Session::get_metadata`] of many folders in one round trip (pipelined), an answer
    /// per folder in order: a NO for one folder (it does not exist) is that folder's error.
    pub async fn get_metadata_many(
        &mut self,
        raw_names: &[&[u8]],
    ) -> Result<Vec<Result<Vec<MetadataEntry>, ImapError>>, ImapError> {
        let mut tags = Vec::with_capacity(raw_names.len());
        for raw_name in raw_names {
            let line = [
                b"GETMETADATA (DEPTH infinity) ".as_slice(),
                &quote(raw_name),
                b" (/private /shared)\r\n",
            ]
            .concat();
            tags.push(self.send(&line).await?);
        }
        let mut out = Vec::with_capacity(raw_names.len());
        for (tag, raw_name) in tags.iter().zip(raw_names) {
            let done = self.wait(tag).await?;
            if done.status.kind != StatusKind::Ok {
                out.push(Err(ImapError::command(
                    self.addr().to_string(),
                    "GETMETADATA",
                    done.status,
                )));
                continue;
            }
            let mut entries = Vec::new();
            for item in done.data {
                if let Untagged::Metadata {
                    raw_name: name,
                    entries: found,
                } = item
                {
                    if name == *raw_name {
                        entries.extend(found.into_iter().filter(|e| e.value.is_some()));
                    }
                }
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            out.push(Ok(entries));
        }
        Ok(out)
    }

    /// Writes one annotation of a folder; a refusal is an answer, not an error.
    pub async fn set_metadata(
        &mut self,
        raw_name: &[u8],
        entry: &MetadataEntry,
    ) -> Result<SetOutcome, ImapError> {
        let mut line = [b"SETMETADATA ".as_slice(), &quote(raw_name), b" ("].concat();
        line.extend_from_slice(&quote(entry.name.as_bytes()));
        line.push(b' ');
        let literal = match &entry.value {
            None => {
                line.extend_from_slice(b"NIL)\r\n");
                None
            }
            Some(value)
                if value.len() < 1024
                    && value
                        .iter()
                        .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80) =>
            {
                line.extend_from_slice(&quote(value));
                line.extend_from_slice(b")\r\n");
                None
            }
            Some(value) => Some(value.clone()),
        };
        let done = match literal {
            None => self.run("SETMETADATA", &line).await?,
            Some(value) => {
                if !self.capabilities().has("LITERAL+") && !self.capabilities().has("LITERAL-") {
                    return Ok(SetOutcome::Refused(
                        "the value holds line breaks or 8-bit text and the server takes no \
                         LITERAL+; it was not sent"
                            .into(),
                    ));
                }
                line.extend_from_slice(format!("{{{}+}}\r\n", value.len()).as_bytes());
                line.extend_from_slice(&value);
                line.extend_from_slice(b")\r\n");
                self.run("SETMETADATA", &line).await?
            }
        };
        match done.status.kind {
            StatusKind::Ok => Ok(SetOutcome::Stored),
            StatusKind::No => Ok(SetOutcome::Refused(done.status.said())),
            _ => Err(ImapError::command(
                self.addr().to_string(),
                "SETMETADATA",
                done.status,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{parse_response, Response};

    fn untagged(line: &[u8]) -> Untagged {
        match parse_response(Bytes::copy_from_slice(line)).unwrap() {
            Response::Untagged(u) => u,
            other => panic!("not untagged: {other:?}"),
        }
    }

    #[test]
    fn metadata_answers_parse_with_quoted_literal_and_nil_values() {
        let u = untagged(
            b"* METADATA \"INBOX.Work\" (/private/comment {7}\r\nab\r\ncd! /shared/vendor/kolab/folder-type \"event\" /private/x NIL)\r\n",
        );
        let Untagged::Metadata { raw_name, entries } = u else {
            panic!("{u:?}")
        };
        assert_eq!(raw_name, b"INBOX.Work");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].name, "/private/comment");
        assert_eq!(entries[0].value.as_deref(), Some(&b"ab\r\ncd!"[..]));
        assert_eq!(entries[1].value.as_deref(), Some(&b"event"[..]));
        assert_eq!(entries[2].value, None);
        let Untagged::Metadata { raw_name, entries } =
            untagged(b"* METADATA INBOX /shared/comment\r\n")
        else {
            panic!()
        };
        assert_eq!(raw_name, b"INBOX");
        assert_eq!(entries[0].name, "/shared/comment");
    }

    #[test]
    fn broken_metadata_answers_are_errors_not_panics() {
        for line in [
            &b"* METADATA \"INBOX (/a\r\n"[..],
            b"* METADATA INBOX (/a {99}\r\nx)\r\n",
            b"* METADATA INBOX (/a\r\n",
        ] {
            assert!(parse_response(Bytes::copy_from_slice(line)).is_err());
        }
    }
}
