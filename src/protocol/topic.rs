//! Job topics and consumer patterns, with Sling's grammar.
//!
//! A topic is `/`-separated segments of `[A-Za-z0-9_]`, e.g.
//! `com/adobe/granite/workflow/offloading`. A consumer pattern may end in `*`
//! (exactly one more segment) or `**` (one or more further segments), as Sling's
//! JobConsumer `job.topics` does.
//!
//! On the wire a topic becomes an AMQP routing key by turning `/` into `.`. The
//! segment alphabet has no `.`, so the mapping is lossless both ways.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid topic or pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic {topic:?} has an empty segment (leading, trailing or doubled '/')")]
    EmptySegment { topic: String },
    #[error("topic {topic:?}: segment {segment:?} may only contain A-Z, a-z, 0-9 and '_'")]
    BadSegment { topic: String, segment: String },
    #[error("pattern {pattern:?}: '*' and '**' are only allowed as the whole last segment")]
    MisplacedWildcard { pattern: String },
    #[error("topic {topic:?} is longer than {max} bytes")]
    TooLong { topic: String, max: usize },
}

/// AMQP short strings (queue names, routing keys) hold at most 255 bytes; leave
/// room for the namespace and the `.jobs.` prefix of the queue name.
pub const MAX_TOPIC_LEN: usize = 200;

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_segments<'a>(text: &str, segments: impl Iterator<Item = &'a str>) -> Result<(), TopicError> {
    for seg in segments {
        if seg.is_empty() {
            return Err(TopicError::EmptySegment { topic: text.to_owned() });
        }
        if !valid_segment(seg) {
            return Err(TopicError::BadSegment { topic: text.to_owned(), segment: seg.to_owned() });
        }
    }
    Ok(())
}

/// A concrete job topic: what a job is published on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The AMQP routing key for this topic (`a/b/c` → `a.b.c`).
    pub fn routing_key(&self) -> String {
        self.0.replace('/', ".")
    }

    /// Reverses [`Topic::routing_key`].
    pub fn from_routing_key(key: &str) -> Result<Topic, TopicError> {
        key.replace('.', "/").parse()
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

text_schema!(
    Topic,
    "A job topic: segments of A-Z, a-z, 0-9 and _ separated by /.",
    r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$"
);

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong { topic: s.to_owned(), max: MAX_TOPIC_LEN });
        }
        check_segments(s, s.split('/'))?;
        Ok(Topic(s.to_owned()))
    }
}

impl TryFrom<String> for Topic {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Topic> for String {
    fn from(t: Topic) -> String {
        t.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a pattern's last segment allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Tail {
    /// The pattern is a concrete topic.
    Exact,
    /// `*`: exactly one more segment.
    One,
    /// `**`: one or more further segments.
    Any,
}

/// A consumer pattern: a topic, or a prefix followed by `*` or `**`.
/// The bare patterns `*` and `**` match one-segment and all topics respectively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TopicPattern {
    text: String,
    #[serde(skip)]
    prefix: Vec<String>,
    #[serde(skip)]
    tail: TailField,
}

// serde(skip) needs Default; keep `Tail` itself free of a meaningless default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TailField(Tail);
impl Default for TailField {
    fn default() -> Self {
        TailField(Tail::Exact)
    }
}

impl TopicPattern {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a concrete topic falls under this pattern.
    pub fn matches(&self, topic: &Topic) -> bool {
        let segs: Vec<&str> = topic.segments().collect();
        let n = self.prefix.len();
        if segs.len() < n || segs[..n].iter().zip(&self.prefix).any(|(a, b)| a != b) {
            return false;
        }
        match self.tail.0 {
            Tail::Exact => segs.len() == n,
            Tail::One => segs.len() == n + 1,
            Tail::Any => segs.len() > n,
        }
    }

    /// True when the pattern names exactly one topic.
    pub fn is_exact(&self) -> bool {
        self.tail.0 == Tail::Exact
    }

    /// Orders patterns by how narrowly they select, so that when two registered
    /// consumers match the same topic the most specific one handles it (an exact
    /// topic beats `a/b/*`, which beats `a/**`, which beats `**`).
    pub fn specificity(&self) -> (u8, usize) {
        let kind = match self.tail.0 {
            Tail::Exact => 2,
            Tail::One => 1,
            Tail::Any => 0,
        };
        (kind, self.prefix.len())
    }

    /// The AMQP topic-exchange binding equivalent to this pattern.
    pub fn binding_key(&self) -> String {
        let mut parts: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        match self.tail.0 {
            Tail::Exact => {}
            Tail::One => parts.push("*"),
            Tail::Any => {
                parts.push("*");
                parts.push("#");
            }
        }
        parts.join(".")
    }
}

text_schema!(
    TopicPattern,
    "A topic, or a consumer pattern ending in * (one more segment) or ** (any depth).",
    r"^(\*\*?|[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*(/\*\*?)?)$"
);

impl FromStr for TopicPattern {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong { topic: s.to_owned(), max: MAX_TOPIC_LEN });
        }
        let mut segs: Vec<&str> = s.split('/').collect();
        let tail = match segs.last().copied() {
            Some("*") => Tail::One,
            Some("**") => Tail::Any,
            _ => Tail::Exact,
        };
        if tail != Tail::Exact {
            segs.pop();
        }
        if segs.iter().any(|seg| seg.contains('*')) {
            return Err(TopicError::MisplacedWildcard { pattern: s.to_owned() });
        }
        check_segments(s, segs.iter().copied())?;
        Ok(TopicPattern {
            text: s.to_owned(),
            prefix: segs.into_iter().map(str::to_owned).collect(),
            tail: TailField(tail),
        })
    }
}

impl TryFrom<String> for TopicPattern {
    type Error = TopicError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TopicPattern> for String {
    fn from(p: TopicPattern) -> String {
        p.text
    }
}

impl From<&Topic> for TopicPattern {
    fn from(t: &Topic) -> Self {
        // A valid topic is always a valid exact pattern.
        TopicPattern {
            text: t.0.clone(),
            prefix: t.segments().map(str::to_owned).collect(),
            tail: TailField(Tail::Exact),
        }
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
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
    fn topics_follow_sling_grammar() {
        assert!("com/adobe/granite/workflow/offloading".parse::<Topic>().is_ok());
        assert!("a_b/C9".parse::<Topic>().is_ok());
        assert_eq!("".parse::<Topic>(), Err(TopicError::Empty));
        assert!(matches!("a//b".parse::<Topic>(), Err(TopicError::EmptySegment { .. })));
        assert!(matches!("/a".parse::<Topic>(), Err(TopicError::EmptySegment { .. })));
        assert!(matches!("a.b".parse::<Topic>(), Err(TopicError::BadSegment { .. })));
        assert!(matches!("a/b-c".parse::<Topic>(), Err(TopicError::BadSegment { .. })));
        assert!(matches!("a/*".parse::<Topic>(), Err(TopicError::BadSegment { .. })));
        assert!(matches!("x".repeat(201).parse::<Topic>(), Err(TopicError::TooLong { .. })));
    }

    #[test]
    fn routing_key_round_trips() {
        let topic = t("acme/video/transcode");
        assert_eq!(topic.routing_key(), "acme.video.transcode");
        assert_eq!(Topic::from_routing_key("acme.video.transcode").unwrap(), topic);
    }

    #[test]
    fn one_level_wildcard() {
        let pat = p("a/b/*");
        assert!(pat.matches(&t("a/b/c")));
        assert!(!pat.matches(&t("a/b")));
        assert!(!pat.matches(&t("a/b/c/d")));
        assert!(!pat.matches(&t("a/x/c")));
        assert_eq!(pat.binding_key(), "a.b.*");
    }

    #[test]
    fn any_depth_wildcard() {
        let pat = p("a/**");
        assert!(pat.matches(&t("a/b")));
        assert!(pat.matches(&t("a/b/c/d")));
        assert!(!pat.matches(&t("a")));
        assert!(!pat.matches(&t("b/a")));
        assert_eq!(pat.binding_key(), "a.*.#");
        assert!(p("**").matches(&t("x/y/z")));
        assert!(p("*").matches(&t("x")));
        assert!(!p("*").matches(&t("x/y")));
    }

    #[test]
    fn exact_pattern_and_bad_wildcards() {
        assert!(p("a/b").matches(&t("a/b")));
        assert!(!p("a/b").matches(&t("a/b/c")));
        assert!(matches!("a/*/c".parse::<TopicPattern>(), Err(TopicError::MisplacedWildcard { .. })));
        assert!(matches!("a/b*".parse::<TopicPattern>(), Err(TopicError::MisplacedWildcard { .. })));
    }

    #[test]
    fn specificity_prefers_exact_then_narrow() {
        let mut pats = [p("**"), p("a/**"), p("a/b/*"), p("a/b/c")];
        pats.sort_by_key(|x| std::cmp::Reverse(x.specificity()));
        assert_eq!(pats[0].as_str(), "a/b/c");
        assert_eq!(pats[1].as_str(), "a/b/*");
        assert_eq!(pats[2].as_str(), "a/**");
    }

    #[test]
    fn patterns_deserialize_with_their_matcher() {
        let pat: TopicPattern = serde_json::from_str("\"a/**\"").unwrap();
        assert!(pat.matches(&t("a/b/c")));
        assert!(serde_json::from_str::<TopicPattern>("\"a/*/b\"").is_err());
    }
}
