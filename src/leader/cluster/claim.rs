//! Refusing a leader whose ledger is not the cluster's.
//!
//! Leaders of one cluster share the reply queue, so a leader that does not share their ledger
//! would drain completions of jobs it does not know (and drop them), and lose its own to the
//! others. The claim makes that impossible: every leader declares the cluster's claim queue with
//! its ledger's id as an argument and keeps consuming it; RabbitMQ refuses a declaration with
//! another id for as long as the queue exists. The queue lives while any leader of the cluster
//! is connected and expires [`CLAIM_EXPIRES`] after the last one left, so a cluster stopped (or
//! crashed) can be started again on another ledger.
//!
//! Why the broker and not the ledger: two embedded ledgers have nothing in common but the
//! broker, and the broker is what they would fight over.

use crate::broker::{run_subscription, Broker, BrokerError, Consume, Delivery, Setup, Subscriber};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a cluster's claim outlives its last leader.
pub const CLAIM_EXPIRES: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "cluster {cluster:?} already has leaders on another ledger ({theirs}); this leader's ledger is {ours}. \
         Several leaders of one cluster must share one ledger: start every leader with --ledger postgres://..., \
         or give this one a cluster of its own with --cluster NAME. (A stopped cluster's claim expires {expires:?} \
         after its last leader left.)"
    )]
    OtherLedger { cluster: String, theirs: String, ours: String, expires: Duration },
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Claims the cluster for `ledger_id` (described as `ledger` in messages), or refuses with the
/// reason; then holds the claim until `cancel` fires.
pub async fn claim_cluster(
    broker: &Broker,
    ledger_id: &str,
    ledger: &str,
    cancel: CancellationToken,
) -> Result<JoinHandle<()>, ClaimError> {
    let setup = broker.setup().await?;
    match setup.declare_claim(ledger_id, CLAIM_EXPIRES).await {
        Ok(_) => {}
        Err(BrokerError::Inequivalent { detail, .. }) => {
            return Err(ClaimError::OtherLedger {
                cluster: broker.config().cluster.clone(),
                theirs: current_value(&detail).map_or(detail.clone(), |n| format!("claim {n}")),
                ours: format!("ledger id {ledger_id}, claim {} ({ledger})", crate::broker::claim_number(ledger_id)),
                expires: CLAIM_EXPIRES,
            })
        }
        Err(e) => return Err(e.into()),
    }
    let holder = ClaimHolder { ledger_id: ledger_id.to_owned() };
    Ok(tokio::spawn({
        let broker = broker.clone();
        async move {
            run_subscription(broker, holder, cancel).await;
        }
    }))
}

/// The value RabbitMQ says the claim holds, from its PRECONDITION_FAILED text
/// ("... but current is the value 'X' of type 'signedint'").
fn current_value(detail: &str) -> Option<&str> {
    let rest = detail.split("current is the value '").nth(1)?;
    rest.split('\'').next()
}

/// Keeps the claim alive by consuming its queue (nothing is ever published to it).
struct ClaimHolder {
    ledger_id: String,
}

#[async_trait::async_trait]
impl Subscriber for ClaimHolder {
    fn describe(&self) -> String {
        "cluster claim".into()
    }

    async fn subscribe(&mut self, setup: &Setup) -> Result<Consume, BrokerError> {
        let queue = setup.declare_claim(&self.ledger_id, CLAIM_EXPIRES).await.inspect_err(|e| {
            if matches!(e, BrokerError::Inequivalent { .. }) {
                tracing::error!(error = %e, "another ledger claimed this cluster while the broker was away; completions may go astray until one of the leaders stops");
            }
        })?;
        Ok(Consume::queue(queue).no_ack())
    }

    async fn handle(&mut self, _batch: Vec<Delivery>) {}

    async fn release(&mut self, _leftovers: Vec<Delivery>) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_claimed_ledger_from_rabbitmqs_refusal() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'ns.leaders.default' in vhost '/': received the value '42' of type 'signedint' but current is the value '7' of type 'signedint'";
        assert_eq!(super::current_value(text), Some("7"));
        assert_eq!(super::current_value("other"), None);
    }
}
