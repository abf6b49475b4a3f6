//! A mail pass driven through the engine's own API against two real Dovecot servers: the
//! first pass copies everything (verified independently), a second copies nothing and skips
//! every folder, a delta carries new messages and flags, and the connection budget the
//! caller hands in holds.

use std::sync::Arc;
use std::time::Duration;

use mailferry_engine::verify::verify;
use mailferry_engine::{migrate, Account, CopyOptions, Job, Outcome, Progress};
use mailferry_imap::{Auth, ConnectionBudget, Endpoint, Security, TlsOptions};
use mailferry_store::Store;
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use mailferry_testkit::{bulk_corpus, nasty_corpus};
use secrecy::SecretString;

fn account(server: &Dovecot, user: &str, password: &str) -> Account {
    Account {
        endpoint: Endpoint {
            host: "127.0.0.1".into(),
            port: server.imap_port(),
            security: Security::StartTls,
            tls: TlsOptions {
                ca_file: None,
                insecure: true,
            },
            allow_plaintext: false,
        },
        auth: Auth::Password {
            user: user.into(),
            password: SecretString::from(password.to_string()),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_pass_copies_verifies_skips_and_carries_a_delta() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = nasty_corpus(false);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state.sqlite"))
        .await
        .unwrap();
    // The source behind a proxy, which counts the connections the budget lets through.
    let proxy = mailferry_testkit::proxy::FaultProxy::start(
        format!("127.0.0.1:{}", source.imap_port()).parse().unwrap(),
    );
    let mut through_proxy = account(&source, USER1, USER1_PASSWORD);
    through_proxy.endpoint.port = proxy.port();
    let job = Job {
        id: "engine-test".into(),
        source: through_proxy,
        target: account(&target, USER2, USER2_PASSWORD),
        options: CopyOptions {
            connections: 3,
            timeout_seconds: 20,
            ..CopyOptions::default()
        },
        // Two connections per host in all: source and target share 127.0.0.1, so one pair.
        budget: ConnectionBudget::new(2, None),
    };

    let progress = Arc::new(Progress::default());
    let (first, _) = migrate(&job, &store, progress.clone()).await.unwrap();
    assert_eq!(first.outcome(), Outcome::Complete, "{first:#?}");
    assert_eq!(first.copied() as usize, corpus.message_count());
    let snapshot = progress.snapshot();
    assert_eq!(snapshot.copied_messages as usize, corpus.message_count());
    let target_total: u64 = first.folders.iter().filter_map(|f| f.target_messages).sum();
    assert_eq!(target_total as usize, corpus.message_count());
    assert_eq!(
        proxy.peak_connections(),
        1,
        "two connections per host, shared by both sides: one pair at a time"
    );
    let differences = verify(&job.source, &job.target, &job.options)
        .await
        .unwrap();
    assert_eq!(differences.differences(), 0, "{differences:?}");

    let (second, trips) = migrate(&job, &store, Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!(second.copied(), 0);
    assert!(second.folders.iter().all(|f| f.unchanged), "{second:#?}");
    assert!(trips.source <= 10 && trips.target <= 10, "{trips:?}");

    let new = bulk_corpus(41, 30, 1);
    source.fill(USER1, USER1_PASSWORD, &new).unwrap();
    source
        .doveadm(&[
            "flags", "add", "-u", USER1, "$Delta", "mailbox", "INBOX", "uid", "1:3",
        ])
        .unwrap();
    let (delta, _) = tokio::time::timeout(
        Duration::from_secs(60),
        migrate(&job, &store, Arc::new(Progress::default())),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(delta.copied() as usize, new.message_count(), "{delta:#?}");
    let flagged: u64 = delta.folders.iter().map(|f| f.flags_updated).sum();
    assert_eq!(flagged, 3, "{delta:#?}");
    let differences = verify(&job.source, &job.target, &job.options)
        .await
        .unwrap();
    assert_eq!(differences.differences(), 0, "{differences:?}");
}
