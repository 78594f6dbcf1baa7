//! The reply poller: drains the leader's outbox and applies what workers report.
//!
//! Replies are taken in batches (a consumer with a large prefetch), applied to
//! the ledger in one transaction, and acked with a single `multiple` ack only
//! after the commit. A crash before the ack redelivers the batch; the ledger's
//! rules make the second application a no-op.

use super::job_manager::JobManager;
use super::record::Effect;
use crate::broker::{Broker, BrokerError, Channel, Consumer, Delivery, Outgoing, Publisher, Subscriber};
use crate::protocol::message::{decode_reply, Reply};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;

pub struct ReplyPoller {
    pub jobs: Arc<JobManager>,
    pub publisher: Arc<Publisher>,
    /// Pause between drains; zero drains continuously. With a pause, replies
    /// accumulate and are committed in larger batches.
    pub poll_interval: Duration,
    pub batch: u16,
}

#[async_trait::async_trait]
impl Subscriber for ReplyPoller {
    fn describe(&self) -> String {
        "reply poller".into()
    }

    async fn subscribe(&mut self, broker: &Broker, ch: &Channel) -> Result<Consumer, BrokerError> {
        broker.declare_replies_queue(ch).await?;
        ch.basic_qos(self.batch, BasicQosOptions::default()).await?;
        Ok(ch
            .basic_consume(
                broker.names().replies_queue().into(),
                "leader-poller".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    async fn handle(&mut self, ch: &Channel, batch: Vec<Delivery>) {
        let Some(last_tag) = batch.last().map(|d| d.delivery_tag) else { return };
        let metrics = self.jobs.metrics().clone();
        metrics.reply_batch.observe(batch.len() as f64);
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        for d in &batch {
            match decode_reply(&d.data) {
                Ok(r) => replies.push(r),
                Err(e) => {
                    metrics.replies_malformed.inc();
                    self.dead_letter(d, &e.to_string()).await;
                }
            }
        }
        match self.jobs.ledger().apply_replies(replies, self.jobs.policy()).await {
            Ok(results) => {
                // Everything in the batch is committed (or dead-lettered): one ack.
                if let Err(e) = ch.basic_ack(last_tag, BasicAckOptions { multiple: true }).await {
                    tracing::warn!(error = %e, "ack of reply batch failed; it will be redelivered and ignored");
                }
                for (reply, outcome) in results {
                    match outcome {
                        Some((Effect::Applied, rec)) => {
                            metrics.replies_applied.inc();
                            self.jobs.job_finished(&rec);
                        }
                        Some((Effect::Ignored(why), rec)) => {
                            metrics.replies_ignored.inc();
                            tracing::debug!(job = %rec.id, why, "reply ignored");
                        }
                        None => {
                            metrics.replies_ignored.inc();
                            tracing::warn!(job = %reply.job_id(), "reply for a job this ledger does not know");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger refused a reply batch; returning it to the queue");
                let _ = ch.basic_nack(last_tag, BasicNackOptions { multiple: true, requeue: true }).await;
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

impl ReplyPoller {
    async fn dead_letter(&self, d: &Delivery, reason: &str) {
        tracing::error!(reason, "dead-lettering malformed reply");
        let names = self.publisher.broker().names();
        let mut out = Outgoing::new(
            names.dead_letter_exchange(),
            d.routing_key.as_str(),
            "offloader.dead-letter",
            d.data.clone(),
        );
        out.headers = vec![
            ("x-offloader-reason".into(), reason.chars().take(1000).collect()),
            ("x-offloader-routing-key".into(), d.routing_key.to_string()),
        ];
        if let Err(e) = self.publisher.publish(&out).await {
            tracing::error!(error = %e, "could not dead-letter malformed reply; dropping it");
        }
    }
}
