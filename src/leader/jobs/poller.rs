//! The reply poller: drains the leader's outbox and applies what workers report.
//!
//! Replies are taken in batches (a consumer with a large prefetch), applied to the ledger in
//! one transaction, and acked with a single `multiple` ack only after the commit. A crash
//! before the ack redelivers the batch; the ledger's rules make the second application a
//! no-op.

use super::completions::Completions;
use crate::broker::{publish_dead_letter, BrokerError, Consume, Delivery, Publisher, Setup, Subscriber};
use crate::protocol::message::{decode_reply, Reply};
use crate::protocol::trace::TRACEPARENT;
use std::sync::Arc;
use std::time::Duration;

pub struct ReplyPoller {
    pub completions: Arc<Completions>,
    pub publisher: Arc<Publisher>,
    /// Pause between drains; zero drains continuously. With a pause, replies accumulate and
    /// are committed in larger batches.
    pub poll_interval: Duration,
    pub batch: u16,
    pub malformed: prometheus_client::metrics::counter::Counter,
}

#[async_trait::async_trait]
impl Subscriber for ReplyPoller {
    fn describe(&self) -> String {
        "reply poller".into()
    }

    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, BrokerError> {
        setup.declare_replies_queue().await?;
        let queue = setup.broker().names().replies_queue();
        Ok(Consume::queue(queue).prefetch(self.batch).tag("leader-poller"))
    }

    async fn handle(&mut self, batch: Vec<Delivery>) {
        let Some(last) = batch.last() else { return };
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        for d in &batch {
            match decode_reply(d.data()) {
                Ok(r) => {
                    if let Some(trace) = d.header(TRACEPARENT) {
                        tracing::debug!(job = %r.job_id(), traceparent = %trace, kind = r.schema(), "reply");
                    }
                    replies.push(r)
                }
                Err(e) => {
                    self.malformed.inc();
                    // Settled with the batch's ack below; if even the dead-letter publish
                    // fails, the reply is unreadable anyway and goes with the batch.
                    if let Err(e) = publish_dead_letter(&self.publisher, d, &e.to_string(), &[]).await {
                        tracing::error!(error = %e, "could not dead-letter a malformed reply; dropping it");
                    }
                }
            }
        }
        match self.completions.apply(replies).await {
            Ok(_) => {
                // Everything in the batch is committed (or dead-lettered): one ack.
                if let Err(e) = last.ack_through().await {
                    tracing::warn!(error = %e, "ack of reply batch failed; it will be redelivered and ignored");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger refused a reply batch; returning it to the queue");
                let _ = last.requeue_through().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if !self.poll_interval.is_zero() {
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    fn max_batch(&self) -> usize {
        usize::from(self.batch)
    }
}
