//! Splits the server's byte stream into whole responses.
//!
//! A response is a line, unless that line ends with a literal announcement `{N}` (or the
//! `{N+}` / `~{N}` forms), in which case N raw bytes follow and then the line goes on.
//! Framing first and parsing second keeps literal bytes from ever being read as protocol
//! (the approach of imap-codec's `fragmentizer`), and lets the FETCH parser take bodies as
//! slices of one buffer without copying them again.

use bytes::{Bytes, BytesMut};

/// One complete server response: its bytes, literals included, ending with the final line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Bytes,
}

/// The server sent more than we accept for one response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server sent a response of more than {limit} bytes")]
pub struct FrameTooLarge {
    pub limit: usize,
}

/// Accumulates bytes and yields complete responses.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    /// Where scanning for the next line end resumes, relative to the start of `buf`.
    scan: usize,
    /// A literal announced and not yet complete: it ends at this offset.
    literal_end: Option<usize>,
    limit: usize,
}

impl Framer {
    /// A framer refusing any response longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(64 * 1024),
            scan: 0,
            literal_end: None,
            limit,
        }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Space to read into directly: the caller reads into `spare()` and calls `advance(n)`.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete response, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameTooLarge> {
        loop {
            if let Some(end) = self.literal_end {
                if self.buf.len() < end {
                    return self.check_limit(end);
                }
                self.literal_end = None;
                self.scan = end;
            }
            let Some(newline) = memchr(b'\n', &self.buf[self.scan..]).map(|p| self.scan + p) else {
                self.scan = self.buf.len();
                return self.check_limit(self.buf.len());
            };
            if let Some(length) = literal_announcement(&self.buf[..newline]) {
                let end = newline + 1 + length;
                self.literal_end = Some(end);
                // Room for the whole literal at once, rather than growing (and copying)
                // the buffer while it arrives; an announcement over the limit is refused
                // before anything is allocated for it.
                if end <= self.limit {
                    self.buf.reserve(end.saturating_sub(self.buf.len()));
                }
                continue;
            }
            let bytes = self.buf.split_to(newline + 1).freeze();
            self.scan = 0;
            return Ok(Some(Frame { bytes }));
        }
    }

    fn check_limit(&self, needed: usize) -> Result<Option<Frame>, FrameTooLarge> {
        if needed > self.limit {
            Err(FrameTooLarge { limit: self.limit })
        } else {
            Ok(None)
        }
    }
}

/// If the line (without its `\n`) ends with `{N}`, `{N+}`, or `~{N}` before an optional `\r`,
/// returns N.
pub(crate) fn literal_announcement(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &[u8] = b"* OK [CAPABILITY IMAP4rev1] ready\r\n\
* 1 FETCH (UID 7 BODY[] {11}\r\nhello\r\n{3}\n FLAGS (\\Seen))\r\n\
* 2 FETCH (UID 8 BODY[HEADER] {0}\r\n)\r\n\
A1 OK done\r\n";

    fn frames_of(chunks: &[&[u8]]) -> Vec<Bytes> {
        let mut framer = Framer::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame().unwrap() {
                out.push(frame.bytes);
            }
        }
        out
    }

    #[test]
    fn literal_containing_a_fake_literal_and_line_ends() {
        let frames = frames_of(&[SCRIPT]);
        assert_eq!(frames.len(), 4);
        assert_eq!(
            &frames[1][..],
            &b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello\r\n{3}\n FLAGS (\\Seen))\r\n"[..]
        );
        assert_eq!(
            &frames[2][..],
            &b"* 2 FETCH (UID 8 BODY[HEADER] {0}\r\n)\r\n"[..]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let whole = frames_of(&[SCRIPT]);
        for split in 0..=SCRIPT.len() {
            let (a, b) = SCRIPT.split_at(split);
            assert_eq!(frames_of(&[a, b]), whole, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = SCRIPT.chunks(1).collect();
        assert_eq!(frames_of(&bytewise), whole);
    }

    #[test]
    fn refuses_oversized_responses() {
        let mut framer = Framer::new(16);
        framer.push(b"* 1 FETCH (BODY[] {100}\r\n");
        assert_eq!(framer.next_frame(), Err(FrameTooLarge { limit: 16 }));
    }

    #[test]
    fn announcements() {
        assert_eq!(literal_announcement(b"a {12}\r"), Some(12));
        assert_eq!(literal_announcement(b"a {12+}"), Some(12));
        assert_eq!(literal_announcement(b"a ~{3}\r"), Some(3));
        assert_eq!(literal_announcement(b"a {x}\r"), None);
        assert_eq!(literal_announcement(b"a {}\r"), None);
        assert_eq!(literal_announcement(b"text with } brace\r"), None);
    }

    /// What the frames of `stream` are when it arrives in reads of `step` bytes; `None`
    /// from the first frame that is too large.
    fn frames_by(stream: &[u8], step: usize, limit: usize) -> (Vec<Bytes>, bool) {
        let mut framer = Framer::new(limit);
        let mut out = Vec::new();
        for chunk in stream.chunks(step.max(1)) {
            framer.push(chunk);
            loop {
                match framer.next_frame() {
                    Ok(Some(frame)) => out.push(frame.bytes),
                    Ok(None) => break,
                    Err(_) => return (out, true),
                }
            }
        }
        (out, false)
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Any stream, cut into reads of any size: no panic, no frame over the limit, and
        /// the same frames as when it arrives whole (the framer's result does not depend on
        /// how the network cut it). Run by CI; `fuzz/` has the same as a fuzz target.
        #[test]
        fn any_stream_frames_the_same_however_it_is_cut(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                    "[ -~]{0,20}\\{[0-9]{1,3}\\+?\\}\r\n".prop_map(String::into_bytes),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                ],
                0..12,
            ),
            step in 1usize..64,
        ) {
            let stream: Vec<u8> = parts.concat();
            let limit = 256;
            let (whole, whole_too_big) = frames_by(&stream, stream.len().max(1), limit);
            let (cut, cut_too_big) = frames_by(&stream, step, limit);
            for frame in whole.iter().chain(&cut) {
                proptest::prop_assert!(frame.len() <= limit);
            }
            if !whole_too_big && !cut_too_big {
                proptest::prop_assert_eq!(whole, cut);
            }
        }
    }
}
