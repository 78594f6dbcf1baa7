//! Prometheus metrics: each runtime registers its own families into one registry
//! and serves them as text on `/metrics`, next to the liveness and readiness probes.

use futures::future::BoxFuture;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// A registry shared by the parts of one process.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl MetricsRegistry {
    pub fn new() -> Self {
        MetricsRegistry { inner: Arc::new(Mutex::new(Registry::with_prefix("offloader"))) }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &reg).is_err() {
            out.push_str("# error encoding metrics\n");
        }
        out
    }
}

/// What `/ready` asks the process: `Ok` when it can do its work now, or why not. A check
/// function rather than a broker handle, so this module stays apart from the runtimes.
pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How long `/ready` waits for the check.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves `/metrics`, `/health` (liveness: 200 while the process serves HTTP) and `/ready`
/// (readiness: 200 when `ready` says so, 503 with the reason otherwise) on `addr` until
/// `cancel` fires; returns the bound address, useful when `addr` asks for port 0.
pub async fn serve(
    registry: MetricsRegistry,
    addr: std::net::SocketAddr,
    cancel: tokio_util::sync::CancellationToken,
    ready: Readiness,
) -> std::io::Result<std::net::SocketAddr> {
    use axum::http::StatusCode;
    use axum::{routing::get, Router};
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let r = registry.clone();
                async move { r.render() }
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .route(
            "/ready",
            get(move || {
                let check = ready();
                async move {
                    match tokio::time::timeout(READY_TIMEOUT, check).await {
                        Ok(Ok(())) => (StatusCode::OK, "ok".to_owned()),
                        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, reason),
                        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, format!("no answer within {READY_TIMEOUT:?}")),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
    });
    Ok(bound)
}
