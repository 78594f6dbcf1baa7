//! The consumers registered on a worker, by topic pattern.

use super::JobConsumer;
use crate::protocol::{Topic, TopicPattern};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct ConsumerRegistry {
    entries: Vec<(TopicPattern, Arc<dyn JobConsumer>)>,
}

impl ConsumerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `consumer` for every topic `pattern` matches. A later
    /// registration of the same pattern replaces the earlier one.
    pub fn register(&mut self, pattern: TopicPattern, consumer: impl JobConsumer) -> &mut Self {
        self.entries.retain(|(p, _)| *p != pattern);
        self.entries.push((pattern, Arc::new(consumer)));
        self
    }

    /// The consumer for a topic: the most specific matching pattern wins, so an
    /// exact registration overrides a wildcard one and no job is run twice.
    pub fn resolve(&self, topic: &Topic) -> Option<(&TopicPattern, &Arc<dyn JobConsumer>)> {
        self.entries.iter().filter(|(p, _)| p.matches(topic)).max_by_key(|(p, _)| p.specificity()).map(|(p, c)| (p, c))
    }

    pub fn patterns(&self) -> Vec<TopicPattern> {
        self.entries.iter().map(|(p, _)| p.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::Context;
    use crate::protocol::{Job, JobResult};

    struct Named(&'static str);
    #[async_trait::async_trait]
    impl JobConsumer for Named {
        async fn process(&self, _job: &Job, ctx: &Context) -> JobResult {
            ctx.set_property("by", self.0);
            JobResult::Ok
        }
    }

    #[test]
    fn most_specific_pattern_wins() {
        let mut reg = ConsumerRegistry::new();
        reg.register("acme/**".parse().unwrap(), Named("any"));
        reg.register("acme/video/*".parse().unwrap(), Named("one"));
        reg.register("acme/video/transcode".parse().unwrap(), Named("exact"));
        let pick = |t: &str| reg.resolve(&t.parse().unwrap()).map(|(p, _)| p.to_string());
        assert_eq!(pick("acme/video/transcode").as_deref(), Some("acme/video/transcode"));
        assert_eq!(pick("acme/video/thumb").as_deref(), Some("acme/video/*"));
        assert_eq!(pick("acme/image/x/y").as_deref(), Some("acme/**"));
        assert_eq!(pick("other/x"), None);
    }
}
