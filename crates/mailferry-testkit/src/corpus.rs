//! Deterministic mail corpora: [`nasty_corpus`] for correctness, [`bulk_corpus`] for
//! volume.
//!
//! Messages are raw RFC 5322 bytes plus the IMAP flags and internal date to APPEND
//! them with. Folder names are UTF-8 with `/` as the hierarchy separator; the filler
//! ([`crate::fill()`]) translates them for the server. Every message uses CRLF except
//! the one whose point is bare LF. The same arguments always give the same bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Folders with their messages, in APPEND order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Corpus {
    /// Parents come before their children.
    pub folders: Vec<CorpusFolder>,
}

/// One folder of a [`Corpus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFolder {
    /// UTF-8, hierarchy separated by `/`, e.g. `Archive/2019/Q1`; `INBOX` is the inbox.
    pub name: String,
    /// In APPEND order.
    pub messages: Vec<CorpusMessage>,
}

/// One message: bytes to store exactly, and how to APPEND them.
#[derive(Clone, PartialEq, Eq)]
pub struct CorpusMessage {
    /// The raw message, never to be changed by a migration.
    pub bytes: Vec<u8>,
    /// IMAP flags and keywords: `\Seen`, `\Deleted`, `$Forwarded`, `Custom_kw`, ...
    pub flags: Vec<String>,
    /// IMAP date-time, e.g. `02-Jan-2015 10:00:00 +0100`.
    pub internal_date: String,
}

impl fmt::Debug for CorpusMessage {
    // The bytes can be 25 MB: show their size and the subject, not the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorpusMessage")
            .field("len", &self.bytes.len())
            .field("subject", &self.subject())
            .field("flags", &self.flags)
            .field("internal_date", &self.internal_date)
            .finish()
    }
}

impl CorpusMessage {
    /// The raw value of the first `Subject:` header, if any (for messages in test
    /// output).
    pub fn subject(&self) -> Option<String> {
        let head_end = find(&self.bytes, b"\r\n\r\n")
            .or_else(|| find(&self.bytes, b"\n\n"))
            .unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..head_end])
            .lines()
            .find_map(|line| line.strip_prefix("Subject: ").map(str::to_owned))
    }
}

impl Corpus {
    /// Number of messages in all folders.
    pub fn message_count(&self) -> usize {
        self.folders.iter().map(|f| f.messages.len()).sum()
    }

    /// Sum of the message sizes in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.folders
            .iter()
            .flat_map(|f| &f.messages)
            .map(|m| m.bytes.len() as u64)
            .sum()
    }

    /// The folder named `name`, if present.
    pub fn folder(&self, name: &str) -> Option<&CorpusFolder> {
        self.folders.iter().find(|f| f.name == name)
    }
}

/// Folders of the nasty corpus, parents first.
pub const NASTY_FOLDERS: [&str; 8] = [
    "INBOX",
    "Archive",
    "Archive/2019",
    "Archive/2019/Q1",
    "Projekte Übersicht",
    "日本語",
    "Spaces  double",
    "Sent",
];

/// Subject of the ≈ 25 MB message added by `nasty_corpus(true)`.
pub const BIG_MESSAGE_SUBJECT: &str = "Big attachment (25 MB)";

/// Every awkward thing a migration must copy unchanged, in the folders of
/// [`NASTY_FOLDERS`]:
///
/// - INBOX: an 8-bit UTF-8 body; a `Content-Transfer-Encoding: binary` part with
///   bytes 0x01–0xFF (no NUL); no Message-ID; two different messages sharing one
///   Message-ID; a bare-LF message; an empty body; a header-only message (no blank
///   line); two byte-identical copies; a ≈ 200 KB multipart/alternative with
///   attachments; with `big_attachment` also a ≈ 25 MB message.
/// - Flags: none, every system flag alone and all together, `$Forwarded`, `$Junk`,
///   `Custom_kw`; internal dates from 1999 on in many time zones.
/// - 32 ordinary messages spread over all folders.
pub fn nasty_corpus(big_attachment: bool) -> Corpus {
    let mut rng = Rng::new(0x6d61_696c_6665_7272); // "mailferr"
    let mut folders: Vec<CorpusFolder> = NASTY_FOLDERS
        .iter()
        .map(|name| CorpusFolder {
            name: (*name).to_owned(),
            messages: Vec::new(),
        })
        .collect();

    let inbox = &mut folders[0].messages;
    inbox.extend(special_messages(&mut rng));
    if big_attachment {
        inbox.push(big_message(&mut rng));
    }

    // (folder index, ordinary messages, fixed year and months if any)
    let plan = [
        (0usize, 4usize, None),
        (1, 5, None),
        (2, 5, Some((2019, 12u32))),
        (3, 4, Some((2019, 3))),
        (4, 4, None),
        (5, 3, None),
        (6, 3, None),
        (7, 4, None),
    ];
    let mut serial = 0;
    for (folder, count, period) in plan {
        let sent = NASTY_FOLDERS[folder] == "Sent";
        for _ in 0..count {
            let when = match period {
                Some((year, months)) => When::random_in(&mut rng, year, months),
                None => When::random(&mut rng),
            };
            let message = ordinary_message(&mut rng, serial, &when, sent, NASTY_FOLDERS[folder]);
            folders[folder].messages.push(message);
            serial += 1;
        }
    }
    Corpus { folders }
}

/// A corpus of `messages` realistic messages in `folders` folders (`INBOX`, then
/// `Folder 001`, ..., every fifth one nested under the one before), for benchmarks
/// and load tests. Sizes: 70 % 2–20 KB, 25 % 20–100 KB, 5 % 100 KB–1 MB.
pub fn bulk_corpus(seed: u64, messages: usize, folders: usize) -> Corpus {
    let mut rng = Rng::new(seed);
    let folders = folders.max(1);
    let mut out: Vec<CorpusFolder> = (0..folders)
        .map(|i| CorpusFolder {
            name: match i {
                0 => "INBOX".to_owned(),
                i if i % 5 == 0 => format!("Folder {:03}/Sub {i:03}", i - 1),
                i => format!("Folder {i:03}"),
            },
            messages: Vec::new(),
        })
        .collect();
    for serial in 0..messages {
        let percent = rng.below(100);
        let size = if percent < 70 {
            2_000 + rng.below(18_000)
        } else if percent < 95 {
            20_000 + rng.below(80_000)
        } else {
            100_000 + rng.below(900_000)
        };
        let when = When::random(&mut rng);
        let message = sized_message(&mut rng, serial, &when, size as usize);
        let folder = rng.below(folders as u64) as usize;
        out[folder].messages.push(message);
    }
    Corpus { folders: out }
}

/// `count` large messages of 5–25 MB each (uniformly spread), to add the heavy
/// tail that [`bulk_corpus`] (at most 1 MB) lacks: a short text part and a base64
/// attachment of pseudo-random bytes. Deterministic for a given `seed`; serial
/// numbers (in subjects and Message-IDs) start at `first_serial`, so pass the bulk
/// corpus's message count to keep them distinct from its messages.
pub fn big_messages(seed: u64, count: usize, first_serial: usize) -> Vec<CorpusMessage> {
    let mut rng = Rng::new(seed ^ 0x6269_675f_6d61_696c); // "big_mail"
    (0..count)
        .map(|i| {
            let size = 5_000_000 + rng.below(20_000_001) as usize;
            let when = When::random(&mut rng);
            sized_message(&mut rng, first_serial + i, &when, size)
        })
        .collect()
}

/// The INBOX specials, in a fixed order.
fn special_messages(rng: &mut Rng) -> Vec<CorpusMessage> {
    let mut out = Vec::new();
    let alice = "Alice Example <alice@example.test>";
    let bob = "Bob Beispiel <bob@example.test>";

    // 8-bit body, declared as such.
    let when = When::new(1999, 3, 14, 9, 26, 53, "+0100");
    out.push(CorpusMessage {
        bytes: build(
            &[
                ("From", bob.to_owned()),
                ("To", alice.to_owned()),
                (
                    "Subject",
                    "8bit body: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=".to_owned(),
                ),
                ("Date", when.header()),
                ("Message-ID", "<8bit-1999@example.test>".to_owned()),
                ("MIME-Version", "1.0".to_owned()),
                ("Content-Type", "text/plain; charset=utf-8".to_owned()),
                ("Content-Transfer-Encoding", "8bit".to_owned()),
            ],
            "Grüße aus Köln! Naïve café, Smørrebrød, Ærø.\n\
             日本語のテキストと絵文字 📬✉️.\n\
             Ελληνικά, русский, العربية.\n",
        ),
        flags: flags(&["\\Seen"]),
        internal_date: when.internal(),
    });

    // A binary part: every byte value but NUL, raw.
    let when = When::new(2005, 7, 1, 23, 59, 59, "-0800");
    let boundary = "=_binary_part_boundary";
    let mut bytes = build(
        &[
            ("From", bob.to_owned()),
            ("To", alice.to_owned()),
            ("Subject", "Binary MIME part".to_owned()),
            ("Date", when.header()),
            ("Message-ID", "<binary-2005@example.test>".to_owned()),
            ("MIME-Version", "1.0".to_owned()),
            (
                "Content-Type",
                format!("multipart/mixed; boundary=\"{boundary}\""),
            ),
        ],
        &format!(
            "--{boundary}\ncontent-type: text/plain; charset=us-ascii\n\n\
             The attachment is raw binary.\n\
             --{boundary}\nContent-Type: application/octet-stream; name=\"raw.bin\"\n\
             Content-Transfer-Encoding: binary\n\
             Content-Disposition: attachment; filename=\"raw.bin\"\n\n"
        ),
    );
    for _ in 0..4 {
        bytes.extend(1..=255u8);
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out.push(CorpusMessage {
        bytes,
        flags: flags(&["\\Answered"]),
        internal_date: when.internal(),
    });

    // No Message-ID at all.
    let when = When::new(2015, 1, 2, 10, 0, 0, "+0100");
    out.push(CorpusMessage {
        bytes: build(
            &[
                ("From", alice.to_owned()),
                ("To", bob.to_owned()),
                ("Subject", "No Message-ID header".to_owned()),
                ("Date", when.header()),
            ],
            "This message has no Message-ID; dedup must not merge it with anything.\n",
        ),
        flags: Vec::new(),
        internal_date: when.internal(),
    });

    // Two different messages, one Message-ID.
    for (i, (zone, flag_set)) in [
        ("+0530", &["\\Flagged"][..]),
        ("-0330", &["\\Seen", "\\Flagged"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let when = When::new(2015, 6, 10 + i as u32, 8, 30, 0, zone);
        out.push(CorpusMessage {
            bytes: build(
                &[
                    ("From", bob.to_owned()),
                    ("To", alice.to_owned()),
                    (
                        "Subject",
                        format!("Same Message-ID, different message #{}", i + 1),
                    ),
                    ("Date", when.header()),
                    ("Message-ID", "<same-id@example.test>".to_owned()),
                ],
                &format!(
                    "Copy number {} of a reused Message-ID; the bodies differ.\n",
                    i + 1
                ),
            ),
            flags: flags(flag_set),
            internal_date: when.internal(),
        });
    }

    // Bare LF everywhere.
    let when = When::new(2003, 11, 5, 17, 45, 12, "+0000");
    let bare_lf = format!(
        "From: {bob}\nTo: {alice}\nSubject: Bare LF line endings\nDate: {}\n\
         Message-ID: <bare-lf@example.test>\n\nThis message uses LF only,\nno CR anywhere.\n",
        when.header()
    );
    out.push(CorpusMessage {
        bytes: bare_lf.into_bytes(),
        flags: flags(&["\\Deleted"]),
        internal_date: when.internal(),
    });

    // Headers, blank line, nothing.
    let when = When::new(2010, 2, 28, 0, 0, 1, "+0900");
    out.push(CorpusMessage {
        bytes: build(
            &[
                ("From", alice.to_owned()),
                ("To", bob.to_owned()),
                ("Subject", "Empty body".to_owned()),
                ("Date", when.header()),
                ("Message-ID", "<empty-body@example.test>".to_owned()),
            ],
            "",
        ),
        flags: flags(&["\\Draft"]),
        internal_date: when.internal(),
    });

    // Header lines only: no blank line at all.
    let when = When::new(2012, 12, 12, 12, 12, 12, "-1000");
    let header_only = format!(
        "From: {alice}\r\nTo: {bob}\r\nSubject: Header only, no blank line\r\nDate: {}\r\n\
         Message-ID: <header-only@example.test>\r\n",
        when.header()
    );
    out.push(CorpusMessage {
        bytes: header_only.into_bytes(),
        flags: flags(&["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]),
        internal_date: when.internal(),
    });

    // Two byte-identical copies (flags differ: a migration keeps both).
    let when = When::new(2018, 4, 1, 4, 1, 0, "+0200");
    let twin = build(
        &[
            ("From", bob.to_owned()),
            ("To", alice.to_owned()),
            ("Subject", "Identical twin".to_owned()),
            ("Date", when.header()),
            ("Message-ID", "<twin@example.test>".to_owned()),
        ],
        "Two byte-identical copies of me live in this folder.\n",
    );
    out.push(CorpusMessage {
        bytes: twin.clone(),
        flags: flags(&["$Forwarded"]),
        internal_date: when.internal(),
    });
    out.push(CorpusMessage {
        bytes: twin,
        flags: flags(&["$Junk", "Custom_kw"]),
        internal_date: when.internal(),
    });

    // ≈ 200 KB: multipart/mixed { multipart/alternative { plain, html }, pdf, jpeg }.
    let when = When::new(2021, 9, 30, 16, 20, 0, "+1245");
    let text = paragraphs(rng, 3);
    let html = format!(
        "<html><body><h1>Quarterly report</h1><p>{}</p></body></html>\n",
        text.replace('\n', "<br>\n")
    );
    let body = format!(
        "This is a multi-part message in MIME format.\n\
         --=_outer\nContent-Type: multipart/alternative; boundary=\"=_alt\"\n\n\
         --=_alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{text}\n\
         --=_alt\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{html}\n\
         --=_alt--\n\n\
         --=_outer\nContent-Type: application/pdf; name=\"report.pdf\"\n\
         Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"report.pdf\"\n\n\
         {pdf}\
         --=_outer\nContent-Type: image/jpeg; name=\"photo.jpg\"\n\
         Content-Transfer-Encoding: base64\nContent-Disposition: inline; filename=\"photo.jpg\"\n\n\
         {jpeg}\
         --=_outer--\n",
        pdf = base64_lines(&rng.bytes(102_400)),
        jpeg = base64_lines(&rng.bytes(45_000)),
    );
    out.push(CorpusMessage {
        bytes: build(
            &[
                ("From", bob.to_owned()),
                ("To", alice.to_owned()),
                ("Cc", "Carol <carol@example.test>".to_owned()),
                ("Subject", "Quarterly report with attachments".to_owned()),
                ("Date", when.header()),
                ("Message-ID", "<report-2021@example.test>".to_owned()),
                ("MIME-Version", "1.0".to_owned()),
                (
                    "Content-Type",
                    "multipart/mixed; boundary=\"=_outer\"".to_owned(),
                ),
            ],
            &body,
        ),
        flags: flags(&["\\Seen", "$Forwarded", "Custom_kw"]),
        internal_date: when.internal(),
    });
    out
}

/// ≈ 25 MB: one base64 attachment of pseudo-random bytes.
fn big_message(rng: &mut Rng) -> CorpusMessage {
    let when = When::new(2020, 2, 29, 13, 37, 0, "-0500");
    // 57 raw bytes make one 76-character line plus CRLF.
    let raw = 25 * 1024 * 1024 / 78 * 57;
    let body = format!(
        "--=_big\nContent-Type: text/plain; charset=us-ascii\n\nThe archive you asked for.\n\
         --=_big\nContent-Type: application/octet-stream; name=\"archive.bin\"\n\
         Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"archive.bin\"\n\n\
         {}--=_big--\n",
        base64_lines(&rng.bytes(raw))
    );
    CorpusMessage {
        bytes: build(
            &[
                ("From", "Bob Beispiel <bob@example.test>".to_owned()),
                ("To", "Alice Example <alice@example.test>".to_owned()),
                ("Subject", BIG_MESSAGE_SUBJECT.to_owned()),
                ("Date", when.header()),
                ("Message-ID", "<big-25mb@example.test>".to_owned()),
                ("MIME-Version", "1.0".to_owned()),
                (
                    "Content-Type",
                    "multipart/mixed; boundary=\"=_big\"".to_owned(),
                ),
            ],
            &body,
        ),
        flags: flags(&["\\Seen"]),
        internal_date: when.internal(),
    }
}

/// Flag sets the ordinary messages cycle through.
const FLAG_SETS: [&[&str]; 9] = [
    &["\\Seen"],
    &[],
    &["\\Seen", "\\Answered"],
    &["\\Seen", "$Forwarded"],
    &["\\Flagged"],
    &["\\Seen"],
    &["\\Seen", "Custom_kw"],
    &["$Junk"],
    &["\\Seen", "\\Answered", "\\Flagged"],
];

const PEOPLE: [&str; 8] = [
    "Alice Example <alice@example.test>",
    "Bob Beispiel <bob@example.test>",
    "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.test>",
    "Carol <carol@example.test>",
    "\"Dan, the builder\" <dan@example.test>",
    "=?UTF-8?B?5bGx55Sw5aSq6YOO?= <yamada@example.jp>",
    "newsletter@lists.example.test",
    "Erin O'Brien <erin@example.test>",
];

const TOPICS: [&str; 12] = [
    "Meeting notes",
    "Invoice 2041",
    "Re: lunch on Friday?",
    "Project plan v3",
    "Your order has shipped",
    "Fwd: photos",
    "Weekly digest",
    "Server maintenance window",
    "Angebot für Übersetzung",
    "Re: Re: budget",
    "Travel itinerary",
    "Question about the contract",
];

/// A realistic message, one of five shapes.
fn ordinary_message(
    rng: &mut Rng,
    serial: usize,
    when: &When,
    sent: bool,
    folder: &str,
) -> CorpusMessage {
    let from = if sent {
        PEOPLE[0].to_owned()
    } else {
        PEOPLE[1 + rng.below(PEOPLE.len() as u64 - 1) as usize].to_owned()
    };
    let to = if sent {
        PEOPLE[1 + rng.below(PEOPLE.len() as u64 - 1) as usize].to_owned()
    } else {
        PEOPLE[0].to_owned()
    };
    let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
    let message_id = format!("<m{serial:04}.{}@example.test>", rng.next() % 1_000_000);
    let mut headers = vec![
        ("Return-Path", "<bounce@example.test>".to_owned()),
        (
            "Received",
            format!(
                "from mx.example.test (mx.example.test [192.0.2.{}])\n\tby mail.example.test with ESMTPS id {:x};\n\t{}",
                1 + rng.below(250),
                rng.next(),
                when.header()
            ),
        ),
        ("From", from),
        ("To", to),
        ("Subject", format!("{topic} ({folder} #{serial})")),
        ("Date", when.header()),
        ("Message-ID", message_id),
        ("MIME-Version", "1.0".to_owned()),
    ];
    let body = match serial % 5 {
        0 => {
            headers.push(("Content-Type", "text/plain; charset=us-ascii".to_owned()));
            headers.push(("Content-Transfer-Encoding", "7bit".to_owned()));
            let count = 1 + rng.below(4) as usize;
            paragraphs(rng, count)
        }
        1 => {
            headers.push(("Content-Type", "text/plain; charset=utf-8".to_owned()));
            headers.push(("Content-Transfer-Encoding", "quoted-printable".to_owned()));
            let text = format!(
                "Hallo zusammen,\n\nanbei die Übersicht für nächste Woche: Größe, Maße, Preise.\n\n{}\nViele Grüße\n",
                paragraphs(rng, 2)
            );
            quoted_printable(&text)
        }
        2 => {
            headers.push((
                "Content-Type",
                "multipart/mixed; boundary=\"=_part\"".to_owned(),
            ));
            let size = 1_000 + rng.below(8_000) as usize;
            format!(
                "--=_part\nContent-Type: text/plain; charset=us-ascii\n\n{}\n\
                 --=_part\nContent-Type: application/zip; name=\"files.zip\"\n\
                 Content-Transfer-Encoding: base64\n\
                 Content-Disposition: attachment; filename=\"files.zip\"\n\n{}--=_part--\n",
                paragraphs(rng, 1),
                base64_lines(&rng.bytes(size))
            )
        }
        3 => {
            headers.push((
                "In-Reply-To",
                format!("<m{:04}.0@example.test>", serial.saturating_sub(1)),
            ));
            headers.push((
                "References",
                format!("<m{:04}.0@example.test>", serial.saturating_sub(1)),
            ));
            headers.push(("Content-Type", "text/plain; charset=utf-8".to_owned()));
            headers.push(("Content-Transfer-Encoding", "base64".to_owned()));
            let text = format!(
                "了解しました。\n\n> {}\n",
                paragraphs(rng, 1).replace('\n', "\n> ")
            );
            base64_lines(text.replace('\n', "\r\n").as_bytes()).replace("\r\n", "\n")
        }
        _ => {
            headers.push(("Content-Type", "text/html; charset=us-ascii".to_owned()));
            format!(
                "<!DOCTYPE html>\n<html><body>\n<p>{}</p>\n<p><a href=\"https://example.test/u?id={serial}\">Unsubscribe</a></p>\n</body></html>\n",
                paragraphs(rng, 2).replace("\n\n", "</p>\n<p>")
            )
        }
    };
    CorpusMessage {
        bytes: build(&headers, &body),
        flags: flags(FLAG_SETS[serial % FLAG_SETS.len()]),
        internal_date: when.internal(),
    }
}

/// A message of about `size` bytes: text, plus a base64 attachment when large.
fn sized_message(rng: &mut Rng, serial: usize, when: &When, size: usize) -> CorpusMessage {
    let headers_size = 400;
    let mut headers = vec![
        ("From", PEOPLE[1 + serial % (PEOPLE.len() - 1)].to_owned()),
        ("To", PEOPLE[0].to_owned()),
        (
            "Subject",
            format!("{} #{serial}", TOPICS[serial % TOPICS.len()]),
        ),
        ("Date", when.header()),
        (
            "Message-ID",
            format!("<bulk{serial}.{:x}@example.test>", rng.next()),
        ),
        ("MIME-Version", "1.0".to_owned()),
    ];
    let body = if size <= 20_000 {
        headers.push(("Content-Type", "text/plain; charset=us-ascii".to_owned()));
        text_of_size(rng, size.saturating_sub(headers_size))
    } else {
        headers.push((
            "Content-Type",
            "multipart/mixed; boundary=\"=_bulk\"".to_owned(),
        ));
        let text = text_of_size(rng, 1_500);
        let raw = size.saturating_sub(headers_size + 1_800) / 78 * 57;
        format!(
            "--=_bulk\nContent-Type: text/plain; charset=us-ascii\n\n{text}\n\
             --=_bulk\nContent-Type: application/octet-stream; name=\"data.bin\"\n\
             Content-Transfer-Encoding: base64\n\n{}--=_bulk--\n",
            base64_lines(&rng.bytes(raw))
        )
    };
    CorpusMessage {
        bytes: build(&headers, &body),
        flags: flags(FLAG_SETS[serial % FLAG_SETS.len()]),
        internal_date: when.internal(),
    }
}

/// Headers (folded lines may contain `\n\t`), a blank line and the body, all with
/// CRLF. Bodies are written with `\n`; lines already ending in CRLF stay as they are.
fn build(headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut text = String::with_capacity(body.len() + 512);
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(body);
    crlf(&text).into_bytes()
}

/// `\n` → `\r\n`, leaving existing `\r\n` alone.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 40);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

/// Base64 in 76-character lines, each ending in CRLF (RFC 2045 §6.8).
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) for text with `\n` line breaks; lines at most
/// 76 characters, soft breaks `=`.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.split('\n') {
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal = (b == b' ' && !last) || (b'!'..=b'~').contains(&b) && b != b'=';
            let piece = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + piece.len() > 75 {
                out.push_str("=\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push('\n');
    }
    out.pop();
    out
}

const WORDS: [&str; 48] = [
    "the",
    "migration",
    "mailbox",
    "server",
    "please",
    "find",
    "attached",
    "report",
    "we",
    "should",
    "meet",
    "on",
    "Tuesday",
    "to",
    "discuss",
    "budget",
    "and",
    "timeline",
    "for",
    "next",
    "quarter",
    "thanks",
    "again",
    "regards",
    "customer",
    "invoice",
    "payment",
    "due",
    "within",
    "days",
    "of",
    "receipt",
    "project",
    "team",
    "update",
    "status",
    "green",
    "risk",
    "low",
    "schedule",
    "review",
    "draft",
    "final",
    "version",
    "comments",
    "welcome",
    "a",
    "is",
];

/// `count` paragraphs of 2–5 wrapped sentences, separated by blank lines.
fn paragraphs(rng: &mut Rng, count: usize) -> String {
    let mut out = String::new();
    for p in 0..count {
        if p > 0 {
            out.push('\n');
        }
        let mut line_width = 0;
        for _ in 0..2 + rng.below(4) {
            let words = 6 + rng.below(10) as usize;
            for w in 0..words {
                let mut word = WORDS[rng.below(WORDS.len() as u64) as usize].to_owned();
                if w == 0 {
                    word[..1].make_ascii_uppercase();
                }
                if w + 1 == words {
                    word.push('.');
                }
                if line_width + word.len() + 1 > 72 {
                    out.push('\n');
                    line_width = 0;
                } else if line_width > 0 {
                    out.push(' ');
                    line_width += 1;
                }
                out.push_str(&word);
                line_width += word.len();
            }
        }
        out.push('\n');
    }
    out
}

/// Paragraphs until about `size` bytes (CRLF counted).
fn text_of_size(rng: &mut Rng, size: usize) -> String {
    let mut out = String::new();
    while out.len() + out.matches('\n').count() < size {
        out.push_str(&paragraphs(rng, 1));
        out.push('\n');
    }
    out
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|f| (*f).to_owned()).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A wall-clock time with its zone, printed as RFC 5322 `Date:` and IMAP date-time.
struct When {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    zone: &'static str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const ZONES: [&str; 10] = [
    "+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900", "-0330", "+1245", "+1000",
];

impl When {
    fn new(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        zone: &'static str,
    ) -> Self {
        When {
            year,
            month,
            day,
            hour,
            minute,
            second,
            zone,
        }
    }

    /// Any time from 2000 to 2024.
    fn random(rng: &mut Rng) -> Self {
        let year = 2000 + rng.below(25) as i32;
        Self::random_in(rng, year, 12)
    }

    /// A time in the first `months` months of `year` (days 1–28: valid everywhere).
    fn random_in(rng: &mut Rng, year: i32, months: u32) -> Self {
        When {
            year,
            month: 1 + rng.below(u64::from(months)) as u32,
            day: 1 + rng.below(28) as u32,
            hour: rng.below(24) as u32,
            minute: rng.below(60) as u32,
            second: rng.below(60) as u32,
            zone: ZONES[rng.below(ZONES.len() as u64) as usize],
        }
    }

    /// `Fri, 02 Jan 2015 10:00:00 +0100`
    fn header(&self) -> String {
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} {}",
            self.weekday(),
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.zone
        )
    }

    /// `02-Jan-2015 10:00:00 +0100` (RFC 3501 date-time).
    fn internal(&self) -> String {
        format!(
            "{:02}-{}-{} {:02}:{:02}:{:02} {}",
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.zone
        )
    }

    /// Sakamoto's day-of-week algorithm (proleptic Gregorian).
    fn weekday(&self) -> &'static str {
        const OFFSETS: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
        const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        let year = if self.month < 3 {
            self.year - 1
        } else {
            self.year
        };
        let day = (year + year / 4 - year / 100
            + year / 400
            + OFFSETS[self.month as usize - 1]
            + self.day as i32)
            % 7;
        NAMES[day as usize]
    }
}

/// SplitMix64: tiny, fast and, unlike `rand`'s `StdRng`, guaranteed to give the same
/// sequence forever, which keeps the corpora byte-stable across dependency updates.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for test data (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(corpus: &Corpus) -> impl Iterator<Item = &CorpusMessage> {
        corpus.folders.iter().flat_map(|f| &f.messages)
    }

    fn by_subject<'a>(corpus: &'a Corpus, subject: &str) -> Vec<&'a CorpusMessage> {
        all(corpus)
            .filter(|m| m.subject().is_some_and(|s| s.starts_with(subject)))
            .collect()
    }

    #[test]
    fn nasty_corpus_is_deterministic() {
        assert_eq!(nasty_corpus(false), nasty_corpus(false));
        assert_eq!(bulk_corpus(7, 20, 4), bulk_corpus(7, 20, 4));
        assert_ne!(bulk_corpus(7, 20, 4), bulk_corpus(8, 20, 4));
    }

    #[test]
    fn nasty_corpus_has_its_folders_and_sizes() {
        let corpus = nasty_corpus(false);
        let names: Vec<&str> = corpus.folders.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, NASTY_FOLDERS);
        assert_eq!(corpus.message_count(), 11 + 32);
        assert!(corpus.folders.iter().all(|f| !f.messages.is_empty()));
        let report = &by_subject(&corpus, "Quarterly report")[0];
        assert!(
            (190_000..230_000).contains(&report.bytes.len()),
            "{}",
            report.bytes.len()
        );
    }

    #[test]
    fn line_endings_are_crlf_except_the_bare_lf_message() {
        let corpus = nasty_corpus(false);
        for message in all(&corpus) {
            let subject = message.subject().unwrap_or_default();
            let lf = message.bytes.iter().filter(|b| **b == b'\n').count();
            let crlf = message.bytes.windows(2).filter(|w| w == b"\r\n").count();
            if subject == "Bare LF line endings" {
                assert_eq!(crlf, 0);
                assert!(lf > 3);
            } else if subject == "Binary MIME part" {
                // The raw part holds lone LF bytes on purpose.
                assert!(crlf > 5);
            } else {
                assert_eq!(lf, crlf, "{message:?}");
            }
        }
    }

    #[test]
    fn special_messages_are_special() {
        let corpus = nasty_corpus(false);
        let binary = &by_subject(&corpus, "Binary MIME part")[0].bytes;
        assert!(!binary.contains(&0));
        assert!((1..=255u8).all(|b| binary.contains(&b)));
        assert_eq!(by_subject(&corpus, "Same Message-ID").len(), 2);
        let twins = by_subject(&corpus, "Identical twin");
        assert_eq!(twins.len(), 2);
        assert_eq!(twins[0].bytes, twins[1].bytes);
        let empty = &by_subject(&corpus, "Empty body")[0].bytes;
        assert!(empty.ends_with(b"\r\n\r\n"));
        let header_only = &by_subject(&corpus, "Header only")[0].bytes;
        assert!(find(header_only, b"\r\n\r\n").is_none());
        let no_id = &by_subject(&corpus, "No Message-ID")[0].bytes;
        assert!(find(no_id, b"\nMessage-ID:").is_none());
        let eight_bit = &by_subject(&corpus, "8bit body")[0].bytes;
        assert!(eight_bit.iter().any(|b| *b >= 0x80));
        let every_flag: Vec<&str> = all(&corpus)
            .flat_map(|m| &m.flags)
            .map(String::as_str)
            .collect();
        for flag in [
            "\\Seen",
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Draft",
            "$Forwarded",
            "$Junk",
            "Custom_kw",
        ] {
            assert!(every_flag.contains(&flag), "{flag}");
        }
        assert!(all(&corpus).any(|m| m.flags.is_empty()));
        for year in ["1999", "2005", "2015"] {
            assert!(
                all(&corpus).any(|m| m.internal_date.contains(year)),
                "{year}"
            );
        }
    }

    #[test]
    fn big_message_is_about_25_mb_with_76_character_lines() {
        let corpus = nasty_corpus(true);
        let big = &by_subject(&corpus, BIG_MESSAGE_SUBJECT)[0].bytes;
        assert!(
            (25_000_000..27_000_000).contains(&big.len()),
            "{}",
            big.len()
        );
        let longest = big
            .split(|b| *b == b'\n')
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        assert_eq!(longest, 77, "76 characters plus CR");
    }

    #[test]
    fn bulk_sizes_are_realistic() {
        let corpus = bulk_corpus(1, 400, 6);
        assert_eq!(corpus.message_count(), 400);
        assert_eq!(corpus.folders[0].name, "INBOX");
        assert_eq!(corpus.folders[5].name, "Folder 004/Sub 005");
        let sizes: Vec<usize> = all(&corpus).map(|m| m.bytes.len()).collect();
        assert!(
            sizes.iter().all(|s| (1_500..1_100_000).contains(s)),
            "{sizes:?}"
        );
        let small = sizes.iter().filter(|s| **s <= 100_000).count();
        assert!(small > 350, "{small} of 400 up to 100 KB");
        assert!(sizes.iter().any(|s| *s > 100_000));
    }

    #[test]
    fn big_messages_are_5_to_25_mb() {
        let big = big_messages(3, 3, 100);
        assert_eq!(big, big_messages(3, 3, 100));
        for message in &big {
            let len = message.bytes.len();
            assert!((4_900_000..=25_100_000).contains(&len), "{len}");
            assert!(message.subject().is_some_and(|s| s.contains("#10")));
        }
    }

    #[test]
    fn dates_are_well_formed() {
        let when = When::new(2015, 1, 2, 10, 0, 0, "+0100");
        assert_eq!(when.header(), "Fri, 02 Jan 2015 10:00:00 +0100");
        assert_eq!(when.internal(), "02-Jan-2015 10:00:00 +0100");
        assert_eq!(When::new(2024, 2, 29, 0, 0, 0, "+0000").weekday(), "Thu");
    }

    #[test]
    fn quoted_printable_escapes_and_wraps() {
        assert_eq!(quoted_printable("Grüße = ok "), "Gr=C3=BC=C3=9Fe =3D ok=20");
        let long = quoted_printable(&"ä".repeat(40));
        assert!(long.lines().all(|l| l.len() <= 76), "{long}");
    }
}
