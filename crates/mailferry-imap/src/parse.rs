//! A small cursor over one framed response, for the parts we parse by hand: status lines
//! with their response codes, and FETCH (whose bodies may hold any byte, NUL included, and
//! must not be copied more than once).

use bytes::Bytes;

/// A malformed response: what we expected and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed server response: expected {expected} at byte {at} of `{excerpt}`")]
pub struct ParseError {
    pub expected: &'static str,
    pub at: usize,
    pub excerpt: String,
}

pub(crate) struct Cursor {
    pub(crate) bytes: Bytes,
    pub(crate) pos: usize,
}

impl Cursor {
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn error(&self, expected: &'static str) -> ParseError {
        let end = self.bytes.len().min(160);
        ParseError {
            expected,
            at: self.pos,
            excerpt: String::from_utf8_lossy(&self.bytes[..end])
                .trim_end()
                .to_string(),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn rest(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ParseError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    pub(crate) fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Characters up to a space, parenthesis, bracket or line end. Brackets are allowed inside
    /// when `brackets` (FETCH item names such as `BODY[HEADER.FIELDS (X)]` are read apart).
    pub(crate) fn atom(&mut self) -> &[u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(
                b,
                b' ' | b'(' | b')' | b'[' | b']' | b'\r' | b'\n' | b'{' | b'"'
            ) {
                break;
            }
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }

    pub(crate) fn number(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.error("a number"))
    }

    /// A quoted string, unescaped.
    pub(crate) fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => {
                    return Err(self.error("the end of a quoted string"))
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error("an escaped character"))?;
                    out.push(escaped);
                    self.pos += 1;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal `{N}\r\n` + N bytes, `~{N}` accepted too; returned without copying.
    pub(crate) fn literal(&mut self) -> Result<Bytes, ParseError> {
        self.eat(b'~');
        self.expect(b'{', "a literal")?;
        let length = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}', "`}` closing a literal length")?;
        self.eat(b'\r');
        self.expect(b'\n', "a line end after a literal length")?;
        // A hostile length (near usize::MAX) must not wrap around (issue 19).
        let end = match self.pos.checked_add(length) {
            Some(end) if end <= self.bytes.len() => end,
            _ => return Err(self.error("literal bytes")),
        };
        let data = self.bytes.slice(self.pos..end);
        self.pos = end;
        Ok(data)
    }

    /// NIL, a quoted string or a literal.
    pub(crate) fn nstring(&mut self) -> Result<Option<Bytes>, ParseError> {
        match self.peek() {
            Some(b'"') => Ok(Some(Bytes::from(self.quoted()?))),
            Some(b'{') | Some(b'~') => Ok(Some(self.literal()?)),
            _ => {
                let atom = self.atom();
                if atom.eq_ignore_ascii_case(b"NIL") {
                    Ok(None)
                } else {
                    Err(self.error("NIL, a quoted string or a literal"))
                }
            }
        }
    }

    /// Skips any value: atom, number, string, literal, or a parenthesised list of values.
    pub(crate) fn skip_value(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        None => return Err(self.error("`)`")),
                        _ => self.skip_value()?,
                    }
                }
            }
            Some(b'"') => self.quoted().map(drop),
            Some(b'{') | Some(b'~') => self.literal().map(drop),
            Some(b'[') => {
                while let Some(b) = self.peek() {
                    self.pos += 1;
                    if b == b']' {
                        return Ok(());
                    }
                }
                Err(self.error("`]`"))
            }
            _ => {
                if self.atom().is_empty() {
                    Err(self.error("a value"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A parenthesised list of atoms, such as FLAGS.
    pub(crate) fn atom_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(b'(', "`(` opening a list")?;
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat(b')') {
                return Ok(items);
            }
            // `\*` in PERMANENTFLAGS is an atom with a star; accept any run of atom bytes.
            let start = self.pos;
            while let Some(b) = self.peek() {
                if matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n') {
                    break;
                }
                self.pos += 1;
            }
            if start == self.pos {
                return Err(self.error("a list item or `)`"));
            }
            items.push(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned());
        }
    }
}
