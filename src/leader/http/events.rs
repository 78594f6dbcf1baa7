//! `GET /api/events`: a server-sent events stream of job state changes, so a page (the
//! console) redraws when something happens instead of only on its next poll.
//!
//! The stream watches the ledger rather than hooking into the code that changes jobs: with a
//! shared ledger, a change made by another leader of the cluster is seen as well, and the job
//! code stays free of anything the HTTP layer wants. Every [`WATCH_EVERY`] (or at once when this
//! leader finishes a job) it reads the newest jobs and the unfinished ones and sends an event
//! for each job that is new or whose state or attempt changed since the last read. A change to
//! a finished job outside the newest [`NEWEST`] is not seen; this is a hint to redraw, not a
//! log (the ledger is the record).

use super::ApiState;
use crate::leader::ledger::{JobQuery, Ledger};
use crate::protocol::api::{JobEvent, JobRecord};
use crate::protocol::{JobId, JobState};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use futures::{Stream, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/events", get(events))
}

/// How often the ledger is read while nothing wakes the stream earlier.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How many of the newest jobs are watched (besides every unfinished one).
const NEWEST: usize = 200;
/// The most unfinished jobs watched.
const UNFINISHED: usize = 1000;

/// A stream of job changes (`event: job`, data: a JobEvent) for as long as the client listens
/// and the leader runs; comments keep idle connections open.
#[utoipa::path(get, path = "/api/events", tag = "jobs",
    responses((status = 200, description = "`text/event-stream`: one `job` event (data: JobEvent) per job that \
is new or changed state or attempt", content((JobEvent = "text/event-stream")))))]
pub async fn events(State(state): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = Watch {
        ledger: state.jobs.ledger().clone(),
        finals: state.jobs.ledger().final_jobs(),
        seen: None,
        pending: VecDeque::new(),
    };
    let stream = futures::stream::unfold(watch, |mut w| async move {
        let change = w.next().await;
        let event = Event::default().event("job").json_data(&change).unwrap_or_else(|_| Event::default().comment("?"));
        Some((Ok(event), w))
    })
    .take_until(state.shutdown.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

struct Watch {
    ledger: Ledger,
    finals: broadcast::Receiver<JobId>,
    /// Each watched job's state and attempt at the last read; `None` before the first.
    seen: Option<HashMap<JobId, (JobState, u32)>>,
    pending: VecDeque<JobEvent>,
}

impl Watch {
    /// The next change, waiting for one as long as it takes.
    async fn next(&mut self) -> JobEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            if self.seen.is_some() {
                // A job finished here wakes the stream at once; anything else is seen on the tick.
                if let Ok(Err(broadcast::error::RecvError::Closed)) =
                    tokio::time::timeout(WATCH_EVERY, self.finals.recv()).await
                {
                    // The ledger is shutting down: no more wake-ups, only ticks.
                    tokio::time::sleep(WATCH_EVERY).await;
                }
            }
            // A ledger that does not answer is tried again on the next tick.
            if let Ok(jobs) = self.read().await {
                self.diff(jobs);
            } else {
                tokio::time::sleep(WATCH_EVERY).await;
            }
        }
    }

    async fn read(&self) -> Result<Vec<JobRecord>, crate::leader::ledger::LedgerError> {
        let mut jobs = self.ledger.list(JobQuery { limit: NEWEST, ..Default::default() }).await?;
        let unfinished = JobQuery {
            states: vec![JobState::New, JobState::Queued, JobState::Active, JobState::Failed],
            limit: UNFINISHED,
            ..Default::default()
        };
        jobs.extend(self.ledger.list(unfinished).await?);
        Ok(jobs)
    }

    fn diff(&mut self, jobs: Vec<JobRecord>) {
        let now: HashMap<JobId, (JobState, u32)> = jobs.iter().map(|j| (j.id, (j.state, j.attempt))).collect();
        if let Some(before) = &self.seen {
            for j in &jobs {
                let current = (j.state, j.attempt);
                if before.get(&j.id) != Some(&current) && !self.pending.iter().any(|e| e.id == j.id) {
                    self.pending.push_back(JobEvent {
                        id: j.id,
                        topic: j.topic.clone(),
                        state: j.state,
                        attempt: j.attempt,
                        at: Utc::now(),
                    });
                }
            }
        }
        self.seen = Some(now);
    }
}
