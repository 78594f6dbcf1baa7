//! The connection pool and the `Broker` handle every runtime holds.
//!
//! Channels are cheap and die with their connection, so nothing keeps one for
//! long without being ready to open another: [`Broker::channel`] takes a pooled
//! connection (deadpool replaces dead ones on recycle) and opens a channel on it,
//! retrying with backoff while RabbitMQ is away.
//!
//! The URL may name several nodes of one RabbitMQ cluster. Every new connection tries them in
//! turn, starting after the node the previous attempt used (and at a random one in each process,
//! so a fleet spreads over the cluster): a dead node costs one refused connection, and the next
//! node takes over, on the first connect as on every reconnect.

use super::config::redact;
use super::{Backoff, BrokerConfig, BrokerError, Names};
use deadpool::managed::{self, Metrics, Pool, PoolConfig, RecycleError, RecycleResult};
use lapin::{Channel, ConnectionProperties};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Makes the pool's connections, each to the next node of the list that answers.
struct Nodes {
    urls: Vec<String>,
    /// Index (modulo the node count) of the node the next attempt starts with.
    next: AtomicUsize,
    connection_name: String,
}

impl Nodes {
    fn new(urls: Vec<String>, connection_name: String) -> Self {
        let start = rand::random::<u32>() as usize % urls.len().max(1);
        Nodes { urls, next: AtomicUsize::new(start), connection_name }
    }
}

impl managed::Manager for Nodes {
    type Type = lapin::Connection;
    type Error = BrokerError;

    async fn create(&self) -> Result<lapin::Connection, BrokerError> {
        let mut failures = Vec::new();
        let mut last = None;
        for _ in 0..self.urls.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
            let url = &self.urls[i];
            let props = ConnectionProperties::default().with_connection_name(self.connection_name.clone().into());
            // Each node gets the time one attempt may take, so one that hangs (a host that is
            // gone drops packets rather than refusing) does not use up the others' turn.
            match tokio::time::timeout(ATTEMPT_TIMEOUT, lapin::Connection::connect(url, props)).await {
                Ok(Ok(conn)) => {
                    if self.urls.len() > 1 {
                        tracing::info!(node = %redact(url), "connected to RabbitMQ node");
                    } else {
                        tracing::debug!(node = %redact(url), "connected to RabbitMQ");
                    }
                    return Ok(conn);
                }
                Ok(Err(e)) => {
                    if self.urls.len() > 1 {
                        tracing::warn!(node = %redact(url), error = %e, "RabbitMQ node unreachable, trying the next");
                    }
                    failures.push(format!("{}: {e}", redact(url)));
                    last = Some(BrokerError::Amqp(e));
                }
                Err(_) => {
                    let failure = format!("{}: no connection within {ATTEMPT_TIMEOUT:?}", redact(url));
                    failures.push(failure.clone());
                    last = Some(BrokerError::Pool(failure));
                }
            }
        }
        // One node: its own error, as before there were lists.
        match last {
            Some(e) if self.urls.len() == 1 => Err(e),
            _ => Err(BrokerError::Pool(format!("no RabbitMQ node answered ({})", failures.join("; ")))),
        }
    }

    async fn recycle(&self, conn: &mut lapin::Connection, _: &Metrics) -> RecycleResult<BrokerError> {
        if conn.status().connected() {
            Ok(())
        } else {
            Err(RecycleError::message(format!("lapin connection is not connected: {:?}", conn.status())))
        }
    }
}

#[derive(Clone)]
pub struct Broker {
    pool: Pool<Nodes>,
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
        let nodes = Nodes::new(config.nodes()?, connection_name.to_owned());
        let pool =
            Pool::builder(nodes).config(PoolConfig::new(4)).build().map_err(|e| BrokerError::Pool(e.to_string()))?;
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

    /// One attempt at a fresh channel, bounded by [`ATTEMPT_TIMEOUT`] per node (a new
    /// connection may have to go through every node of the list).
    pub(crate) async fn try_channel(&self) -> Result<Channel, BrokerError> {
        let limit = ATTEMPT_TIMEOUT * self.pool.manager().urls.len().max(1) as u32;
        let attempt = async {
            let conn = self.pool.get().await.map_err(|e| BrokerError::Pool(e.to_string()))?;
            Ok(conn.create_channel().await?)
        };
        tokio::time::timeout(limit, attempt).await.map_err(|_| {
            BrokerError::Pool(format!("no connection and channel within {limit:?} (the broker may still be starting)"))
        })?
    }

    /// Whether RabbitMQ answers now: one channel opened (on a pooled connection, or a new one
    /// through the node list) and closed, within [`ATTEMPT_TIMEOUT`] per node. What a readiness
    /// probe asks; unlike [`Broker::channel`] it never waits for the broker to come back.
    pub async fn probe(&self) -> Result<(), BrokerError> {
        let ch = self.try_channel().await?;
        let _ = ch.close(200, "probe".into()).await;
        Ok(())
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
