//! The API's one error answer: a status and `{"error": "<what went wrong, what to do>"}`.
//!
//! Every handler returns [`ApiError`]; the domain errors say which status they are here, so
//! the domain modules stay free of HTTP. [`json_errors`] turns whatever axum answers on its
//! own (an unknown route, a wrong method, a malformed query string, a body too large) into the
//! same shape, so a client never has to parse plain text.

use crate::leader::assets::{IngestError, ResolveError};
use crate::leader::jobs::JobError;
use crate::leader::topology::ControlError;
use crate::protocol::api::ErrorBody;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let status = match &e {
            JobError::NotFound(_) => StatusCode::NOT_FOUND,
            JobError::Invalid(_) => StatusCode::BAD_REQUEST,
            JobError::Conflict(..) => StatusCode::CONFLICT,
            JobError::Ledger(_) | JobError::Broker(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::leader::ledger::LedgerError> for ApiError {
    fn from(e: crate::leader::ledger::LedgerError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Ledger(l) => l.into(),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::UnknownInstance(_) => StatusCode::NOT_FOUND,
            ControlError::NotListening(_) => StatusCode::CONFLICT,
            ControlError::NoConfirmation(..) => StatusCode::GATEWAY_TIMEOUT,
            ControlError::Broker(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::leader::dead_letters::DeadLetterError> for ApiError {
    fn from(e: crate::leader::dead_letters::DeadLetterError) -> Self {
        use crate::broker::BrokerError;
        use crate::leader::dead_letters::DeadLetterError;
        let status = match &e {
            DeadLetterError::NotFound(_) => StatusCode::NOT_FOUND,
            DeadLetterError::Broker(BrokerError::Unroutable { .. }) => StatusCode::CONFLICT,
            DeadLetterError::Broker(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

/// The answer for a route that does not exist.
pub async fn no_route(req: Request) -> ApiError {
    ApiError::not_found(format!("no such route: {} {} (see /api/openapi.json)", req.method(), req.uri().path()))
}

/// Rewrites error answers that are not JSON (axum's own rejections) as the API's error.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    // A 405 says in `Allow` what would work: keep it.
    let allow = resp.headers().get(header::ALLOW).cloned();
    // Rejection bodies are short texts; cap what is read all the same.
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let mut out = ApiError(status, text).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}
