//! The login page (the admin password) and logging out.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::session::{
    client_address, cookie, random_token, same_token, secure, set_cookie, Session, LOGIN_COOKIE,
    SESSION_COOKIE,
};
use super::{render, Ui};

/// Where the login cookie is sent: the login form only.
const LOGIN_PATH: &str = "/ui/login";
/// Where the session cookie is sent: the UI only (the API has its own logins).
const SESSION_PATH: &str = "/ui";
/// How long the login form stays valid.
const LOGIN_FORM_SECONDS: u64 = 3600;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
    message: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    out: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Only a page of the UI, never another site.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with("/ui/")
        && !next.contains("//")
        && !next.contains('\\')
        && next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_".contains(c));
    if ok {
        next.to_string()
    } else {
        "/ui/migration".to_string()
    }
}

/// `/ui/`: the first tab when logged in, else the login page.
pub async fn home(State(ui): State<Arc<Ui>>, request: Request) -> Response {
    let logged_in =
        cookie(request.headers(), SESSION_COOKIE).is_some_and(|c| ui.sessions.find(&c).is_some());
    Redirect::to(if logged_in {
        "/ui/migration"
    } else {
        LOGIN_PATH
    })
    .into_response()
}

/// The login form, with a fresh CSRF token in a cookie and in the form.
pub async fn page(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    if cookie(&headers, SESSION_COOKIE).is_some_and(|c| ui.sessions.find(&c).is_some()) {
        return Redirect::to(&safe_next(&query.next)).into_response();
    }
    let message = query.out.is_some().then_some("You are logged out.");
    login_form(&ui, &headers, StatusCode::OK, &query.next, None, message)
}

fn login_form(
    ui: &Ui,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<String>,
    message: Option<&'static str>,
) -> Response {
    let token = random_token();
    let page = LoginPage {
        csrf: token.clone(),
        next: safe_next(next),
        error,
        message,
    };
    let mut response = render(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            LOGIN_PATH,
            Some(LOGIN_FORM_SECONDS),
            secure(ui, headers),
        ),
    );
    response
}

/// Checks the form's token, the rate limit and the password; opens a session.
pub async fn submit(State(ui): State<Arc<Ui>>, request: Request) -> Response {
    let address = client_address(request.extensions());
    let headers = request.headers().clone();
    let form = match Form::<LoginForm>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(_) => {
            return login_form(
                &ui,
                &headers,
                StatusCode::BAD_REQUEST,
                "",
                Some("The login form could not be read. Enter the password again.".into()),
                None,
            )
        }
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        return login_form(
            &ui,
            &headers,
            StatusCode::FORBIDDEN,
            &form.next,
            Some(
                "The login form had expired or came from another site (its security token did \
                 not match). Enter the password again in this fresh form."
                    .into(),
            ),
            None,
        );
    }
    if let Err(wait) = ui.app.logins.attempt(address) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_form(
            &ui,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &form.next,
            Some(format!(
                "Too many failed logins from your address. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            )),
            None,
        );
    }
    let right = match ui.app.store.admin_password_hash().await {
        Ok(Some(hash)) => ui.app.logins.check_password(form.password, hash).await,
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the admin login");
            return login_form(
                &ui,
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                &form.next,
                Some("The database could not be read; the service log has the details.".into()),
                None,
            );
        }
    };
    if !right {
        tracing::info!(client = %address, "failed login to the web UI");
        return login_form(
            &ui,
            &headers,
            StatusCode::UNAUTHORIZED,
            &form.next,
            Some(
                "That is not the admin password. It was printed when the service first \
                 started, or set with MAILFERRY_ADMIN_PASSWORD."
                    .into(),
            ),
            None,
        );
    }
    ui.app.logins.succeeded(address);
    let session = ui.sessions.open();
    let secure = secure(&ui, &headers);
    let mut response = Redirect::to(&safe_next(&form.next)).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session, SESSION_PATH, None, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", LOGIN_PATH, Some(0), secure),
    );
    response
}

/// Ends the session (the CSRF token was checked on the way in).
pub async fn logout(
    State(ui): State<Arc<Ui>>,
    Extension(_session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        ui.sessions.close(&value);
    }
    let mut response = Redirect::to("/ui/login?out=1").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            SESSION_PATH,
            Some(0),
            secure(&ui, &headers),
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_in_the_ui() {
        assert_eq!(safe_next("/ui/active"), "/ui/active");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/ui//evil",
            "/ui/\\evil",
            "/api/v1/info",
            "/ui/a?b=c",
            "",
        ] {
            assert_eq!(safe_next(bad), "/ui/migration", "{bad}");
        }
    }
}
