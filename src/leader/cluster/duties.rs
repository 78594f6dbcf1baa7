//! Running the cluster's once-only duties on the elected leader.
//!
//! The duties (publishing due jobs again, the watch folder, resuming local runs whose leader
//! died) must run on exactly one leader, or jobs would be published twice and files ingested
//! twice. The ledger elects ([`Ledger::leadership`](crate::leader::ledger::Ledger::leadership)):
//! the embedded one always elects its only leader; a shared one elects with a PostgreSQL
//! advisory lock that dies with its holder's connection, so a standby takes over within a
//! second or two of the holder's death. The mechanism is the ledger because the duties act on
//! the ledger: whoever holds the lock holds it on the very database the duties change.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts the duties (`start` spawns them, stopping on the token it gets) each time this leader
/// is elected, and stops them when it is not any more; returns when `cancel` fires.
pub async fn run_while_elected(
    mut elected: watch::Receiver<bool>,
    start: impl Fn(CancellationToken) -> Vec<JoinHandle<()>>,
    cancel: CancellationToken,
) {
    loop {
        if *elected.borrow_and_update() {
            let duties = cancel.child_token();
            let tasks = start(duties.clone());
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = wait_for(&mut elected, false) => tracing::warn!("no longer elected; stopping the cluster's duties"),
            }
            duties.cancel();
            for t in tasks {
                let _ = t.await;
            }
            if cancel.is_cancelled() {
                return;
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wait_for(&mut elected, true) => {}
            }
        }
    }
}

/// Waits until the watched value is `value` (or its sender is gone).
async fn wait_for(rx: &mut watch::Receiver<bool>, value: bool) {
    while *rx.borrow_and_update() != value {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
