//! The connection pool and the `Broker` handle every runtime holds.
//!
//! Channels are cheap and die with their connection, so nothing keeps one for
//! long without being ready to open another: [`Broker::channel`] takes a pooled
//! connection (deadpool replaces dead ones on recycle) and opens a channel on it,
//! retrying with backoff while RabbitMQ is away.

use super::{Backoff, BrokerConfig, BrokerError, Names};
use deadpool_lapin::{Config, Pool, PoolConfig, Runtime};
use lapin::{Channel, ConnectionProperties};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Broker {
    pool: Pool,
    names: Names,
    config: BrokerConfig,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("url", &self.config.redacted_url()).finish()
    }
}

/// The longest one attempt at a connection and a channel may take. A broker that is starting
/// (or stopping) can accept the TCP connection and never finish the AMQP handshake; found in a
/// real restart (`tests/broker_restart.rs`), where an unbounded attempt waited forever instead
/// of being retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl Broker {
    /// Connects, failing with a clear error if RabbitMQ cannot be reached within
    /// `connect_timeout`: at start a misconfiguration should be loud, while later
    /// outages are ridden out by retrying.
    pub async fn connect(config: BrokerConfig, connection_name: &str) -> Result<Self, BrokerError> {
        let name = connection_name.to_owned();
        let pool = Config { url: Some(config.url.clone()), pool: Some(PoolConfig::new(4)) }
            .create_pool(
                move || ConnectionProperties::default().with_connection_name(name.clone().into()),
                Runtime::Tokio1,
            )
            .map_err(|e| BrokerError::Pool(e.to_string()))?;
        let names = Names::new(&config.namespace, &config.cluster);
        let broker = Broker { pool, names, config };

        let started = Instant::now();
        let mut backoff = Backoff::reconnect();
        loop {
            match broker.try_channel().await {
                Ok(ch) => {
                    let _ = ch.close(200, "connected".into()).await;
                    return Ok(broker);
                }
                Err(e) if started.elapsed() >= broker.config.connect_timeout => {
                    return Err(BrokerError::Unreachable {
                        url: broker.config.redacted_url(),
                        waited: broker.config.connect_timeout,
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "RabbitMQ not reachable yet");
                    backoff.wait().await;
                }
            }
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// One attempt at a fresh channel, bounded by [`ATTEMPT_TIMEOUT`].
    pub(crate) async fn try_channel(&self) -> Result<Channel, BrokerError> {
        let attempt = async {
            let conn = self.pool.get().await.map_err(|e| BrokerError::Pool(e.to_string()))?;
            Ok(conn.create_channel().await?)
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await.map_err(|_| {
            BrokerError::Pool(format!(
                "no connection and channel within {ATTEMPT_TIMEOUT:?} (the broker may still be starting)"
            ))
        })?
    }

    /// A fresh channel, waiting (with backoff) for as long as RabbitMQ is away,
    /// or `None` once `cancel` fires.
    pub(crate) async fn channel(&self, cancel: &CancellationToken) -> Option<Channel> {
        let mut backoff = Backoff::reconnect();
        loop {
            match self.try_channel().await {
                Ok(ch) => return Some(ch),
                Err(e) => {
                    tracing::warn!(error = %e, url = %self.config.redacted_url(), "RabbitMQ unavailable, retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = backoff.wait() => {}
                    }
                }
            }
        }
    }

    /// Closes pooled connections so in-flight channels end cleanly.
    pub fn close(&self) {
        self.pool.close();
    }
}
