//! One trace per job: the W3C Trace Context `traceparent` a job carries from its creation to
//! its completion.
//!
//! A job crosses three processes (leader, broker, worker) and comes back; without a shared id,
//! following one asset through the logs means matching job ids by hand. The leader starts a
//! trace when it creates a job (or continues the caller's, when an HTTP request brings a
//! `traceparent` header), records it with the job, and sends it as the `traceparent` header of
//! every publish of the job; the worker continues it for its run and sends it back on the
//! completion. Every log line of those steps carries the trace id, and the format is the
//! standard one, so an OpenTelemetry collector can join them as they are.
//!
//! Format (version 00): `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The AMQP and HTTP header carrying the context.
pub const TRACEPARENT: &str = "traceparent";

/// A W3C trace context: which trace, which span is the parent, and whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// Why a string is not a `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>): {0:?}")]
pub struct InvalidTraceparent(pub String);

impl TraceContext {
    /// A new trace, sampled, with a random trace id and span id.
    pub fn new_root() -> Self {
        TraceContext { trace_id: nonzero(), span_id: nonzero(), flags: 1 }
    }

    /// A new span in the same trace: what a process sends on when it continues the trace.
    pub fn child(&self) -> Self {
        TraceContext { trace_id: self.trace_id, span_id: nonzero(), flags: self.flags }
    }

    /// The trace id as 32 lowercase hex digits (what log lines carry).
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex::encode(self.span_id)
    }
}

/// Random bytes that are not all zero (an all-zero id is invalid in the standard).
fn nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = std::array::from_fn(|_| rand::random::<u8>());
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

text_schema!(TraceContext, "A W3C traceparent.", r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$");

impl TraceContext {
    /// The `traceparent` text, `00-<trace id>-<span id>-<flags>` in lowercase hex, made without
    /// allocating: it is written into every job message, record and reply.
    fn encode<'b>(&self, out: &'b mut [u8; TRACEPARENT_LEN]) -> &'b str {
        let mut put = |at: usize, bytes: &[u8]| {
            // The slice is exactly twice the bytes long, which is all `encode_to_slice` needs.
            let _ = hex::encode_to_slice(bytes, &mut out[at..at + 2 * bytes.len()]);
        };
        put(3, &self.trace_id);
        put(36, &self.span_id);
        put(53, &[self.flags]);
        out[..3].copy_from_slice(b"00-");
        out[35] = b'-';
        out[52] = b'-';
        // Only ASCII digits, letters and dashes were written.
        std::str::from_utf8(out).unwrap_or_default()
    }
}

/// `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const TRACEPARENT_LEN: usize = 55;

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0; TRACEPARENT_LEN]))
    }
}

impl FromStr for TraceContext {
    type Err = InvalidTraceparent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidTraceparent(s.chars().take(80).collect());
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [version, trace, span, flags] = parts.as_slice() else { return Err(bad()) };
        // Version ff is forbidden; later versions may append fields, which we ignore.
        if version.len() != 2 || *version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let lower_hex = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
            return Err(bad());
        }
        let mut ctx = TraceContext { trace_id: [0; 16], span_id: [0; 8], flags: 0 };
        hex::decode_to_slice(trace, &mut ctx.trace_id).map_err(|_| bad())?;
        hex::decode_to_slice(span, &mut ctx.span_id).map_err(|_| bad())?;
        let mut f = [0u8; 1];
        hex::decode_to_slice(flags, &mut f).map_err(|_| bad())?;
        ctx.flags = f[0];
        if ctx.trace_id == [0; 16] || ctx.span_id == [0; 8] {
            return Err(bad());
        }
        Ok(ctx)
    }
}

impl Serialize for TraceContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.encode(&mut [0; TRACEPARENT_LEN]))
    }
}

impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_w3c_example() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx: TraceContext = s.parse().unwrap();
        assert_eq!(ctx.to_string(), s);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = ctx.child();
        assert_eq!(child.trace_id(), ctx.trace_id());
        assert_ne!(child.span_id(), ctx.span_id());
    }

    #[test]
    fn refuses_what_the_standard_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert!(bad.parse::<TraceContext>().is_err(), "{bad}");
        }
        let root = TraceContext::new_root();
        assert_eq!(root.to_string().parse::<TraceContext>().unwrap(), root);
    }
}
