//! FETCH responses, parsed by hand (RFC 3501 §7.4.2, RFC 7162 MODSEQ), and the reassembly of
//! a message fetched in partial ranges (`BODY.PEEK[]<offset.length>`).

use bytes::Bytes;

use crate::parse::{Cursor, ParseError};

/// The items of one FETCH response that a migration uses; others are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// Message sequence number.
    pub seq: u32,
    pub uid: Option<crate::Uid>,
    /// Flags and keywords as the server spells them (`\Seen`, `$Forwarded`).
    pub flags: Option<Vec<String>>,
    /// INTERNALDATE as sent: `"17-Jul-1996 02:44:25 -0700"` without quotes.
    pub internal_date: Option<String>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    pub modseq: Option<u64>,
    /// BODY[...] sections, in order.
    pub sections: Vec<Section>,
}

/// One `BODY[spec]<origin>` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What is between the brackets, upper-cased: `""`, `"HEADER"`, `"HEADER.FIELDS (MESSAGE-ID)"`.
    pub spec: String,
    /// Where a partial range starts, when one was asked for.
    pub origin: Option<u64>,
    /// The bytes; `None` when the server sent NIL.
    pub data: Option<Bytes>,
}

impl Fetch {
    /// The data of the section with this spec (`""` for the whole message).
    pub fn section(&self, spec: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.spec.eq_ignore_ascii_case(spec))
    }
}

/// Parses what follows `* <seq> FETCH`.
pub(crate) fn parse_fetch(cursor: &mut Cursor, seq: u32) -> Result<Fetch, ParseError> {
    let mut fetch = Fetch {
        seq,
        ..Fetch::default()
    };
    cursor.expect(b' ', "a space after FETCH")?;
    cursor.expect(b'(', "`(` opening the FETCH items")?;
    loop {
        cursor.skip_spaces();
        if cursor.eat(b')') {
            return Ok(fetch);
        }
        let name = cursor.atom().to_ascii_uppercase();
        if name.is_empty() {
            return Err(cursor.error("a FETCH item name"));
        }
        match name.as_slice() {
            b"BODY" | b"BINARY" | b"BINARY.PEEK" | b"BODY.PEEK" | b"RFC822" | b"RFC822.HEADER"
            | b"RFC822.TEXT"
                if cursor.peek() == Some(b'[') || name.starts_with(b"RFC822") =>
            {
                let spec = if cursor.eat(b'[') {
                    let rest = cursor.rest();
                    let close = rest
                        .iter()
                        .position(|&b| b == b']')
                        .ok_or_else(|| cursor.error("`]`"))?;
                    let spec = String::from_utf8_lossy(&rest[..close]).to_ascii_uppercase();
                    cursor.pos += close + 1;
                    spec
                } else {
                    match name.as_slice() {
                        b"RFC822.HEADER" => "HEADER".to_string(),
                        b"RFC822.TEXT" => "TEXT".to_string(),
                        _ => String::new(),
                    }
                };
                let origin = if cursor.eat(b'<') {
                    let origin = cursor.number()?;
                    cursor.expect(b'>', "`>` closing a partial origin")?;
                    Some(origin)
                } else {
                    None
                };
                cursor.expect(b' ', "a space before section data")?;
                let data = cursor.nstring()?;
                fetch.sections.push(Section { spec, origin, data });
            }
            b"UID" => {
                cursor.expect(b' ', "a space after UID")?;
                fetch.uid = Some(
                    u32::try_from(cursor.number()?)
                        .ok()
                        .and_then(crate::Uid::new)
                        .ok_or_else(|| cursor.error("a UID (1 to 4294967295)"))?,
                );
            }
            b"FLAGS" => {
                cursor.expect(b' ', "a space after FLAGS")?;
                fetch.flags = Some(cursor.atom_list()?);
            }
            b"INTERNALDATE" => {
                cursor.expect(b' ', "a space after INTERNALDATE")?;
                fetch.internal_date = Some(String::from_utf8_lossy(&cursor.quoted()?).into_owned());
            }
            b"RFC822.SIZE" => {
                cursor.expect(b' ', "a space after RFC822.SIZE")?;
                fetch.size = Some(cursor.number()?);
            }
            b"MODSEQ" => {
                cursor.expect(b' ', "a space after MODSEQ")?;
                cursor.expect(b'(', "`(` after MODSEQ")?;
                fetch.modseq = Some(cursor.number()?);
                cursor.expect(b')', "`)` after the MODSEQ value")?;
            }
            _ => {
                // BODYSTRUCTURE, ENVELOPE, X-GM-*, EMAILID, ...: not ours; skip the value.
                cursor.expect(b' ', "a space after a FETCH item name")?;
                cursor.skip_value()?;
            }
        }
    }
}

/// Puts a message fetched as partial ranges back together, checking that the ranges follow
/// each other without a gap or an overlap.
#[derive(Debug)]
pub struct PartialAssembler<W> {
    sink: W,
    next: u64,
    expected: Option<u64>,
}

/// A partial response that does not continue the message where the last one ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartialError {
    #[error("a partial FETCH answered for offset {got} where offset {expected} was next")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("the message ended at {got} bytes, but the server announced {expected}")]
    Length { expected: u64, got: u64 },
}

impl<W: std::io::Write> PartialAssembler<W> {
    /// `expected`: the size the server announced (RFC822.SIZE), if known.
    pub fn new(sink: W, expected: Option<u64>) -> Self {
        Self {
            sink,
            next: 0,
            expected,
        }
    }

    /// Offset of the next byte wanted.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Adds a range; returns whether the message is complete: the range came back shorter
    /// than asked (`requested`), which is how a server says "the end".
    pub fn push(
        &mut self,
        origin: u64,
        data: &[u8],
        requested: u64,
    ) -> Result<bool, std::io::Error> {
        if origin != self.next {
            return Err(std::io::Error::other(PartialError::OutOfOrder {
                expected: self.next,
                got: origin,
            }));
        }
        self.sink.write_all(data)?;
        self.next += data.len() as u64;
        let done = (data.len() as u64) < requested || self.expected == Some(self.next);
        Ok(done)
    }

    /// Ends the message, checking its length against the announced size.
    pub fn finish(self) -> Result<W, std::io::Error> {
        match self.expected {
            Some(expected) if expected != self.next => {
                Err(std::io::Error::other(PartialError::Length {
                    expected,
                    got: self.next,
                }))
            }
            _ => Ok(self.sink),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{parse_response, Response, Untagged};

    fn fetch_of(raw: &[u8]) -> Fetch {
        match parse_response(Bytes::copy_from_slice(raw)).unwrap() {
            Response::Untagged(Untagged::Fetch(f)) => *f,
            other => panic!("not a FETCH: {other:?}"),
        }
    }

    #[test]
    fn metadata_items() {
        let f = fetch_of(b"* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 MODSEQ (12121231000))\r\n");
        assert_eq!(f.seq, 12);
        assert_eq!(f.uid.map(crate::Uid::get), Some(4_827_313));
        assert_eq!(
            f.flags,
            Some(vec!["\\Seen".to_string(), "$Forwarded".to_string()])
        );
        assert_eq!(
            f.internal_date.as_deref(),
            Some("17-Jul-1996 02:44:25 -0700")
        );
        assert_eq!(f.size, Some(4286));
        assert_eq!(f.modseq, Some(12_121_231_000));
    }

    #[test]
    fn body_with_nul_and_partial_and_header_fields() {
        let f = fetch_of(b"* 1 FETCH (UID 7 BODY[]<1024> {5}\r\na\x00b)\r BODY[HEADER.FIELDS (MESSAGE-ID)] {20}\r\nMessage-ID: <x@y>\r\n\r FLAGS ())\r\n");
        assert_eq!(f.sections.len(), 2);
        assert_eq!(f.sections[0].origin, Some(1024));
        assert_eq!(
            f.section("").unwrap().data.as_deref(),
            Some(&b"a\x00b)\r"[..])
        );
        assert_eq!(
            f.section("HEADER.FIELDS (MESSAGE-ID)")
                .unwrap()
                .data
                .as_deref(),
            Some(&b"Message-ID: <x@y>\r\n\r"[..])
        );
        assert_eq!(f.flags, Some(vec![]));
    }

    #[test]
    fn skips_items_we_do_not_use() {
        let f = fetch_of(b"* 3 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL) X-GM-LABELS (\\Inbox \"a b\") UID 9 BODY[] NIL)\r\n");
        assert_eq!(f.uid.map(crate::Uid::get), Some(9));
        assert_eq!(f.section("").unwrap().data, None);
    }

    #[test]
    fn partial_reassembly() {
        let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let chunk = 4096u64;
        let mut assembler = PartialAssembler::new(Vec::new(), Some(message.len() as u64));
        let mut offset = 0u64;
        loop {
            let end = (offset + chunk).min(message.len() as u64);
            let done = assembler
                .push(offset, &message[offset as usize..end as usize], chunk)
                .unwrap();
            offset = end;
            if done {
                break;
            }
        }
        assert_eq!(assembler.finish().unwrap(), message);

        let mut gap = PartialAssembler::new(Vec::new(), None);
        gap.push(0, b"abc", 3).unwrap();
        assert!(gap.push(4, b"e", 3).is_err());

        let mut short = PartialAssembler::new(Vec::new(), Some(10));
        assert!(short.push(0, b"abc", 5).unwrap());
        assert!(short.finish().is_err());
    }
}
