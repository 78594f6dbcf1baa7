//! Built-in consumers for tests, benchmarks and smoke checks. They are real
//! consumers, registered like any other.

use super::{ConsumerRegistry, Context, JobConsumer};
use crate::protocol::{Job, JobResult, TopicPattern};
use std::time::Duration;

pub const NOOP: &str = "offloader/noop";
pub const ECHO: &str = "offloader/echo";
pub const SLEEP: &str = "offloader/sleep";
pub const FAIL: &str = "offloader/fail";

/// Does nothing and succeeds: measures the pipeline itself.
pub struct Noop;

#[async_trait::async_trait]
impl JobConsumer for Noop {
    async fn process(&self, _job: &Job, _ctx: &Context) -> JobResult {
        JobResult::Ok
    }
}

/// Copies each input to an output blob (`<path>.echo`): exercises the datastore
/// round trip and hash verification on both sides.
pub struct Echo;

#[async_trait::async_trait]
impl JobConsumer for Echo {
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
        for input in &job.inputs {
            let bytes = match ctx.input_bytes(input).await {
                Ok(b) => b,
                Err(e) => return e.into_result(),
            };
            if let Err(e) = ctx.store_output(format!("{}.echo", input.path), bytes, input.mime_type.clone()).await {
                return e.into_result();
            }
        }
        ctx.set_property("echoed", job.inputs.len());
        JobResult::Ok
    }
}

/// Sleeps for the `ms` property (default 1000): a stand-in for long work, used to
/// test draining, crashes mid-job, restarts, stopping and progress. It reports progress in
/// steps of 100 ms and ends as soon as it is stopped.
pub struct Sleep;

/// One step of [`Sleep`]'s progress.
const SLEEP_STEP_MS: u64 = 100;

#[async_trait::async_trait]
impl JobConsumer for Sleep {
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
        let ms = job.property::<u64>("ms").unwrap_or(1000);
        ctx.init_progress(ms.div_ceil(SLEEP_STEP_MS), Some(Duration::from_millis(ms)));
        let mut left = ms;
        while left > 0 {
            let step = left.min(SLEEP_STEP_MS);
            tokio::select! {
                _ = ctx.cancelled().cancelled() => {
                    ctx.log(format!("stopped after {} ms", ms - left));
                    return JobResult::cancel("stopped while sleeping");
                }
                _ = tokio::time::sleep(Duration::from_millis(step)) => {}
            }
            left -= step;
            ctx.increment_progress(1);
        }
        ctx.set_property("slept_ms", ms);
        JobResult::Ok
    }
}

/// Fails: with `retry` (default true) as a transient failure, otherwise as a
/// cancel. `reason` sets the message. Used to test retries and give-up.
pub struct Fail;

#[async_trait::async_trait]
impl JobConsumer for Fail {
    async fn process(&self, job: &Job, _ctx: &Context) -> JobResult {
        let reason = job.property::<String>("reason").unwrap_or_else(|| "failed on purpose".into());
        if job.property::<bool>("retry").unwrap_or(true) {
            JobResult::failed(reason)
        } else {
            JobResult::cancel(reason)
        }
    }
}

/// Registers all built-ins under their `offloader/...` topics.
pub fn register_builtins(reg: &mut ConsumerRegistry) {
    let topic = |t: &str| t.parse().unwrap_or_else(|_| unreachable!("built-in topic {t} is valid"));
    reg.register(topic(NOOP), Noop);
    reg.register(topic(ECHO), Echo);
    reg.register(topic(SLEEP), Sleep);
    reg.register(topic(FAIL), Fail);
}

/// Registers the built-in `name` (`offloader/echo`, or just `echo`) under another topic
/// pattern, so a worker can serve, say, `acme/**` with the echo consumer without writing
/// code. Returns false for an unknown name.
pub fn register_builtin_as(reg: &mut ConsumerRegistry, pattern: TopicPattern, name: &str) -> bool {
    match name.strip_prefix("offloader/").unwrap_or(name) {
        "noop" => reg.register(pattern, Noop),
        "echo" => reg.register(pattern, Echo),
        "sleep" => reg.register(pattern, Sleep),
        "fail" => reg.register(pattern, Fail),
        _ => return false,
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::testing::TestJob;
    use std::time::Instant;

    #[tokio::test]
    async fn sleep_reports_progress_and_ends_when_stopped() {
        let done = TestJob::on(SLEEP).property("ms", 250).run(&Sleep).await;
        assert_eq!(done.result, JobResult::Ok);
        let progress = done.progress.expect("progress reported");
        assert_eq!((progress.steps, progress.done), (Some(3), 3));

        let job = TestJob::on(SLEEP).property("ms", 60_000);
        let stop = job.cancel_token();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stop.cancel();
        });
        let t0 = Instant::now();
        let stopped = job.run(&Sleep).await;
        assert!(t0.elapsed() < Duration::from_secs(1), "ran on for {:?}", t0.elapsed());
        assert!(matches!(stopped.result, JobResult::Cancel { .. }), "{:?}", stopped.result);
        let progress = stopped.progress.expect("progress reported");
        assert_eq!(progress.steps, Some(600));
        assert!(progress.done >= 1 && progress.done < 600, "{progress:?}");
        assert!(progress.log.last().is_some_and(|l| l.starts_with("stopped after")), "{progress:?}");
    }
}
