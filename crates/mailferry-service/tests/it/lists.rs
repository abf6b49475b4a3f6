//! Mass migration lists and the allowance through the API, against real Dovecot: 200
//! lines' logins checked concurrently (a proxy in front of each side counts the
//! connections open at once), the failing lines named by number and side, the others
//! submitted and counted; the allowance refusing a list it cannot cover, saying how many
//! can be; licence keys refused when changed, forged or added twice. No password of a list
//! ever appears in a response.

use mailferry_service::licence::{issue, parse_signing_key, Licence};
use mailferry_testkit::dovecot::Dovecot;
use mailferry_testkit::FaultProxy;
use serde_json::{json, Value};

use crate::common::{Service, ADMIN};

const PER_HOST: usize = 6;

const LAB_SIGNING_KEY: &str = include_str!("../../../../docs/licence-lab-signing.key");

/// A key for `migrations`, signed with the lab key (the service's default public key).
pub fn lab_key(id: &str, migrations: u64) -> String {
    issue(
        &parse_signing_key(LAB_SIGNING_KEY).unwrap(),
        &Licence {
            id: id.into(),
            migrations,
            issued_to: "Example Hosting".into(),
            issued_at: 1_790_000_000,
        },
    )
}

/// Passwords with `;` and `"`, so that a line only logs in when its quoting was read right.
fn password(user: &str) -> String {
    format!("pw;{user}\"x")
}

/// The field as written in a list: quoted, `""` for a quote inside.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

pub(crate) async fn post_text(service: &Service, path: &str, body: String) -> (u16, String) {
    let response = service
        .client
        .post(format!("{}{path}", service.base))
        .basic_auth("admin", Some(ADMIN))
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

struct Line {
    source_user: String,
    source_password: String,
    target_user: String,
    target_password: String,
}

fn list(lines: &[Line], source: &FaultProxy, target: &FaultProxy) -> String {
    let mut out = String::from("\u{feff}# a list as an MSP would paste it\r\n\r\n");
    for l in lines {
        out.push_str(&format!(
            "imap;{s}@old.example;{s};{sp};imap://127.0.0.1:{sport};imap;{t}@new.example;{t};{tp};imap://127.0.0.1:{tport};;\r\n",
            s = l.source_user,
            sp = quoted(&l.source_password),
            sport = source.port(),
            t = l.target_user,
            tp = quoted(&l.target_password),
            tport = target.port(),
        ));
    }
    out
}

fn assert_no_password(text: &str, lines: &[Line]) {
    for l in lines {
        for secret in [&l.source_password, &l.target_password] {
            assert!(!text.contains(secret.as_str()), "a password leaked: {text}");
            // JSON escapes the quote inside
            let escaped = secret.replace('"', "\\\"");
            assert!(!text.contains(&escaped), "a password leaked: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_lines_are_checked_concurrently_and_the_allowance_holds_exactly() {
    let mut builder = Dovecot::builder();
    for i in 1..=210 {
        for side in ["s", "t"] {
            let user = format!("{side}{i:03}");
            builder = builder.user(&user, password(&user));
        }
    }
    let dovecot = builder.start().unwrap();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], dovecot.imap_port()));
    let (source, target) = (FaultProxy::start(upstream), FaultProxy::start(upstream));
    let cert = dovecot.cert_pem_path();
    let service = Service::start_with(|config| {
        config.per_host_connections = PER_HOST;
        // The lab server's certificate, trusted as a CA: lists have no `insecure` field.
        config.ca_file = Some(cert);
    })
    .await;

    // Free allowance: 2. A key for 200 makes 202.
    let (status, added) = service
        .post("/api/v1/licences", json!({ "key": lab_key("k-200", 200) }))
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["allowance"]["total"], 202);

    let wrong_source = [17usize, 50, 123];
    let wrong_target = [77usize];
    let wrong_both = [150usize];
    let lines: Vec<Line> = (1..=200)
        .map(|i| {
            let (s, t) = (format!("s{i:03}"), format!("t{i:03}"));
            let bad = |wrong: bool, user: &str| {
                if wrong {
                    "wrong-password".to_string()
                } else {
                    password(user)
                }
            };
            let src_bad = wrong_source.contains(&i) || wrong_both.contains(&i);
            let tgt_bad = wrong_target.contains(&i) || wrong_both.contains(&i);
            Line {
                source_password: bad(src_bad, &s),
                target_password: bad(tgt_bad, &t),
                source_user: s,
                target_user: t,
            }
        })
        .collect();
    let text = list(&lines, &source, &target);
    // The file's line numbers: two header lines, then the data.
    let file_line = |i: usize| i + 2;

    // Check only: the failing lines by number and side; nothing stored.
    let (status, body) = post_text(&service, "/api/v1/lists/check", text.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_no_password(&body, &lines);
    let check: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(check["format"], "mailferry");
    assert_eq!(check["clean"], false);
    assert_eq!(check["faulty_lines"], 0);
    let failed: Vec<(u64, String)> = check["logins"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["side"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(u64, String)> = wrong_source
        .iter()
        .map(|i| (file_line(*i) as u64, "source".to_string()))
        .chain(
            wrong_target
                .iter()
                .map(|i| (file_line(*i) as u64, "target".into())),
        )
        .chain(
            wrong_both
                .iter()
                .map(|i| (file_line(*i) as u64, "both".into())),
        )
        .collect();
    expected.sort();
    assert_eq!(failed, expected);
    // Concurrent, and capped per host. The proxy sees a client's close only when its pump
    // thread next runs, which on a loaded machine can be after the next logins started: the
    // upper bound allows for that lag (a missing cap would show 200 here).
    for (side, proxy) in [("source", &source), ("target", &target)] {
        let peak = proxy.peak_connections();
        assert!(
            (2..=2 * PER_HOST).contains(&peak),
            "{side}: {peak} logins at once; expected concurrent ones, at most {PER_HOST} per host"
        );
    }
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 0);

    // Submit: the 195 good lines stored and counted, the 5 others named.
    let (status, body) = post_text(&service, "/api/v1/lists", text).await;
    assert_eq!(status, 201, "{body}");
    assert_no_password(&body, &lines);
    let outcome: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["submitted"].as_array().unwrap().len(), 195);
    assert_eq!(outcome["failed"].as_array().unwrap().len(), 5);
    assert_eq!(outcome["allowance"]["used"], 195);
    assert_eq!(outcome["allowance"]["remaining"], 7);
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_no_password(&listed.to_string(), &lines);
    let stored = listed["migrations"].as_array().unwrap();
    assert_eq!(stored.len(), 195);
    let sources: std::collections::BTreeSet<&str> = stored
        .iter()
        .map(|m| m["source.username"].as_str().unwrap())
        .collect();
    assert!(!sources.contains("s017") && !sources.contains("s150") && sources.contains("s018"));

    // 7 left, 9 good lines: none is stored, and the answer says 7.
    let more: Vec<Line> = (201..=209)
        .map(|i| {
            let (s, t) = (format!("s{i:03}"), format!("t{i:03}"));
            Line {
                source_password: password(&s),
                target_password: password(&t),
                source_user: s,
                target_user: t,
            }
        })
        .collect();
    let (status, body) = post_text(&service, "/api/v1/lists", list(&more, &source, &target)).await;
    assert_eq!(status, 402, "{body}");
    assert_no_password(&body, &more);
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["remaining"], 7);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("7 migrations left"),
        "{refused}"
    );
    let (_, info) = service.get("/api/v1/info").await;
    assert_eq!(info["allowance"]["used"], 195);
    assert_eq!(info["allowance"]["remaining"], 7);
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 195);

    // Seven of them fit.
    let (status, body) = post_text(
        &service,
        "/api/v1/lists",
        list(&more[..7], &source, &target),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, info) = service.get("/api/v1/info").await;
    assert_eq!(info["allowance"]["remaining"], 0);

    // At zero, a single submission is refused too, with what to do.
    let line = &more[8];
    let (status, body) = service
        .post(
            "/api/v1/migrations",
            json!({
                "source.type": "imap", "source.email": "s209@old.example", "source.username": line.source_user,
                "source.password": line.source_password, "source.server": format!("imap://127.0.0.1:{}", source.port()),
                "target.type": "imap", "target.email": "t209@new.example", "target.username": line.target_user,
                "target.password": line.target_password, "target.server": format!("imap://127.0.0.1:{}", target.port()),
            }),
        )
        .await;
    assert_eq!(status, 402, "{body}");
    assert!(
        body["hint"].as_str().unwrap().contains("licence key"),
        "{body}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lists_with_errors_are_refused_whole_with_line_and_field() {
    let service = Service::start().await;
    let text = "\
# source.type;source.email;...
imap;alice@old.example;;\"a;b\";old.example;imap;alice@new.example;;pw2;new.example;;
imapx;bob@old.example;;pw3;old.example;imap;bob;;pw4;new.example:99999;tomorrow;
imap;alice@old.example;;\"secret;pw\";old.example;imap;carol@new.example;;pw5;new.example;;
imap;dave@old.example;;pw6;old.example;imap;dave@new.example;;pw7;new.example
imap;erin@old.example;;\"unclosed;imap;erin@new.example;;pw8;new.example;;
";
    let (status, body) = post_text(&service, "/api/v1/lists", text.to_string()).await;
    assert_eq!(status, 422, "{body}");
    for secret in [
        "a;b",
        "secret;pw",
        "pw2",
        "pw3",
        "pw4",
        "pw5",
        "pw6",
        "pw7",
        "pw8",
        "unclosed",
    ] {
        assert!(!body.contains(secret), "`{secret}` leaked: {body}");
    }
    let refused: Value = serde_json::from_str(&body).unwrap();
    let report = &refused["report"];
    let errors: Vec<(u64, String)> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            let line = l["line"].as_u64().unwrap();
            l["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |e| (line, e["field"].as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "source.type".to_string()),
            (3, "target.email".into()),
            (3, "target.server".into()),
            (3, "startdate".into()),
            (5, "line".into()),
            (6, "line".into()),
        ]
    );
    let duplicates: Vec<(u64, u64)> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["duplicate_of"].is_null())
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["duplicate_of"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(duplicates, vec![(4, 2)]);
    let problems = report["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p
        .as_str()
        .unwrap()
        .starts_with("line 3, target.server = `new.example:99999`")));
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 0);

    // The template is a clean list once its example line is uncommented.
    let response = service
        .client
        .get(format!("{}/api/v1/lists/template", service.base))
        .basic_auth("admin", Some(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let template = response.text().await.unwrap();
    let example = template.replace("\n#imap;", "\nimap;");
    let (status, body) = post_text(
        &service,
        "/api/v1/lists/check?credentials=false",
        example.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let check: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(check["clean"], true, "{check}");
    assert_eq!(check["lines"].as_array().unwrap().len(), 1);
    let (status, body) = post_text(&service, "/api/v1/lists/check", template).await;
    assert_eq!(status, 200);
    let check: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        check["clean"], false,
        "a list of comments only is not clean"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn licence_keys_count_once_and_only_when_whole_and_ours() {
    let service = Service::start().await;
    let (status, body) = service.get("/api/v1/licences").await;
    assert_eq!(status, 200);
    assert_eq!(body["allowance"]["total"], 2);
    assert_eq!(body["allowance"]["remaining"], 2);

    let key = lab_key("k-25", 25);
    let (status, body) = service
        .post("/api/v1/licences", json!({ "key": key }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["allowance"]["total"], 27);
    assert_eq!(body["keys"][0]["issued_to"], "Example Hosting");
    assert_eq!(body["keys"][0]["migrations"], 25);

    // Added twice: refused, counted once.
    let (status, body) = service
        .post("/api/v1/licences", json!({ "key": key }))
        .await;
    assert_eq!(status, 409, "{body}");
    // Wrapped over lines by a mail program: the same key, still refused as a repeat.
    let wrapped = format!("{}\n  {}", &key[..30], &key[30..]);
    let (status, _) = service
        .post("/api/v1/licences", json!({ "key": wrapped }))
        .await;
    assert_eq!(status, 409);

    // One changed byte, anywhere in the payload or signature.
    for at in [6, key.len() / 2, key.len() - 3] {
        let mut bytes = key.clone().into_bytes();
        bytes[at] = if bytes[at] == b'Q' { b'R' } else { b'Q' };
        let changed = String::from_utf8(bytes).unwrap();
        let (status, body) = service
            .post("/api/v1/licences", json!({ "key": changed }))
            .await;
        assert_eq!(status, 422, "byte {at}: {body}");
    }
    // Signed by another key.
    let (other, _) = mailferry_service::licence::new_key_pair();
    let forged = issue(
        &parse_signing_key(&other).unwrap(),
        &Licence {
            id: "k-forged".into(),
            migrations: 100,
            issued_to: "Mallory".into(),
            issued_at: 1,
        },
    );
    let (status, body) = service
        .post("/api/v1/licences", json!({ "key": forged }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("signature"),
        "{body}"
    );

    let (_, body) = service.get("/api/v1/licences").await;
    assert_eq!(body["allowance"]["total"], 27);
    assert_eq!(body["keys"].as_array().unwrap().len(), 1);
    service.stop().await;
}

/// Two migrations of one account at once could copy a message twice: an account whose
/// migration is still waiting or running is refused, alone (409, naming the side and the
/// migration) and in a list (the line marked a duplicate of that migration), until that
/// migration is finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_with_a_migration_waiting_is_not_submitted_again_until_it_is_finished() {
    let mut builder = Dovecot::builder();
    for user in ["s1", "s2", "s3", "t1", "t2", "t3"] {
        builder = builder.user(user, password(user));
    }
    let dovecot = builder.start().unwrap();
    let port = dovecot.imap_port();
    let cert = dovecot.cert_pem_path();
    let service = Service::start_with(|config| config.ca_file = Some(cert)).await;
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .to_string();
    let single = |s: &str, t: &str| {
        json!({
            "source.type": "imap", "source.email": format!("{s}@old.example"), "source.username": s,
            "source.password": password(s), "source.server": format!("imap://127.0.0.1:{port}"),
            "target.type": "imap", "target.email": format!("{t}@new.example"), "target.username": t,
            "target.password": password(t), "target.server": format!("imap://127.0.0.1:{port}"),
            "startdate": tomorrow,
        })
    };
    let (status, first) = service.post("/api/v1/migrations", single("s1", "t1")).await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_string();

    // The same source again (to another target), and the same target from another source.
    for (s, t, side) in [("s1", "t2", "source"), ("s2", "t1", "target")] {
        let (status, body) = service.post("/api/v1/migrations", single(s, t)).await;
        assert_eq!(status, 409, "{s} -> {t}: {body}");
        assert_eq!(body["side"], side, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("the {side} account")) && error.contains(&id),
            "{body}"
        );
        assert!(body["hint"].as_str().unwrap().contains("cancel"), "{body}");
    }

    // In a list: the line repeating t1 is marked, the other one is clean.
    let line = |s: &str, t: &str| {
        format!(
            "imap;{s}@old.example;{s};{sp};imap://127.0.0.1:{port};imap;{t}@new.example;{t};{tp};imap://127.0.0.1:{port};;\n",
            sp = quoted(&password(s)),
            tp = quoted(&password(t)),
        )
    };
    let text = format!("{}{}", line("s3", "t3"), line("s2", "t1"));
    let (status, body) = post_text(&service, "/api/v1/lists/check", text.clone()).await;
    assert_eq!(status, 200, "{body}");
    let check: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(check["clean"], false, "{check}");
    assert_eq!(check["duplicate_lines"], 1, "{check}");
    let lines = check["lines"].as_array().unwrap();
    assert!(lines[0]["duplicate_of_migration"].is_null(), "{check}");
    assert_eq!(lines[1]["duplicate_of_migration"], id.as_str(), "{check}");
    assert_eq!(lines[1]["duplicate_side"], "target", "{check}");
    assert!(
        check["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .starts_with("line 2: duplicate: the same target account as migration")),
        "{check}"
    );
    // Submitted, the list is refused whole and nothing is stored.
    let (status, body) = post_text(&service, "/api/v1/lists", text).await;
    assert_eq!(status, 422, "{body}");
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 1);

    // Once it is finished (cancelled here), the account is free again.
    let (status, body) = service
        .post(&format!("/api/v1/migrations/{id}/cancel"), json!({}))
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, body) = post_text(&service, "/api/v1/lists", line("s2", "t1")).await;
    assert_eq!(status, 201, "{body}");
    service.stop().await;
}
