//! A message as the inbox sees it, read from its topic or from the `parked` table. Nothing of
//! an outside message's bytes reaches the database unchecked: its key and headers become text
//! PostgreSQL always accepts (invalid UTF-8 and NUL replaced, lengths bounded), so storing,
//! parking or dead-lettering a message never depends on what it holds.

use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use std::collections::BTreeMap;

/// Longest key kept (bytes); a key is an order id or a SKU, far shorter.
pub const MAX_KEY: usize = 200;
/// Most headers kept, and the longest header name or value (bytes).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER: usize = 1_024;

/// One message to apply.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The message key (the order id) as stored text; empty if it had none.
    pub key: String,
    pub payload: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
}

impl Incoming {
    pub fn read(message: &OwnedMessage) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .take(MAX_HEADERS)
                    .map(|h| {
                        (
                            stored_text(h.key.as_bytes(), MAX_HEADER),
                            stored_text(h.value.unwrap_or_default(), MAX_HEADER),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: stored_text(message.key().unwrap_or_default(), MAX_KEY),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// `bytes` as text PostgreSQL stores in any `text` or `jsonb` column: invalid UTF-8 and NUL
/// become U+FFFD, and anything past `max` bytes is cut (at a character boundary) and marked
/// with `…`.
pub fn stored_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut stored = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if c == '\0' { char::REPLACEMENT_CHARACTER } else { c };
        if stored.len() + c.len_utf8() > max {
            stored.push('…');
            break;
        }
        stored.push(c);
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_has_no_nul_no_invalid_utf8_and_a_bounded_length() {
        assert_eq!(stored_text(b"order-1", 200), "order-1");
        assert_eq!(stored_text(b"a\0b", 200), "a\u{fffd}b");
        assert_eq!(stored_text(b"\xff\xfe", 200), "\u{fffd}\u{fffd}");
        assert_eq!(stored_text("ééé".as_bytes(), 5), "éé…");
        assert!(stored_text(&[b'x'; 10_000], MAX_KEY).len() <= MAX_KEY + '…'.len_utf8());
    }
}
