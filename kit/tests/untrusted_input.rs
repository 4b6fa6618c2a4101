//! Property tests: whatever bytes arrive from Kafka or gRPC metadata, and whatever a token file
//! holds, decoding and checking return a value or an error; they never panic. A bounded run
//! (proptest's default 256 cases per property) is part of the test suite.

use orderflow_kit::auth::{Policy, Tokens, digest, scope};
use orderflow_kit::envelope::{self, Cause};
use orderflow_kit::trace::TraceParent;
use orderflow_proto::events::v1::event_envelope::Payload;
use orderflow_proto::events::v1::{Picked, Shipped};
use proptest::prelude::*;
use prost::Message;

const POLICY: Policy =
    Policy { api: "orderflow.order.v1.OrderService", methods: &[("GetOrder", &[scope::ORDERS_READ])], also: &[] };

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = envelope::decode(Some(&bytes));
    }

    #[test]
    fn a_valid_envelope_with_bytes_flipped_decodes_or_is_refused(flip in any::<usize>(), value in any::<u8>()) {
        let event = envelope::build(
            "test",
            "0190b8a4-2f2e-7cc0-8a2b-4f5e6d7c8b9a",
            Payload::Shipped(Shipped { carrier: "DPD".into(), tracking_number: "DP1".into(), ..Default::default() }),
            &Cause::command(TraceParent::new_root()),
        );
        let mut bytes = event.encode_to_vec();
        let at = flip % bytes.len();
        bytes[at] = value;
        if let Ok(decoded) = envelope::decode(Some(&bytes)) {
            prop_assert!(decoded.envelope.payload.is_some());
        }
    }

    #[test]
    fn traceparent_parsing_never_panics_and_round_trips(text in ".{0,80}", trace in 1u128.., span in 1u64.., flags in any::<u8>()) {
        let _ = TraceParent::parse(&text);
        let valid = TraceParent { trace_id: trace, span_id: span, flags };
        prop_assert_eq!(TraceParent::parse(&valid.to_string()), Some(valid));
    }

    #[test]
    fn token_files_and_authorization_headers_never_panic(file in ".{0,300}", path in "/?[a-zA-Z./]{0,60}", header in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Tokens::parse(&file);
        let tokens = Tokens::default().with_token("t", "secret", &["orders:read"]);
        let _ = tokens.authorize(&POLICY, &path, Some(&header));
        let _ = tokens.authorize(&POLICY, &path, None);
    }

    #[test]
    fn a_token_file_line_for_any_token_authorizes_that_token(token in "[!-~]{1,64}") {
        let tokens = Tokens::parse(&format!("caller {} orders:read", digest(&token))).unwrap();
        let header = format!("Bearer {token}");
        let caller = tokens.authorize(&POLICY, "/orderflow.order.v1.OrderService/GetOrder", Some(header.as_bytes())).unwrap();
        prop_assert_eq!(caller.map(|c| c.name.as_str()), Some("caller"));
    }
}

#[test]
fn an_event_without_a_payload_is_refused_not_applied() {
    let mut event =
        envelope::build("test", "o", Payload::Picked(Picked::default()), &Cause::command(TraceParent::new_root()));
    event.payload = None;
    assert!(envelope::decode(Some(&event.encode_to_vec())).is_err());
}
