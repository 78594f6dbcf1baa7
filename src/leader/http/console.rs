//! The web console: a single page served at `/`, its script and style under `/console/`.
//!
//! The files are plain HTML, CSS and JavaScript in `console/` next to this module, compiled
//! into the binary with `include_str!`, so a leader serves its console with nothing to
//! install and nothing fetched from the network at run time (an air-gapped operator sees the
//! same page). The page holds no logic of the leader's: everything it shows and does goes
//! through the documented JSON API, with the bearer token the user types in when one is set.

use super::ApiState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// The page is one document for every route: the routes live in its `#/` hash.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/console", get(index))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
}

/// `no-cache`: a browser revalidates, so an upgraded leader's console is seen at once.
const CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), CACHE], INDEX)
}

async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), CACHE], SCRIPT)
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), CACHE], STYLE)
}
