//! The consumer of this example: what a team writes to offload its own kind of work.
//!
//! Sling's recipe, step by step:
//! 1. **Choose a topic**: [`TOPIC`], `acme/text/measure`.
//! 2. **Implement `JobConsumer`**: [`Measure`] counts the bytes, lines and words of each input
//!    and hands the counts back as job properties. It sees the job and a `Context`, never
//!    RabbitMQ or S3, so the unit tests below run it on in-memory inputs.
//! 3. **Register it** on a worker: `src/main.rs`.
//! 4. **Deploy it**: run the binary next to RabbitMQ and the datastore, like `offloader worker`.
//! 5. **Enable the topic**: the binary allows only [`TOPIC`]; `offloader topics` shows it, and
//!    can disable it live.

use offloader::consumer::{Context, JobConsumer};
use offloader::protocol::{Job, JobResult};

/// The topic this worker serves.
pub const TOPIC: &str = "acme/text/measure";

/// Inputs larger than this are refused (the job is cancelled: retrying will not shrink them).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Counts the bytes, lines and words of each input.
pub struct Measure;

#[async_trait::async_trait]
impl JobConsumer for Measure {
    async fn process(&self, job: &Job, ctx: &Context) -> JobResult {
        if job.inputs.is_empty() {
            return JobResult::cancel("a measure job needs at least one input");
        }
        let mut totals = (0usize, 0usize, 0usize);
        for input in &job.inputs {
            let bytes = match ctx.input_bytes(input).await {
                Ok(b) => b,
                // A corrupt or missing input cancels; an unreachable datastore fails (retried).
                Err(e) => return e.into_result(),
            };
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            let words = bytes.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).count();
            ctx.set_property(format!("bytes:{}", input.path), bytes.len());
            totals = (totals.0 + bytes.len(), totals.1 + lines, totals.2 + words);
        }
        ctx.set_property("bytes", totals.0);
        ctx.set_property("lines", totals.1);
        ctx.set_property("words", totals.2);
        JobResult::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offloader::consumer::testing::TestJob;

    #[tokio::test]
    async fn counts_bytes_lines_and_words() {
        let done = TestJob::on(TOPIC).input("/a.txt", "one two\nthree\n").input("/b.txt", "four").run(&Measure).await;
        assert_eq!(done.result, JobResult::Ok);
        assert_eq!(done.properties["bytes"], 18);
        assert_eq!(done.properties["lines"], 2);
        assert_eq!(done.properties["words"], 4);
        assert_eq!(done.properties["bytes:/b.txt"], 4);
    }

    #[tokio::test]
    async fn no_input_and_oversized_inputs_are_cancelled() {
        let done = TestJob::on(TOPIC).run(&Measure).await;
        assert!(matches!(done.result, JobResult::Cancel { .. }), "{:?}", done.result);
        let done = TestJob::on(TOPIC).input("/big.txt", vec![b'x'; 100]).max_input_bytes(10).run(&Measure).await;
        assert!(
            matches!(&done.result, JobResult::Cancel { reason } if reason.contains("exceeds")),
            "{:?}",
            done.result
        );
    }
}
