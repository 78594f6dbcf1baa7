//! Times as the protocol and the ledger write them: RFC 3339 in UTC with `Z`, and as many
//! fractional digits as the time needs (none, 3, 6 or 9), exactly what chrono's own `Serialize`
//! writes.
//!
//! chrono hands its text to the serializer a character at a time (`collect_str`), and
//! `serde_json` checks each piece for characters to escape: with the half-dozen times a job's
//! record and messages carry, that was a tenth of the leader's instructions per job
//! (docs/benchmarks.md §1). Formatted into one string first, a time is written in one piece.
//! Reading is unchanged: chrono's `Deserialize` reads what this writes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// For `#[serde(serialize_with = "...")]` on a `DateTime<Utc>`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// For `#[serde(serialize_with = "...")]` on an `Option<DateTime<Utc>>`.
pub fn serialize_option<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&Rfc3339(t)),
        None => s.serialize_none(),
    }
}

struct Rfc3339<'a>(&'a DateTime<Utc>);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "serialize")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "serialize_option")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2026, 12, 1, 15, 3, 44).single().expect("a valid time");
        let times = [
            base,
            base + chrono::Duration::milliseconds(120),
            base + chrono::Duration::microseconds(123_450),
            base + chrono::Duration::nanoseconds(123_456_789),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).single().expect("a valid time"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().expect("a valid time"),
            Utc::now(),
        ];
        for at in times {
            for maybe in [None, Some(at)] {
                let ours = serde_json::to_string(&Ours { at, maybe }).expect("serializes");
                let chronos = serde_json::to_string(&Chronos { at, maybe }).expect("serializes");
                assert_eq!(ours, chronos);
            }
        }
    }
}
