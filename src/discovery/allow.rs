//! The topology connector allow list (Sling's `topology.allow` / whitelist): whose
//! announcements an instance takes into its topology.
//!
//! Anyone who can publish on the broker's topology exchange could otherwise appear as a
//! worker, or as a leader whose topics workers would consume. An entry names an instance by its
//! name, its id, or its host (the address it announces); an empty list lets everyone in, which
//! is the default. This instance is always in its own topology.

use crate::protocol::InstanceInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<String>,
}

impl AllowList {
    /// Everyone is let in.
    pub fn everyone() -> Self {
        AllowList::default()
    }

    /// Only instances one of `entries` names (by name, id or host).
    pub fn of(entries: impl IntoIterator<Item = impl Into<String>>) -> Self {
        AllowList { entries: entries.into_iter().map(Into::into).filter(|e: &String| !e.is_empty()).collect() }
    }

    pub fn is_everyone(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    pub fn allows(&self, instance: &InstanceInfo) -> bool {
        self.entries.is_empty()
            || self.entries.iter().any(|e| *e == instance.name || *e == instance.id.to_string() || *e == instance.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{InstanceId, Role};

    fn info(name: &str, host: &str) -> InstanceInfo {
        InstanceInfo {
            id: InstanceId::random(),
            name: name.into(),
            role: Role::Worker,
            cluster: "default".into(),
            endpoints: vec![],
            version: "0".into(),
            host: host.into(),
            pid: 1,
        }
    }

    #[test]
    fn names_ids_and_hosts_let_in_and_nobody_else() {
        let w = info("w1", "node-a");
        assert!(AllowList::everyone().allows(&w));
        assert!(AllowList::of(["w1"]).allows(&w));
        assert!(AllowList::of(["node-a"]).allows(&w));
        assert!(AllowList::of([w.id.to_string()]).allows(&w));
        assert!(!AllowList::of(["w2", "node-b"]).allows(&w));
        assert!(AllowList::of([""]).is_everyone(), "an empty entry is no entry");
    }
}
