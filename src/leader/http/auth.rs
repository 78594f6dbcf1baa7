//! The one bearer-token check, for every route.
//!
//! When a token is configured, every request that changes something (any method but GET and
//! HEAD) needs `Authorization: Bearer <token>`, and so do downloads of bytes: asset originals
//! and renditions, and any blob (`/api/blobs/`), which are content, not status. Status reads
//! stay open, so dashboards, the console's pages and `offloader job get` work without secrets
//! on a trusted network.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `method` on `path` needs the token.
fn guarded(method: &Method, path: &str) -> bool {
    let reads = *method == Method::GET || *method == Method::HEAD;
    !reads || (path.starts_with("/api/assets/") && path.contains("/renditions/")) || path.starts_with("/api/blobs/")
}

pub async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(token) = &state.token else { return next.run(req).await };
    if !guarded(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(token.as_str()) {
        return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token (set OFFLOADER_TOKEN)".into())
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_asset_bytes_are_guarded_reads_are_not() {
        assert!(guarded(&Method::POST, "/api/jobs"));
        assert!(guarded(&Method::PUT, "/api/assets/content/dam/a.jpg"));
        assert!(guarded(&Method::DELETE, "/api/jobs/x"));
        assert!(guarded(&Method::GET, "/api/assets/content/dam/a.jpg/renditions/original"));
        assert!(!guarded(&Method::GET, "/api/assets/content/dam/a.jpg"));
        assert!(guarded(&Method::GET, "/api/blobs/00"));
        assert!(!guarded(&Method::GET, "/api/jobs"));
        assert!(!guarded(&Method::GET, "/"));
        assert!(!guarded(&Method::GET, "/console/app.js"));
        assert!(!guarded(&Method::GET, "/metrics"));
    }
}
