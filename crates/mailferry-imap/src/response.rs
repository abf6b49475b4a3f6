//! What the server says: one [`Response`] per framed response.
//!
//! Status lines (tagged and untagged OK/NO/BAD/BYE/PREAUTH) and FETCH are parsed here by
//! hand: status codes such as APPENDUID carry UID sets after MULTIAPPEND, and FETCH bodies
//! may hold bytes a strict parser refuses. Everything else (CAPABILITY, LIST, STATUS,
//! NAMESPACE, ID, ENABLED, FLAGS, VANISHED, ...) is decoded by imap-codec.

use bytes::Bytes;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Data, Response as CodecResponse};
use imap_codec::imap_types::status::StatusDataItem;
use imap_codec::ResponseCodec;

use crate::fetch::{parse_fetch, Fetch};
use crate::parse::{Cursor, ParseError};
use crate::uid::UidSet;

/// One response from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The completion of the command with this tag.
    Tagged { tag: String, status: Status },
    /// Untagged data or status.
    Untagged(Untagged),
    /// `+ ...`: the server waits for more of a command.
    Continuation(Bytes),
}

/// OK, NO, BAD, BYE or PREAUTH with an optional response code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub code: Option<Code>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

impl Status {
    /// `NO [CODE] text` as the server said it, for error messages.
    pub fn said(&self) -> String {
        let kind = match self.kind {
            StatusKind::Ok => "OK",
            StatusKind::No => "NO",
            StatusKind::Bad => "BAD",
            StatusKind::Bye => "BYE",
            StatusKind::PreAuth => "PREAUTH",
        };
        match &self.code {
            Some(code) => format!("{kind} [{}] {}", code.raw(), self.text),
            None => format!("{kind} {}", self.text),
        }
    }
}

/// A response code (RFC 3501 §7.1 and extensions); the ones we act on are typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    AppendUid {
        uid_validity: u32,
        uids: UidSet,
    },
    UidValidity(u32),
    UidNext(u32),
    HighestModSeq(u64),
    NoModSeq,
    Capability(Vec<String>),
    PermanentFlags(Vec<String>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    OverQuota,
    TooBig,
    AuthenticationFailed,
    Unavailable,
    Limit,
    /// Any other code, name upper-cased, arguments as sent.
    Other {
        name: String,
        args: String,
    },
}

impl Code {
    fn parse(raw: &[u8]) -> Code {
        let text = String::from_utf8_lossy(raw);
        let (name, args) = match text.split_once(' ') {
            Some((name, args)) => (name.to_ascii_uppercase(), args.trim().to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let number = |s: &str| s.trim().parse::<u64>().ok();
        let list = |s: &str| {
            s.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let parsed = match name.as_str() {
            "APPENDUID" => args.split_once(' ').and_then(|(validity, set)| {
                Some(Code::AppendUid {
                    uid_validity: u32::try_from(number(validity)?).ok()?,
                    uids: set.trim().parse().ok()?,
                })
            }),
            "UIDVALIDITY" => number(&args)
                .and_then(|n| u32::try_from(n).ok())
                .map(Code::UidValidity),
            "UIDNEXT" => number(&args)
                .and_then(|n| u32::try_from(n).ok())
                .map(Code::UidNext),
            "HIGHESTMODSEQ" => number(&args).map(Code::HighestModSeq),
            "NOMODSEQ" => Some(Code::NoModSeq),
            "CAPABILITY" => Some(Code::Capability(
                args.split_ascii_whitespace().map(str::to_string).collect(),
            )),
            "PERMANENTFLAGS" => Some(Code::PermanentFlags(list(&args))),
            "READ-ONLY" => Some(Code::ReadOnly),
            "READ-WRITE" => Some(Code::ReadWrite),
            "TRYCREATE" => Some(Code::TryCreate),
            "OVERQUOTA" => Some(Code::OverQuota),
            "TOOBIG" => Some(Code::TooBig),
            "AUTHENTICATIONFAILED" => Some(Code::AuthenticationFailed),
            "UNAVAILABLE" => Some(Code::Unavailable),
            "LIMIT" => Some(Code::Limit),
            _ => None,
        };
        parsed.unwrap_or(Code::Other { name, args })
    }

    /// The code as the server wrote it (name and arguments).
    pub fn raw(&self) -> String {
        match self {
            Code::AppendUid { uid_validity, uids } => format!("APPENDUID {uid_validity} {uids}"),
            Code::UidValidity(n) => format!("UIDVALIDITY {n}"),
            Code::UidNext(n) => format!("UIDNEXT {n}"),
            Code::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
            Code::NoModSeq => "NOMODSEQ".into(),
            Code::Capability(caps) => format!("CAPABILITY {}", caps.join(" ")),
            Code::PermanentFlags(flags) => format!("PERMANENTFLAGS ({})", flags.join(" ")),
            Code::ReadOnly => "READ-ONLY".into(),
            Code::ReadWrite => "READ-WRITE".into(),
            Code::TryCreate => "TRYCREATE".into(),
            Code::OverQuota => "OVERQUOTA".into(),
            Code::TooBig => "TOOBIG".into(),
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED".into(),
            Code::Unavailable => "UNAVAILABLE".into(),
            Code::Limit => "LIMIT".into(),
            Code::Other { name, args } if args.is_empty() => name.clone(),
            Code::Other { name, args } => format!("{name} {args}"),
        }
    }
}

/// A folder as LIST or LSUB names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// Attributes such as `\HasChildren`, `\Noselect`, `\Sent`.
    pub attributes: Vec<String>,
    pub delimiter: Option<char>,
    /// The name as the server sent it (modified UTF-7 unless UTF8=ACCEPT is enabled).
    pub raw_name: Vec<u8>,
}

/// STATUS items of one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderStatus {
    pub messages: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<crate::UidValidity>,
    pub unseen: Option<u32>,
    pub highest_modseq: Option<u64>,
    pub size: Option<u64>,
}

/// One namespace: its prefix and hierarchy separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceItem {
    pub prefix: Vec<u8>,
    pub delimiter: Option<char>,
}

/// The three namespace groups of RFC 2342.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub personal: Vec<NamespaceItem>,
    pub other: Vec<NamespaceItem>,
    pub shared: Vec<NamespaceItem>,
}

/// Untagged data.
#[derive(Debug, Clone, PartialEq)]
pub enum Untagged {
    Status(Status),
    Fetch(Box<Fetch>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Capability(Vec<String>),
    List(ListItem),
    Lsub(ListItem),
    FolderStatus {
        raw_name: Vec<u8>,
        status: FolderStatus,
    },
    Namespace(Namespaces),
    Id(Vec<(String, Option<String>)>),
    Enabled(Vec<String>),
    Flags(Vec<String>),
    Vanished {
        earlier: bool,
        uids: UidSet,
    },
    Search(Vec<u32>),
    /// Annotations of a folder (RFC 5464), parsed here: imap-codec's METADATA data is not
    /// used.
    Metadata {
        raw_name: Vec<u8>,
        entries: Vec<crate::metadata::MetadataEntry>,
    },
    /// Data we do not interpret, kept for logs.
    Other(Bytes),
}

/// Parses one framed response.
pub fn parse_response(bytes: Bytes) -> Result<Response, ParseError> {
    let mut cursor = Cursor::new(bytes);
    if cursor.eat(b'+') {
        cursor.skip_spaces();
        let text = cursor.rest();
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        return Ok(Response::Continuation(Bytes::copy_from_slice(text)));
    }
    if cursor.eat(b'*') {
        cursor.expect(b' ', "a space after `*`")?;
        return parse_untagged(cursor).map(Response::Untagged);
    }
    let tag = String::from_utf8_lossy(cursor.atom()).into_owned();
    if tag.is_empty() {
        return Err(cursor.error("a tag, `*` or `+`"));
    }
    cursor.expect(b' ', "a space after the tag")?;
    let kind_word = cursor.atom().to_ascii_uppercase();
    let status =
        parse_status(&mut cursor, &kind_word)?.ok_or_else(|| cursor.error("OK, NO or BAD"))?;
    Ok(Response::Tagged { tag, status })
}

fn parse_status(cursor: &mut Cursor, word: &[u8]) -> Result<Option<Status>, ParseError> {
    let kind = match word {
        b"OK" => StatusKind::Ok,
        b"NO" => StatusKind::No,
        b"BAD" => StatusKind::Bad,
        b"BYE" => StatusKind::Bye,
        b"PREAUTH" => StatusKind::PreAuth,
        _ => return Ok(None),
    };
    cursor.skip_spaces();
    let mut code = None;
    if cursor.eat(b'[') {
        let rest = cursor.rest();
        let close = rest
            .iter()
            .position(|&b| b == b']')
            .ok_or_else(|| cursor.error("`]` closing a response code"))?;
        code = Some(Code::parse(&rest[..close]));
        cursor.pos += close + 1;
        cursor.skip_spaces();
    }
    let text = String::from_utf8_lossy(cursor.rest())
        .trim_end()
        .to_string();
    Ok(Some(Status { kind, code, text }))
}

fn parse_untagged(mut cursor: Cursor) -> Result<Untagged, ParseError> {
    let start = cursor.pos;
    let first = cursor.atom().to_ascii_uppercase();
    if let Some(status) = parse_status(&mut cursor, &first)? {
        return Ok(Untagged::Status(status));
    }
    if !first.is_empty() && first.iter().all(u8::is_ascii_digit) {
        let number: u32 = std::str::from_utf8(&first)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| cursor.error("a message number"))?;
        cursor.expect(b' ', "a space after a message number")?;
        let word = cursor.atom().to_ascii_uppercase();
        match word.as_slice() {
            b"EXISTS" => return Ok(Untagged::Exists(number)),
            b"RECENT" => return Ok(Untagged::Recent(number)),
            b"EXPUNGE" => return Ok(Untagged::Expunge(number)),
            b"FETCH" => {
                return parse_fetch(&mut cursor, number).map(|f| Untagged::Fetch(Box::new(f)))
            }
            _ => {}
        }
    }
    if first == b"METADATA" {
        return crate::metadata::parse_metadata(&mut cursor);
    }
    if first == b"VANISHED" {
        // Parsed here: our UidSet is what callers use (RFC 7162 §3.2.10).
        cursor.skip_spaces();
        let earlier =
            cursor.rest().len() >= 9 && cursor.rest()[..9].eq_ignore_ascii_case(b"(EARLIER)");
        if earlier {
            cursor.pos += 9;
            cursor.skip_spaces();
        }
        let set = String::from_utf8_lossy(cursor.atom()).into_owned();
        let uids = set
            .parse()
            .map_err(|_| cursor.error("a UID set after VANISHED"))?;
        return Ok(Untagged::Vanished { earlier, uids });
    }
    cursor.pos = start;
    Ok(decode_with_codec(cursor.bytes.clone()))
}

fn decode_with_codec(bytes: Bytes) -> Untagged {
    let Ok((_, CodecResponse::Data(data))) = ResponseCodec::default().decode(&bytes) else {
        return Untagged::Other(bytes);
    };
    match data {
        Data::Capability(caps) => Untagged::Capability(vec1_strings(&caps)),
        Data::List {
            items,
            delimiter,
            mailbox,
        } => Untagged::List(ListItem {
            attributes: items.iter().map(ToString::to_string).collect(),
            delimiter: delimiter.map(|d| d.inner()),
            raw_name: mailbox_bytes(&mailbox),
        }),
        Data::Lsub {
            items,
            delimiter,
            mailbox,
        } => Untagged::Lsub(ListItem {
            attributes: items.iter().map(ToString::to_string).collect(),
            delimiter: delimiter.map(|d| d.inner()),
            raw_name: mailbox_bytes(&mailbox),
        }),
        Data::Status { mailbox, items } => {
            let mut status = FolderStatus::default();
            for item in items.iter() {
                match item {
                    StatusDataItem::Messages(n) => status.messages = Some(*n),
                    StatusDataItem::UidNext(n) => status.uid_next = Some(n.get()),
                    StatusDataItem::UidValidity(n) => {
                        status.uid_validity = crate::UidValidity::new(n.get())
                    }
                    StatusDataItem::Unseen(n) => status.unseen = Some(*n),
                    StatusDataItem::HighestModSeq(n) => status.highest_modseq = Some(*n),
                    StatusDataItem::Size(n) => status.size = Some(*n),
                    _ => {}
                }
            }
            Untagged::FolderStatus {
                raw_name: mailbox_bytes(&mailbox),
                status,
            }
        }
        Data::Namespace {
            personal,
            other,
            shared,
        } => {
            let convert =
                |group: &Vec<imap_codec::imap_types::extensions::namespace::Namespace<'_>>| {
                    group
                        .iter()
                        .map(|ns| NamespaceItem {
                            prefix: ns.prefix.as_ref().to_vec(),
                            delimiter: ns.delimiter.as_ref().map(|d| d.inner()),
                        })
                        .collect()
                };
            Untagged::Namespace(Namespaces {
                personal: convert(&personal),
                other: convert(&other),
                shared: convert(&shared),
            })
        }
        Data::Id { parameters } => Untagged::Id(
            parameters
                .unwrap_or_default()
                .iter()
                .map(|(key, value)| {
                    (
                        String::from_utf8_lossy(key.as_ref()).into_owned(),
                        value
                            .0
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned()),
                    )
                })
                .collect(),
        ),
        Data::Enabled { capabilities } => {
            Untagged::Enabled(capabilities.iter().map(ToString::to_string).collect())
        }
        Data::Flags(flags) => Untagged::Flags(flags.iter().map(ToString::to_string).collect()),
        Data::Search(numbers, _) => Untagged::Search(numbers.iter().map(|n| n.get()).collect()),
        _ => Untagged::Other(bytes),
    }
}

fn vec1_strings<T: ToString>(items: &Vec1<T>) -> Vec<String> {
    items.as_ref().iter().map(ToString::to_string).collect()
}

fn mailbox_bytes(mailbox: &Mailbox<'_>) -> Vec<u8> {
    match mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Response {
        parse_response(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    /// Issue 19: a hostile literal length must be an error, not an overflow panic.
    #[test]
    fn a_literal_longer_than_anything_is_an_error() {
        for line in [
            format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\nabc)\r\n", u64::MAX),
            format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\nabc)\r\n", usize::MAX - 3),
            "* 1 FETCH (UID 1 BODY[] {99999999999999999999999}\r\nabc)\r\n".to_string(),
        ] {
            assert!(parse_response(Bytes::from(line.clone())).is_err(), "{line}");
        }
    }

    proptest::proptest! {
        /// Whatever a server sends, parsing ends in a response or an error.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_response(Bytes::from(bytes));
        }

        #[test]
        fn fetch_like_lines_parse_or_fail_cleanly(
            uid in 0u64..u64::MAX,
            length in 0u64..u64::MAX,
            tail in "[ -~]{0,40}",
        ) {
            let line = format!("* 1 FETCH (UID {uid} BODY[] {{{length}}}\r\n{tail})\r\n");
            let _ = parse_response(Bytes::from(line));
        }
    }

    #[test]
    fn tagged_with_appenduid_set() {
        let Response::Tagged { tag, status } =
            parse("A7 OK [APPENDUID 1700000000 5:7,9] Append completed.\r\n")
        else {
            panic!("not tagged")
        };
        assert_eq!(tag, "A7");
        assert_eq!(status.kind, StatusKind::Ok);
        let Some(Code::AppendUid { uid_validity, uids }) = status.code else {
            panic!("no APPENDUID")
        };
        assert_eq!(uid_validity, 1_700_000_000);
        assert_eq!(
            uids.iter().map(crate::Uid::get).collect::<Vec<_>>(),
            vec![5, 6, 7, 9]
        );
    }

    #[test]
    fn no_with_code_keeps_servers_words() {
        let Response::Tagged { status, .. } =
            parse("A1 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n")
        else {
            panic!()
        };
        assert_eq!(status.code, Some(Code::OverQuota));
        assert_eq!(
            status.said(),
            "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"
        );
    }

    #[test]
    fn untagged_data_through_the_codec() {
        assert_eq!(
            parse("* LIST (\\HasNoChildren \\Sent) \".\" \"Sent Items\"\r\n"),
            Response::Untagged(Untagged::List(ListItem {
                attributes: vec!["\\HasNoChildren".into(), "\\Sent".into()],
                delimiter: Some('.'),
                raw_name: b"Sent Items".to_vec(),
            }))
        );
        let Response::Untagged(Untagged::FolderStatus { raw_name, status }) =
            parse("* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 17 HIGHESTMODSEQ 9)\r\n")
        else {
            panic!()
        };
        assert_eq!(raw_name, b"INBOX");
        assert_eq!(status.messages, Some(3));
        assert_eq!(status.highest_modseq, Some(9));
        let Response::Untagged(Untagged::Namespace(ns)) =
            parse("* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n")
        else {
            panic!()
        };
        assert_eq!(ns.personal[0].prefix, b"INBOX.");
        assert_eq!(ns.personal[0].delimiter, Some('.'));
        assert_eq!(
            parse("* 4 EXISTS\r\n"),
            Response::Untagged(Untagged::Exists(4))
        );
        let Response::Untagged(Untagged::Status(status)) =
            parse("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
        else {
            panic!()
        };
        assert_eq!(status.code, Some(Code::UidValidity(3_857_529_045)));
        let Response::Untagged(Untagged::Vanished { earlier, uids }) =
            parse("* VANISHED (EARLIER) 41,43:45\r\n")
        else {
            panic!()
        };
        assert!(earlier);
        assert_eq!(
            uids.iter().map(crate::Uid::get).collect::<Vec<_>>(),
            vec![41, 43, 44, 45]
        );
        assert_eq!(
            parse("+ go ahead\r\n"),
            Response::Continuation(Bytes::from_static(b"go ahead"))
        );
    }
}
