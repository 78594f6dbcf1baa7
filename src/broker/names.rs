//! The names of the AMQP objects, as the map lists them. They are a convention
//! people read in the RabbitMQ UI, so they are spelled out in one place.

use crate::protocol::{InstanceId, Topic};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    namespace: String,
    cluster: String,
}

impl Names {
    pub fn new(namespace: &str, cluster: &str) -> Self {
        Names { namespace: namespace.to_owned(), cluster: cluster.to_owned() }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Topic exchange carrying every job, keyed by the topic's routing key.
    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    /// The shared work queue of one concrete topic.
    pub fn topic_queue(&self, topic: &Topic) -> String {
        format!("{}.jobs.{}", self.namespace, topic.routing_key())
    }

    /// The topic a work queue belongs to, if the name is one of ours.
    pub fn topic_of_queue(&self, queue: &str) -> Option<Topic> {
        let key = queue.strip_prefix(&self.jobs_exchange())?.strip_prefix('.')?;
        Topic::from_routing_key(key).ok()
    }

    /// The leader's outbox: completions and job events.
    pub fn replies_queue(&self) -> String {
        format!("{}.replies.{}", self.namespace, self.cluster)
    }

    /// The cluster's claim: a queue whose arguments name the ledger the cluster's leaders share,
    /// so a leader with another ledger is refused (see `Setup::declare_claim`).
    pub fn claim_queue(&self) -> String {
        format!("{}.leaders.{}", self.namespace, self.cluster)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.namespace)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.namespace)
    }

    /// Fanout exchange carrying announcements (heartbeats).
    pub fn topology_exchange(&self) -> String {
        format!("{}.topology", self.namespace)
    }

    /// Topic exchange for live commands, keyed by instance id.
    pub fn control_exchange(&self) -> String {
        format!("{}.control", self.namespace)
    }

    pub fn control_key(&self, instance: &InstanceId) -> String {
        instance.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_map() {
        let n = Names::new("acme", "prod");
        let topic: Topic = "com/adobe/granite/workflow/offloading".parse().unwrap();
        assert_eq!(n.jobs_exchange(), "acme.jobs");
        assert_eq!(n.topic_queue(&topic), "acme.jobs.com.adobe.granite.workflow.offloading");
        assert_eq!(n.topic_of_queue(&n.topic_queue(&topic)), Some(topic));
        assert_eq!(n.topic_of_queue("acme.jobsx.a"), None);
        assert_eq!(n.replies_queue(), "acme.replies.prod");
        assert_eq!(n.dead_queue(), "acme.dead");
    }
}
