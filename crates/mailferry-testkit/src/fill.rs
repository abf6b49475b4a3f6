//! Loads a [`Corpus`] into an account with a minimal IMAP client of its own.
//!
//! Deliberately independent of `mailferry-imap`: integration tests fill the source
//! with this client, run the code under test, and check the target with `doveadm`,
//! so a bug in our IMAP crate cannot hide itself. Plain TCP only (Dovecot allows
//! plaintext LOGIN on loopback); one command at a time; APPEND uses LITERAL+
//! (RFC 7888) so no continuation round trip is needed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::Engine as _;

use crate::corpus::Corpus;
use crate::error::TestkitError;

/// RFC 3501 §5.1.3: modified BASE64 uses `,` instead of `/` and no padding.
const MUTF7: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::IMAP_MUTF7, NO_PAD);

/// How long to wait for any one server answer (a 25 MB APPEND included).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates, subscribes and fills every folder of `corpus` in `user`'s account.
///
/// Folder names in the corpus use `/` as separator; each becomes
/// `prefix + name` with `/` replaced by `separator`, modified-UTF-7 encoded
/// (`INBOX` stays `INBOX` and is not created). A folder that already exists is
/// fine. Messages are appended in order with their flags and internal date.
/// `user` may be `alice*master` with the master password.
pub fn fill(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    corpus: &Corpus,
    separator: char,
    prefix: &str,
) -> Result<(), TestkitError> {
    let mut session = Session::connect(host, port)?;
    session.run(
        &format!("LOGIN {} {}", quote(user), quote(password)),
        &format!("LOGIN as `{user}`"),
    )?;
    for folder in &corpus.folders {
        if separator != '/' && folder.name.contains(separator) {
            return Err(TestkitError::InvalidFolder {
                name: folder.name.clone(),
                reason: format!("it contains the server's separator `{separator}`"),
            });
        }
        let name = server_mailbox_name(&folder.name, separator, prefix);
        let encoded = quote(&encode_mailbox_name(&name));
        if !name.eq_ignore_ascii_case("INBOX") {
            let command = format!("CREATE {encoded}");
            match session.run(&command, &format!("CREATE `{name}`")) {
                Ok(_) => {}
                // auto = subscribe folders (Sent, ...) may exist already.
                Err(TestkitError::ImapRejected { response, .. })
                    if response.contains("[ALREADYEXISTS]") => {}
                Err(error) => return Err(error),
            }
        }
        session.run(
            &format!("SUBSCRIBE {encoded}"),
            &format!("SUBSCRIBE `{name}`"),
        )?;
        for (index, message) in folder.messages.iter().enumerate() {
            let flags = message.flags.join(" ");
            let head = format!(
                "APPEND {encoded} ({flags}) {} {{{}+}}\r\n",
                quote(&message.internal_date),
                message.bytes.len()
            );
            session.append(
                &head,
                &message.bytes,
                &format!(
                    "APPEND of message {} of {} ({} bytes) to `{name}`",
                    index + 1,
                    folder.messages.len(),
                    message.bytes.len()
                ),
            )?;
        }
    }
    // The answer to LOGOUT does not matter any more.
    let _ = session.run("LOGOUT", "LOGOUT");
    Ok(())
}

/// The server's (UTF-8) mailbox name for a corpus folder name written with `/`.
pub fn server_mailbox_name(folder: &str, separator: char, prefix: &str) -> String {
    if folder.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_owned();
    }
    let relative: String = folder
        .chars()
        .map(|c| if c == '/' { separator } else { c })
        .collect();
    format!("{prefix}{relative}")
}

/// Encodes a mailbox name in modified UTF-7 (RFC 3501 §5.1.3): printable ASCII
/// stands for itself except `&`, which becomes `&-`; runs of other characters become
/// `&` + modified BASE64 of their UTF-16BE + `-`.
///
/// ```
/// use mailferry_testkit::encode_mailbox_name;
/// assert_eq!(encode_mailbox_name("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
/// assert_eq!(encode_mailbox_name("Tom & Jerry"), "Tom &- Jerry");
/// ```
pub fn encode_mailbox_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u8> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u8>| {
        if !pending.is_empty() {
            out.push('&');
            out.push_str(&MUTF7.encode(&pending));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                pending.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// An IMAP quoted string (RFC 3501 §4.3): `\` and `"` are escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One connection: a writer, a buffered reader and the tag counter.
struct Session {
    address: String,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next_tag: u32,
}

impl Session {
    fn connect(host: &str, port: u16) -> Result<Self, TestkitError> {
        let address = format!("{host}:{port}");
        let lost = |doing: &str| {
            let address = address.clone();
            let doing = doing.to_owned();
            move |source| TestkitError::ImapConnection {
                addr: address,
                doing,
                source,
            }
        };
        let stream = TcpStream::connect((host, port)).map_err(lost("connecting"))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(lost("connecting"))?;
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().map_err(lost("connecting"))?);
        let mut session = Session {
            address,
            writer: stream,
            reader,
            next_tag: 1,
        };
        let greeting = session.read_line("reading the greeting")?;
        if !greeting.starts_with("* OK") {
            return Err(TestkitError::ImapRejected {
                command: "the connection".to_owned(),
                response: greeting,
            });
        }
        Ok(session)
    }

    /// Sends one command line and waits for its tagged answer, which must be OK.
    fn run(&mut self, command: &str, what: &str) -> Result<String, TestkitError> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes(), what)?;
        self.finish(&tag, what)
    }

    /// APPEND with a LITERAL+ literal: head, message bytes, then CRLF ends the command.
    fn append(&mut self, head: &str, bytes: &[u8], what: &str) -> Result<String, TestkitError> {
        let tag = self.tag();
        self.send(format!("{tag} {head}").as_bytes(), what)?;
        self.send(bytes, what)?;
        self.send(b"\r\n", what)?;
        self.finish(&tag, what)
    }

    fn tag(&mut self) -> String {
        let tag = format!("F{:04}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), TestkitError> {
        self.writer
            .write_all(bytes)
            .map_err(|source| TestkitError::ImapConnection {
                addr: self.address.clone(),
                doing: format!("sending {what}"),
                source,
            })
    }

    /// Reads untagged lines until the tagged one; returns its text if OK.
    fn finish(&mut self, tag: &str, what: &str) -> Result<String, TestkitError> {
        let prefix = format!("{tag} ");
        loop {
            let line = self.read_line(&format!("waiting for the answer to {what}"))?;
            if let Some(status) = line.strip_prefix(&prefix) {
                if status.starts_with("OK") {
                    return Ok(status.to_owned());
                }
                return Err(TestkitError::ImapRejected {
                    command: what.to_owned(),
                    response: status.to_owned(),
                });
            }
            if line.starts_with("* BYE") {
                return Err(TestkitError::ImapRejected {
                    command: what.to_owned(),
                    response: line,
                });
            }
        }
    }

    /// One response line without CRLF; a literal (`{n}` at the end) is read and
    /// skipped, the line goes on after it.
    fn read_line(&mut self, doing: &str) -> Result<String, TestkitError> {
        let mut line = Vec::new();
        loop {
            let start = line.len();
            let read = self
                .reader
                .read_until(b'\n', &mut line)
                .map_err(|source| self.lost(doing, source))?;
            if read == 0 {
                let source = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                );
                return Err(self.lost(doing, source));
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            match literal_length(&line[start..]) {
                Some(length) => {
                    let mut skipped = vec![0u8; length];
                    std::io::Read::read_exact(&mut self.reader, &mut skipped)
                        .map_err(|source| self.lost(doing, source))?;
                    line.extend_from_slice(b" <literal> ");
                }
                None => return Ok(String::from_utf8_lossy(&line).into_owned()),
            }
        }
    }

    fn lost(&self, doing: &str, source: std::io::Error) -> TestkitError {
        TestkitError::ImapConnection {
            addr: self.address.clone(),
            doing: doing.to_owned(),
            source,
        }
    }
}

/// `n` if the line ends with a literal announcement `{n}`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_known_answers() {
        // RFC 3501 §5.1.3 example and the corpus's own awkward names.
        assert_eq!(
            encode_mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_mailbox_name("&"), "&-");
        assert_eq!(
            encode_mailbox_name("Projekte Übersicht"),
            "Projekte &ANw-bersicht"
        );
        assert_eq!(encode_mailbox_name("Spaces  double"), "Spaces  double");
        // Outside the BMP: a surrogate pair in one run.
        assert_eq!(encode_mailbox_name("📬"), "&2D3c7A-");
        assert_eq!(encode_mailbox_name("a\tb"), "a&AAk-b");
    }

    #[test]
    fn mailbox_names_get_separator_and_prefix() {
        assert_eq!(server_mailbox_name("INBOX", '.', "INBOX."), "INBOX");
        assert_eq!(
            server_mailbox_name("Archive/2019/Q1", '.', "INBOX."),
            "INBOX.Archive.2019.Q1"
        );
        assert_eq!(server_mailbox_name("Archive/2019", '/', ""), "Archive/2019");
    }

    #[test]
    fn quoted_strings_escape_quote_and_backslash() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn literal_announcements_are_recognised() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_length(b"* OK {x}"), None);
        assert_eq!(literal_length(b"* OK done"), None);
    }
}
