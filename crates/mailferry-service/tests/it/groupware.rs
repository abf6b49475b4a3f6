//! A whole account through the service: mail from Dovecot to Dovecot and groupware from a
//! real Radicale to a real Xandikos (`source.dav` / `target.dav`), counts in the API.

use std::time::Duration;

use mailferry_testkit::dovecot::{Dovecot, ALICE, ALICE_PASSWORD};
use mailferry_testkit::{groupware_corpus, nasty_corpus, DavServer, GroupwareKind};
use serde_json::{json, Value};

use crate::common::Service;

fn submission(source: &Dovecot, target: &Dovecot, source_dav: &str, target_dav: &str) -> Value {
    json!({
        "source.type": "imap", "source.email": "alice@old.example", "source.username": ALICE, "source.password": ALICE_PASSWORD,
        "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
        "source.dav": source_dav,
        "target.type": "imap", "target.email": "alice@new.example", "target.username": ALICE, "target.password": ALICE_PASSWORD,
        "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
        "target.dav": target_dav,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_and_groupware_through_the_service_with_counts_in_the_api() {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    source
        .fill(ALICE, ALICE_PASSWORD, &nasty_corpus(false))
        .unwrap();
    let (radicale, xandikos) = (
        DavServer::radicale().unwrap(),
        DavServer::xandikos().unwrap(),
    );
    let corpus = groupware_corpus();
    radicale.fill(&corpus).unwrap();
    let service = Service::start().await;

    let (status, created) = service
        .post(
            "/api/v1/migrations",
            submission(&source, &target, &radicale.url(), &xandikos.url()),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let done = service
        .wait_for_state(&id, "done", Duration::from_secs(120))
        .await;
    let migration = &done["migration"];
    assert!(migration["error"].is_null(), "{migration:#}");
    assert!(
        migration["progress"]["messages_copied"].as_u64().unwrap() > 0,
        "{migration:#}"
    );
    let groupware = &migration["groupware"];
    for (kind, n) in [
        ("calendars", 2),
        ("address_books", 1),
        ("events", 6),
        ("tasks", 3),
        ("journals", 1),
        ("contacts", 3),
    ] {
        assert_eq!(
            groupware[kind],
            json!({"total": n, "transferred": n}),
            "{kind}: {migration:#}"
        );
    }
    assert_eq!(
        migration["report"]["groupware"]["counts"], *groupware,
        "{migration:#}"
    );
    // The list shows the counts too, and the objects are on the target.
    let (_, list) = service.get("/api/v1/migrations").await;
    assert_eq!(list["migrations"][0]["groupware"], *groupware, "{list:#}");
    let team = xandikos.collection_path(GroupwareKind::Calendar, "team paris");
    assert_eq!(xandikos.list(&team).unwrap().len(), 6);

    // Purging erases the DAV addresses with the rest of the personal data.
    let (status, _) = service
        .post(&format!("/api/v1/migrations/{id}/purge"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(service.store.migration_dav(&id).await.unwrap().is_empty());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_dav_address_is_a_field_error() {
    let service = Service::start().await;
    let mut bad = submission_without_servers();
    bad["source.dav"] = "ftp://dav.example/".into();
    bad["target.dav"] = "https://alice:secret@dav.example/".into();
    let (status, body) = service.post("/api/v1/migrations", bad).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("source.dav") && text.contains("target.dav"),
        "{text}"
    );
    assert!(
        !text.contains("secret"),
        "a password in an address is never echoed: {text}"
    );
    service.stop().await;
}

fn submission_without_servers() -> Value {
    json!({
        "source.type": "imap", "source.email": "alice@old.example", "source.password": "pw1",
        "source.server": "old.example",
        "target.type": "imap", "target.email": "alice@new.example", "target.password": "pw2",
        "target.server": "new.example",
    })
}

/// A calendar and contacts address given at submit is logged into before anything is
/// stored, like the mail servers: a login Radicale refuses and a closed port are each named
/// with their side, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dav_logins_are_checked_at_submit_and_a_failure_names_its_side() {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let radicale = DavServer::radicale().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let service = Service::start().await;
    let port = radicale
        .url()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    // Radicale knows alice, not nobody; the IMAP logins are right.
    let wrong_user = format!("http://nobody@127.0.0.1:{port}/");
    let nowhere = format!("http://127.0.0.1:{closed}/");
    for (source_dav, target_dav, side, words) in [
        (
            wrong_user.as_str(),
            radicale.url(),
            "source",
            "refused the login of `nobody`",
        ),
        (
            radicale.url().as_str(),
            nowhere.clone(),
            "target",
            "127.0.0.1",
        ),
        (
            wrong_user.as_str(),
            nowhere.clone(),
            "both",
            "calendars and contacts",
        ),
    ] {
        let (status, body) = service
            .post(
                "/api/v1/migrations",
                submission(&source, &target, source_dav, &target_dav),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["side"], side, "{body}");
        let reasons = body["check"]["reasons"].as_array().unwrap();
        assert!(
            reasons.iter().all(|r| r["reason"]
                .as_str()
                .unwrap()
                .starts_with("calendars and contacts (CalDAV/CardDAV): ")),
            "{body}"
        );
        assert!(body.to_string().contains(words), "{body}");
        assert!(!body.to_string().contains(ALICE_PASSWORD), "{body}");
    }
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"], json!([]), "nothing stored");
    // Right addresses: stored.
    let (status, body) = service
        .post(
            "/api/v1/migrations",
            submission(&source, &target, &radicale.url(), &radicale.url()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    service.stop().await;
}
