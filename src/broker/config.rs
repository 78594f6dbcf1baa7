//! Broker settings, shared by every instance of a cluster.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Prefix of every AMQP name, so test runs and tenants never collide.
    pub namespace: String,
    /// Cluster name; instances of one cluster share one reply queue.
    pub cluster: String,
    /// How often a message may be delivered before it is dead-lettered. RabbitMQ
    /// 3.10 sets no limit by default, so a poison message would loop forever.
    pub delivery_limit: u32,
    /// Time allowed to reach the broker at start before giving up with a clear error.
    pub connect_timeout: Duration,
}

impl BrokerConfig {
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        BrokerConfig {
            url: url.into(),
            namespace: namespace.into(),
            cluster: "default".into(),
            delivery_limit: 5,
            connect_timeout: Duration::from_secs(20),
        }
    }

    /// The URL with its password hidden, for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(super::redact("amqp://guest:guest@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(super::redact("amqp://h:5672"), "amqp://h:5672");
    }
}
