//! Real Dovecot instances, filled with the nasty corpus and checked with doveadm.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use mailferry_testkit::{
    nasty_corpus, stop_all, Corpus, CorpusFolder, CorpusMessage, Dovecot, FaultProxy, Layout,
    Naming, TestkitError, ALICE, ALICE_PASSWORD, BIG_MESSAGE_SUBJECT, BOB, BOB_PASSWORD,
    MASTER_PASSWORD, MASTER_SEPARATOR, MASTER_USER, SMALL, SMALL_PASSWORD,
};

fn one_message_corpus(subject: &str, body_bytes: usize) -> Corpus {
    let mut bytes = format!(
        "From: t@example.test\r\nTo: x@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.test>\r\n\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', body_bytes));
    bytes.extend_from_slice(b"\r\n");
    Corpus {
        folders: vec![CorpusFolder {
            name: "INBOX".to_owned(),
            messages: vec![CorpusMessage {
                bytes,
                flags: vec![],
                internal_date: "01-Jan-2020 00:00:00 +0000".to_owned(),
            }],
        }],
    }
}

/// The size of a message once every bare LF is CRLF: Dovecot serves (and counts as
/// `size.virtual`) messages that way, whatever the APPEND sent.
fn crlf_size(bytes: &[u8]) -> usize {
    let bare_lf = bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' && (*i == 0 || bytes[i - 1] != b'\r'))
        .count();
    bytes.len() + bare_lf
}

/// `doveadm -f tab ...`: the first line holds the field names, then one line per row.
fn tab_rows(server: &Dovecot, args: &[&str]) -> Vec<String> {
    let mut full = vec!["-f", "tab"];
    full.extend_from_slice(args);
    let output = server
        .doveadm(&full)
        .unwrap_or_else(|error| panic!("doveadm {args:?}: {error}"));
    output.lines().skip(1).map(str::to_owned).collect()
}

/// The server holds exactly the corpus: folder list, counts, sizes, some flags.
fn check_holds_corpus(server: &Dovecot, corpus: &Corpus) {
    let listed: BTreeSet<String> = server
        .doveadm(&["mailbox", "list", "-u", ALICE])
        .expect("doveadm mailbox list")
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = corpus
        .folders
        .iter()
        .map(|f| server.mailbox_name(&f.name))
        .collect();
    let missing: Vec<_> = expected.difference(&listed).collect();
    assert!(missing.is_empty(), "missing {missing:?} in {listed:?}");
    let specials: BTreeSet<String> = server.special_folder_names().into_iter().collect();
    let extra: Vec<_> = listed
        .difference(&expected)
        .filter(|name| !specials.contains(*name))
        .collect();
    assert!(extra.is_empty(), "unexpected folders {extra:?}");

    for folder in &corpus.folders {
        let name = server.mailbox_name(&folder.name);
        let sizes = tab_rows(
            server,
            &[
                "fetch",
                "-u",
                ALICE,
                "size.virtual",
                "mailbox",
                &name,
                "ALL",
            ],
        );
        assert_eq!(
            sizes.len(),
            folder.messages.len(),
            "message count of {name}"
        );
        for (index, (size, message)) in sizes.iter().zip(&folder.messages).enumerate() {
            let size: usize = size.trim().parse().expect("size.virtual is a number");
            assert_eq!(
                size,
                crlf_size(&message.bytes),
                "size of message {index} in {name}"
            );
        }
    }

    let inbox = tab_rows(
        server,
        &[
            "fetch",
            "-u",
            ALICE,
            "flags date.received",
            "mailbox",
            "INBOX",
            "ALL",
        ],
    )
    .join("\n");
    for needle in [
        "$Forwarded",
        "$Junk",
        "Custom_kw",
        "\\Deleted",
        "\\Draft",
        "1999-03-14",
    ] {
        assert!(inbox.contains(needle), "INBOX lacks {needle}:\n{inbox}");
    }
}

#[test]
fn two_instances_hold_the_nasty_corpus() {
    let corpus = nasty_corpus(false);
    let (fs, plus) = thread::scope(|scope| {
        let fs = scope.spawn(|| Dovecot::builder().start());
        let plus = scope.spawn(|| {
            Dovecot::builder()
                .layout(Layout::MaildirPlusPlus)
                .prefix("INBOX.")
                .naming(Naming::Exchange)
                .start()
        });
        (
            fs.join()
                .expect("start thread")
                .expect("start LAYOUT=fs dovecot"),
            plus.join()
                .expect("start thread")
                .expect("start Maildir++ dovecot"),
        )
    });
    assert_ne!(fs.imap_port(), plus.imap_port());
    assert_eq!((fs.separator(), plus.separator()), ('/', '.'));

    thread::scope(|scope| {
        for server in [&fs, &plus] {
            let corpus = &corpus;
            scope.spawn(move || {
                server
                    .fill(ALICE, ALICE_PASSWORD, corpus)
                    .unwrap_or_else(|error| panic!("fill {}: {error}", server.dir().display()));
            });
        }
    });
    check_holds_corpus(&fs, &corpus);
    check_holds_corpus(&plus, &corpus);

    assert!(fs
        .dir()
        .join("home/alice/Maildir/Archive/2019/Q1/cur")
        .is_dir());
    assert!(plus
        .dir()
        .join("home/alice/Maildir/.Archive.2019.Q1/cur")
        .is_dir());
    let dirs = [fs.dir().to_path_buf(), plus.dir().to_path_buf()];
    stop_all([fs, plus]);
    if std::env::var("MAILFERRY_KEEP_SERVERS").is_err() {
        assert!(
            dirs.iter().all(|dir| !dir.exists()),
            "directories removed on drop"
        );
    }
}

#[test]
fn quota_master_user_tls_and_proxy_on_one_instance() {
    let server = Dovecot::start().expect("start dovecot");

    // The small user: 20 KiB quota.
    server
        .fill(SMALL, SMALL_PASSWORD, &one_message_corpus("fits", 1_000))
        .expect("a 1 KB message fits the quota");
    let error = server
        .fill(
            SMALL,
            SMALL_PASSWORD,
            &one_message_corpus("too big", 30_000),
        )
        .expect_err("30 KB must exceed the 20 KiB quota");
    assert!(
        matches!(&error, TestkitError::ImapRejected { response, .. } if response.contains("OVERQUOTA")),
        "{error}"
    );

    // The master user logs in as alice.
    let as_alice = format!("{ALICE}{MASTER_SEPARATOR}{MASTER_USER}");
    server
        .fill(
            &as_alice,
            MASTER_PASSWORD,
            &one_message_corpus("via master", 10),
        )
        .expect("master user login");
    let count = tab_rows(
        &server,
        &["mailbox", "status", "-u", ALICE, "messages", "INBOX"],
    );
    assert_eq!(count, ["INBOX\t1"]);

    // A wrong password is refused with the server's words.
    let error = server
        .fill(ALICE, "wrong", &one_message_corpus("never", 10))
        .expect_err("wrong password");
    assert!(
        error.to_string().contains("AUTHENTICATIONFAILED"),
        "{error}"
    );

    // The certificate verifies for 127.0.0.1 against itself.
    let verified = Command::new("openssl")
        .args([
            "s_client",
            "-brief",
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
        ])
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", server.imaps_port()))
        .arg("-CAfile")
        .arg(server.cert_pem_path())
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The proxy forwards Dovecot's greeting; cut_all closes the connection.
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.imap_port()).into());
    let client = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect to proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set timeout");
    let mut reader = BufReader::new(client);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("greeting");
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    assert_eq!(proxy.connections(), 1);
    proxy.cut_all();
    let mut rest = String::new();
    let closed = matches!(reader.read_line(&mut rest), Ok(0) | Err(_));
    assert!(closed, "still open after cut_all: {rest:?}");

    // Other ports are distinct and listening.
    let ports: BTreeMap<&str, u16> = [
        ("imap", server.imap_port()),
        ("imaps", server.imaps_port()),
        ("pop3", server.pop3_port()),
        ("pop3s", server.pop3s_port()),
        ("lmtp", server.lmtp_port()),
        ("sieve", server.sieve_port()),
    ]
    .into();
    let distinct: BTreeSet<u16> = ports.values().copied().collect();
    assert_eq!(distinct.len(), 6, "{ports:?}");
    for (name, port) in ports {
        TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|error| panic!("{name} port {port}: {error}"));
    }
}

#[test]
fn the_25_mb_message_appends() {
    let server = Dovecot::start().expect("start dovecot");
    let corpus = nasty_corpus(true);
    let inbox = corpus.folder("INBOX").expect("INBOX");
    let big = inbox
        .messages
        .iter()
        .find(|m| m.subject().as_deref() == Some(BIG_MESSAGE_SUBJECT))
        .expect("the big message");
    let only_big = Corpus {
        folders: vec![CorpusFolder {
            name: "Archive/2019".to_owned(),
            messages: vec![big.clone()],
        }],
    };
    server
        .fill(BOB, BOB_PASSWORD, &only_big)
        .expect("APPEND 25 MB");
    let name = server.mailbox_name("Archive/2019");
    let size = tab_rows(
        &server,
        &["fetch", "-u", BOB, "size.virtual", "mailbox", &name, "ALL"],
    );
    assert_eq!(size, [big.bytes.len().to_string()]);
}

#[test]
fn stops_quickly_after_connections_on_every_port() {
    let server = Dovecot::start().expect("start dovecot");
    let ports = [
        server.imap_port(),
        server.imaps_port(),
        server.pop3_port(),
        server.pop3s_port(),
        server.lmtp_port(),
        server.sieve_port(),
    ];
    for port in ports {
        let _ = TcpStream::connect(("127.0.0.1", port));
    }
    let start = std::time::Instant::now();
    drop(server);
    // Signalling only the master took 6 s: login processes waited for a stats
    // handshake that never came.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}
