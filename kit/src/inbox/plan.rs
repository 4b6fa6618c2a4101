//! The batch plan, decided before anything is written: which messages are at their partition's
//! stored offset (to be consumed) and which were read from elsewhere (passed over, with a seek
//! to the stored offset), where each partition's offset moves, and whether the batch can take
//! the fast path (every message a plain event: decodable, of a known type, keyed by its order,
//! not an operator's answer, its key not waiting behind a dead letter). Pure: no I/O.

use super::Partition;
use super::incoming::Incoming;
use crate::dlq;
use crate::envelope::{self, Decoded};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the batch does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// At its partition's next offset: consumed (applied, dead-lettered, parked or skipped as
    /// a duplicate, whatever it holds).
    Consume,
    /// Not at the next offset (read again after a rewind, or from before a seek): passed over,
    /// and the partition seeks to `to`.
    Pass { to: i64 },
}

/// The plan of one batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One step per message, in the batch's order.
    pub steps: Vec<Step>,
    /// Per partition consumed from: the stored offset the batch started from (the fence) and
    /// the next offset after it.
    pub advanced: BTreeMap<Partition, (Option<i64>, i64)>,
}

/// Plans `messages` (partition and offset, in the order read) against the stored next offsets
/// (`None`: nothing stored yet, so the first message read is the start). Every partition of the
/// batch must be in `positions`.
pub fn offsets(messages: &[(Partition, i64)], positions: &HashMap<Partition, Option<i64>>) -> Plan {
    let mut plan = Plan::default();
    for (partition, offset) in messages {
        let stored = positions.get(partition).copied().flatten();
        let next = plan.advanced.get(partition).map(|(_, next)| *next).or(stored);
        match next {
            Some(next) if next != *offset => plan.steps.push(Step::Pass { to: next }),
            _ => {
                plan.steps.push(Step::Consume);
                plan.advanced.insert(partition.clone(), (stored, offset + 1));
            }
        }
    }
    plan
}

/// The decoded events of `consumed` if every one is a plain event (the fast path: applied
/// without a savepoint each, the inbox written in one statement); `None` if any needs the
/// careful path.
pub fn plain(consumed: &[&Incoming], parked_keys: &HashSet<String>) -> Option<Vec<Decoded>> {
    consumed
        .iter()
        .map(|incoming| {
            if incoming.headers.contains_key(dlq::ACTION) || parked_keys.contains(&incoming.key) {
                return None;
            }
            let decoded = envelope::decode(incoming.payload.as_deref()).ok()?;
            super::misplaced(&decoded.envelope, &incoming.topic, &incoming.key).is_none().then_some(decoded)
        })
        .collect()
}

/// The index of each event's first occurrence among `ids`: a later copy in the same batch is a
/// duplicate.
pub fn first_occurrences(ids: &[uuid::Uuid]) -> Vec<bool> {
    let mut seen = HashSet::new();
    ids.iter().map(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope;
    use crate::trace::TraceParent;
    use orderflow_proto::events::v1::Sorted;
    use orderflow_proto::events::v1::event_envelope::Payload;
    use prost::Message;

    fn p(n: i32) -> Partition {
        ("orders".to_owned(), n)
    }

    #[test]
    fn messages_at_the_stored_offset_are_consumed_and_others_passed_over() {
        let positions = HashMap::from([(p(0), Some(10)), (p(1), None)]);
        let batch = [(p(0), 10), (p(0), 11), (p(1), 5), (p(0), 9), (p(1), 6)];
        let plan = offsets(&batch, &positions);
        assert_eq!(plan.steps, [Step::Consume, Step::Consume, Step::Consume, Step::Pass { to: 12 }, Step::Consume]);
        assert_eq!(plan.advanced, BTreeMap::from([(p(0), (Some(10), 12)), (p(1), (None, 7))]));
    }

    #[test]
    fn a_batch_read_from_before_the_stored_offset_consumes_nothing() {
        let positions = HashMap::from([(p(0), Some(20))]);
        let plan = offsets(&[(p(0), 3), (p(0), 4)], &positions);
        assert_eq!(plan.steps, [Step::Pass { to: 20 }, Step::Pass { to: 20 }]);
        assert!(plan.advanced.is_empty(), "the fence is not touched");
    }

    fn incoming(key: &str, payload: Option<Vec<u8>>) -> Incoming {
        Incoming { topic: "orders".into(), partition: 0, offset: 0, key: key.into(), payload, headers: BTreeMap::new() }
    }

    fn event(order: &str) -> Vec<u8> {
        let payload = Payload::Sorted(Sorted { tote_id: "T".into() });
        envelope::build("test", order, payload, &envelope::Cause::command(TraceParent::new_root())).encode_to_vec()
    }

    #[test]
    fn only_plain_events_take_the_fast_path() {
        let none = HashSet::new();
        let good = incoming("o1", Some(event("o1")));
        assert_eq!(plain(&[&good], &none).map(|d| d.len()), Some(1));
        let wrong_key = incoming("o2", Some(event("o1")));
        let undecodable = incoming("o1", Some(b"\xff".to_vec()));
        let empty = incoming("o1", None);
        let mut answer = incoming("o1", Some(event("o1")));
        answer.headers.insert(dlq::ACTION.into(), "discard".into());
        for odd in [&wrong_key, &undecodable, &empty, &answer] {
            assert!(plain(&[&good, odd], &none).is_none(), "{odd:?}");
        }
        let parked = HashSet::from(["o1".to_owned()]);
        assert!(plain(&[&good], &parked).is_none(), "its key waits behind a dead letter");
    }

    #[test]
    fn an_event_off_its_topic_or_from_another_producer_is_misplaced() {
        let sorted = |producer: &str| {
            let payload = Payload::Sorted(Sorted { tote_id: "T".into() });
            envelope::build(producer, "o1", payload, &envelope::Cause::command(TraceParent::new_root()))
        };
        let fulfillment = "ns.fulfillment.v1";
        assert_eq!(super::super::misplaced(&sorted("fulfillment-service"), fulfillment, "o1"), None);
        let forged = super::super::misplaced(&sorted("fulfillment-service"), "ns.shipping.v1", "o1").unwrap();
        assert!(forged.contains("only shipping-service publishes there"), "{forged}");
        assert!(super::super::misplaced(&sorted("forger\0"), fulfillment, "o1").unwrap().contains("forger\u{fffd}"));
        assert!(super::super::misplaced(&sorted("x"), "orders", "o1").is_none(), "a topic this build does not know");
        let rekeyed = super::super::misplaced(&sorted("fulfillment-service"), fulfillment, "o2").unwrap();
        assert!(rekeyed.contains("its key is not its order_id"), "{rekeyed}");
        let mut on_its_topic = incoming("o1", Some(sorted("fulfillment-service").encode_to_vec()));
        on_its_topic.topic = fulfillment.into();
        let mut off_it = on_its_topic.clone();
        off_it.topic = "ns.orders.v1".into();
        assert!(plain(&[&on_its_topic], &HashSet::new()).is_some());
        assert!(plain(&[&on_its_topic, &off_it], &HashSet::new()).is_none(), "the careful path dead-letters it");
    }

    #[test]
    fn a_second_copy_in_one_batch_is_a_duplicate() {
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        assert_eq!(first_occurrences(&[a, b, a]), [true, true, false]);
    }
}
