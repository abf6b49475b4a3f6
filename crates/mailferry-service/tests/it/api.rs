//! Submit through the API, watch the states, verify independently, check that credentials
//! are gone and that purging keeps the counts.

use std::time::Duration;

use mailferry_engine::verify::verify;
use mailferry_engine::{Account, CopyOptions};
use mailferry_imap::{Auth, Endpoint, Security, TlsOptions};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use mailferry_testkit::nasty_corpus;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::common::Service;

pub(crate) fn submission(source: &Dovecot, target: &Dovecot, target_password: &str) -> Value {
    json!({
        "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1, "source.password": USER1_PASSWORD,
        "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
        "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2, "target.password": target_password,
        "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
    })
}

pub(crate) fn account(server: &Dovecot, user: &str, password: &str) -> Account {
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

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(entry.path().display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_with_resync_runs_to_done_then_credentials_are_gone_and_purge_keeps_counts() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = nasty_corpus(false);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let service = Service::start().await;

    let (status, info) = service.get("/api/v1/info").await;
    assert_eq!(status, 200);
    assert_eq!(info["time_zone"], "Europe/Berlin");

    let mut body = submission(&source, &target, USER2_PASSWORD);
    // Room for the first pass and the late message below on a slow machine: the message
    // must arrive before the resync is due.
    let resync = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(8))
        .unwrap();
    body["resyncdate"] = json!(resync.to_string());
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    assert!(
        !created.to_string().contains(USER1_PASSWORD)
            && !created.to_string().contains(USER2_PASSWORD)
    );
    let id = created["id"].as_str().unwrap().to_string();

    let waiting = service
        .wait_for_state(&id, "waiting_resync", Duration::from_secs(60))
        .await;
    assert_eq!(
        waiting["migration"]["progress"]["messages_copied"].as_u64(),
        Some(corpus.message_count() as u64),
        "{waiting}"
    );
    // While it waits for the resync, the sealed credentials are stored; keep them to look
    // for afterwards.
    let sealed = service.store.secrets(&id).await.unwrap();
    assert_eq!(
        sealed.len(),
        2,
        "both sides' credentials are kept for the resync"
    );
    // A message arriving before the MX switch is carried by the resync.
    let late = mailferry_testkit::Corpus {
        folders: vec![mailferry_testkit::CorpusFolder {
            name: "INBOX".into(),
            messages: vec![corpus.folders[0].messages[0].clone()],
        }],
    };
    source.fill(USER1, USER1_PASSWORD, &late).unwrap();
    assert!(
        jiff::Timestamp::now() < resync,
        "the first pass took so long that the resync was due before the late message arrived"
    );
    let done = service
        .wait_for_state(&id, "done", Duration::from_secs(60))
        .await;
    let seen: Vec<String> = serde_json::from_value(done["seen"].clone()).unwrap();
    assert!(seen.contains(&"waiting_resync".to_string()), "{seen:?}");
    let migration = &done["migration"];
    assert_eq!(
        migration["progress"]["messages_copied"].as_u64(),
        Some(1),
        "the resync copied only the new message: {migration}"
    );
    assert!(migration["report"]["folders"].is_array());

    let differences = verify(
        &account(&source, USER1, USER1_PASSWORD),
        &account(&target, USER2, USER2_PASSWORD),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(differences.differences(), 0, "{differences:?}");

    // Credentials: erased, and never stored readable.
    assert!(service.store.secrets(&id).await.unwrap().is_empty());
    for password in [USER1_PASSWORD, USER2_PASSWORD] {
        assert!(
            files_contain(service.dir.path(), password.as_bytes()).is_empty(),
            "`{password}` found in the data directory"
        );
    }
    for (side, blob) in &sealed {
        let hits = files_contain(service.dir.path(), &blob[..32]);
        assert!(
            hits.is_empty(),
            "the sealed {side} credentials are still in {hits:?}"
        );
    }

    let (status, purged) = service
        .post(&format!("/api/v1/migrations/{id}/purge"), json!({}))
        .await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(purged["purged"], true);
    assert_eq!(purged["source.email"], Value::Null);
    assert_eq!(
        purged["progress"]["messages_total"], migration["progress"]["messages_total"],
        "counts kept"
    );
    for needle in ["user1@old.example", "user2@new.example"] {
        let (_, listed) = service.get("/api/v1/migrations").await;
        assert!(
            !listed.to_string().contains(needle),
            "purged data still listed: {needle}"
        );
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_credentials_are_refused_with_the_side_named_and_nothing_stored() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start().await;
    let (status, error) = service
        .post(
            "/api/v1/migrations",
            submission(&source, &target, "wrong-target-pw"),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["side"], "target", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("rejected the login"),
        "{error}"
    );
    assert!(error["request_id"].is_string());
    assert!(!error.to_string().contains("wrong-target-pw"));

    let mut both = submission(&source, &target, "wrong-target-pw");
    both["source.password"] = json!("wrong-source-pw");
    let (_, error) = service.post("/api/v1/migrations", both).await;
    assert_eq!(error["side"], "both", "{error}");

    let (status, invalid) = service
        .post(
            "/api/v1/migrations",
            json!({"source.type": "imapx", "target.email": "nope"}),
        )
        .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = invalid["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"source.type")
            && fields.contains(&"target.email")
            && fields.contains(&"source.password"),
        "{invalid}"
    );

    let (status, unknown) = service
        .post("/api/v1/migrations", json!({"source.typo": "imap"}))
        .await;
    assert_eq!(status, 400, "{unknown}");
    assert!(
        unknown["error"].as_str().unwrap().contains("source.typo"),
        "{unknown}"
    );

    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(
        listed["migrations"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );

    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/migrations", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_start_time_in_the_future_is_honoured_in_the_servers_zone_and_with_an_offset() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start().await;
    let zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap();
    let local = later.to_zoned(zone).strftime("%Y-%m-%d %H:%M").to_string();
    let mut body = submission(&source, &target, USER2_PASSWORD);
    body["startdate"] = json!(local);
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["startdate"].as_str().unwrap().starts_with(&local),
        "{created}"
    );
    // The other way round: the first one's accounts are taken while it waits.
    let mut body = submission(&target, &source, USER2_PASSWORD);
    body["startdate"] = json!(later.to_string());
    let (status, explicit) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{explicit}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for m in [&created, &explicit] {
        let (_, now) = service
            .get(&format!("/api/v1/migrations/{}", m["id"].as_str().unwrap()))
            .await;
        assert_eq!(now["state"], "waiting", "a future start waits: {now}");
    }
    let (_, cancelled) = service
        .post(
            &format!(
                "/api/v1/migrations/{}/cancel",
                created["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_events_and_metrics_show_the_migrations() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start().await;
    let mut body = submission(&source, &target, USER2_PASSWORD);
    body["startdate"] = json!("2099-01-01T00:00:00Z");
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Server-sent events: a `progress` event for the waiting migration.
    let mut events = service
        .client
        .get(format!("{}/api/v1/events", service.base))
        .basic_auth("admin", Some(crate::common::ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    assert!(events.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&id) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(
        seen.contains("event: progress")
            && seen.contains(&id)
            && seen.contains("\"state\":\"waiting\""),
        "events: {seen}"
    );

    // Metrics: counts by state, no personal data.
    let metrics = service
        .client
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mailferry_migrations{state=\"waiting\"} 1"),
        "{metrics}"
    );
    for line in [
        "mailferry_queue_lag_seconds 0",
        // Not due before 2099: nothing in the queue, nothing running.
        "mailferry_queue_depth 0",
        "mailferry_passes_running 0",
        "mailferry_lease_takeovers_total 0",
        "mailferry_failed_migrations{reason=\"login\"} 0",
        "# TYPE mailferry_throttle_pauses_total counter",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    assert!(
        !metrics.contains("user1") && !metrics.contains("old.example"),
        "{metrics}"
    );
    // Every series the sample Grafana dashboard (docs/) queries is served.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-mailferry.json"
    ))
    .unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("mailferry_") {
                    queried += 1;
                    assert!(
                        metrics.contains(&format!("# TYPE {word} ")),
                        "the dashboard queries {word}, which /metrics does not serve"
                    );
                }
            }
        }
    }
    assert!(queried >= 9, "{queried}");
    // An open event stream must not hold up a shutdown.
    let stopping = tokio::time::Instant::now();
    service.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "shutdown with an open event stream took {:?}",
        stopping.elapsed()
    );
    drop(events);
}

/// Guessing the admin password through the API is limited like the web UI's login form: after
/// 5 failed Basic logins the address waits, even with the right password; tokens still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_basic_logins_are_limited_per_address_and_tokens_still_work() {
    let service = Service::start().await;
    let token = mailferry_service::api::new_token();
    service
        .store
        .insert_token("limit-test", &mailferry_service::api::token_hash(&token), 0)
        .await
        .unwrap();
    let basic = |password: &str| {
        service
            .client
            .get(format!("{}/api/v1/info", service.base))
            .basic_auth("admin", Some(password.to_string()))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(basic("guess").await.unwrap().status().as_u16(), 401);
    }
    let blocked = basic(crate::common::ADMIN).await.unwrap();
    assert_eq!(blocked.status().as_u16(), 429);
    let wait: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    let body: Value = blocked.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("too many failed logins"));
    let with_token = service
        .client
        .get(format!("{}/api/v1/info", service.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status().as_u16(), 200);
    service.stop().await;
}
