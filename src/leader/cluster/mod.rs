//! The leaders of one cluster together: who may join ([`claim`]), and who runs the duties that
//! must run once ([`duties`]).
//!
//! Several leaders of one cluster share one ledger (PostgreSQL): every leader serves the API,
//! accepts assets and creates jobs; completions are drained by whichever leader RabbitMQ makes
//! the reply queue's single active consumer, and applied once whichever it is; and one elected
//! leader runs the duties (republishing, retries, the watch folder, resuming orphaned local
//! runs). A leader with a ledger of its own (the embedded SQLite) is alone in its cluster: a
//! second one is refused at start, never left to lose results silently.

pub mod claim;
pub mod duties;

pub use claim::{claim_cluster, ClaimError};
pub use duties::run_while_elected;
