//! The ManageSieve response grammar (RFC 5804, section 4), without any I/O.
//!
//! [`parse_response`] looks at the bytes received so far and returns either one whole
//! response and how many bytes it took, or `None` when more bytes are needed (also when a
//! literal has been announced but has not fully arrived). It starts from the beginning of
//! the buffer each time, so feeding a response one byte at a time gives the same result as
//! feeding it at once.
//!
//! A response is one of:
//! - a data line of strings and atoms ([`Response::Line`]): a capability
//!   (`"SIEVE" "fileinto reject"`), a script of LISTSCRIPTS (`"name" ACTIVE`), the literal of
//!   GETSCRIPT (`{12}\r\n<bytes>`), or a SASL challenge (`"base64"`);
//! - a completion ([`Response::Done`]): `OK` / `NO` / `BYE`, an optional response code
//!   (`(QUOTA/MAXSIZE)`, `(TAG "x")`, `(SASL "...")`), and an optional human text, quoted or
//!   a literal (Dovecot sends the errors of a bad script as a multi-line literal).
//!
//! Server input is never trusted: a line (literals excluded) longer than [`MAX_LINE`], a
//! literal longer than [`MAX_LITERAL`] or a response longer than [`MAX_RESPONSE`] is
//! [`ParseError::TooBig`], decided before anything that large is allocated.

use std::fmt;

/// The longest line, literals not counted.
pub const MAX_LINE: usize = 64 * 1024;
/// The longest literal (a script or a message) the server may send.
pub const MAX_LITERAL: usize = 8 * 1024 * 1024;
/// The longest whole response: one full literal plus a few lines.
pub const MAX_RESPONSE: usize = MAX_LITERAL + 4 * MAX_LINE;

/// Why the bytes are not a ManageSieve response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A line, literal or response exceeds `limit` bytes.
    TooBig { limit: usize },
    /// Not the ManageSieve grammar; `detail` says where and what.
    Syntax { detail: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooBig { limit } => write!(f, "a response exceeds {limit} bytes"),
            ParseError::Syntax { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for ParseError {}

/// One element of a data line or a response code's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A bare word: `ACTIVE`, a number, a URL.
    Atom(String),
    /// A quoted string (unescaped) or a literal, as bytes.
    String(Vec<u8>),
    /// A parenthesised list inside a response code.
    List(Vec<Item>),
}

impl Item {
    /// The bytes of a string, `None` for an atom or list.
    pub fn as_string(&self) -> Option<&[u8]> {
        match self {
            Item::String(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The text of a string or atom (lossy UTF-8), `None` for a list.
    pub fn text(&self) -> Option<String> {
        match self {
            Item::String(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Item::Atom(atom) => Some(atom.clone()),
            Item::List(_) => None,
        }
    }
}

/// `OK`, `NO` or `BYE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bye,
}

/// A response code: `(QUOTA/MAXSIZE)` is name `QUOTA/MAXSIZE` (uppercased) without
/// arguments, `(SASL "abc")` is `SASL` with one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub name: String,
    pub args: Vec<Item>,
}

/// The completion of a command (or of the greeting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub status: Status,
    pub code: Option<Code>,
    /// The human-readable text, lossy UTF-8.
    pub text: Option<String>,
}

/// One whole server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A data line: strings, literals, atoms.
    Line(Vec<Item>),
    /// `OK` / `NO` / `BYE`.
    Done(Done),
}

/// Parses one response from the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the response and the number of bytes it took.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, ParseError> {
    let mut cursor = Cursor {
        buf,
        pos: 0,
        line_start: 0,
    };
    match cursor.response() {
        Ok(response) => {
            if cursor.pos > MAX_RESPONSE {
                return Err(ParseError::TooBig {
                    limit: MAX_RESPONSE,
                });
            }
            Ok(Some((response, cursor.pos)))
        }
        Err(Stop::Incomplete { in_line }) => {
            if in_line && buf.len() - cursor.line_start > MAX_LINE {
                return Err(ParseError::TooBig { limit: MAX_LINE });
            }
            if buf.len() > MAX_RESPONSE {
                return Err(ParseError::TooBig {
                    limit: MAX_RESPONSE,
                });
            }
            Ok(None)
        }
        Err(Stop::Error(e)) => Err(e),
    }
}

enum Stop {
    /// More bytes are needed; `in_line` when waiting inside a line rather than a literal.
    Incomplete {
        in_line: bool,
    },
    Error(ParseError),
}

type Res<T> = Result<T, Stop>;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the current line began (after the last literal's data).
    line_start: usize,
}

fn is_atom_byte(b: u8) -> bool {
    !matches!(b, b' ' | b'\r' | b'\n' | b'(' | b')' | b'"' | b'{' | 0)
}

impl Cursor<'_> {
    fn error<T>(&self, what: &str) -> Res<T> {
        let near = String::from_utf8_lossy(&self.buf[self.pos..self.buf.len().min(self.pos + 40)])
            .escape_debug()
            .to_string();
        Err(Stop::Error(ParseError::Syntax {
            detail: format!("{what} at byte {} (near \"{near}\")", self.pos),
        }))
    }

    /// The next byte without taking it; incomplete at the end of the buffer.
    fn peek(&self) -> Res<u8> {
        if self.pos - self.line_start > MAX_LINE {
            return Err(Stop::Error(ParseError::TooBig { limit: MAX_LINE }));
        }
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(Stop::Incomplete { in_line: true })
    }

    fn response(&mut self) -> Res<Response> {
        let first = self.peek()?;
        if is_atom_byte(first) {
            let start = self.pos;
            let atom = self.atom()?;
            let status = match atom.to_ascii_uppercase().as_str() {
                "OK" => Some(Status::Ok),
                "NO" => Some(Status::No),
                "BYE" => Some(Status::Bye),
                _ => None,
            };
            if let Some(status) = status {
                return self.done(status).map(Response::Done);
            }
            self.pos = start;
        }
        let mut items = Vec::new();
        loop {
            let b = self.peek()?;
            match b {
                b'\r' | b'\n' => {
                    self.line_end()?;
                    break;
                }
                b' ' if !items.is_empty() => {
                    self.pos += 1;
                }
                _ if items.is_empty() || self.buf[self.pos - 1] == b' ' => {
                    items.push(self.item()?);
                }
                _ => return self.error("expected a space between items"),
            }
        }
        if items.is_empty() {
            return self.error("empty line");
        }
        Ok(Response::Line(items))
    }

    /// After `OK`/`NO`/`BYE`: `[SP "(" code ")"] [SP text] CRLF`.
    fn done(&mut self, status: Status) -> Res<Done> {
        let mut code = None;
        let mut text = None;
        if self.peek()? == b' ' {
            self.pos += 1;
            if self.peek()? == b'(' {
                self.pos += 1;
                code = Some(self.code()?);
                if self.peek()? == b' ' {
                    self.pos += 1;
                }
            }
            match self.peek()? {
                b'\r' | b'\n' => {}
                b'"' | b'{' => text = Some(lossy(self.string()?)),
                // Not the grammar, but some servers put bare words here: keep them as text.
                _ => {
                    let start = self.pos;
                    while !matches!(self.peek()?, b'\r' | b'\n') {
                        self.pos += 1;
                    }
                    text = Some(lossy(self.buf[start..self.pos].to_vec()));
                }
            }
        }
        self.line_end()?;
        Ok(Done { status, code, text })
    }

    /// Inside `( ... )`: name, then arguments up to the closing parenthesis.
    fn code(&mut self) -> Res<Code> {
        if !is_atom_byte(self.peek()?) {
            return self.error("expected a response code name");
        }
        let name = self.atom()?.to_ascii_uppercase();
        let args = self.list_rest()?;
        Ok(Code { name, args })
    }

    /// Items separated by spaces up to and including `)`.
    fn list_rest(&mut self) -> Res<Vec<Item>> {
        let mut args = Vec::new();
        loop {
            match self.peek()? {
                b')' => {
                    self.pos += 1;
                    return Ok(args);
                }
                b' ' => self.pos += 1,
                b'\r' | b'\n' => return self.error("unclosed response code"),
                _ => args.push(self.item()?),
            }
        }
    }

    fn item(&mut self) -> Res<Item> {
        match self.peek()? {
            b'"' | b'{' => self.string().map(Item::String),
            b'(' => {
                self.pos += 1;
                self.list_rest().map(Item::List)
            }
            b if is_atom_byte(b) => self.atom().map(Item::Atom),
            _ => self.error("unexpected character"),
        }
    }

    fn atom(&mut self) -> Res<String> {
        let start = self.pos;
        while is_atom_byte(self.peek()?) {
            self.pos += 1;
        }
        Ok(lossy(self.buf[start..self.pos].to_vec()))
    }

    fn string(&mut self) -> Res<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => self.error("expected a string"),
        }
    }

    fn quoted(&mut self) -> Res<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let escaped = self.peek()?;
                    if matches!(escaped, b'\r' | b'\n') {
                        self.pos -= 1;
                        return self.error("line break inside a quoted string");
                    }
                    self.pos += 1;
                    out.push(escaped);
                }
                b'\r' | b'\n' => {
                    self.pos -= 1;
                    return self.error("line break inside a quoted string");
                }
                _ => out.push(b),
            }
        }
    }

    /// `{n}` or `{n+}`, CRLF, then `n` bytes.
    fn literal(&mut self) -> Res<Vec<u8>> {
        self.pos += 1;
        let mut len: usize = 0;
        let mut digits = 0;
        while self.peek()?.is_ascii_digit() {
            len = len * 10 + usize::from(self.peek()? - b'0');
            digits += 1;
            self.pos += 1;
            if len > MAX_LITERAL {
                return Err(Stop::Error(ParseError::TooBig { limit: MAX_LITERAL }));
            }
        }
        if digits == 0 {
            return self.error("expected the length of a literal");
        }
        if self.peek()? == b'+' {
            self.pos += 1;
        }
        if self.peek()? != b'}' {
            return self.error("expected `}` after the length of a literal");
        }
        self.pos += 1;
        self.line_end()?;
        // The literal's data is not part of any line.
        let start = self.pos;
        let end = start + len;
        if end > MAX_RESPONSE {
            return Err(Stop::Error(ParseError::TooBig {
                limit: MAX_RESPONSE,
            }));
        }
        if self.buf.len() < end {
            return Err(Stop::Incomplete { in_line: false });
        }
        self.pos = end;
        self.line_start = end;
        Ok(self.buf[start..end].to_vec())
    }

    /// CRLF, or a bare LF from a lenient server.
    fn line_end(&mut self) -> Res<()> {
        match self.peek()? {
            b'\n' => {
                self.pos += 1;
            }
            b'\r' => {
                self.pos += 1;
                if self.peek()? != b'\n' {
                    return self.error("carriage return without line feed");
                }
                self.pos += 1;
            }
            _ => return self.error("expected the end of the line"),
        }
        self.line_start = self.pos;
        Ok(())
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Item {
        Item::String(text.as_bytes().to_vec())
    }

    fn a(text: &str) -> Item {
        Item::Atom(text.into())
    }

    /// Parses all of `input` as a sequence of responses, checking that feeding it one byte
    /// at a time gives the same responses.
    fn all(input: &[u8]) -> Vec<Response> {
        let mut whole = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let (response, used) = parse_response(&input[pos..])
                .unwrap_or_else(|e| panic!("{e}"))
                .expect("complete");
            whole.push(response);
            pos += used;
        }
        let mut fed = Vec::new();
        let mut buf = Vec::new();
        for &b in input {
            buf.push(b);
            if let Some((response, used)) = parse_response(&buf).unwrap() {
                fed.push(response);
                buf.drain(..used);
            }
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        assert_eq!(whole, fed, "byte-by-byte parsing differs");
        whole
    }

    fn done(status: Status, code: Option<(&str, Vec<Item>)>, text: Option<&str>) -> Response {
        Response::Done(Done {
            status,
            code: code.map(|(name, args)| Code {
                name: name.into(),
                args,
            }),
            text: text.map(str::to_string),
        })
    }

    #[test]
    fn dovecot_greeting() {
        let greeting = b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\
\"SIEVE\" \"fileinto reject envelope\"\r\n\
\"NOTIFY\" \"mailto\"\r\n\
\"SASL\" \"PLAIN LOGIN\"\r\n\
\"STARTTLS\"\r\n\
\"VERSION\" \"1.0\"\r\n\
OK \"Dovecot ready.\"\r\n";
        let responses = all(greeting);
        assert_eq!(responses.len(), 7);
        assert_eq!(
            responses[0],
            Response::Line(vec![s("IMPLEMENTATION"), s("Dovecot Pigeonhole")])
        );
        assert_eq!(responses[4], Response::Line(vec![s("STARTTLS")]));
        assert_eq!(responses[6], done(Status::Ok, None, Some("Dovecot ready.")));
    }

    #[test]
    fn list_entries_with_literal_names() {
        let responses = all(b"\"summer\"\r\n\"main\" ACTIVE\r\n{6}\r\nwin\r\nt\r\nOK\r\n");
        assert_eq!(
            responses,
            vec![
                Response::Line(vec![s("summer")]),
                Response::Line(vec![s("main"), a("ACTIVE")]),
                Response::Line(vec![s("win\r\nt")]),
                done(Status::Ok, None, None),
            ]
        );
    }

    #[test]
    fn getscript_literal() {
        let responses = all(b"{20}\r\nrequire \"fileinto\";\n\r\nOK \"Getscript completed.\"\r\n");
        assert_eq!(
            responses[0],
            Response::Line(vec![s("require \"fileinto\";\n")])
        );
        assert_eq!(
            responses[1],
            done(Status::Ok, None, Some("Getscript completed."))
        );
    }

    #[test]
    fn quoted_escapes() {
        let responses = all(b"\"a\\\"b\\\\c\" \"\xc3\xa9\"\r\n");
        assert_eq!(responses[0], Response::Line(vec![s("a\"b\\c"), s("é")]));
    }

    #[test]
    fn codes() {
        assert_eq!(
            all(b"NO (QUOTA/MAXSCRIPTS) \"Too many scripts.\"\r\n")[0],
            done(
                Status::No,
                Some(("QUOTA/MAXSCRIPTS", vec![])),
                Some("Too many scripts.")
            )
        );
        assert_eq!(
            all(b"no (nonexistent) \"There is no script.\"\r\n")[0],
            done(
                Status::No,
                Some(("NONEXISTENT", vec![])),
                Some("There is no script.")
            )
        );
        assert_eq!(
            all(b"OK (TAG \"x1\") \"Done.\"\r\n")[0],
            done(Status::Ok, Some(("TAG", vec![s("x1")])), Some("Done."))
        );
        assert_eq!(
            all(b"OK (SASL \"dj1hYmM=\")\r\n")[0],
            done(Status::Ok, Some(("SASL", vec![s("dj1hYmM=")])), None)
        );
        assert_eq!(
            all(b"BYE (REFERRAL sieve://other.example.org) \"Go away.\"\r\n")[0],
            done(
                Status::Bye,
                Some(("REFERRAL", vec![a("sieve://other.example.org")])),
                Some("Go away.")
            )
        );
        assert_eq!(
            all(b"NO (X-THING 1 (a \"b\")) \"x\"\r\n")[0],
            done(
                Status::No,
                Some(("X-THING", vec![a("1"), Item::List(vec![a("a"), s("b")])])),
                Some("x")
            )
        );
        assert_eq!(
            all(b"OK (WARNINGS) \"line 3: warning: x\"\r\n")[0],
            done(
                Status::Ok,
                Some(("WARNINGS", vec![])),
                Some("line 3: warning: x")
            )
        );
        assert_eq!(
            all(b"NO (TRYLATER)\r\n")[0],
            done(Status::No, Some(("TRYLATER", vec![])), None)
        );
    }

    #[test]
    fn literal_text_in_no() {
        let text = "line 1: error: unknown extension.\r\nline 2: error: oops.\r\n";
        let input = format!("NO {{{}}}\r\n{text}\r\n", text.len());
        assert_eq!(all(input.as_bytes())[0], done(Status::No, None, Some(text)));
        let input = format!("NO (QUOTA) {{{}+}}\r\n{text}\r\n", text.len());
        assert_eq!(
            all(input.as_bytes())[0],
            done(Status::No, Some(("QUOTA", vec![])), Some(text))
        );
    }

    #[test]
    fn bare_words_after_status_are_text() {
        assert_eq!(
            all(b"OK Logged in now\r\n")[0],
            done(Status::Ok, None, Some("Logged in now"))
        );
    }

    #[test]
    fn lone_line_feed_ends_a_line() {
        assert_eq!(all(b"OK \"x\"\n")[0], done(Status::Ok, None, Some("x")));
    }

    #[test]
    fn incomplete_at_every_split() {
        let input: &[u8] =
            b"\"main\" ACTIVE\r\n{5}\r\nab\r\nc\r\nNO (TAG {2}\r\nxy) {3}\r\nabc\r\nOK\r\n";
        let expected = all(input);
        // The first response needs its whole line; shorter prefixes are incomplete.
        for cut in 0..15 {
            assert_eq!(parse_response(&input[..cut]).unwrap(), None, "cut {cut}");
        }
        assert_eq!(expected.len(), 4);
        assert_eq!(
            expected[2],
            done(Status::No, Some(("TAG", vec![s("xy")])), Some("abc"))
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            &b"\r\n"[..],
            b"OK \"unterminated\r\n",
            b"\"a\"\"b\"\r\n",
            b"{x}\r\n",
            b"{3\r\n",
            b"OK (\r\n",
            b"OK \"a\" \r\x00",
            b")\r\n",
        ] {
            assert!(
                matches!(parse_response(bad), Err(ParseError::Syntax { .. })),
                "{:?} should be a syntax error, got {:?}",
                String::from_utf8_lossy(bad),
                parse_response(bad)
            );
        }
    }

    #[test]
    fn bounds() {
        let big = format!("{{{}}}\r\n", MAX_LITERAL + 1);
        assert_eq!(
            parse_response(big.as_bytes()),
            Err(ParseError::TooBig { limit: MAX_LITERAL })
        );
        assert_eq!(
            parse_response(b"{99999999999999999999999}\r\n"),
            Err(ParseError::TooBig { limit: MAX_LITERAL })
        );
        let mut long = vec![b'"'];
        long.resize(MAX_LINE + 2, b'a');
        assert_eq!(
            parse_response(&long),
            Err(ParseError::TooBig { limit: MAX_LINE })
        );
        // A literal just under the limit is fine, and incomplete until all there.
        let header = format!("{{{MAX_LITERAL}}}\r\n");
        assert_eq!(parse_response(header.as_bytes()), Ok(None));
        // Many literals on one line add up to more than a response may hold.
        let mut many = Vec::new();
        let chunk = vec![b'x'; MAX_LITERAL];
        for _ in 0..2 {
            many.extend_from_slice(format!("{{{MAX_LITERAL}}}\r\n").as_bytes());
            many.extend_from_slice(&chunk);
            many.push(b' ');
        }
        assert_eq!(
            parse_response(&many),
            Err(ParseError::TooBig {
                limit: MAX_RESPONSE
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_response(&bytes);
        }

        #[test]
        fn random_grammar_bytes_never_panic(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    &b"OK"[..], b"NO", b"BYE", b" ", b"\r\n", b"\r", b"\n", b"\"", b"\\", b"{",
                    b"}", b"+", b"3", b"12", b"(", b")", b"ACTIVE", b"abc", b"/", b"\x00",
                ]),
                0..60,
            )
        ) {
            let bytes: Vec<u8> = parts.concat();
            let mut pos = 0;
            while let Ok(Some((_, used))) = parse_response(&bytes[pos..]) {
                proptest::prop_assert!(used > 0);
                pos += used;
            }
        }
    }
}
