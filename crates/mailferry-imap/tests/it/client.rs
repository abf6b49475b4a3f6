//! The client's protocol work, checked against a real Dovecot and against doveadm.

use std::time::Duration;

use mailferry_imap::datetime::internal_date_to_unix;
use mailferry_imap::Uid;
use mailferry_imap::{
    mutf7, AppendRequest, Auth, Endpoint, FetchRange, Pool, Resync, Security, Session,
    SessionOptions, SpecialUse, TlsOptions, UidSet,
};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD};
use mailferry_testkit::nasty_corpus;
use secrecy::SecretString;

fn endpoint(server: &Dovecot) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.imap_port(),
        security: Security::StartTls,
        tls: TlsOptions {
            ca_file: Some(server.cert_pem_path()),
            insecure: false,
        },
        allow_plaintext: false,
    }
}

fn auth() -> Auth {
    Auth::Password {
        user: USER1.into(),
        password: SecretString::from(USER1_PASSWORD),
    }
}

async fn login(server: &Dovecot) -> Session {
    let mut session = Session::connect(&endpoint(server), SessionOptions::default())
        .await
        .expect("connects");
    assert!(session.is_tls(), "STARTTLS must be used when offered");
    session.login(&auth()).await.expect("logs in");
    session
        .enable(&["QRESYNC", "CONDSTORE"])
        .await
        .expect("enables");
    session
}

/// Dovecot serves a stored message with CRLF line ends whatever it was given.
fn as_served(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[tokio::test]
async fn pipelined_appends_and_multiappend_store_exact_bytes_flags_and_dates() {
    let server = Dovecot::start().unwrap();
    let mut session = login(&server).await;
    let folder = mutf7::encode("Ziel/Übersicht 2024");
    session.create(b"Ziel", None).await.unwrap();
    session.create(folder.as_bytes(), None).await.unwrap();
    session
        .create(folder.as_bytes(), None)
        .await
        .expect("creating an existing folder is not an error");
    session.subscribe(folder.as_bytes()).await.unwrap();
    assert!(session
        .subscribed()
        .await
        .unwrap()
        .contains(&folder.clone().into_bytes()));

    let corpus = nasty_corpus(false);
    let messages: Vec<_> = corpus
        .folders
        .iter()
        .flat_map(|f| f.messages.iter())
        .collect();
    let (first, second) = messages.split_at(messages.len() / 2);
    let requests =
        |part: &[&mailferry_testkit::CorpusMessage]| -> Vec<(Vec<String>, String, Vec<u8>)> {
            part.iter()
                .map(|m| (m.flags.clone(), m.internal_date.clone(), m.bytes.clone()))
                .collect()
        };
    let first_owned = requests(first);
    let first_requests: Vec<AppendRequest> = first_owned
        .iter()
        .map(|(f, d, b)| AppendRequest {
            flags: f,
            internal_date: Some(d),
            data: b,
        })
        .collect();
    let outcomes = session
        .append_many(folder.as_bytes(), &first_requests, 8)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), first.len());
    let mut uids: Vec<Uid> = outcomes
        .iter()
        .map(|o| o.as_ref().expect("appended").expect("APPENDUID").uid)
        .collect();
    assert!(
        uids.windows(2).all(|w| w[1].get() == w[0].get() + 1),
        "pipelined appends land in order: {uids:?}"
    );

    let second_owned = requests(second);
    let second_requests: Vec<AppendRequest> = second_owned
        .iter()
        .map(|(f, d, b)| AppendRequest {
            flags: f,
            internal_date: Some(d),
            data: b,
        })
        .collect();
    let batch = session
        .multiappend(folder.as_bytes(), &second_requests)
        .await
        .unwrap()
        .expect("MULTIAPPEND accepted");
    assert_eq!(
        batch.len(),
        second.len(),
        "APPENDUID names a UID for every message of the batch"
    );
    uids.extend(batch.iter().map(|a| a.uid));

    let selected = session.select(folder.as_bytes(), true, None).await.unwrap();
    assert_eq!(selected.exists as usize, messages.len());
    assert!(selected.highest_modseq.is_some());
    let metas = session
        .fetch_meta(FetchRange::All, None, true)
        .await
        .unwrap();
    assert_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), uids);
    let tag = session
        .start_fetch_bodies(&UidSet::from_uids(uids.iter().copied()))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    while let Some(fetch) = session.next_fetch(&tag).await.unwrap() {
        bodies.push((
            fetch.uid.unwrap(),
            fetch.section("").unwrap().data.clone().unwrap(),
        ));
    }
    assert_eq!(bodies.len(), messages.len());
    for (((uid, body), meta), original) in bodies.iter().zip(&metas).zip(&messages) {
        assert_eq!(*uid, meta.uid);
        assert_eq!(
            &body[..],
            &as_served(&original.bytes)[..],
            "bytes of UID {uid} ({:?})",
            original.subject()
        );
        assert_eq!(meta.size as usize, body.len());
        let mut want: Vec<&str> = original.flags.iter().map(String::as_str).collect();
        let mut got: Vec<&str> = meta
            .flags
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "\\Recent")
            .collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "flags of UID {uid}");
        // Dovecot keeps the instant, not the zone: compare instants.
        assert_eq!(
            internal_date_to_unix(&meta.internal_date),
            internal_date_to_unix(&original.internal_date),
            "internal date of UID {uid}: {} vs {}",
            meta.internal_date,
            original.internal_date
        );
        let has_id = original
            .bytes
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b"message-id:"));
        assert_eq!(meta.message_id.is_some(), has_id, "Message-ID of UID {uid}");
    }
    // Independent check: doveadm sees the same number of messages in the folder.
    let listing = server
        .doveadm(&[
            "mailbox",
            "status",
            "-u",
            USER1,
            "messages",
            "Ziel/Übersicht 2024",
        ])
        .unwrap();
    assert!(
        listing.contains(&format!("messages={}", messages.len())),
        "doveadm: {listing}"
    );
}

#[tokio::test]
async fn big_message_streams_in_and_comes_back_in_partial_ranges() {
    let server = Dovecot::start().unwrap();
    let mut session = login(&server).await;
    // 9 MiB plus a tail, so the last range is short; CRLF lines as Dovecot serves them.
    let mut message =
        b"From: a@example.test\r\nSubject: big\r\nMessage-ID: <big@example.test>\r\n\r\n".to_vec();
    let mut line = 0u64;
    while message.len() < 9 * 1024 * 1024 + 777 {
        line += 1;
        message.extend_from_slice(format!("{line:076}\r\n").as_bytes());
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &message).unwrap();
    let reader = tokio::fs::File::open(file.path()).await.unwrap();
    let outcome = session
        .append_stream(
            b"INBOX",
            &["\\Seen".to_string()],
            Some("01-Feb-2003 04:05:06 +0000"),
            message.len() as u64,
            reader,
        )
        .await
        .unwrap()
        .expect("appended");
    let uid = outcome.expect("APPENDUID").uid;
    session.select(b"INBOX", true, None).await.unwrap();
    let got = session
        .fetch_body_partial(uid, Some(message.len() as u64), 1024 * 1024, Vec::new())
        .await
        .unwrap();
    assert_eq!(got.len(), message.len());
    assert!(
        got == message,
        "partial ranges reassemble to the same bytes"
    );
    // A wrong (too small) announced size must not truncate the message.
    let got = session
        .fetch_body_partial(uid, Some(1000), 1024 * 1024, Vec::new())
        .await
        .unwrap();
    assert!(got == message);
    // Exactly a multiple of the chunk size: the end is found by an empty range.
    let got = session
        .fetch_body_partial(
            uid,
            Some(message.len() as u64),
            message.len() as u64,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(got == message);
}

#[tokio::test]
async fn pipelined_commands_get_their_own_answers() {
    let server = Dovecot::start().unwrap();
    server
        .fill(USER1, USER1_PASSWORD, &nasty_corpus(false))
        .unwrap();
    let mut session = login(&server).await;
    let folders = session.list_folders(false).await.unwrap();
    let selectable: Vec<_> = folders.iter().filter(|f| f.selectable).collect();
    let mut tags = Vec::new();
    for folder in &selectable {
        let line = [
            b"STATUS ".as_slice(),
            &mailferry_imap::session::quote(&folder.raw_name),
            b" (MESSAGES)\r\n",
        ]
        .concat();
        tags.push((session.send(&line).await.unwrap(), folder.raw_name.clone()));
    }
    let bad = session.send(b"FROBNICATE\r\n").await.unwrap();
    let noop = session.send(b"NOOP\r\n").await.unwrap();
    // Wait in reverse order: every answer must still find its command.
    assert_eq!(
        session.wait(&noop).await.unwrap().status.kind,
        mailferry_imap::response::StatusKind::Ok
    );
    assert_eq!(
        session.wait(&bad).await.unwrap().status.kind,
        mailferry_imap::response::StatusKind::Bad
    );
    for (tag, name) in tags.iter().rev() {
        let done = session.wait(tag).await.unwrap();
        let names: Vec<_> = done
            .data
            .iter()
            .filter_map(|d| match d {
                mailferry_imap::response::Untagged::FolderStatus { raw_name, .. } => {
                    Some(raw_name.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            vec![name.clone()],
            "STATUS data of `{}`",
            String::from_utf8_lossy(name)
        );
    }
    let with_status = session.list_folders(true).await.unwrap();
    let sent = with_status
        .iter()
        .find(|f| f.special_use == Some(SpecialUse::Sent))
        .expect("\\Sent found by its flag");
    assert_eq!(sent.name, "Sent");
    assert!(with_status
        .iter()
        .all(|f| !f.selectable || f.status.as_ref().is_some_and(|s| s.uid_validity.is_some())));
}

#[tokio::test]
async fn qresync_select_reports_flag_changes_and_expunges_in_one_round_trip() {
    let server = Dovecot::start().unwrap();
    server
        .fill(USER1, USER1_PASSWORD, &nasty_corpus(false))
        .unwrap();
    let mut session = login(&server).await;
    let first = session.select(b"INBOX", false, None).await.unwrap();
    let modseq = first.highest_modseq.expect("Dovecot keeps mod-sequences");
    let metas = session
        .fetch_meta(FetchRange::All, None, false)
        .await
        .unwrap();
    let changed = UidSet::from_uids(metas.iter().take(3).map(|m| m.uid));
    session
        .uid_store(&changed, "+FLAGS.SILENT", &["$Label1".to_string()])
        .await
        .unwrap();
    let gone = metas.last().unwrap().uid;
    server
        .doveadm(&[
            "expunge",
            "-u",
            USER1,
            "mailbox",
            "INBOX",
            "uid",
            &gone.to_string(),
        ])
        .unwrap();

    let mut other = login(&server).await;
    let before = other.stats().round_trips;
    let again = other
        .select(
            b"INBOX",
            true,
            Some(Resync {
                uid_validity: first.uid_validity.expect("Dovecot sends UIDVALIDITY"),
                modseq,
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        other.stats().round_trips - before,
        1,
        "QRESYNC SELECT is one round trip"
    );
    assert!(
        again.vanished.contains(gone),
        "vanished: {}",
        again.vanished
    );
    let flagged: Vec<Uid> = again.changed.iter().filter_map(|f| f.uid).collect();
    for uid in changed.iter() {
        assert!(
            flagged.contains(&uid),
            "UID {uid} reported as changed: {flagged:?}"
        );
    }
    let since = other
        .fetch_meta(FetchRange::All, Some(modseq), false)
        .await
        .unwrap();
    assert_eq!(since.len(), 3);
    assert!(since.iter().all(|m| m.flags.iter().any(|f| f == "$Label1")));
}

#[tokio::test]
async fn pool_caps_connections_per_host() {
    let server = Dovecot::start().unwrap();
    let budget = mailferry_imap::ConnectionBudget::new(2, None);
    let pool = Pool::new(
        endpoint(&server),
        auth(),
        SessionOptions::default(),
        &budget,
    );
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), pool.get())
            .await
            .is_err(),
        "a third connection waits"
    );
    pool.put(a);
    let c = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("freed")
        .unwrap();
    assert!(c.session.capabilities().has("IMAP4REV1"));
    drop(b);
    drop(c);
}

#[tokio::test]
async fn a_bandwidth_cap_slows_reads_to_its_rate() {
    let server = Dovecot::start().unwrap();
    let mut session = login(&server).await;
    let message: Vec<u8> = b"Subject: capped\r\n\r\n"
        .iter()
        .copied()
        .chain((0..6 * 1024 * 1024).map(|i| b"abcdefghij\r\n"[i % 12]))
        .collect();
    let outcome = session
        .append_many(
            b"INBOX",
            &[AppendRequest {
                flags: &[],
                internal_date: None,
                data: &message,
            }],
            1,
        )
        .await
        .unwrap()
        .remove(0)
        .expect("appended")
        .expect("APPENDUID");
    let options = SessionOptions {
        read_limit: Some(mailferry_imap::RateLimit::new(2 * 1024 * 1024)),
        ..SessionOptions::default()
    };
    let mut capped = Session::connect(&endpoint(&server), options).await.unwrap();
    capped.login(&auth()).await.unwrap();
    capped.select(b"INBOX", true, None).await.unwrap();
    let started = std::time::Instant::now();
    let got = capped
        .fetch_body_partial(
            outcome.uid,
            Some(message.len() as u64),
            1024 * 1024,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(got == message);
    // 6 MiB at 2 MiB/s after a one-second burst: at least two seconds.
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        elapsed >= 1.8,
        "6 MiB under a 2 MiB/s cap took only {elapsed:.2} s"
    );
}

#[tokio::test]
async fn a_global_cap_limits_open_connections_to_every_host() {
    let server = Dovecot::start().unwrap();
    // Per host 10, in all 2: the third connection waits; an idle one keeps its place.
    let budget = mailferry_imap::ConnectionBudget::new(10, Some(2));
    let pool = Pool::new(
        endpoint(&server),
        auth(),
        SessionOptions::default(),
        &budget,
    );
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), pool.get())
            .await
            .is_err(),
        "a third connection waits"
    );
    pool.put(a);
    let c = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("the idle one is reused")
        .unwrap();
    drop(b);
    let d = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("a closed one frees its place")
        .unwrap();
    drop((c, d));
}

#[tokio::test]
async fn folder_annotations_round_trip_through_metadata() {
    let server = Dovecot::builder().metadata().start().unwrap();
    let mut session = login(&server).await;
    assert!(
        session.has_metadata(),
        "Dovecot with imap_metadata offers METADATA"
    );
    session.create(b"Work", None).await.unwrap();
    let entries = [
        mailferry_imap::MetadataEntry {
            name: "/private/comment".into(),
            value: Some(b"short words".to_vec()),
        },
        mailferry_imap::MetadataEntry {
            name: "/shared/vendor/kolab/folder-type".into(),
            value: Some("Zwei Zeilen\r\nmit Ümlaut".as_bytes().to_vec()),
        },
    ];
    for entry in &entries {
        assert_eq!(
            session.set_metadata(b"Work", entry).await.unwrap(),
            mailferry_imap::SetOutcome::Stored
        );
    }
    let read = session.get_metadata(b"Work").await.unwrap();
    assert_eq!(
        read, entries,
        "quoted and literal values come back byte for byte"
    );
    assert!(session.get_metadata(b"INBOX").await.unwrap().is_empty());
    // Pipelined: one answer per folder in order, a missing folder's NO its own error.
    let many = session
        .get_metadata_many(&[b"Work", b"No such folder", b"INBOX"])
        .await
        .unwrap();
    assert_eq!(many.len(), 3);
    assert_eq!(many[0].as_ref().unwrap(), &entries);
    assert!(many[1].is_err(), "{:?}", many[1]);
    assert!(many[2].as_ref().unwrap().is_empty());
    // A name outside /private and /shared is refused by the server, as an answer.
    let refused = session
        .set_metadata(
            b"Work",
            &mailferry_imap::MetadataEntry {
                name: "/nowhere/x".into(),
                value: Some(b"v".to_vec()),
            },
        )
        .await;
    assert!(
        matches!(refused, Ok(mailferry_imap::SetOutcome::Refused(_)) | Err(_)),
        "{refused:?}"
    );
    session.logout().await;
}
