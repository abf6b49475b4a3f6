//! Issue 12: the API's single submissions and its lists accept and refuse exactly the server
//! types and server forms of the engine's one table (the CLI's test does the same for its
//! flags, job files and `batch check`: `mailferry-cli` tests/it/surfaces.rs).

use mailferry_engine::account::{mail_endpoint, server_type, SERVER_TYPES};
use serde_json::{json, Value};

use crate::common::Service;
use crate::lists::post_text;

/// Every name of the table, in other cases, and names that are not types.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = SERVER_TYPES.iter().map(|t| t.name.to_string()).collect();
    names.extend(["IMAP", "Kolab", "imapx", "dav", "ox", "exchange2019"].map(String::from));
    names
}

fn submission(kind: &str, server: &str) -> Value {
    json!({
        "source.type": kind, "source.email": "alice@old.example", "source.username": "alice",
        "source.password": "pw", "source.server": server,
        "target.type": "imap", "target.email": "bob@new.example", "target.username": "bob",
        "target.password": "pw", "target.server": "127.0.0.1:2",
    })
}

fn line(kind: &str, server: &str) -> String {
    format!(
        "{kind};alice@old.example;alice;pw;{server};imap;bob@new.example;bob;pw;127.0.0.1:2;;\n"
    )
}

/// Whether a single submission took the source's type and server: a field error on them
/// (422 with `field`) is a refusal; anything else (the login, refused at the closed port) is
/// past them.
async fn api_takes(service: &Service, kind: &str, server: &str) -> Result<(), String> {
    let (status, body) = service
        .post("/api/v1/migrations", submission(kind, server))
        .await;
    assert_ne!(status, 201, "nothing must be stored: {body}");
    // A field error names its fields in `fields` (a failed login has none).
    let fields: Vec<String> = body["fields"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|f| f["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if fields
        .iter()
        .any(|f| f == "source.type" || f == "source.server")
    {
        Err(body.to_string())
    } else {
        Ok(())
    }
}

async fn list_takes(service: &Service, kind: &str, server: &str) -> Result<(), String> {
    let (status, body) = post_text(
        service,
        "/api/v1/lists/check?credentials=false",
        line(kind, server),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let check: Value = serde_json::from_str(&body).unwrap();
    let errors = check["lines"][0]["errors"].to_string();
    if errors.contains("source.type") || errors.contains("source.server") {
        Err(errors)
    } else {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_submissions_and_lists_take_exactly_the_tables_types_and_servers() {
    let service = Service::start().await;
    for kind in names() {
        let expected = server_type(&kind).is_ok();
        let api = api_takes(&service, &kind, "127.0.0.1:1").await;
        let list = list_takes(&service, &kind, "127.0.0.1:1").await;
        assert_eq!(api.is_ok(), expected, "API, type `{kind}`: {api:?}");
        assert_eq!(list.is_ok(), expected, "list, type `{kind}`: {list:?}");
    }
    for server in [
        "mail.example.org",
        "mail.example.org:143",
        "imaps://mail.example.org:10993",
        "imap://127.0.0.1:1",
        "mail.example.org:99999",
        "mail example.org",
        "http://mail.example.org/",
        "[::1]:143",
        "",
    ] {
        let expected = mail_endpoint("imap", server, false).is_ok();
        let api = api_takes(&service, "imap", server).await;
        let list = list_takes(&service, "imap", server).await;
        assert_eq!(api.is_ok(), expected, "API, server `{server}`: {api:?}");
        assert_eq!(list.is_ok(), expected, "list, server `{server}`: {list:?}");
    }
    service.stop().await;
}

/// Issue 12: the API's hints name its fields, never a CLI flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_hints_name_fields_not_flags() {
    use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start().await;
    let body = json!({
        "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1,
        "source.password": USER1_PASSWORD,
        "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
        "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2,
        "target.password": USER2_PASSWORD,
        // TLS with a self-signed certificate, not accepted: the target's field is the remedy.
        "target.server": format!("imaps://127.0.0.1:{}", target.imaps_port()),
    });
    let (status, error) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["side"], "target", "{error}");
    let text = error.to_string();
    assert!(text.contains("target.insecure"), "{text}");
    assert!(!text.contains("--"), "a CLI flag in an API hint: {text}");
    service.stop().await;
}
