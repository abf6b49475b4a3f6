//! COMPRESS=DEFLATE (RFC 4978) against a real Dovecot with its imap_zlib plugin.

use std::fmt::Write as _;

use mailferry_imap::{AppendRequest, Auth, Endpoint, Security, Session, SessionOptions};
use mailferry_imap::{FetchRange, TlsOptions, UidSet};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD};
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

/// A message of about `size` bytes of compressible text with CRLF line ends (as Dovecot
/// serves it), different for every `n`.
fn message(n: usize, size: usize) -> Vec<u8> {
    let mut text = format!(
        "From: sender{n}@example.test\r\nTo: user1@example.test\r\nSubject: compressible {n}\r\nMessage-ID: <c{n}@example.test>\r\n\r\n"
    );
    let mut line = 0usize;
    while text.len() < size {
        line += 1;
        let _ = write!(
            text,
            "Message {n}, line {line}: the quick brown fox jumps over the lazy dog.\r\n"
        );
    }
    text.into_bytes()
}

#[tokio::test]
async fn compressed_session_moves_exact_bytes_in_far_fewer_wire_bytes() {
    let server = Dovecot::start().unwrap();
    let mut session = Session::connect(&endpoint(&server), SessionOptions::default())
        .await
        .expect("connects");
    assert!(
        !session.compress().await.unwrap(),
        "Dovecot offers COMPRESS=DEFLATE only after login"
    );
    assert!(!session.is_compressed());
    session.login(&auth()).await.expect("logs in");
    assert!(
        session.capabilities().has("COMPRESS=DEFLATE"),
        "imap_zlib is loaded: {:?}",
        session.capabilities().iter().collect::<Vec<_>>()
    );
    assert!(session.compress().await.expect("COMPRESS DEFLATE"));
    assert!(session.is_compressed() && session.is_tls());
    assert!(
        session.compress().await.unwrap(),
        "a second call is a no-op"
    );
    let before = session.stats();
    session
        .enable(&["QRESYNC", "CONDSTORE"])
        .await
        .expect("commands work compressed");

    let small: Vec<Vec<u8>> = (0..200).map(|n| message(n, 20 * 1024)).collect();
    let big = message(1_000_000, 3 * 1024 * 1024 + 333);
    let payload = small.iter().map(Vec::len).sum::<usize>() + big.len();

    session.create(b"Zlib", None).await.unwrap();
    let flags = vec!["\\Seen".to_string()];
    let requests: Vec<AppendRequest> = small
        .iter()
        .map(|data| AppendRequest {
            flags: &flags,
            internal_date: Some("05-Mar-2021 10:11:12 +0100"),
            data,
        })
        .collect();
    let outcomes = session
        .append_many(b"Zlib", &requests, 16)
        .await
        .expect("pipelined appends");
    let uids: Vec<mailferry_imap::Uid> = outcomes
        .iter()
        .map(|o| o.as_ref().expect("appended").expect("APPENDUID").uid)
        .collect();
    let big_uid = session
        .append_stream(b"Zlib", &[], None, big.len() as u64, &big[..])
        .await
        .expect("streamed append")
        .expect("appended")
        .expect("APPENDUID")
        .uid;

    let selected = session.select(b"Zlib", true, None).await.unwrap();
    assert_eq!(selected.exists as usize, small.len() + 1);
    let metas = session
        .fetch_meta(FetchRange::All, None, false)
        .await
        .unwrap();
    assert_eq!(metas.len(), small.len() + 1);
    assert_eq!(metas.last().unwrap().size, big.len() as u64);

    let tag = session
        .start_fetch_bodies(&UidSet::from_uids(uids.iter().copied()))
        .await
        .unwrap();
    let mut fetched = 0;
    while let Some(fetch) = session.next_fetch(&tag).await.unwrap() {
        let uid = fetch.uid.expect("UID");
        let i = uids.iter().position(|u| *u == uid).expect("a UID we asked");
        let body = fetch.section("").unwrap().data.clone().unwrap();
        assert!(body[..] == small[i][..], "bytes of UID {uid}");
        fetched += 1;
    }
    assert_eq!(fetched, small.len());
    // Regression: with the size given, four ranges go out in one compressed flush and
    // Dovecot runs them in parallel, interleaving their FETCH responses; ranges must be
    // matched by origin, not by the command they follow.
    let got = session
        .fetch_body_partial(big_uid, Some(big.len() as u64), 1024 * 1024, Vec::new())
        .await
        .unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "partial ranges reassemble to the same bytes");

    // Everything went out and came back once: on the wire that is a small fraction.
    let stats = session.stats();
    let read = stats.bytes_read - before.bytes_read;
    let written = stats.bytes_written - before.bytes_written;
    println!("payload {payload} B each way; wire: read {read} B, written {written} B");
    assert!(
        read * 5 < payload as u64,
        "read {read} B for {payload} B of text"
    );
    assert!(
        written * 5 < payload as u64,
        "wrote {written} B for {payload} B of text"
    );

    // The server stored the bytes as sent: a fresh uncompressed session reads them too.
    session.logout().await;
    let mut plain = Session::connect(&endpoint(&server), SessionOptions::default())
        .await
        .unwrap();
    plain.login(&auth()).await.unwrap();
    assert!(!plain.is_compressed());
    plain.select(b"Zlib", true, None).await.unwrap();
    let again = plain
        .fetch_body_partial(big_uid, None, 1024 * 1024, Vec::new())
        .await
        .unwrap();
    assert!(again == big);
    let stats = plain.stats();
    assert!(
        stats.bytes_read > big.len() as u64,
        "uncompressed, the wire carries the whole message: {stats:?}"
    );
    plain.logout().await;
}
