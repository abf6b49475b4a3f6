//! Issue 14 through the service: a migration with `source.sieve` / `target.sieve` copies the
//! account's Sieve scripts after its mail, with the counts in the API and the Finished tab,
//! and the refusal of one script in the target's words.

use std::time::Duration;

use mailferry_testkit::dovecot::{Dovecot, Layout, ALICE, ALICE_PASSWORD};
use serde_json::{json, Value};

use crate::common::{Service, ADMIN};
use crate::ui::Visitor;

fn submission(source: &Dovecot, target: &Dovecot, source_sieve: &str) -> Value {
    json!({
        "source.type": "imap", "source.email": "alice@old.example", "source.username": ALICE, "source.password": ALICE_PASSWORD,
        "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
        "source.sieve": source_sieve,
        "target.type": "imap", "target.email": "alice@new.example", "target.username": ALICE, "target.password": ALICE_PASSWORD,
        "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
        "target.sieve": format!("127.0.0.1:{}", target.sieve_port()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_go_with_the_account_and_are_counted_in_the_api_and_the_finished_tab() {
    let source = Dovecot::builder()
        .layout(Layout::MaildirPlusPlus)
        .prefix("INBOX.")
        .sieve_extensions("+vnd.dovecot.debug")
        .start()
        .unwrap();
    let target = Dovecot::start().unwrap();
    source
        .doveadm(&["mailbox", "create", "-u", ALICE, "INBOX.Archive"])
        .unwrap();
    source
        .put_sieve_script(
            ALICE,
            "rules",
            "require \"fileinto\";\r\nif size :over 1M { fileinto \"INBOX.Archive\"; }\r\n",
            true,
        )
        .unwrap();
    source
        .put_sieve_script(
            ALICE,
            "debugging",
            "require \"vnd.dovecot.debug\";\r\ndebug_log \"x\";\r\n",
            false,
        )
        .unwrap();
    let service = Service::start().await;
    let (status, created) = service
        .post(
            "/api/v1/migrations",
            submission(
                &source,
                &target,
                &format!("127.0.0.1:{}", source.sieve_port()),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // One script the target refuses: the pass is not done, and says why.
    let done = service
        .wait_for_state(&id, "failed", Duration::from_secs(120))
        .await;
    let migration = &done["migration"];
    assert_eq!(
        migration["error"],
        "1 filter scripts were refused by the target or could not be copied: see the report; retry the migration to try them again (its credentials are kept for that)",
        "{migration:#}"
    );
    assert_eq!(
        migration["filters"],
        json!({"total": 2, "copied": 1, "present": 0, "refused": 1, "failed": 0}),
        "{migration:#}"
    );
    let refused = &migration["report"]["filters"]["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source_name"] == "debugging")
        .cloned()
        .unwrap();
    assert_eq!(refused["outcome"], "refused", "{migration:#}");
    assert_eq!(
        target.sieve_scripts(ALICE).unwrap(),
        vec![("rules".into(), true)]
    );
    let rules = target.sieve_script(ALICE, "rules").unwrap();
    assert!(rules.contains("fileinto \"Archive\";"), "{rules}");

    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let page = visitor.get("/ui/finished").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<tr><th scope=\"row\">Filters (Sieve scripts)</th><td>2</td><td>1</td><td>1</td><td>1</td></tr>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Filter script debugging was not copied: debugging: line 1: error: require command: unknown Sieve capability"),
        "{}",
        page.body
    );

    // Purging erases the ManageSieve addresses and the filters state too.
    let (status, _) = service
        .post(&format!("/api/v1/migrations/{id}/purge"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert!(service.store.migration_dav(&id).await.unwrap().is_empty());
    assert!(service.store.sieve_scripts(&id).await.unwrap().is_empty());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sieve_address_is_a_field_error() {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let service = Service::start().await;
    let (status, body) = service
        .post(
            "/api/v1/migrations",
            submission(&source, &target, "https://sieve.example/"),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("source.sieve") && text.contains("sieve://"),
        "{text}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_migration_submitted_without_filters_leaves_them_alone() {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    source
        .put_sieve_script(ALICE, "rules", "keep;\r\n", true)
        .unwrap();
    let service = Service::start().await;
    let mut body = submission(
        &source,
        &target,
        &format!("127.0.0.1:{}", source.sieve_port()),
    );
    body["filters"] = json!(false);
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["copy_filters"], false, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let done = service
        .wait_for_state(&id, "done", Duration::from_secs(120))
        .await;
    let migration = &done["migration"];
    assert!(migration["report"]["filters"].is_null(), "{migration:#}");
    assert!(migration["filters"].is_null(), "{migration:#}");
    assert!(target.sieve_scripts(ALICE).unwrap().is_empty());
    // A wrong type is a field error.
    let mut bad = submission(&source, &target, "");
    bad["filters"] = json!("no");
    let (status, body) = service.post("/api/v1/migrations", bad).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    service.stop().await;
}
