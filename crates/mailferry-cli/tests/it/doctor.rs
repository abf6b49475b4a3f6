//! Issue 17: `mailferry doctor` on a data directory as the service leaves it: a waiting
//! migration to a real Dovecot; then a key readable by others, a key that does not open the
//! stored credentials, and a mail server gone, each said with what to do.

use std::os::unix::fs::PermissionsExt;

use mailferry_service::Sealer;
use mailferry_store::{EndpointRecord, NewMigration, Store};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER2};

use crate::common::{mailferry, stdout};

fn doctor(dir: &std::path::Path) -> (i32, String) {
    let out = mailferry(
        &[
            "doctor",
            "--data-dir",
            dir.to_str().unwrap(),
            "--timeout",
            "5",
        ],
        &[],
    );
    (out.status.code().unwrap_or(-1), stdout(&out))
}

#[test]
fn doctor_says_what_is_wrong_with_a_data_dir_and_its_servers() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nothing");
    let (code, text) = doctor(&missing);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("does not exist") && text.contains("what to do"),
        "{text}"
    );

    let server = Dovecot::start().unwrap();
    let dir = work.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open_sqlite(&dir.join("mailferry.sqlite"))
            .await
            .unwrap();
        let sealer = Sealer::load_or_create(&dir.join("secret.key")).unwrap();
        let side = |user: &str| EndpointRecord {
            server_type: "imap".into(),
            email: format!("{user}@example.org"),
            username: user.into(),
            server: format!("imap://127.0.0.1:{}", server.imap_port()),
            insecure: true,
        };
        let new = NewMigration {
            id: "m1".into(),
            source: side(USER1),
            target: side(USER2),
            start_at: i64::MAX / 2,
            resync_at: None,
            created_at: 0,
            dav: Vec::new(),
            filters: true,
        };
        let sealed = [
            ("source", sealer.seal(b"pw1", "m1/source")),
            ("target", sealer.seal(b"pw2", "m1/target")),
        ];
        store
            .insert_migrations(&[(&new, &sealed[..])], 10)
            .await
            .unwrap()
            .unwrap();
    });
    std::fs::set_permissions(
        dir.join("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, text) = doctor(&dir);
    assert_eq!(code, 0, "{text}");
    for line in [
        "ok: the sealing key loads",
        "ok: 1 migrations waiting or running",
        "ok: the stored credentials of every waiting or running migration open with this key",
        &format!(
            "ok: mail server 127.0.0.1:{} answers (TLS)",
            server.imap_port()
        ),
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(text.contains("schema version"), "{text}");

    // A key anyone on the machine can read.
    std::fs::set_permissions(
        dir.join("secret.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, text) = doctor(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("can be read by other users") && text.contains("chmod 600"),
        "{text}"
    );
    std::fs::set_permissions(
        dir.join("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    // Another key: the stored credentials do not open.
    let original = std::fs::read(dir.join("secret.key")).unwrap();
    std::fs::remove_file(dir.join("secret.key")).unwrap();
    Sealer::load_or_create(&dir.join("secret.key")).unwrap();
    let (code, text) = doctor(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("1 migrations have credentials this key cannot open"),
        "{text}"
    );
    std::fs::write(dir.join("secret.key"), original).unwrap();

    // The mail server gone.
    let port = server.imap_port();
    drop(server);
    let (code, text) = doctor(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "problem: the mail server 127.0.0.1:{port} cannot be reached"
        )),
        "{text}"
    );
}
