//! The name of a lane in the conversation map.
//!
//! A hibernating conversation is little more than its key, so the key's layout decides what
//! an idle chat costs; that is reason enough to keep it on its own.

use std::fmt;

/// Chat ids up to this many bytes are stored inline in the map key. TrueConf's are 40 hex
/// digits; a longer id still works, it just costs a heap allocation.
pub(super) const INLINE_KEY: usize = 46;

/// The map key of a lane: one per chat, plus the global lane for events without a chat.
///
/// Inline rather than an `Arc<str>`: the key is the one part of a conversation that lives as
/// long as its record, and a small heap allocation made next to the actor's would keep that
/// actor's pages resident after it stopped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum LaneKey {
    Global,
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl LaneKey {
    pub(crate) fn new(chat: Option<&str>) -> Self {
        match chat {
            None => LaneKey::Global,
            Some(id) if id.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                LaneKey::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            Some(id) => LaneKey::Heap(id.into()),
        }
    }
}

impl fmt::Display for LaneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaneKey::Global => f.write_str("global lane"),
            LaneKey::Inline { len, bytes } => {
                let id = bytes.get(..usize::from(*len)).unwrap_or_default();
                write!(f, "chat {}", String::from_utf8_lossy(id))
            }
            LaneKey::Heap(id) => write!(f, "chat {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_of_trueconf_length_are_kept_inline() {
        let id = "4a1f88f1070d2f43d385cde9ff61964bc6b74477";
        let key = LaneKey::new(Some(id));
        assert!(matches!(key, LaneKey::Inline { len: 40, .. }));
        assert_eq!(key.to_string(), format!("chat {id}"));
        let long = "x".repeat(INLINE_KEY + 1);
        let key = LaneKey::new(Some(&long));
        assert!(matches!(key, LaneKey::Heap(_)));
        assert!(key != LaneKey::new(Some(&long[..INLINE_KEY])));
        assert_eq!(LaneKey::new(None).to_string(), "global lane");
    }
}
