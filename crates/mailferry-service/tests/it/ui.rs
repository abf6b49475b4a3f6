//! The web UI over plain HTTP, as a browser without JavaScript uses it (the browser tests in
//! mailferry-cli drive it in Chromium): the login and its cookies, every tab behind it,
//! CSRF refusals, the login rate limit, security headers, the Migration form's field errors
//! that keep what was typed except the passwords, and a list uploaded as a file.

use std::collections::HashMap;
use std::time::Duration;

use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::common::{Service, ADMIN};

/// A cookie-keeping client that does not follow redirects, so each answer can be checked.
pub(crate) struct Visitor {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in:\n{}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Visitor {
    pub(crate) fn new(service: &Service) -> Self {
        Self {
            base: service.base.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(COOKIE, cookie)
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    pub(crate) async fn log_in(&mut self, password: &str) -> Page {
        let form = self.get("/ui/login?next=/ui/active").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/ui/login",
            &[
                ("csrf", &csrf),
                ("password", password),
                ("next", "/ui/active"),
            ],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_strict_http_only_cookies_and_every_tab_is_behind_it() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);

    for path in [
        "/ui/migration",
        "/ui/active",
        "/ui/finished",
        "/ui/information",
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 303, "{path} without a login");
        assert_eq!(page.location(), format!("/ui/login?next={path}"));
    }
    let page = visitor.get("/").await;
    assert_eq!(page.location(), "/ui/");
    let page = visitor.get("/ui/").await;
    assert_eq!(page.location(), "/ui/login");

    let form = visitor.get("/ui/login").await;
    assert_eq!(form.status, 200);
    assert!(form
        .body
        .contains("<label for=\"password\">Admin password</label>"));
    let login_cookie = form.set_cookies().join("\n");
    assert!(
        login_cookie.starts_with("mailferry_login=")
            && login_cookie.contains("HttpOnly")
            && login_cookie.contains("SameSite=Strict")
            && !login_cookie.contains("Secure"),
        "{login_cookie}"
    );
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["cache-control"], "no-store");

    let wrong = visitor.log_in("not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("That is not the admin password"));
    assert!(
        !wrong.body.contains("not the password\""),
        "the typed password is not echoed"
    );
    assert!(!visitor.cookies.contains_key("mailferry_session"));

    let right = visitor.log_in(ADMIN).await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.location(), "/ui/active");
    let session_cookie = right
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("mailferry_session="))
        .unwrap();
    assert!(
        session_cookie.contains("; Path=/ui; HttpOnly; SameSite=Strict")
            && !session_cookie.contains("Secure"),
        "{session_cookie}"
    );
    assert!(
        !visitor.cookies.contains_key("mailferry_login"),
        "the login cookie is dropped"
    );

    for (path, heading) in [
        ("/ui/migration", "<h1>Migration</h1>"),
        ("/ui/active", "<h1>Active</h1>"),
        ("/ui/finished", "<h1>Finished</h1>"),
        ("/ui/information", "<h1>Information</h1>"),
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains(heading), "{path}: {}", page.body);
        assert!(
            page.body
                .contains(&format!("href=\"{path}\" aria-current=\"page\"")),
            "{path} marks its tab"
        );
    }
    let info = visitor.get("/ui/information").await;
    assert!(info.body.contains("Europe/Berlin") && info.body.contains("/api/docs/"));
    assert!(info.body.contains("<code>office365</code>"));

    for (asset, kind) in [
        ("htmx.min.js", "text/javascript"),
        ("sse.min.js", "text/javascript"),
        ("ui.js", "text/javascript"),
        ("ui.css", "text/css"),
    ] {
        let page = visitor.get(&format!("/ui/assets/{asset}")).await;
        assert_eq!(page.status, 200, "{asset}");
        assert!(page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(page.body.len() > 500, "{asset}");
    }
    let missing = visitor.get("/ui/nowhere").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("There is no such page") && missing.body.contains("Request id"));

    // Behind a TLS proxy the cookies are Secure.
    let mut secure = Visitor::new(&service);
    let request = secure
        .client
        .get(format!("{}/ui/login", service.base))
        .header("x-forwarded-proto", "https");
    let page = secure.send(request).await;
    assert!(
        page.set_cookies()[0].ends_with("; Secure"),
        "{:?}",
        page.set_cookies()
    );

    // Logging out ends the session for good.
    let old = visitor.cookies.clone();
    let page = visitor.get("/ui/active").await;
    let out = visitor.post("/ui/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!((out.status, out.location()), (303, "/ui/login?out=1"));
    visitor.cookies = old;
    assert_eq!(
        visitor.get("/ui/active").await.status,
        303,
        "the old cookie is dead"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);
    assert_eq!(visitor.log_in(ADMIN).await.status, 303);
    let page = visitor.get("/ui/migration").await;
    let token = page.csrf();
    let fields = [
        ("source.type", "imap"),
        ("source.email", "a@old.example"),
        ("source.password", "pw"),
        ("source.server", "imap://127.0.0.1:1"),
        ("target.type", "imap"),
        ("target.email", "a@new.example"),
        ("target.password", "pw"),
        ("target.server", "imap://127.0.0.1:2"),
    ];

    let missing = visitor.post("/ui/migration", &fields).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("This form was refused") && missing.body.contains("CSRF"));

    let mut wrong = fields.to_vec();
    let other = "0".repeat(64);
    wrong.push(("csrf", &other));
    assert_eq!(visitor.post("/ui/migration", &wrong).await.status, 403);

    let mut right = fields.to_vec();
    right.push(("csrf", &token));
    let request = visitor
        .client
        .post(format!("{}/ui/migration", service.base))
        .header(ORIGIN, "http://evil.example")
        .form(&right);
    assert_eq!(visitor.send(request).await.status, 403, "another origin");

    // The header htmx sends works as well as the field; a wrong one does not.
    let request = visitor
        .client
        .post(format!("{}/ui/logout", service.base))
        .header("x-csrf-token", "f".repeat(64));
    assert_eq!(visitor.send(request).await.status, 403);

    // Cancel and purge need the token too.
    assert_eq!(
        visitor
            .post("/ui/migrations/0123abcd/purge", &[])
            .await
            .status,
        403
    );

    // The login form checks its own token (double submit): without the cookie, refused.
    let mut stranger = Visitor::new(&service);
    let page = stranger
        .post(
            "/ui/login",
            &[("csrf", &"a".repeat(64)), ("password", ADMIN)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("security token"));
    assert!(!stranger.cookies.contains_key("mailferry_session"));

    // With the token the same form gets through to the credential check (a closed port).
    let page = visitor.post("/ui/migration", &right).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page
        .body
        .contains("The login failed on the source and the target side"));
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"], json!([]), "nothing was stored");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_block_the_address_even_for_the_right_password() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);
    for attempt in 1..=5 {
        let page = visitor.log_in(&format!("guess-{attempt}")).await;
        assert_eq!(page.status, 401, "attempt {attempt}");
    }
    let page = visitor.log_in(ADMIN).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page
        .body
        .contains("Too many failed logins from your address. Wait 10 minutes"));
    assert!(!visitor.cookies.contains_key("mailferry_session"));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_errors_are_shown_beside_their_fields_and_typed_values_kept_but_passwords() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let token = visitor.get("/ui/migration").await.csrf();
    let page = visitor
        .post(
            "/ui/migration",
            &[
                ("csrf", &token),
                ("source.type", "imap"),
                ("source.email", "alice-at-old"),
                ("source.username", "alice"),
                ("source.password", "Secret-Source-Pw"),
                ("source.server", "imap://127.0.0.1:1"),
                ("target.type", "imap"),
                ("target.email", "alice@new.example"),
                ("target.password", "Secret-Target-Pw"),
                ("target.server", ""),
                ("startdate", "tomorrow"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("3 fields need correcting"),
        "{}",
        page.body
    );
    for (id, words) in [
        ("source-email", "is not an e-mail address"),
        ("target-server", "the server is missing"),
        ("startdate", "is not a time"),
    ] {
        let error = format!("<p class=\"error\" id=\"{id}-error\">");
        let at = page
            .body
            .find(&error)
            .unwrap_or_else(|| panic!("no error for {id}:\n{}", page.body));
        assert!(page.body[at..].contains(words), "{id}");
        assert!(
            page.body.contains(&format!("href=\"#{id}\"")),
            "the summary links to {id}"
        );
    }
    assert!(page
        .body
        .contains("aria-invalid=\"true\" aria-describedby=\"source-email-error\""));
    assert!(
        page.body.contains("value=\"alice-at-old\""),
        "typed values are kept"
    );
    assert!(page.body.contains("value=\"tomorrow\""));
    assert!(
        !page.body.contains("Secret-Source-Pw") && !page.body.contains("Secret-Target-Pw"),
        "passwords are never written back"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_list_is_checked_and_submitted_without_a_password_in_any_page() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let page = visitor.get("/ui/mass").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Mass migration</h1>"));
    let token = page.csrf();
    let upload = |list: &str| {
        reqwest::multipart::Form::new()
            .text("csrf", token.clone())
            .text("list", "")
            .part(
                "file",
                reqwest::multipart::Part::bytes(list.as_bytes().to_vec())
                    .file_name("customers.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            )
    };
    let line = |user: &str, password: &str| {
        format!("imap;{user}@old.example;;{password};imap://127.0.0.1:1;imap;{user}@new.example;;{password}x;imap://127.0.0.1:2;;")
    };

    // A faulty list: the table marks the field, masks the passwords, offers no submit.
    let faulty = format!(
        "{}\n{}\n",
        line("anna", "Anna-Secret-1"),
        line("anna", "Anna-Secret-2").replace("anna@old.example", "anna@@old")
    );
    let request = visitor
        .client
        .post(format!("{}/ui/mass", service.base))
        .multipart(upload(&faulty));
    let page = visitor.send(request).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body
            .contains("<td class=\"bad\">anna@@old<span class=\"why\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains("2 lines"), "{}", page.body);
    assert!(!page.body.contains("Anna-Secret"), "passwords are masked");
    assert!(!page.body.contains("submit-list"));

    // Not UTF-8: said so, with the file's name.
    let latin1 = reqwest::multipart::Form::new()
        .text("csrf", token.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![b'a', 0xff, b'b']).file_name("latin1.txt"),
        );
    let request = visitor
        .client
        .post(format!("{}/ui/mass", service.base))
        .multipart(latin1);
    let page = visitor.send(request).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body
            .contains("The file latin1.txt is not UTF-8 text (byte 2 is not)"),
        "{}",
        page.body
    );

    // A clean list: a submit step with a token, and no password in the page.
    let clean = format!(
        "{}\n{}\n",
        line("anna", "Anna-Secret-1"),
        line("bert", "Bert-Secret-1")
    );
    let request = visitor
        .client
        .post(format!("{}/ui/mass", service.base))
        .multipart(upload(&clean));
    let page = visitor.send(request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .body
        .contains("Check the logins and submit 2 migrations"));
    assert!(!page.body.contains("Secret"), "no password in the page");
    let at = page.body.find("name=\"list\" value=\"").unwrap() + "name=\"list\" value=\"".len();
    let list_token = page.body[at..at + 64].to_string();

    // Another session cannot submit it.
    let mut other = Visitor::new(&service);
    other.log_in(ADMIN).await;
    let other_csrf = other.get("/ui/mass").await.csrf();
    let page = other
        .post(
            "/ui/mass/submit",
            &[("csrf", &other_csrf), ("list", &list_token)],
        )
        .await;
    assert_eq!(page.status, 409, "{}", page.body);

    // Submitted: both lines' logins fail (closed ports), each named, nothing stored.
    let page = visitor
        .post(
            "/ui/mass/submit",
            &[("csrf", &token), ("list", &list_token)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("0 of 2 migrations submitted"),
        "{}",
        page.body
    );
    assert!(page.body.contains("anna@old.example → anna@new.example"));
    assert!(page
        .body
        .contains("Not submitted: the login failed on the source and the target side"));
    assert!(!page.body.contains("Secret"));
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"], json!([]));

    // A list is submitted once.
    let page = visitor
        .post(
            "/ui/mass/submit",
            &[("csrf", &token), ("list", &list_token)],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("is no longer waiting to be submitted"));

    let template = visitor.get("/ui/mass/template").await;
    assert_eq!(template.status, 200);
    assert!(template.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    assert!(template.body.starts_with("# mailferry mass migration list"));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_shows_its_problem_and_can_be_retried_then_purged() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start().await;
    let start = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(5))
        .unwrap();
    let (status, created) = service
        .post(
            "/api/v1/migrations",
            json!({
                "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1,
                "source.password": USER1_PASSWORD, "source.insecure": true,
                "source.server": format!("imap://127.0.0.1:{}", source.imap_port()),
                "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2,
                "target.password": USER2_PASSWORD, "target.insecure": true,
                "target.server": format!("imap://127.0.0.1:{}", target.imap_port()),
                "startdate": start.to_string(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // The target goes away after the check: the pass fails and keeps the credentials.
    drop(target);
    let (_, waiting) = service.get(&format!("/api/v1/migrations/{id}")).await;
    assert_eq!(
        waiting["state"], "waiting",
        "the target must be gone before the pass starts: {waiting}"
    );
    let failed = service
        .wait_for_state(&id, "failed", Duration::from_secs(60))
        .await;
    let failed_attempts = failed["migration"]["attempts"].as_u64().unwrap();

    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let page = visitor.get("/ui/finished").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<span class=\"badge failed\">Failed"),
        "{}",
        page.body
    );
    assert!(page.body.contains("What went wrong"), "{}", page.body);
    assert!(
        page.body
            .contains("<li>cannot connect to the target server: cannot connect to"),
        "the problem in words, with its side: {}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("action=\"/ui/migrations/{id}/retry\"")));
    let token = page.csrf();

    let retried = visitor
        .post(&format!("/ui/migrations/{id}/retry"), &[("csrf", &token)])
        .await;
    assert_eq!(
        (retried.status, retried.location()),
        (303, "/ui/active?notice=retried")
    );
    // Waiting again: a worker takes it up (one more attempt), and the closed target fails
    // it again, possibly before this test looks.
    let attempts_before = failed_attempts;
    let started = std::time::Instant::now();
    loop {
        let (_, again) = service.get(&format!("/api/v1/migrations/{id}")).await;
        let attempts = again["attempts"].as_u64().unwrap();
        if attempts > attempts_before && again["state"] == "failed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the retry was not attempted and failed again: {again}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let purged = visitor
        .post(&format!("/ui/migrations/{id}/purge"), &[("csrf", &token)])
        .await;
    assert_eq!(
        (purged.status, purged.location()),
        (303, "/ui/finished?notice=purged")
    );
    let page = visitor.get("/ui/finished?notice=purged").await;
    assert!(page.body.contains("its counts are kept"));
    assert!(page.body.contains("(purged)") && !page.body.contains("user1@old.example"));
    assert!(service.store.secrets(&id).await.unwrap().is_empty());
    // Purged once; a second purge and a cancel of a finished one are refused in words.
    let again = visitor
        .post(&format!("/ui/migrations/{id}/cancel"), &[("csrf", &token)])
        .await;
    assert_eq!(again.location(), "/ui/active?notice=not-cancelled");
    let page = visitor.get(again.location()).await;
    assert!(page
        .body
        .contains("could not be cancelled: it is no longer waiting or running"));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_too_large_gets_a_page_saying_so() {
    let service = Service::start().await;
    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let token = visitor.get("/ui/mass").await.csrf();
    let huge = "imap;a@b.example;;pw;h;imap;c@d.example;;pw;h;;\n".repeat(120_000);
    let form = reqwest::multipart::Form::new()
        .text("csrf", token)
        .text("list", huge);
    let request = visitor
        .client
        .post(format!("{}/ui/mass", service.base))
        .multipart(form);
    let page = visitor.send(request).await;
    assert_eq!(page.status, 413);
    assert!(
        page.body.contains("larger than 4 MiB") && page.body.contains("Split a long list"),
        "{}",
        page.body
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_picker_fills_the_target_without_javascript_and_names_a_missing_file() {
    use mailferry_service::ui::accounts::{AccountList, TargetAccounts};
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "# dovecot users\nzoe:{PLAIN}zoepw::::::\nyann:{PLAIN}y::::::\n",
    )
    .unwrap();
    let picker = TargetAccounts {
        list: AccountList::PasswdFile(users.clone()),
        domain: Some("new.example".into()),
        server: Some("imap://127.0.0.1:143".into()),
    };
    let service = Service::start_with(|config| config.target_accounts = Some(picker)).await;
    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let page = visitor.get("/ui/migration").await;
    assert!(
        page.body.contains("2 accounts of the local Dovecot"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("<option value=\"zoe\" data-email=\"zoe@new.example\""));
    assert!(
        !page.body.contains("zoepw"),
        "passwords of the users file stay there"
    );
    let token = page.csrf();
    let page = visitor
        .post(
            "/ui/migration",
            &[
                ("csrf", &token),
                ("action", "pick"),
                ("pick", "zoe"),
                ("source.email", "zoe@old.example"),
                ("source.password", "Typed-Pw"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    for filled in [
        "id=\"target-email\" name=\"target.email\" type=\"email\" value=\"zoe@new.example\"",
        "id=\"target-username\" name=\"target.username\" type=\"text\" value=\"zoe\"",
        "id=\"target-server\" name=\"target.server\" type=\"text\" value=\"imap://127.0.0.1:143\"",
        "value=\"zoe@old.example\"",
    ] {
        assert!(page.body.contains(filled), "{filled}:\n{}", page.body);
    }
    assert!(!page.body.contains("Typed-Pw"));
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"], json!([]), "picking submits nothing");

    std::fs::remove_file(&users).unwrap();
    let page = visitor.get("/ui/migration").await;
    assert!(
        page.body
            .contains("The local accounts cannot be listed: cannot read the users file"),
        "{}",
        page.body
    );
    service.stop().await;
}

/// An account whose migration is still waiting is refused on the Migration form (before any
/// login is tried) and marked a duplicate of that migration on the Mass migration tab.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_a_migration_waiting_is_refused_on_both_forms() {
    let source = Dovecot::start().unwrap();
    let service = Service::start().await;
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let server = format!("imap://127.0.0.1:{}", source.imap_port());
    let (status, created) = service
        .post(
            "/api/v1/migrations",
            json!({
                "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1,
                "source.password": USER1_PASSWORD, "source.insecure": true, "source.server": server,
                "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2,
                "target.password": USER2_PASSWORD, "target.insecure": true, "target.server": server,
                "startdate": tomorrow.to_string(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let mut visitor = Visitor::new(&service);
    visitor.log_in(ADMIN).await;
    let token = visitor.get("/ui/migration").await.csrf();
    // The same source account to another target (whose port is closed: no login is tried).
    let page = visitor
        .post(
            "/ui/migration",
            &[
                ("csrf", &token),
                ("source.type", "imap"),
                ("source.email", "user1@old.example"),
                ("source.username", USER1),
                ("source.password", USER1_PASSWORD),
                ("source.insecure", "on"),
                ("source.server", &server),
                ("target.type", "imap"),
                ("target.email", "other@new.example"),
                ("target.password", "Other-Secret"),
                ("target.server", "imap://127.0.0.1:1"),
            ],
        )
        .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body.contains(
            "Not submitted: the source account already has a migration that is still waiting or running"
        ) && page.body.contains(&id),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Other-Secret"));

    // In a list, the line repeating the target account is marked, naming the migration.
    let list = format!(
        "imap;zed@old.example;zed;Zed-Secret;imap://127.0.0.1:1;imap;user2@new.example;{USER2};Target-Secret;{server};;\n"
    );
    let form = reqwest::multipart::Form::new()
        .text("csrf", token.clone())
        .text("list", list);
    let request = visitor
        .client
        .post(format!("{}/ui/mass", service.base))
        .multipart(form);
    let page = visitor.send(request).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "Duplicate: the same target account as migration {id}"
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Zed-Secret") && !page.body.contains("Target-Secret"));
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 1);
    service.stop().await;
}
