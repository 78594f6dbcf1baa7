//! The ledger on both engines: every test of the `suite` runs once on the embedded SQLite file
//! and once on a PostgreSQL database of its own, so the two keep one behaviour. The last tests
//! are about what only a shared ledger does: several leaders on one database.

mod common;

use chrono::Utc;
use common::postgres::TestDb;
use offloader::leader::assets::{AssetProjection, AssetRepository};
use offloader::leader::jobs::scheduler;
use offloader::leader::jobs::{Effect, Queues, RetryPolicy};
use offloader::leader::ledger::{JobQuery, Ledger, LedgerError, LedgerLocation, MakeJob, NextDue, NoProjection};
use offloader::protocol::api::{AssetChange, JobRecord, NewSchedule};
use offloader::protocol::message::{Completion, JobStarted, Reply};
use offloader::protocol::workflow::dam_update_asset;
use offloader::protocol::{
    AssetPath, BlobRef, InstanceId, Job, JobId, JobKind, JobResult, JobState, OffloadingJob, PayloadEntry, Properties,
    PropertyTemplate, Sha256Hex,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A ledger under test and what to clean up after it.
struct Harness {
    ledger: Ledger,
    location: LedgerLocation,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Harness {
    async fn finish(self) {
        drop(self.ledger);
        if let Some(db) = self.db {
            db.drop_db().await;
        }
    }

    /// A second handle on the same ledger, as a second leader would open it.
    async fn reopen(&self) -> Ledger {
        Ledger::open(&self.location, Arc::new(AssetProjection)).await.expect("opening the ledger again")
    }
}

async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let location = LedgerLocation::Sqlite(dir.path().join("ledger.sqlite"));
    let ledger = Ledger::open(&location, Arc::new(AssetProjection)).await.unwrap();
    Harness { ledger, location, _dir: Some(dir), db: None }
}

async fn postgres() -> Harness {
    let db = TestDb::create().await;
    let location = LedgerLocation::parse(&db.url).unwrap();
    let ledger = Ledger::open(&location, Arc::new(AssetProjection)).await.unwrap();
    Harness { ledger, location, _dir: None, db: Some(db) }
}

fn job(topic: &str) -> Job {
    Job {
        id: JobId::new(),
        topic: topic.parse().unwrap(),
        properties: Properties::new(),
        inputs: vec![],
        attempt: 1,
        max_attempts: 3,
        timeout_ms: None,
    }
}

fn completion(rec: &JobRecord, attempt: u32, result: JobResult) -> Reply {
    Reply::Completion(Completion {
        job_id: rec.id,
        attempt,
        worker: InstanceId::random(),
        worker_name: "w1".into(),
        result,
        outputs: vec![],
        properties: Properties::new(),
        started_at: Utc::now(),
        finished_at: Utc::now(),
        redeliveries: 0,
    })
}

fn blob(b: u8) -> BlobRef {
    BlobRef { sha256: Sha256Hex::from_digest(&[b; 32]), size: u64::from(b) }
}

mod suite {
    use super::*;

    pub async fn jobs_round_trip_and_list_by_state_and_topic(h: Harness) {
        let l = &h.ledger;
        let mut ids = Vec::new();
        for topic in ["a/b", "a/b_c", "a/b/c", "x/y"] {
            let rec = JobRecord::new(&job(topic), Utc::now());
            l.insert(rec.clone()).await.unwrap();
            assert_eq!(l.get(rec.id).await.unwrap().as_ref(), Some(&rec));
            ids.push(rec.id);
        }
        l.confirm_published(ids[0], 1).await.unwrap();
        let all = l.list(JobQuery::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids.iter().rev().copied().collect::<Vec<_>>(),
            "newest first"
        );
        let topics = |pattern: &'static str| async move {
            let q = JobQuery { topic: Some(pattern.parse().unwrap()), ..Default::default() };
            let mut t: Vec<String> = l.list(q).await.unwrap().into_iter().map(|r| r.topic.to_string()).collect();
            t.sort();
            t
        };
        assert_eq!(topics("a/b").await, ["a/b"], "'_' is not a wildcard");
        assert_eq!(topics("a/*").await, ["a/b", "a/b_c"]);
        assert_eq!(topics("a/**").await, ["a/b", "a/b/c", "a/b_c"]);
        assert_eq!(topics("**").await.len(), 4);
        let queued = l.list(JobQuery { states: vec![JobState::Queued], ..Default::default() }).await.unwrap();
        assert_eq!(queued.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[0]]);
        let counts: std::collections::BTreeMap<_, _> = l.counts().await.unwrap().into_iter().collect();
        assert_eq!((counts[&JobState::Queued], counts[&JobState::New]), (1, 3));
        let limited = l.list(JobQuery { limit: 2, ..Default::default() }).await.unwrap();
        assert_eq!(limited.len(), 2);
        h.finish().await;
    }

    pub async fn a_completion_is_applied_once_and_due_jobs_come_back(h: Harness) {
        let l = &h.ledger;
        let policy =
            Queues::new(vec![], RetryPolicy { max_attempts: 3, delay: Duration::ZERO, ..RetryPolicy::default() });
        let rec = JobRecord::new(&job("a/b"), Utc::now());
        l.insert(rec.clone()).await.unwrap();
        l.confirm_published(rec.id, 1).await.unwrap();
        let failed = completion(&rec, 1, JobResult::failed("flaky"));
        let out = l.apply_replies(vec![failed.clone(), failed], policy.clone()).await.unwrap();
        assert_eq!(out[0].1.as_ref().unwrap().0, Effect::Applied);
        assert!(matches!(out[1].1.as_ref().unwrap().0, Effect::Ignored(_)));
        // FAILED with its retry time come: due. NEW and older than the grace: due too.
        let new = JobRecord::new(&job("a/c"), Utc::now() - chrono::Duration::seconds(60));
        l.insert(new.clone()).await.unwrap();
        let due = l.due(Utc::now(), Utc::now() - chrono::Duration::seconds(30)).await.unwrap();
        let mut due_ids: Vec<JobId> = due.iter().map(|r| r.id).collect();
        due_ids.sort();
        let mut expected = vec![rec.id, new.id];
        expected.sort();
        assert_eq!(due_ids, expected);
        // The retry is confirmed and succeeds; a late duplicate of attempt 1 changes nothing.
        l.confirm_published(rec.id, 2).await.unwrap();
        l.apply_replies(vec![completion(&rec, 2, JobResult::Ok)], policy.clone()).await.unwrap();
        let late = l.apply_replies(vec![completion(&rec, 1, JobResult::Ok)], policy.clone()).await.unwrap();
        assert!(matches!(late[0].1.as_ref().unwrap().0, Effect::Ignored(_)));
        let done = l.get(rec.id).await.unwrap().unwrap();
        assert_eq!((done.state, done.attempt, done.completions_applied), (JobState::Succeeded, 2, 2));
        // A reply for a job the ledger does not know is reported, not an error.
        let unknown = JobRecord::new(&job("a/b"), Utc::now());
        let started = Reply::Started(JobStarted {
            job_id: unknown.id,
            attempt: 1,
            worker: InstanceId::random(),
            worker_name: "w".into(),
            redeliveries: 0,
            started_at: Utc::now(),
            detached: false,
        });
        assert!(l.apply_replies(vec![started], policy.clone()).await.unwrap()[0].1.is_none());
        h.finish().await;
    }

    pub async fn an_asset_changes_in_the_transaction_of_its_job(h: Harness) {
        let l = &h.ledger;
        let repo = AssetRepository::new(l.clone());
        let path = AssetPath::parse("/content/dam/a.jpg").unwrap();
        assert_eq!(repo.put_original(path.clone(), blob(1), "image/jpeg".into()).await.unwrap(), AssetChange::Created);
        assert_eq!(
            repo.put_original(path.clone(), blob(1), "image/jpeg".into()).await.unwrap(),
            AssetChange::Unchanged
        );
        let contract = OffloadingJob::new(&dam_update_asset(), false, path.clone());
        let mut j = job("com/adobe/granite/workflow/offloading");
        j.properties = contract.to_properties();
        j.inputs = vec![PayloadEntry { path: path.to_string(), blob: blob(1), mime_type: None }];
        let rec = JobRecord::new(&j, Utc::now());
        l.insert(rec.clone()).await.unwrap();
        let Reply::Completion(mut c) = completion(&rec, 1, JobResult::Ok) else { unreachable!() };
        c.outputs = vec![PayloadEntry { path: path.rendition_path("t.png"), blob: blob(7), mime_type: None }];
        c.properties.insert("metadata".into(), serde_json::json!({"width": 4}));
        l.apply_replies(vec![Reply::Completion(c)], Queues::default()).await.unwrap();
        let asset = repo.get(&path).await.unwrap().unwrap();
        assert_eq!(asset.renditions.len(), 1);
        assert_eq!(asset.renditions[0].mime_type, "image/png");
        assert_eq!(asset.metadata["width"], 4);
        assert_eq!(asset.job.unwrap().state, Some(JobState::Succeeded));
        // Documents list in key order, by prefix.
        for p in ["/content/dam/b.jpg", "/content/damx/c.jpg", "/content/dam/sub/d.jpg"] {
            repo.put_original(AssetPath::parse(p).unwrap(), blob(2), "image/jpeg".into()).await.unwrap();
        }
        let keys: Vec<String> =
            l.docs("asset", "/content/dam/".into(), None, 10).await.unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["/content/dam/a.jpg", "/content/dam/b.jpg", "/content/dam/sub/d.jpg"]);
        let page: Vec<String> = l
            .docs("asset", "/content/dam/".into(), Some("/content/dam/a.jpg".into()), 1)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(page, ["/content/dam/b.jpg"]);
        h.finish().await;
    }

    pub async fn a_failing_operation_rolls_back_alone(h: Harness) {
        let l = &h.ledger;
        let rec = JobRecord::new(&job("a/b"), Utc::now());
        l.insert(rec.clone()).await.unwrap();
        // The same id twice: the second insert fails, and only it. An operation of several
        // statements that fails after its first write leaves nothing either, whether or not it
        // shares a transaction with the others.
        let half = JobRecord::new(&job("a/d"), Utc::now());
        let half_id = half.id;
        let (again, other, partial) = tokio::join!(
            l.insert(rec.clone()),
            l.insert(JobRecord::new(&job("a/c"), Utc::now())),
            l.run(move |t| Box::pin(async move {
                t.insert_job(&half).await?;
                Err::<(), _>(LedgerError::Refused("made to fail after its write".into()))
            })),
        );
        assert!(again.is_err());
        other.unwrap();
        assert!(matches!(partial, Err(LedgerError::Refused(_))), "{partial:?}");
        assert!(l.get(half_id).await.unwrap().is_none(), "the failed operation's write is rolled back");
        assert_eq!(l.list(JobQuery::default()).await.unwrap().len(), 2);
        h.finish().await;
    }

    pub async fn a_job_waited_for_is_known_unfinished_only_until_it_ends(h: Harness) {
        let l = &h.ledger;
        // Only the embedded ledger answers from memory; a shared one always reads.
        let from_memory = !l.is_shared();
        let policy = Queues::new(vec![], RetryPolicy::default());
        // The usual order: confirm, then completion.
        let rec = JobRecord::new(&job("a/b"), Utc::now());
        l.insert(rec.clone()).await.unwrap();
        l.queued(&rec);
        assert_eq!(l.known_unfinished(rec.id), from_memory, "confirmed and not ended");
        l.apply_replies(vec![completion(&rec, 1, JobResult::Ok)], policy.clone()).await.unwrap();
        assert!(!l.known_unfinished(rec.id), "ended");
        // A worker quicker than the confirm: the job ends while still NEW, and the confirm
        // that comes afterwards must not make it look unfinished (a waiter would wait forever).
        let quick = JobRecord::new(&job("a/b"), Utc::now());
        l.insert(quick.clone()).await.unwrap();
        l.apply_replies(vec![completion(&quick, 1, JobResult::Ok)], policy.clone()).await.unwrap();
        let shown = l.queued(&quick);
        assert_eq!(shown.id, quick.id);
        assert!(!l.known_unfinished(quick.id), "a confirm after the end is not held");
        assert_eq!(l.get(quick.id).await.unwrap().unwrap().state, JobState::Succeeded);
        // A job stopped before its confirm came: the same.
        let stopped = JobRecord::new(&job("a/b"), Utc::now());
        l.insert(stopped.clone()).await.unwrap();
        assert_eq!(l.stop(stopped.id).await.unwrap().unwrap().state, JobState::Stopped);
        l.queued(&stopped);
        assert!(!l.known_unfinished(stopped.id));
        h.finish().await;
    }

    pub async fn a_retried_job_is_due_at_once_and_a_removed_one_is_gone(h: Harness) {
        let l = &h.ledger;
        let policy =
            Queues::new(vec![], RetryPolicy { max_attempts: 1, delay: Duration::ZERO, ..RetryPolicy::default() });
        let rec = JobRecord::new(&Job { max_attempts: 1, ..job("a/b") }, Utc::now());
        l.insert(rec.clone()).await.unwrap();
        l.confirm_published(rec.id, 1).await.unwrap();
        l.apply_replies(vec![completion(&rec, 1, JobResult::failed("flaky"))], policy).await.unwrap();
        assert_eq!(l.get(rec.id).await.unwrap().unwrap().state, JobState::GivenUp);
        // Retried: QUEUED, due now, its next attempt 2; the rule refuses a second retry.
        let (effect, retried) = l.retry(rec.id).await.unwrap().unwrap();
        assert_eq!((effect, retried.state, retried.publish_attempt()), (Effect::Applied, JobState::Queued, 2));
        assert!(l.due(Utc::now(), Utc::now()).await.unwrap().iter().any(|r| r.id == rec.id));
        assert!(matches!(l.retry(rec.id).await.unwrap().unwrap().0, Effect::Ignored(_)));
        assert!(l.retry(JobId::new()).await.unwrap().is_none());
        // Removed: the record as it was, then nothing; the other job stays.
        let other = JobRecord::new(&job("a/c"), Utc::now());
        l.insert(other.clone()).await.unwrap();
        assert_eq!(l.remove(rec.id).await.unwrap().map(|r| r.id), Some(rec.id));
        assert!(l.get(rec.id).await.unwrap().is_none());
        assert!(l.remove(rec.id).await.unwrap().is_none());
        assert!(l.list(JobQuery::default()).await.unwrap().iter().all(|r| r.id != rec.id));
        assert_eq!(l.get(other.id).await.unwrap().map(|r| r.id), Some(other.id));
        h.finish().await;
    }

    pub async fn jobs_are_found_as_sling_finds_them(h: Harness) {
        let l = &h.ledger;
        // 60 jobs over three topics and three moments, with properties of both types.
        let mut recs = Vec::new();
        let mut moments = Vec::new();
        for batch in 0..3 {
            moments.push(Utc::now());
            tokio::time::sleep(Duration::from_millis(5)).await;
            for i in 0..20 {
                let mut j = job(["a/b", "a/b/c", "x/y", "a/d", "a/e"][(i * 7 + batch) % 5]);
                j.properties.insert("size".into(), serde_json::json!(i * 10));
                j.properties.insert("color".into(), serde_json::json!(["red", "blue"][i % 2]));
                if i % 5 == 0 {
                    j.properties.insert("size".into(), serde_json::json!("big"));
                }
                let mut rec = JobRecord::new(&j, Utc::now());
                rec.state = [JobState::Succeeded, JobState::Active, JobState::Queued, JobState::Error][(i + batch) % 4];
                recs.push(rec);
            }
            l.insert_many(recs[batch * 20..].to_vec()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let expect = |f: &dyn Fn(&JobRecord) -> bool| {
            let mut ids: Vec<JobId> = recs.iter().filter(|r| f(r)).map(|r| r.id).collect();
            ids.sort();
            ids.reverse();
            ids
        };
        let found = |q: JobQuery| async move { l.list(q).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>() };
        let kind = |k: JobKind| JobQuery { states: k.states(), ..Default::default() };
        assert_eq!(found(kind(JobKind::History)).await, expect(&|r| r.state.is_final()));
        assert_eq!(found(kind(JobKind::Queued)).await, expect(&|r| r.state == JobState::Queued));
        let ranged =
            JobQuery { created_after: Some(moments[1]), created_before: Some(moments[2]), ..Default::default() };
        assert_eq!(found(ranged).await, expect(&|r| r.created_at >= moments[1] && r.created_at < moments[2]));
        assert_eq!(
            found(ranged_kind(moments[2])).await,
            expect(&|r| r.created_at >= moments[2] && r.state == JobState::Active)
        );
        // Templates: AND within one, OR across; numbers numerically, strings as strings.
        let templates: Vec<PropertyTemplate> =
            ["size>=100,color=red", "size<=20", "size=big", "color>=c"].iter().map(|t| t.parse().unwrap()).collect();
        for t in &templates {
            let q = JobQuery { templates: vec![t.clone()], ..Default::default() };
            assert_eq!(found(q.clone()).await, expect(&|r| t.matches(&r.properties)), "template {t}");
            // Counted over the whole selection, the page's limit aside.
            let n = l.count(JobQuery { limit: 1, ..q }).await.unwrap();
            assert_eq!(n as usize, expect(&|r| t.matches(&r.properties)).len(), "count of template {t}");
        }
        let n = l.count(JobQuery { topic: Some("a/*".parse().unwrap()), ..kind(JobKind::History) }).await.unwrap();
        let one_level =
            |r: &JobRecord| r.topic.as_str().starts_with("a/") && r.topic.as_str().matches('/').count() == 1;
        assert_eq!(n as usize, expect(&|r| one_level(r) && r.state.is_final()).len());
        assert_eq!(l.count(JobQuery::default()).await.unwrap(), 60);
        let either =
            JobQuery { templates: templates[..2].to_vec(), topic: Some("a/**".parse().unwrap()), ..Default::default() };
        assert_eq!(
            found(either).await,
            expect(&|r| r.topic.as_str().starts_with("a/") && templates[..2].iter().any(|t| t.matches(&r.properties)))
        );
        // A pattern over several topics (on SQLite, a merge of one walk per topic) with a kind
        // and a template, in pages of 3: every match once, newest first.
        let red: PropertyTemplate = "color=red".parse().unwrap();
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let q = JobQuery {
                topic: Some("a/*".parse().unwrap()),
                states: JobKind::History.states(),
                templates: vec![red.clone()],
                limit: 3,
                cursor,
                ..Default::default()
            };
            let page = l.find(q).await.unwrap();
            pages.extend(page.jobs.iter().map(|r| r.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let one_level_a =
            |r: &JobRecord| r.topic.as_str().starts_with("a/") && r.topic.as_str().matches('/').count() == 1;
        let expected = expect(&|r| one_level_a(r) && r.state.is_final() && red.matches(&r.properties));
        assert!(expected.len() > 3, "the pages are more than one");
        assert_eq!(pages, expected);
        let plain = JobQuery { topic: Some("a/*".parse().unwrap()), ..Default::default() };
        assert_eq!(found(plain).await, expect(&one_level_a));
        assert!(found(JobQuery { topic: Some("q/*".parse().unwrap()), ..Default::default() }).await.is_empty());
        // Pages of 7 with the cursor give every job once, newest first.
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = l.find(JobQuery { limit: 7, cursor, ..Default::default() }).await.unwrap();
            pages.extend(page.jobs.iter().map(|r| r.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, expect(&|_| true));
        h.finish().await;
    }

    fn ranged_kind(after: chrono::DateTime<Utc>) -> JobQuery {
        JobQuery { created_after: Some(after), states: JobKind::Active.states(), ..Default::default() }
    }

    pub async fn statistics_count_per_topic_and_retention_purges_only_old_final_jobs(h: Harness) {
        let l = &h.ledger;
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let finished = |topic: &str, state: JobState, created: i64, started: i64, ended: i64| {
            let mut rec = JobRecord::new(&job(topic), ago(created));
            rec.state = state;
            rec.started_at = Some(ago(started));
            rec.finished_at = Some(ago(ended));
            rec
        };
        let mut old_active = JobRecord::new(&job("a/b"), ago(7200));
        old_active.state = JobState::Active;
        old_active.started_at = Some(ago(7100));
        let old_failed = {
            // Failed, waiting for its retry: not final, never purged, whatever its age.
            let mut r = finished("a/b", JobState::Failed, 7200, 7190, 7180);
            r.next_attempt_at = Some(now + chrono::Duration::hours(1));
            r
        };
        let recs = vec![
            finished("a/b", JobState::Succeeded, 7200, 7199, 7197), // waits 1 s, runs 2 s; old
            finished("a/b", JobState::Error, 7200, 7197, 7193),     // waits 3 s, runs 4 s; old
            finished("a/b", JobState::Stopped, 100, 99, 98),        // recent
            finished("x/y", JobState::Succeeded, 7200, 7199, 7199), // old
            old_active.clone(),
            old_failed.clone(),
            JobRecord::new(&job("x/y"), now),
        ];
        l.insert_many(recs.clone()).await.unwrap();
        let before = l.stats(None).await.unwrap();
        let ab = &before.topics["a/b"];
        assert_eq!((ab.queued, ab.active, ab.finished, ab.failed, ab.cancelled, ab.processed), (1, 1, 1, 1, 1, 3));
        let xy = &before.topics["x/y"];
        assert_eq!((xy.queued, xy.finished, xy.processed), (1, 1, 1));
        assert_eq!(before.overall.processed, 4);
        assert!(before.overall.last_finished_at.is_some() && before.overall.last_activated_at.is_some());
        // The last 5 minutes, by the minute: the one job that finished 98 s ago, 2 s after
        // it was created (the old ones are outside the window).
        let series = l.series(now, chrono::Duration::minutes(5), chrono::Duration::minutes(1)).await.unwrap();
        assert_eq!(series.buckets.len(), 5);
        let finished: Vec<u64> = series.buckets.iter().map(|b| b.finished).collect();
        assert_eq!(finished, [0, 0, 0, 1, 0], "{series:?}");
        assert_eq!(series.buckets[3].p95_ms, Some(2000.0));
        assert_eq!(series.topics.keys().collect::<Vec<_>>(), ["a/b"]);
        let only_ab = l.stats(Some("a/*".parse().unwrap())).await.unwrap();
        assert_eq!(only_ab.topics.keys().collect::<Vec<_>>(), ["a/b"]);
        // Retention of one hour, in batches of two: three old final jobs go, nothing else.
        let cutoff = now - chrono::Duration::hours(1);
        let mut purged = 0;
        loop {
            let p = l.purge_finished(cutoff, 2).await.unwrap();
            purged += p.jobs;
            if p.jobs < 2 {
                break;
            }
        }
        assert_eq!(purged, 3);
        let mut left: Vec<JobId> = l.list(JobQuery::default()).await.unwrap().into_iter().map(|r| r.id).collect();
        left.sort();
        let mut kept = vec![recs[2].id, old_active.id, old_failed.id, recs[6].id];
        kept.sort();
        assert_eq!(left, kept, "only old final jobs are purged");
        assert_eq!(l.purge_finished(cutoff, 2).await.unwrap().jobs, 0);
        // Statistics keep counting what was purged: the same figures as before.
        assert_eq!(l.stats(None).await.unwrap(), before);
        h.finish().await;
    }

    pub async fn a_schedule_fires_once_per_due_time_across_reopens(h: Harness) {
        let now = Utc::now();
        let req = NewSchedule {
            topic: "a/b".parse().unwrap(),
            properties: Properties::new(),
            at: None,
            cron: Some("* * * * * *".into()),
        };
        let mut s = scheduler::new_schedule(req, now - chrono::Duration::seconds(3)).unwrap();
        let first = s.next_due.unwrap();
        s.next_due = Some(first);
        h.ledger.put_schedule(s.clone()).await.unwrap();
        let next: NextDue = Arc::new(scheduler::next_due);
        let make: MakeJob = Arc::new(|s: &offloader::protocol::api::Schedule, due: chrono::DateTime<Utc>| {
            let mut j = job(s.topic.as_str());
            j.properties.insert(scheduler::SCHEDULE_DUE.into(), due.to_rfc3339().into());
            Ok(JobRecord::new(&j, Utc::now()))
        });
        let fired = h.ledger.fire_schedules(now, next.clone(), make.clone()).await.unwrap();
        let due_times = (now - first).num_seconds() + 1;
        assert_eq!(fired.jobs.len() as i64, due_times, "every due time up to now, once");
        assert!(h.ledger.fire_schedules(now, next.clone(), make.clone()).await.unwrap().jobs.is_empty());
        // Another leader on the same ledger (a restart): nothing fires twice, nothing is skipped.
        let again = h.reopen().await;
        assert!(again.fire_schedules(now, next.clone(), make.clone()).await.unwrap().jobs.is_empty());
        let later = now + chrono::Duration::seconds(2);
        let more = again.fire_schedules(later, next.clone(), make.clone()).await.unwrap();
        assert_eq!(more.jobs.len(), 2);
        let mut dues: Vec<String> = again
            .list(JobQuery::default())
            .await
            .unwrap()
            .iter()
            .map(|r| r.properties[scheduler::SCHEDULE_DUE].as_str().unwrap().to_owned())
            .collect();
        let n = dues.len();
        dues.sort();
        dues.dedup();
        assert_eq!(dues.len(), n, "a due time fired twice");
        let listed = again.schedules().await.unwrap();
        assert_eq!((listed.len(), listed[0].fired), (1, n as u64));
        assert!(listed[0].next_due.unwrap() > later);
        assert!(again.remove_schedule(s.id.clone()).await.unwrap());
        assert!(!again.remove_schedule(s.id).await.unwrap());
        drop(again);
        h.finish().await;
    }

    pub async fn profiles_resolve_to_the_nearest_folder_and_leave_with_their_folders(h: Harness) {
        use offloader::leader::assets::ProfileStore;
        use offloader::protocol::ProcessingProfile;
        let store = ProfileStore::new(h.ledger.clone());
        let profile = |name: &str| ProcessingProfile { name: name.into(), renditions: vec![], fpo: true };
        let path = |p: &str| AssetPath::parse(p).unwrap();
        assert!(store.put(profile("web")).await.unwrap(), "new");
        assert!(!store.put(profile("web")).await.unwrap(), "replaced");
        assert!(store.put(profile("deep")).await.unwrap());
        assert!(store.put(ProcessingProfile { fpo: false, ..profile("bad") }).await.is_err(), "validated");
        store.apply(path("/content/dam/a"), "web".into()).await.unwrap();
        store.apply(path("/content/dam/a/b"), "deep".into()).await.unwrap();
        assert!(store.apply(path("/content/dam/c"), "nope".into()).await.is_err(), "only existing profiles apply");

        // Another leader on the same ledger sees the same.
        let other = ProfileStore::new(h.reopen().await);
        let held = |r: offloader::protocol::api::ResolvedProfile| (r.folder, r.profile.map(|p| p.name));
        assert_eq!(
            held(other.resolve(path("/content/dam/a/b/c/x.jpg"), false).await.unwrap()),
            (Some("/content/dam/a/b".into()), Some("deep".into()))
        );
        assert_eq!(
            held(other.resolve(path("/content/dam/ab/x.jpg"), false).await.unwrap()),
            (None, None),
            "a prefix of a name is not a folder"
        );
        assert_eq!(held(other.resolve(path("/content/dam/a/b"), true).await.unwrap()).1.as_deref(), Some("deep"));
        assert_eq!(held(other.resolve(path("/content/dam/a/b"), false).await.unwrap()).1.as_deref(), Some("web"));
        let list = other.list().await.unwrap();
        let names: Vec<&str> = list.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!((names, list.folders.len()), (vec!["deep", "web"], 2));

        let (removed, folders) = store.remove("deep".into()).await.unwrap().unwrap();
        assert_eq!((removed.name.as_str(), folders), ("deep", vec!["/content/dam/a/b".to_owned()]));
        assert!(store.remove("deep".into()).await.unwrap().is_none());
        assert_eq!(
            held(store.resolve(path("/content/dam/a/b/c/x.jpg"), false).await.unwrap()).1.as_deref(),
            Some("web"),
            "the folder above holds again"
        );
        assert!(store.unapply(path("/content/dam/a")).await.unwrap().is_some());
        assert!(store.unapply(path("/content/dam/a")).await.unwrap().is_none());
        assert_eq!(held(store.resolve(path("/content/dam/a/x.jpg"), false).await.unwrap()), (None, None));
        drop(other);
        h.finish().await;
    }

    pub async fn the_topic_list_and_the_id_survive_a_reopen(h: Harness) {
        h.ledger.add_topic("a/b".parse().unwrap()).await.unwrap();
        h.ledger.add_topic("a/b".parse().unwrap()).await.unwrap();
        let again = h.reopen().await;
        assert_eq!(again.topics().await.unwrap(), ["a/b".parse().unwrap()]);
        assert_eq!(again.id(), h.ledger.id(), "one ledger, one id");
        assert!(!h.ledger.id().is_empty());
        h.finish().await;
    }
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::$name(sqlite().await).await;
            })*
        }
        mod on_postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::$name(postgres().await).await;
            })*
        }
    };
}

on_both_engines!(
    jobs_round_trip_and_list_by_state_and_topic,
    a_completion_is_applied_once_and_due_jobs_come_back,
    an_asset_changes_in_the_transaction_of_its_job,
    a_failing_operation_rolls_back_alone,
    a_job_waited_for_is_known_unfinished_only_until_it_ends,
    the_topic_list_and_the_id_survive_a_reopen,
    a_retried_job_is_due_at_once_and_a_removed_one_is_gone,
    jobs_are_found_as_sling_finds_them,
    statistics_count_per_topic_and_retention_purges_only_old_final_jobs,
    a_schedule_fires_once_per_due_time_across_reopens,
    profiles_resolve_to_the_nearest_folder_and_leave_with_their_folders,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaders_on_one_database_apply_a_completion_once_and_hear_of_it() {
    let h = postgres().await;
    let (a, b) = (h.ledger.clone(), h.reopen().await);
    let mut heard_by_b = b.final_jobs();
    let rec = JobRecord::new(&job("a/b"), Utc::now());
    a.insert(rec.clone()).await.unwrap();
    let done = completion(&rec, 1, JobResult::Ok);
    // Both leaders apply the same completion at the same moment: row locks serialize them.
    let (x, y) = tokio::join!(
        a.apply_replies(vec![done.clone()], Queues::default()),
        b.apply_replies(vec![done], Queues::default())
    );
    let effects: Vec<Effect> = [x.unwrap(), y.unwrap()].into_iter().map(|o| o[0].1.as_ref().unwrap().0).collect();
    assert_eq!(effects.iter().filter(|e| **e == Effect::Applied).count(), 1, "{effects:?}");
    assert_eq!(b.get(rec.id).await.unwrap().unwrap().completions_applied, 1);
    // The job became final on one leader; the other hears of it.
    let heard =
        tokio::time::timeout(Duration::from_secs(5), heard_by_b.recv()).await.expect("no notification").unwrap();
    assert_eq!(heard, rec.id);
    drop((a, b));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_holds_the_duties_and_another_takes_over() {
    let h = postgres().await;
    let b = h.reopen().await;
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let mut a_leads = h.ledger.leadership("duties:test", Duration::from_millis(200), stop_a.clone());
    tokio::time::timeout(Duration::from_secs(5), a_leads.wait_for(|v| *v)).await.expect("a is elected").unwrap();
    let mut b_leads = b.leadership("duties:test", Duration::from_millis(200), stop_b.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!*b_leads.borrow(), "two leaders hold the duties");
    // A goes (its connection with it): B takes over.
    let gone = std::time::Instant::now();
    stop_a.cancel();
    tokio::time::timeout(Duration::from_secs(5), b_leads.wait_for(|v| *v)).await.expect("b takes over").unwrap();
    println!("takeover after {:?}", gone.elapsed());
    assert!(!*a_leads.borrow_and_update() || stop_a.is_cancelled());
    stop_b.cancel();
    drop(b);
    h.finish().await;
}

#[tokio::test]
async fn locations_say_which_engine() {
    assert!(matches!(LedgerLocation::parse("/var/lib/x.sqlite"), Ok(LedgerLocation::Sqlite(_))));
    let pg = LedgerLocation::parse("postgres://u:secret@db:5432/offloader").unwrap();
    assert!(pg.is_shared());
    let err = LedgerLocation::parse("mysql://db/x").unwrap_err().to_string();
    assert!(err.contains("postgres://"), "{err}");
    // A ledger without assets works as well (the NoProjection of a bench or a test).
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_sqlite(&dir.path().join("l.sqlite"), Arc::new(NoProjection)).unwrap();
    assert!(l.list(JobQuery::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_ledger_file_of_schema_2_gains_the_job_times_statistics_and_retention_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let mut rec = JobRecord::new(&job("a/b"), Utc::now() - chrono::Duration::hours(3));
    rec.state = JobState::Succeeded;
    rec.started_at = Some(rec.created_at + chrono::Duration::seconds(1));
    rec.finished_at = Some(rec.created_at + chrono::Duration::seconds(3));
    {
        // The jobs table as schema 2 wrote it: no time columns.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, topic TEXT NOT NULL, state TEXT NOT NULL,
                                next_attempt_at INTEGER, created_at INTEGER NOT NULL, doc TEXT NOT NULL);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO jobs(id, topic, state, created_at, doc) VALUES (?1, 'a/b', 'SUCCEEDED', ?2, ?3)",
            rusqlite::params![
                rec.id.to_string(),
                rec.created_at.timestamp_millis(),
                serde_json::to_string(&rec).unwrap()
            ],
        )
        .unwrap();
    }
    let l = Ledger::open_sqlite(&path, Arc::new(NoProjection)).unwrap();
    let stats = l.stats(None).await.unwrap();
    assert_eq!(stats.overall.finished, 1);
    assert_eq!(stats.overall.average_waiting_ms, Some(1000.0));
    assert_eq!(stats.overall.average_processing_ms, Some(2000.0));
    assert_eq!(l.purge_finished(Utc::now() - chrono::Duration::hours(1), 10).await.unwrap().jobs, 1);
    assert!(l.list(JobQuery::default()).await.unwrap().is_empty());
    drop(l);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 4);
    // Schema 4: the index of finished jobs leaves out the jobs not finished.
    let indexes: Vec<(String, Option<String>)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!indexes.iter().any(|(name, _)| name == "jobs_finished"), "{indexes:?}");
    let final_at = indexes.iter().find(|(name, _)| name == "jobs_final_at").and_then(|(_, sql)| sql.as_deref());
    assert!(final_at.is_some_and(|sql| sql.ends_with("WHERE finished_at IS NOT NULL")), "{indexes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_ledger_written_before_the_job_times_gains_them() {
    let db = TestDb::create().await;
    let mut rec = JobRecord::new(&job("a/b"), Utc::now() - chrono::Duration::hours(3));
    rec.state = JobState::Stopped;
    rec.started_at = Some(rec.created_at + chrono::Duration::milliseconds(1500));
    rec.finished_at = Some(rec.created_at + chrono::Duration::milliseconds(4000));
    {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                r#"CREATE TABLE jobs (id TEXT COLLATE "C" PRIMARY KEY, topic TEXT COLLATE "C" NOT NULL,
                       state TEXT NOT NULL, next_attempt_at BIGINT, created_at BIGINT NOT NULL, doc TEXT NOT NULL);
                   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"#,
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO jobs(id, topic, state, created_at, doc) VALUES ($1, 'a/b', 'STOPPED', $2, $3)",
                &[&rec.id.to_string(), &rec.created_at.timestamp_millis(), &serde_json::to_string(&rec).unwrap()],
            )
            .await
            .unwrap();
    }
    let l = Ledger::open(&LedgerLocation::parse(&db.url).unwrap(), Arc::new(NoProjection)).await.unwrap();
    let stats = l.stats(None).await.unwrap();
    assert_eq!((stats.overall.cancelled, stats.overall.average_processing_ms), (1, Some(2500.0)));
    assert_eq!(l.purge_finished(Utc::now() - chrono::Duration::hours(1), 10).await.unwrap().jobs, 1);
    drop(l);
    // The schema is recorded as current, so the next leader to open the database runs no DDL
    // (which would lock the jobs table under the other leaders' writes).
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let version: String = client.query_one("SELECT value FROM meta WHERE key = 'schema'", &[]).await.unwrap().get(0);
    assert_eq!(version, "4");
    // Schema 4: the index of finished jobs leaves out the jobs not finished.
    let indexes: Vec<String> = client
        .query("SELECT indexdef FROM pg_indexes WHERE tablename = 'jobs' AND indexdef LIKE '%finished_at%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(indexes[0].contains("jobs_final_at") && indexes[0].contains("IS NOT NULL"), "{indexes:?}");
    // As a leader writing jobs holds it, in a transaction left open.
    client.batch_execute("BEGIN; LOCK TABLE jobs IN ROW EXCLUSIVE MODE").await.unwrap();
    let location = LedgerLocation::parse(&db.url).unwrap();
    let opening = Ledger::open(&location, Arc::new(NoProjection));
    let again = tokio::time::timeout(Duration::from_secs(10), opening).await;
    assert!(matches!(again, Ok(Ok(_))), "a second leader opens a current ledger without locking its jobs table");
    drop(again);
    drop(client);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaders_firing_one_schedule_at_once_fire_each_due_time_once() {
    let h = postgres().await;
    let (a, b) = (h.ledger.clone(), h.reopen().await);
    let now = Utc::now();
    let req = NewSchedule {
        topic: "a/b".parse().unwrap(),
        properties: Properties::new(),
        at: None,
        cron: Some("* * * * * *".into()),
    };
    let s = scheduler::new_schedule(req, now - chrono::Duration::seconds(5)).unwrap();
    a.put_schedule(s).await.unwrap();
    let next: NextDue = Arc::new(scheduler::next_due);
    let make: MakeJob = Arc::new(|s: &offloader::protocol::api::Schedule, due: chrono::DateTime<Utc>| {
        let mut j = job(s.topic.as_str());
        j.properties.insert(scheduler::SCHEDULE_DUE.into(), due.to_rfc3339().into());
        Ok(JobRecord::new(&j, Utc::now()))
    });
    // Both believe they are elected (an election changing hands): the schedule's row lock
    // makes one wait, and it then finds nothing due.
    let (x, y) = tokio::join!(
        a.fire_schedules(now, next.clone(), make.clone()),
        b.fire_schedules(now, next.clone(), make.clone())
    );
    let (x, y) = (x.unwrap().jobs.len(), y.unwrap().jobs.len());
    assert!(x == 0 || y == 0, "both fired: {x} and {y}");
    assert_eq!(x + y, 5, "the due times of the last five seconds, once each");
    assert_eq!(a.list(JobQuery::default()).await.unwrap().len(), 5);
    drop((a, b));
    h.finish().await;
}
