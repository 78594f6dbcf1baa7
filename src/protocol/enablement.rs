//! Which topics an instance processes: Sling's JobConsumerManager allow/deny lists
//! plus the Offloading Browser's Enabled / Disabled / Exclusive switches.
//!
//! A topic is enabled on an instance when it matches the allow list and not the
//! deny list (Sling's `job.consumermanager.allowlist` / `denylist`). An instance
//! made *exclusive* on a pattern processes only topics matching it, whatever the
//! lists say, which is how one node is dedicated to, say, InDesign files.

use super::topic::{Topic, TopicPattern};
use serde::{Deserialize, Serialize};

/// The state of one topic on one instance, as the Offloading Browser shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TopicState {
    Enabled,
    Disabled,
    Exclusive,
}

/// A live change to an instance's enablement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnablementChange {
    Enable,
    Disable,
    Exclusive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enablement {
    pub allow: Vec<TopicPattern>,
    #[serde(default)]
    pub deny: Vec<TopicPattern>,
    #[serde(default)]
    pub exclusive: Option<TopicPattern>,
}

impl Default for Enablement {
    /// Sling's defaults: allow everything, deny nothing.
    fn default() -> Self {
        Enablement { allow: vec![any()], deny: vec![], exclusive: None }
    }
}

fn any() -> TopicPattern {
    // "**" always parses; spelled out to avoid an unwrap in library code.
    "**".parse().unwrap_or_else(|_| unreachable!("'**' is a valid pattern"))
}

impl Enablement {
    pub fn new(allow: Vec<TopicPattern>, deny: Vec<TopicPattern>) -> Self {
        Enablement { allow, deny, exclusive: None }
    }

    pub fn is_enabled(&self, topic: &Topic) -> bool {
        match &self.exclusive {
            Some(only) => only.matches(topic),
            None => self.allow.iter().any(|p| p.matches(topic)) && !self.deny.iter().any(|p| p.matches(topic)),
        }
    }

    /// The state to show for a topic (or consumer pattern) on this instance.
    pub fn state_of(&self, pattern: &TopicPattern) -> TopicState {
        if let Some(only) = &self.exclusive {
            // Exclusive wins over the lists: what it covers runs here, nothing else does.
            return if only == pattern || covers(only, pattern) { TopicState::Exclusive } else { TopicState::Disabled };
        }
        // A pattern counts as enabled when the lists let it through as written:
        // allowed by an entry that covers it, and not denied by the same means.
        let covered = |list: &[TopicPattern]| list.iter().any(|p| p == pattern || covers(p, pattern));
        if covered(&self.allow) && !covered(&self.deny) {
            TopicState::Enabled
        } else {
            TopicState::Disabled
        }
    }

    /// Applies a live change. Enabling or disabling a topic edits the lists the
    /// way a user would by hand and leaves exclusive mode if it concerned that
    /// topic; going exclusive replaces any earlier exclusive topic.
    pub fn apply(&mut self, change: EnablementChange, pattern: &TopicPattern) {
        match change {
            EnablementChange::Enable => {
                self.deny.retain(|p| p != pattern);
                if !self.allow.iter().any(|p| p == pattern || covers(p, pattern)) {
                    self.allow.push(pattern.clone());
                }
                if self.exclusive.is_some() {
                    self.exclusive = None;
                }
            }
            EnablementChange::Disable => {
                self.allow.retain(|p| p != pattern);
                if !self.deny.contains(pattern) {
                    self.deny.push(pattern.clone());
                }
                if self.exclusive.as_ref() == Some(pattern) {
                    self.exclusive = None;
                }
            }
            EnablementChange::Exclusive => {
                self.exclusive = Some(pattern.clone());
            }
        }
    }
}

/// Whether every topic matched by `inner` is also matched by `outer`.
fn covers(outer: &TopicPattern, inner: &TopicPattern) -> bool {
    if outer == inner {
        return true;
    }
    // Check against a representative topic of `inner`: its prefix extended by one
    // and by two segments covers the `*` and `**` tails.
    let base = inner.as_str().trim_end_matches("/**").trim_end_matches("/*");
    let probes: Vec<String> = if inner.is_exact() {
        vec![base.to_owned()]
    } else if inner.as_str().ends_with("**") {
        vec![format!("{base}/x"), format!("{base}/x/y")]
    } else {
        vec![format!("{base}/x")]
    };
    let probes: Vec<Topic> = probes.iter().filter_map(|s| s.trim_start_matches('/').parse().ok()).collect();
    !probes.is_empty() && probes.iter().all(|t| outer.matches(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        s.parse().unwrap()
    }
    fn p(s: &str) -> TopicPattern {
        s.parse().unwrap()
    }

    #[test]
    fn allow_minus_deny() {
        let e = Enablement::new(vec![p("acme/**")], vec![p("acme/video/*")]);
        assert!(e.is_enabled(&t("acme/image/resize")));
        assert!(!e.is_enabled(&t("acme/video/transcode")));
        assert!(!e.is_enabled(&t("other/x")));
    }

    #[test]
    fn defaults_allow_everything() {
        assert!(Enablement::default().is_enabled(&t("a/b/c")));
    }

    #[test]
    fn exclusive_wins_over_lists() {
        let mut e = Enablement::default();
        e.apply(EnablementChange::Exclusive, &p("acme/indesign"));
        assert!(e.is_enabled(&t("acme/indesign")));
        assert!(!e.is_enabled(&t("acme/image")));
        assert_eq!(e.state_of(&p("acme/indesign")), TopicState::Exclusive);
        assert_eq!(e.state_of(&p("acme/image")), TopicState::Disabled);
        // A topic the exclusive pattern covers runs, even when the lists deny it.
        e.apply(EnablementChange::Disable, &p("acme/x"));
        e.apply(EnablementChange::Exclusive, &p("acme/**"));
        assert!(e.is_enabled(&t("acme/x")));
        assert_eq!(e.state_of(&p("acme/x")), TopicState::Exclusive);
    }

    #[test]
    fn disable_then_enable_round_trips() {
        let mut e = Enablement::default();
        e.apply(EnablementChange::Disable, &p("acme/video"));
        assert!(!e.is_enabled(&t("acme/video")));
        assert_eq!(e.state_of(&p("acme/video")), TopicState::Disabled);
        e.apply(EnablementChange::Enable, &p("acme/video"));
        assert!(e.is_enabled(&t("acme/video")));
        assert_eq!(e.state_of(&p("acme/video")), TopicState::Enabled);
        assert_eq!(e, Enablement::default(), "allow ** already covers it, nothing added");
    }

    #[test]
    fn enable_on_empty_allow_list_adds_it() {
        let mut e = Enablement::new(vec![], vec![]);
        assert!(!e.is_enabled(&t("a/b")));
        e.apply(EnablementChange::Enable, &p("a/b"));
        assert!(e.is_enabled(&t("a/b")));
    }

    #[test]
    fn enabling_leaves_exclusive_mode() {
        let mut e = Enablement::default();
        e.apply(EnablementChange::Exclusive, &p("a"));
        e.apply(EnablementChange::Enable, &p("b"));
        assert!(e.exclusive.is_none());
        assert!(e.is_enabled(&t("a")) && e.is_enabled(&t("b")));
    }

    #[test]
    fn coverage_of_patterns() {
        assert!(covers(&p("**"), &p("a/*")));
        assert!(covers(&p("a/**"), &p("a/b/*")));
        assert!(!covers(&p("a/*"), &p("a/**")));
        assert!(covers(&p("a/*"), &p("a/b")));
    }
}
