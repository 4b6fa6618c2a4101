//! W3C trace context (`traceparent`) carried from gRPC metadata into events and on through
//! every hop, so one trace spans PlaceOrder to Shipped.

use std::fmt;

/// A parsed `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

impl TraceParent {
    /// Starts a new trace.
    pub fn new_root() -> Self {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        Self { trace_id: u128::from_be_bytes(bytes), span_id: random_span_id(), flags: 1 }
    }

    /// A new span in the same trace, as a consumer continuing the producer's trace.
    pub fn child(&self) -> Self {
        Self { span_id: random_span_id(), ..*self }
    }

    /// Parses a header value; `None` for anything malformed (a new root is then started).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 || parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(Self { trace_id, span_id, flags: u8::from_str_radix(flags, 16).ok()? })
    }

    /// Continues the trace in `value` if it is valid, or starts a new one.
    pub fn continue_or_start(value: Option<&str>) -> Self {
        value.and_then(Self::parse).map_or_else(Self::new_root, |parent| parent.child())
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

fn random_span_id() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]).max(1)
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_children_keep_the_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(header).unwrap();
        assert_eq!(parent.to_string(), header);
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
    }

    #[test]
    fn malformed_headers_start_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert_ne!(TraceParent::continue_or_start(Some("junk")).trace_id, 0);
    }
}
