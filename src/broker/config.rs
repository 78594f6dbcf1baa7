//! Broker settings, shared by every instance of a cluster.

use super::BrokerError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:port/vhost`, or several nodes of one RabbitMQ cluster separated
    /// by commas (see [`parse_nodes`] for what later entries may leave out).
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

    /// The URL (every node of it) with passwords hidden, for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact_list(&self.url)
    }

    /// The complete URL of every node, in the order given.
    pub fn nodes(&self) -> Result<Vec<String>, BrokerError> {
        parse_nodes(&self.url)
    }
}

/// Splits a comma-separated node list into one complete AMQP URL per node.
///
/// The first entry must be a complete URL. A later entry may leave out the scheme
/// (`h2:5673`), the credentials (`amqp://h2:5673/vh`) and the vhost with any query
/// (`amqp://u:p@h2:5673`): what it leaves out is taken from the first entry, since the nodes
/// of one cluster share users and vhosts, and repeating a password in every entry only makes
/// it easier to get one wrong. An entry with a path (even just `/`) keeps its own vhost.
/// A single URL is returned unchanged, so a one-node setup connects exactly as before.
pub fn parse_nodes(list: &str) -> Result<Vec<String>, BrokerError> {
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    if entries.iter().any(|e| e.is_empty()) {
        return Err(BrokerError::BadUrl(format!("empty entry in the node list {:?}", redact_list(list))));
    }
    let first = Parts::of(entries[0])
        .ok_or_else(|| BrokerError::BadUrl(format!("{} is not an amqp:// URL", redact(entries[0]))))?;
    if first.scheme.is_none() {
        return Err(BrokerError::BadUrl(format!(
            "the first node, {}, must be a complete URL (amqp://user:pass@host:port/vhost)",
            redact(entries[0])
        )));
    }
    let mut nodes = vec![entries[0].to_owned()];
    for entry in &entries[1..] {
        let p =
            Parts::of(entry).ok_or_else(|| BrokerError::BadUrl(format!("{} is not a node address", redact(entry))))?;
        let scheme = p.scheme.or(first.scheme).unwrap_or("amqp");
        let userinfo = p.userinfo.or(first.userinfo).map(|u| format!("{u}@")).unwrap_or_default();
        let tail = p.tail.or(first.tail).unwrap_or_default();
        nodes.push(format!("{scheme}://{userinfo}{}{tail}", p.host));
    }
    Ok(nodes)
}

/// One entry of the node list, cut into what may be inherited from the first one.
struct Parts<'a> {
    scheme: Option<&'a str>,
    userinfo: Option<&'a str>,
    host: &'a str,
    /// The path (vhost) and query, from the `/` or `?` on.
    tail: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn of(entry: &'a str) -> Option<Parts<'a>> {
        let (scheme, rest) = match entry.split_once("://") {
            Some((s, rest)) if s == "amqp" || s == "amqps" => (Some(s), rest),
            Some(_) => return None,
            None => (None, entry),
        };
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return None;
        }
        Some(Parts { scheme, userinfo, host, tail })
    }
}

fn redact_list(list: &str) -> String {
    list.split(',').map(|node| redact(node.trim())).collect::<Vec<_>>().join(",")
}

pub(crate) fn redact(url: &str) -> String {
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
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("amqp://guest:guest@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(redact("amqp://h:5672"), "amqp://h:5672");
        let cfg = BrokerConfig::new("amqp://u:secret@h1:5672/vh, amqp://v:other@h2:5673/vh", "ns");
        assert_eq!(cfg.redacted_url(), "amqp://u:***@h1:5672/vh,amqp://v:***@h2:5673/vh");
    }

    #[test]
    fn a_single_url_is_kept_as_it_is() {
        for url in ["amqp://guest:guest@127.0.0.1:5672/%2f", "amqp://h", "amqps://u:p@h:5671/vh?heartbeat=10"] {
            assert_eq!(parse_nodes(url).expect("valid"), vec![url.to_owned()]);
        }
    }

    #[test]
    fn complete_entries_are_kept_as_they_are() {
        let nodes = parse_nodes("amqp://u:p@h1:5672/vh,amqp://w:q@h2:5673/other").expect("valid");
        assert_eq!(nodes, ["amqp://u:p@h1:5672/vh", "amqp://w:q@h2:5673/other"]);
    }

    #[test]
    fn later_entries_inherit_what_they_leave_out() {
        let nodes =
            parse_nodes("amqp://u:p@h1:5672/vh?heartbeat=10, h2:5673 ,amqp://h3:5674,amqp://x:y@h4,amqp://h5/%2f")
                .expect("valid");
        assert_eq!(
            nodes,
            [
                "amqp://u:p@h1:5672/vh?heartbeat=10",
                "amqp://u:p@h2:5673/vh?heartbeat=10",
                "amqp://u:p@h3:5674/vh?heartbeat=10",
                "amqp://x:y@h4/vh?heartbeat=10",
                "amqp://u:p@h5/%2f",
            ]
        );
        // The scheme too: TLS for one node is TLS for all.
        assert_eq!(parse_nodes("amqps://u:p@h1/vh,h2").expect("valid")[1], "amqps://u:p@h2/vh");
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "",
            "amqp://u:p@h1/vh,",
            "amqp://u:p@h1/vh,,h2",
            "h1:5672,h2:5672",
            "http://h1/vh",
            "amqp://u:p@h1/vh,http://h2",
            "amqp://u:p@/vh",
            "amqp://u:p@h1/vh,amqp://u:p@",
        ] {
            let err = parse_nodes(bad).expect_err(bad);
            assert!(matches!(err, BrokerError::BadUrl(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_do_not_show_passwords() {
        let err = parse_nodes("amqp://u:secret@h1/vh,,h2").expect_err("an empty entry");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
