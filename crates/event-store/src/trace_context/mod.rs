//! W3C Trace Context (`traceparent`, `tracestate`) carried from the HTTP
//! request that caused a command, through the Kafka records it became, to
//! the effects it caused: one trace id from the request to the webhook.
//!
//! Each hop continues the trace as a child: same trace id, a span id of its
//! own, the caller's span as parent. [`hop`] exports the hops as
//! OpenTelemetry spans when the process asks for it.

use std::fmt;

pub mod hop;

/// The header (HTTP and Kafka) that carries the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header with vendor-specific trace state, passed on unchanged.
pub const TRACESTATE: &str = "tracestate";

/// A parsed `traceparent`: `00-<trace id>-<parent id>-<flags>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// The span that is the parent of the next hop; 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// `01` when sampled.
    pub flags: u8,
}

impl TraceParent {
    /// A new trace (sampled): for a request that came without one.
    pub fn new_root() -> Self {
        // A UUIDv7: a timestamp, then 74 random bits; unique enough for a
        // trace id, and drawn without another source of randomness.
        let trace_id = *uuid::Uuid::now_v7().as_bytes();
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// The same trace, with a new span of this hop as the parent of the next.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The same trace, with a span whose id is derived from `seed` (a
    /// command's or an event's id): folding the same record again, after an
    /// aborted transaction, gives the same span, and no randomness is drawn
    /// on the hot path.
    /// `salt` tells apart several spans of one seed (an event's e-mail and
    /// webhook).
    pub fn child_for(&self, seed: &uuid::Uuid, salt: u8) -> Self {
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&seed.as_bytes()[8..]);
        span_id[0] ^= salt;
        span_id[7] |= 1; // never all zero
        Self { span_id, ..*self }
    }

    /// The `traceparent` among Kafka record headers, if valid.
    pub fn from_headers<'a>(
        mut headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Option<Self> {
        let (_, value) = headers.find(|(name, _)| *name == TRACEPARENT)?;
        Self::parse(std::str::from_utf8(value).ok()?)
    }

    /// Parses a header value; `None` for anything version 00 does not allow
    /// (the caller then starts a new trace, as the spec says).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?.try_into().ok()?;
        let span_id: [u8; 8] = hex(span)?.try_into().ok()?;
        let flags: [u8; 1] = hex(flags)?.try_into().ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags: flags[0],
        })
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        to_hex(&self.span_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.span_id),
            self.flags
        )
    }
}

fn new_span_id() -> [u8; 8] {
    // The random tail of a UUIDv7.
    let mut id = [0u8; 8];
    id.copy_from_slice(&uuid::Uuid::now_v7().as_bytes()[8..]);
    id[7] |= 1;
    id
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    #[test]
    fn a_valid_traceparent_round_trips_and_children_keep_the_trace() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(text).expect("valid");
        assert_eq!(parent.to_string(), text);
        assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parent.child();
        assert_eq!(
            (child.trace_id, child.flags),
            (parent.trace_id, parent.flags)
        );
        assert_ne!(child.span_id, parent.span_id);
        let seed = uuid::Uuid::now_v7();
        assert_eq!(
            parent.child_for(&seed, 0),
            parent.child_for(&seed, 0),
            "deterministic"
        );
        assert_ne!(parent.child_for(&seed, 0), parent.child_for(&seed, 1));
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
