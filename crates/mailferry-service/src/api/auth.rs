//! Login: HTTP Basic as `admin` with the admin password (argon2 hash in the store), or a
//! bearer token (its SHA-256 in the store, shown once when made).
//! Failed Basic logins count against the client's address together with the web UI's
//! failed logins: after 5 in 10 minutes, Basic logins from there get a 429 with
//! `Retry-After`.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::AppState;

pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("argon2 hashing with default parameters does not fail")
        .to_string()
}

/// Whether `password` matches the argon2 `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new random token (`mf_` + 40 hex characters).
pub fn new_token() -> String {
    format!(
        "mf_{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn require_login(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The admin password can be guessed at, so failed Basic logins count against the
    // client's address, together with the web UI's failed logins; tokens (160 random bits)
    // cannot be, and are not limited.
    let address = crate::ui::client_address(request.extensions());
    let basic = header.starts_with("Basic ");
    if let Some(wait) = basic.then(|| state.logins.attempt(address).err()).flatten() {
        let seconds = wait.as_secs().max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from this address",
        )
        .hint(format!(
            "wait {seconds} s, then log in with the right password (or use a token from `mailferry token create`)"
        ))
        .into_response();
        if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let allowed = if let Some(encoded) = header.strip_prefix("Basic ") {
        let decoded = BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        match decoded.split_once(':') {
            Some(("admin", password)) => match state.store.admin_password_hash().await {
                Ok(Some(hash)) => {
                    state
                        .logins
                        .check_password(password.to_string(), hash)
                        .await
                }
                _ => false,
            },
            _ => false,
        }
    } else if let Some(token) = header.strip_prefix("Bearer ") {
        matches!(
            state.store.token_name(&token_hash(token.trim())).await,
            Ok(Some(_))
        )
    } else {
        false
    };
    if allowed {
        if basic {
            state.logins.succeeded(address);
        }
        return next.run(request).await;
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "login required")
        .hint("send the admin password as HTTP Basic auth (user `admin`), or a token from `mailferry token create` as `Authorization: Bearer ...`")
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"mailferry\""),
    );
    response
}
