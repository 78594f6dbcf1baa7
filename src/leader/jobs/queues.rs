//! Per-topic job queue settings, as Sling's job queue configurations: which topics a queue
//! takes, how often and how late its failed jobs are retried, whether its jobs run one at a
//! time, and how long one may run.
//!
//! A file of `[[queue]]` tables sets them, with Sling's property names as TOML dotted keys, so
//! a Sling configuration reads the same here:
//!
//! ```toml
//! [[queue]]
//! queue.name = "renditions"
//! queue.topics = ["com/adobe/granite/workflow/offloading"]
//! queue.retries = 10          # retries after the first attempt (Sling's default)
//! queue.retrydelay = 2000     # ms before the first retry
//! queue.backoff = 2.0         # each further retry waits this much longer...
//! queue.maxretrydelay = 300000  # ...up to this (ms)
//! queue.timeout = 600000      # a run longer than this fails (ms); none by default
//! queue.maxparallel = 4       # jobs of each of its topics one worker runs at once at most
//!
//! [[queue]]
//! queue.name = "invoices"
//! queue.topics = ["acme/invoice/**"]
//! queue.type = "ORDERED"      # one job at a time across the whole pool, in order
//! ```
//!
//! `queue.maxparallel` travels to the workers in the leader's announcement; a worker then takes
//! at most that many messages of each of the queue's topics at once (its prefetch on the
//! topic's queue), whatever its `--concurrency`. Sling counts it per queue and instance; here it
//! holds per topic and worker, so a queue of three topics with `maxparallel = 2` may run six of
//! its jobs on one worker. An ORDERED queue runs one at a time whatever it says.
//!
//! A topic takes the first queue whose `queue.topics` match it (exact topics, `a/*` for one
//! level below `a`, `a/**` for any depth); a topic no queue names takes the main queue, whose
//! settings come from the leader's command line.

use super::lifecycle::{RetryPolicy, MAX_ATTEMPTS};
use crate::protocol::{Topic, TopicPattern};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Sling's `queue.type`: how a queue's jobs may run relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueType {
    /// As many at once as the workers take.
    #[default]
    Parallel,
    /// One at a time across the whole pool, in the order they were queued: the topic's
    /// RabbitMQ queue has a single active consumer, which takes one message at a time.
    Ordered,
}

/// One queue's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub name: String,
    pub topics: Vec<TopicPattern>,
    pub kind: QueueType,
    pub retry: RetryPolicy,
    /// A run longer than this fails (and is retried): the worker stops waiting for it.
    pub timeout: Option<Duration>,
    /// Sling's `queue.maxparallel`: the most jobs of one of its topics a worker runs at once;
    /// `None` for as many as the worker's `--prefetch` and `--concurrency` allow.
    pub max_parallel: Option<u16>,
}

impl QueueConfig {
    /// The main queue: every topic no other queue takes.
    pub fn main(retry: RetryPolicy) -> Self {
        QueueConfig {
            name: "main".into(),
            topics: vec![],
            kind: QueueType::Parallel,
            retry,
            timeout: None,
            max_parallel: None,
        }
    }
}

/// Every queue of a leader, the main queue last. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queues(Arc<Vec<QueueConfig>>);

impl Default for Queues {
    fn default() -> Self {
        Queues::new(vec![], RetryPolicy::default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueuesError {
    #[error("cannot read queue configuration {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("queue configuration {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The file's shape: `[[queue]]` tables, each with a `queue` table of Sling's names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    queue: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    queue: Settings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    name: String,
    topics: Vec<String>,
    #[serde(default, rename = "type")]
    kind: QueueType,
    retries: Option<u32>,
    retrydelay: Option<u64>,
    backoff: Option<f64>,
    maxretrydelay: Option<u64>,
    timeout: Option<u64>,
    maxparallel: Option<i64>,
}

impl Queues {
    /// `queues` in order of precedence, then the main queue with `main`'s retry policy.
    pub fn new(mut queues: Vec<QueueConfig>, main: RetryPolicy) -> Self {
        queues.push(QueueConfig::main(main));
        Queues(Arc::new(queues))
    }

    /// Reads a queue configuration file; topics no queue in it takes use `main`.
    pub fn load(path: &Path, main: RetryPolicy) -> Result<Self, QueuesError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| QueuesError::Read { path: shown.clone(), source })?;
        Self::parse(&text, main).map_err(|message| QueuesError::Invalid { path: shown, message })
    }

    /// Parses the TOML of a queue configuration file.
    pub fn parse(text: &str, main: RetryPolicy) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut queues = Vec::with_capacity(file.queue.len());
        for Entry { queue: s } in file.queue {
            let topics = s
                .topics
                .iter()
                .map(|t| t.parse::<TopicPattern>().map_err(|e| format!("queue {}: topic {t:?}: {e}", s.name)))
                .collect::<Result<Vec<_>, _>>()?;
            if topics.is_empty() {
                return Err(format!("queue {} takes no topics (queue.topics is empty)", s.name));
            }
            let backoff = s.backoff.unwrap_or(main.backoff);
            if !(1.0..=10.0).contains(&backoff) {
                return Err(format!("queue {}: queue.backoff must be 1 to 10, not {backoff}", s.name));
            }
            let retry = RetryPolicy {
                max_attempts: s.retries.map_or(main.max_attempts, |r| r.saturating_add(1)),
                delay: s.retrydelay.map_or(main.delay, Duration::from_millis),
                backoff,
                max_delay: s.maxretrydelay.map_or(main.max_delay, Duration::from_millis),
            };
            if retry.max_attempts > MAX_ATTEMPTS {
                return Err(format!("queue {}: queue.retries is at most {}", s.name, MAX_ATTEMPTS - 1));
            }
            let max_parallel = match s.maxparallel {
                None => None,
                Some(n) => Some(u16::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("queue {}: queue.maxparallel must be 1 to {}, not {n}", s.name, u16::MAX)
                })?),
            };
            queues.push(QueueConfig {
                name: s.name,
                topics,
                kind: s.kind,
                retry,
                timeout: s.timeout.filter(|&ms| ms > 0).map(Duration::from_millis),
                max_parallel,
            });
        }
        Ok(Queues::new(queues, main))
    }

    /// The queue that takes `topic`: the first whose topics match it, else the main queue.
    pub fn for_topic(&self, topic: &Topic) -> &QueueConfig {
        let main = self.0.len() - 1;
        self.0[..main].iter().find(|q| q.topics.iter().any(|p| p.matches(topic))).unwrap_or(&self.0[main])
    }

    /// Every queue, the main queue last.
    pub fn all(&self) -> &[QueueConfig] {
        &self.0
    }

    /// How many jobs of `topic` one worker may run at once, when its queue limits it (what the
    /// leader announces): 1 for an ordered queue, else its `queue.maxparallel`.
    pub fn max_parallel(&self, topic: &Topic) -> Option<u16> {
        let q = self.for_topic(topic);
        match q.kind {
            QueueType::Ordered => Some(1),
            QueueType::Parallel => q.max_parallel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[queue]]
        queue.name = "renditions"
        queue.topics = ["dam/**"]
        queue.retries = 3
        queue.retrydelay = 500
        queue.backoff = 3.0
        queue.maxretrydelay = 4000
        queue.timeout = 60000
        queue.maxparallel = 3

        [[queue]]
        queue.name = "invoices"
        queue.topics = ["acme/invoice", "dam/special"]
        queue.type = "ORDERED"
    "#;

    fn topic(t: &str) -> Topic {
        t.parse().unwrap()
    }

    #[test]
    fn sling_names_set_each_queue_and_the_first_match_wins() {
        let q = Queues::parse(FILE, RetryPolicy::default()).unwrap();
        let r = q.for_topic(&topic("dam/special"));
        assert_eq!(r.name, "renditions", "the first queue that matches takes the topic");
        assert_eq!(r.retry.max_attempts, 4);
        assert_eq!(r.retry.delay, Duration::from_millis(500));
        assert_eq!(r.retry.backoff, 3.0);
        assert_eq!(r.retry.max_delay, Duration::from_secs(4));
        assert_eq!(r.timeout, Some(Duration::from_secs(60)));
        assert_eq!((r.max_parallel, q.max_parallel(&topic("dam/a/b"))), (Some(3), Some(3)));
        let i = q.for_topic(&topic("acme/invoice"));
        assert_eq!((i.name.as_str(), i.kind), ("invoices", QueueType::Ordered));
        assert_eq!(i.retry, RetryPolicy::default(), "unset settings are the main queue's");
        let m = q.for_topic(&topic("other/topic"));
        assert_eq!((m.name.as_str(), m.kind, m.timeout), ("main", QueueType::Parallel, None));
        assert_eq!(q.max_parallel(&topic("other/topic")), None);
        assert_eq!(q.max_parallel(&topic("acme/invoice")), Some(1), "an ordered queue runs one at a time");
    }

    #[test]
    fn mistakes_are_refused_with_the_queue_named() {
        let main = RetryPolicy::default();
        let typo = Queues::parse("[[queue]]\nqueue.name = \"a\"\nqueue.topics = [\"a/b\"]\nqueue.retry = 3\n", main);
        assert!(typo.unwrap_err().contains("retry"), "unknown keys are refused");
        let empty = Queues::parse("[[queue]]\nqueue.name = \"a\"\nqueue.topics = []\n", main);
        assert!(empty.unwrap_err().contains("queue a takes no topics"));
        let backoff =
            Queues::parse("[[queue]]\nqueue.name = \"a\"\nqueue.topics = [\"a\"]\nqueue.backoff = 0.5\n", main);
        assert!(backoff.unwrap_err().contains("queue.backoff"));
        let kind =
            Queues::parse("[[queue]]\nqueue.name = \"a\"\nqueue.topics = [\"a\"]\nqueue.type = \"FAST\"\n", main);
        assert!(kind.is_err());
        let retries =
            Queues::parse("[[queue]]\nqueue.name = \"a\"\nqueue.topics = [\"a\"]\nqueue.retries = 5000\n", main);
        assert!(retries.unwrap_err().contains("queue.retries is at most"));
        for n in ["0", "70000", "-1"] {
            let text = format!("[[queue]]\nqueue.name = \"a\"\nqueue.topics = [\"a\"]\nqueue.maxparallel = {n}\n");
            let err = Queues::parse(&text, main).unwrap_err();
            assert!(err.contains("maxparallel"), "{n}: {err}");
        }
    }
}
