//! Message commands: UID FETCH of metadata and bodies (whole or in partial ranges), UID
//! STORE, and APPEND (pipelined with LITERAL+, MULTIAPPEND, or streamed from a reader).

use std::collections::VecDeque;

use bytes::Bytes;
use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ImapError;
use crate::fetch::{Fetch, PartialAssembler};
use crate::response::{Code, Response, Status, StatusKind};
use crate::session::{quote, Session};
use crate::uid::{Uid, UidSet, UidValidity};

/// What a migration needs to know of a message before copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: Uid,
    pub flags: Vec<String>,
    /// INTERNALDATE as the server wrote it.
    pub internal_date: String,
    pub size: u64,
    pub modseq: Option<u64>,
    /// The raw `Message-ID:` header field (folded lines kept), when asked for and present.
    pub message_id: Option<Vec<u8>>,
}

/// Which messages a metadata fetch covers.
#[derive(Debug, Clone)]
pub enum FetchRange<'a> {
    All,
    /// UIDs from this one up.
    From(u32),
    Uids(&'a UidSet),
}

impl FetchRange<'_> {
    fn to_set(&self) -> String {
        match self {
            FetchRange::All => "1:*".into(),
            FetchRange::From(uid) => format!("{uid}:*"),
            FetchRange::Uids(set) => set.to_string(),
        }
    }
}

/// A message to append.
#[derive(Debug, Clone, Copy)]
pub struct AppendRequest<'a> {
    pub flags: &'a [String],
    /// INTERNALDATE, as `"17-Jul-1996 02:44:25 -0700"` without quotes.
    pub internal_date: Option<&'a str>,
    pub data: &'a [u8],
}

/// Where an appended message landed (UIDPLUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub uid_validity: UidValidity,
    pub uid: Uid,
}

/// The server's answer to one APPEND: where it landed (when the server says, UIDPLUS), or its
/// refusal in its own words.
pub type AppendOutcome = Result<Option<Appended>, Status>;

impl Session {
    /// UID FETCH of flags, internal date, size (and MODSEQ, and the Message-ID header when
    /// `with_message_id`), optionally only what changed since a mod-sequence (CONDSTORE), with
    /// VANISHED reported under QRESYNC.
    pub async fn fetch_meta(
        &mut self,
        range: FetchRange<'_>,
        changed_since: Option<u64>,
        with_message_id: bool,
    ) -> Result<Vec<MessageMeta>, ImapError> {
        let modseq = self
            .enabled()
            .iter()
            .any(|c| c == "CONDSTORE" || c == "QRESYNC");
        let mut items = String::from("UID FLAGS INTERNALDATE RFC822.SIZE");
        if modseq {
            items.push_str(" MODSEQ");
        }
        if with_message_id {
            items.push_str(" BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]");
        }
        let mut line = format!("UID FETCH {} ({items})", range.to_set());
        if let Some(since) = changed_since.filter(|_| modseq) {
            line.push_str(&format!(" (CHANGEDSINCE {since}"));
            if self.enabled().iter().any(|c| c == "QRESYNC") {
                line.push_str(" VANISHED");
            }
            line.push(')');
        }
        line.push_str("\r\n");
        let tag = self.send(line.as_bytes()).await?;
        let mut out = Vec::new();
        while let Some(fetch) = self.next_fetch(&tag).await? {
            if let Some(meta) = meta_of(fetch, with_message_id) {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// Starts `UID FETCH <uids> (UID BODY.PEEK[])`; read the answers with
    /// [`Session::next_fetch`]. Each message arrives as one response, so callers ask this only
    /// for messages under their chunk size and use [`Session::fetch_body_partial`] for the rest.
    pub async fn start_fetch_bodies(&mut self, uids: &UidSet) -> Result<String, ImapError> {
        let line = format!("UID FETCH {uids} (UID BODY.PEEK[])\r\n");
        self.send(line.as_bytes()).await
    }

    /// Fetches one message in partial ranges of `chunk` bytes into `sink`, a few ranges in
    /// flight at once, so that memory holds at most a few chunks whatever the message size.
    /// The end of the message is a range that comes back shorter than asked; the announced
    /// `size` only decides how many ranges to ask for ahead, so a wrong size never truncates.
    pub async fn fetch_body_partial<W: Write>(
        &mut self,
        uid: Uid,
        size: Option<u64>,
        chunk: u64,
        sink: W,
    ) -> Result<W, ImapError> {
        const WINDOW: usize = 4;
        let chunk = chunk.max(1);
        let announced_end = size.unwrap_or(0);
        let mut assembler = PartialAssembler::new(sink, None);
        let mut next_request = 0u64;
        let mut tags: VecDeque<String> = VecDeque::new();
        // A server may run pipelined FETCH commands in parallel and answer them in any order
        // (Dovecot does when they arrive together): ranges are matched by their origin, not
        // by the command they seem to follow.
        let mut ranges: std::collections::BTreeMap<u64, Bytes> = std::collections::BTreeMap::new();
        let io = |addr: &str, source: std::io::Error| ImapError::Io {
            addr: addr.to_string(),
            source,
        };
        loop {
            while tags.len() < WINDOW && (next_request == 0 || next_request < announced_end) {
                tags.push_back(self.send_partial(uid, next_request, chunk).await?);
                next_request += chunk;
            }
            if tags.is_empty() {
                tags.push_back(self.send_partial(uid, next_request, chunk).await?);
                next_request += chunk;
            }
            let tag = tags.pop_front().expect("a range was just asked for");
            while let Some(fetch) = self.next_fetch_or_done(&tag).await? {
                if fetch.uid != Some(uid) {
                    continue;
                }
                for section in fetch.sections.into_iter().filter(|s| s.spec.is_empty()) {
                    if let Some(origin) = section.origin {
                        ranges.insert(origin, section.data.unwrap_or_default());
                    }
                }
            }
            self.wait_completed(&tag, "UID FETCH", b"")?;
            let mut progressed = false;
            while let Some(data) = ranges.remove(&assembler.next_offset()) {
                progressed = true;
                let offset = assembler.next_offset();
                if assembler
                    .push(offset, &data, chunk)
                    .map_err(|e| io(self.addr(), e))?
                {
                    // Ranges asked past the end come back empty; read their answers out.
                    for tag in tags.drain(..) {
                        while self.next_fetch_or_done(&tag).await?.is_some() {}
                        self.wait_completed(&tag, "UID FETCH", b"")?;
                    }
                    return assembler.finish().map_err(|e| io(self.addr(), e));
                }
            }
            if !progressed && tags.is_empty() && ranges.is_empty() {
                // Every range asked for is answered and none continues the message: it is gone.
                return Err(ImapError::Vanished { uid: uid.get() });
            }
        }
    }

    /// Fetches pieces of one message, `(offset, length)` each, taking the next one from
    /// `next` whenever fewer than a few are in flight, and hands each to `sink` with its
    /// offset as it arrives (in any order). Returns every piece taken with how many bytes it
    /// held: a piece shorter than asked is the message's end, an empty one lies past it.
    /// Several sessions sharing one `next` spread a message over their connections, each
    /// taking pieces as it has room, so a slow connection takes fewer.
    pub async fn fetch_body_pieces(
        &mut self,
        uid: Uid,
        mut next: impl FnMut() -> Option<(u64, u64)>,
        mut sink: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> Result<Vec<(u64, u64)>, ImapError> {
        const WINDOW: usize = 4;
        let mut got: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        let mut taken: Vec<u64> = Vec::new();
        let mut tags: VecDeque<String> = VecDeque::new();
        loop {
            while tags.len() < WINDOW {
                let Some((offset, length)) = next() else {
                    break;
                };
                taken.push(offset);
                tags.push_back(self.send_partial(uid, offset, length.max(1)).await?);
            }
            let Some(tag) = tags.pop_front() else { break };
            while let Some(fetch) = self.next_fetch_or_done(&tag).await? {
                if fetch.uid != Some(uid) {
                    continue;
                }
                for section in fetch.sections.into_iter().filter(|s| s.spec.is_empty()) {
                    if let Some(origin) = section.origin {
                        let data = section.data.unwrap_or_default();
                        sink(origin, &data).map_err(|source| ImapError::Io {
                            addr: self.addr().to_string(),
                            source,
                        })?;
                        *got.entry(origin).or_default() += data.len() as u64;
                    }
                }
            }
            self.wait_completed(&tag, "UID FETCH", b"")?;
        }
        Ok(taken
            .into_iter()
            .map(|offset| (offset, got.get(&offset).copied().unwrap_or(0)))
            .collect())
    }

    async fn send_partial(
        &mut self,
        uid: Uid,
        offset: u64,
        chunk: u64,
    ) -> Result<String, ImapError> {
        self.send(format!("UID FETCH {uid} (UID BODY.PEEK[]<{offset}.{chunk}>)\r\n").as_bytes())
            .await
    }

    /// UID STORE `+FLAGS.SILENT`, `-FLAGS.SILENT` or `FLAGS.SILENT` (`op`) on `uids`.
    pub async fn uid_store(
        &mut self,
        uids: &UidSet,
        op: &str,
        flags: &[String],
    ) -> Result<(), ImapError> {
        let line = format!("UID STORE {uids} {op} ({})\r\n", flag_list(flags));
        self.run_ok("UID STORE", line.as_bytes()).await.map(drop)
    }

    /// Appends messages one command each, up to `window` commands in flight (LITERAL+ lets
    /// them go out without waiting). Returns one outcome per request, in order.
    pub async fn append_many(
        &mut self,
        raw_name: &[u8],
        requests: &[AppendRequest<'_>],
        window: usize,
    ) -> Result<Vec<AppendOutcome>, ImapError> {
        let window = window.max(1);
        // In order: a command in flight, or one the server refused before its message.
        let mut slots: VecDeque<Result<String, Status>> = VecDeque::new();
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            while slots.iter().filter(|s| s.is_ok()).count() >= window {
                let slot = slots.pop_front().expect("a slot is in flight");
                outcomes.push(self.settle_slot(slot).await?);
            }
            let tag = self.new_append(raw_name).await?;
            match self.write_append_item(&tag, request).await? {
                // Refused before the message (a synchronising literal, RFC 3501 §7.5): this
                // message alone failed; the connection is fine.
                Some(status) => slots.push_back(Err(status)),
                None => {
                    self.write_raw(b"\r\n").await?;
                    slots.push_back(Ok(tag));
                }
            }
        }
        for slot in slots {
            outcomes.push(self.settle_slot(slot).await?);
        }
        Ok(outcomes)
    }

    async fn settle_slot(
        &mut self,
        slot: Result<String, Status>,
    ) -> Result<AppendOutcome, ImapError> {
        match slot {
            Ok(tag) => self.append_outcome(&tag).await,
            Err(status) => Ok(Err(status)),
        }
    }

    /// MULTIAPPEND (RFC 3502): all messages in one command, stored all or none. A NO refuses
    /// the whole batch; the caller then appends them one by one to learn which one failed.
    pub async fn multiappend(
        &mut self,
        raw_name: &[u8],
        requests: &[AppendRequest<'_>],
    ) -> Result<Result<Vec<Appended>, Status>, ImapError> {
        let tag = self.new_append(raw_name).await?;
        for (i, request) in requests.iter().enumerate() {
            if i > 0 {
                self.write_raw(b" ").await?;
            }
            if let Some(status) = self.write_append_item(&tag, request).await? {
                // The whole command is refused (and over); the caller learns which message
                // by appending them one by one.
                return Ok(Err(status));
            }
        }
        self.write_raw(b"\r\n").await?;
        let done = self.wait(&tag).await?;
        if done.status.kind != StatusKind::Ok {
            return Ok(Err(done.status));
        }
        match done.status.code {
            Some(Code::AppendUid { uid_validity, uids }) if uids.len() == requests.len() => {
                Ok(Ok(match UidValidity::new(uid_validity) {
                    Some(uid_validity) => uids
                        .iter()
                        .map(|uid| Appended { uid_validity, uid })
                        .collect(),
                    None => Vec::new(),
                }))
            }
            _ => Ok(Ok(Vec::new())),
        }
    }

    /// Appends a message of `size` bytes read from `reader` in chunks, so it is never whole
    /// in memory. If the reader ends early the connection is unusable and an error returns.
    pub async fn append_stream<R: AsyncRead + Unpin>(
        &mut self,
        raw_name: &[u8],
        flags: &[String],
        internal_date: Option<&str>,
        size: u64,
        mut reader: R,
    ) -> Result<AppendOutcome, ImapError> {
        let tag = self.new_append(raw_name).await?;
        if let Some(status) = self
            .write_append_prefix(&tag, flags, internal_date, size)
            .await?
        {
            return Ok(Err(status));
        }
        let mut left = size;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = reader
                .read(&mut buf[..want])
                .await
                .map_err(|source| ImapError::Io {
                    addr: self.addr().to_string(),
                    source,
                })?;
            if n == 0 {
                return Err(ImapError::Io {
                    addr: self.addr().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the message ended before its announced size",
                    ),
                });
            }
            self.write_raw(&buf[..n]).await?;
            left -= n as u64;
        }
        self.write_raw(b"\r\n").await?;
        self.append_outcome(&tag).await
    }

    async fn new_append(&mut self, raw_name: &[u8]) -> Result<String, ImapError> {
        let tag = self.new_tag();
        let line = [tag.as_bytes(), b" APPEND ", &quote(raw_name)].concat();
        self.write_command(&tag, &line).await?;
        Ok(tag)
    }

    /// The message with its flags and date; `Some(status)` when the server refused it before
    /// its bytes were sent (the command is then over).
    async fn write_append_item(
        &mut self,
        tag: &str,
        request: &AppendRequest<'_>,
    ) -> Result<Option<Status>, ImapError> {
        if let Some(status) = self
            .write_append_prefix(
                tag,
                request.flags,
                request.internal_date,
                request.data.len() as u64,
            )
            .await?
        {
            return Ok(Some(status));
        }
        self.write_raw(request.data).await?;
        Ok(None)
    }

    /// ` (flags) "date" {n+}\r\n`, waiting for `+` when the literal must be synchronising.
    /// A server may answer the command instead of `+` (too big, over quota): that answer is
    /// returned, and nothing of the message is sent.
    async fn write_append_prefix(
        &mut self,
        tag: &str,
        flags: &[String],
        internal_date: Option<&str>,
        size: u64,
    ) -> Result<Option<Status>, ImapError> {
        let mut prefix = format!(" ({})", flag_list(flags));
        if let Some(date) = internal_date {
            prefix.push_str(&format!(" \"{date}\""));
        }
        let non_sync = (size as usize) <= self.capabilities().non_sync_literal_limit();
        if non_sync {
            prefix.push_str(&format!(" {{{size}+}}\r\n"));
            return self.write_raw(prefix.as_bytes()).await.map(|()| None);
        }
        prefix.push_str(&format!(" {{{size}}}\r\n"));
        self.write_raw(prefix.as_bytes()).await?;
        loop {
            match self
                .read_response("waiting for the server to accept a message")
                .await?
            {
                Response::Continuation(_) => return Ok(None),
                Response::Tagged { tag: got, status } => {
                    self.forget_in_flight(&got);
                    if got == tag {
                        if status.kind == StatusKind::Ok {
                            // OK before the message was sent: not a server we understand.
                            return Err(ImapError::command(
                                self.addr().to_string(),
                                "APPEND",
                                status,
                            ));
                        }
                        return Ok(Some(status));
                    }
                    self.keep_completion(got, status);
                }
                Response::Untagged(data) => self.note_untagged(data),
            }
        }
    }

    async fn append_outcome(&mut self, tag: &str) -> Result<AppendOutcome, ImapError> {
        let done = self.wait(tag).await?;
        if done.status.kind != StatusKind::Ok {
            return Ok(Err(done.status));
        }
        Ok(Ok(match done.status.code {
            Some(Code::AppendUid { uid_validity, uids }) => UidValidity::new(uid_validity)
                .and_then(|uid_validity| {
                    uids.iter().next().map(|uid| Appended { uid_validity, uid })
                }),
            _ => None,
        }))
    }
}

fn meta_of(fetch: Fetch, with_message_id: bool) -> Option<MessageMeta> {
    let message_id = if with_message_id {
        fetch
            .sections
            .iter()
            .find(|s| s.spec.starts_with("HEADER.FIELDS"))
            .and_then(|s| s.data.as_ref())
            .map(|d| d.to_vec())
            .filter(|d| d.iter().any(|b| !b.is_ascii_whitespace()))
    } else {
        None
    };
    Some(MessageMeta {
        uid: fetch.uid?,
        flags: fetch.flags.unwrap_or_default(),
        internal_date: fetch.internal_date.unwrap_or_default(),
        size: fetch.size.unwrap_or_default(),
        modseq: fetch.modseq,
        message_id,
    })
}

/// Flags as APPEND and STORE take them: `\Recent` cannot be set and is left out, and so is
/// anything that is not a valid flag atom.
pub fn flag_list(flags: &[String]) -> String {
    flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent") && f.as_str() != "\\*")
        .filter(|f| {
            let body = f.strip_prefix('\\').unwrap_or(f);
            !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b))
        })
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}
