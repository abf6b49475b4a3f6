//! One error shape for the whole API, mapped in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::submit::{CheckFailure, FieldError};

/// An API error: status, words for the admin, and where the problem is.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub side: Option<String>,
    pub field: Option<String>,
    pub hint: Option<String>,
    pub fields: Vec<FieldError>,
    pub check: Option<Box<CheckFailure>>,
    /// What is left of the allowance, when that is the problem.
    pub remaining: Option<u64>,
    /// A list's check, when a list is refused.
    pub report: Option<Box<serde_json::Value>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    side: Option<&'a str>,
    field: Option<&'a str>,
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'a CheckFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a serde_json::Value>,
    request_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            side: None,
            field: None,
            hint: None,
            fields: Vec::new(),
            check: None,
            remaining: None,
            report: None,
        }
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn invalid_fields(fields: Vec<FieldError>) -> Self {
        let first = fields.first().map(|f| f.field.clone());
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} fields are not valid", fields.len()),
        );
        error.field = first;
        error.fields = fields;
        error.hint("correct the fields listed in `fields` and submit again")
    }
    pub fn check_failed(check: CheckFailure) -> Self {
        let words: Vec<String> = check
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.side, r.reason))
            .collect();
        let hint = check.reasons.iter().find_map(|r| r.hint.clone());
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the login failed on the {} side: {}",
                if check.side == "both" {
                    "source and the target"
                } else {
                    check.side.as_str()
                },
                words.join("; ")
            ),
        );
        error.side = Some(check.side.clone());
        error.hint = hint;
        error.check = Some(Box::new(check));
        error
    }
    /// The allowance cannot cover a submission: 402, with how many can be submitted.
    pub fn allowance(short: mailferry_store::Short) -> Self {
        let mut error = Self::new(
            StatusCode::PAYMENT_REQUIRED,
            crate::licence::short_message(short),
        )
        .hint(crate::licence::SHORT_HINT);
        error.remaining = Some(short.remaining);
        error
    }
    /// With a report (a list's check) in the body.
    pub fn report(mut self, report: serde_json::Value) -> Self {
        self.report = Some(Box::new(report));
        self
    }
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}; the service log has the details"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        if self.status.is_server_error() {
            tracing::error!(request_id, error = %self.error, "request failed");
        }
        let body = Body {
            error: &self.error,
            side: self.side.as_deref(),
            field: self.field.as_deref(),
            hint: self.hint.as_deref(),
            fields: &self.fields,
            check: self.check.as_deref(),
            remaining: self.remaining,
            report: self.report.as_deref(),
            request_id,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<mailferry_store::StoreError> for ApiError {
    fn from(e: mailferry_store::StoreError) -> Self {
        ApiError::internal("the database failed", e)
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
        .hint("the API lives under /api/v1; see /api/v1/info")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take this method",
    )
    .hint("see /api/openapi.json for the methods of each endpoint")
}

pub fn body_too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {limit} bytes"),
    )
    .hint("a migration is a few hundred bytes of JSON, send one at a time; split a longer list into parts")
}

/// A JSON body that could not be read, with the status its cause deserves: 413 too large,
/// 415 not JSON, 400 otherwise (syntax, types, unknown fields).
pub fn json_rejection(
    rejection: axum::extract::rejection::JsonRejection,
    what: &str,
    hint: &str,
) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return body_too_large(super::BODY_LIMIT as u64);
    }
    let status = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, format!("{what}: {}", rejection.body_text())).hint(hint)
}
