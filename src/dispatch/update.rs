//! The event as the dispatcher sees it: the raw payload plus cheap, lazily parsed views that
//! filters read.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::protocol::{RawValue, RequestId};
use crate::types::{ChatType, MessageKind};

/// The kind of a server event, from its wire `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// `sendMessage`: a new message (user or system envelope).
    Message,
    /// `command`: a command button was pressed.
    Command,
    /// `editMessage`: a message was edited.
    MessageEdited,
    /// `removeMessage`: a message was deleted.
    MessageRemoved,
    /// `createP2PChat`, `createGroupChat`, `createChannel`, `createFavoritesChat`.
    ChatCreated,
    /// `removeChat`.
    ChatRemoved,
    /// `editChatTitle`.
    TitleEdited,
    /// `editChatAvatar`.
    AvatarEdited,
    /// `clearHistory`.
    HistoryCleared,
    /// `addChatParticipant`.
    ParticipantAdded,
    /// `removeChatParticipant`.
    ParticipantRemoved,
    /// `changeParticipantRole`.
    RoleChanged,
    /// `getFileUploadLimits`: the administrator changed the upload limits.
    LimitsChanged,
    /// `uploadFileProgress`.
    UploadProgress,
    /// Any method this library does not know.
    Unknown,
}

impl EventKind {
    /// The kind of an event `method`.
    pub fn from_method(method: &str) -> Self {
        match method {
            "sendMessage" => Self::Message,
            "command" => Self::Command,
            "editMessage" => Self::MessageEdited,
            "removeMessage" => Self::MessageRemoved,
            "createP2PChat" | "createGroupChat" | "createChannel" | "createFavoritesChat" => {
                Self::ChatCreated
            }
            "removeChat" => Self::ChatRemoved,
            "editChatTitle" => Self::TitleEdited,
            "editChatAvatar" => Self::AvatarEdited,
            "clearHistory" => Self::HistoryCleared,
            "addChatParticipant" => Self::ParticipantAdded,
            "removeChatParticipant" => Self::ParticipantRemoved,
            "changeParticipantRole" => Self::RoleChanged,
            "getFileUploadLimits" => Self::LimitsChanged,
            "uploadFileProgress" => Self::UploadProgress,
            _ => Self::Unknown,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatRef {
    chat_id: Option<Str>,
    chat_type: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct Author {
    id: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    text: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandSource {
    message: Option<Box<View>>,
    button_id: Option<Str>,
    wait_reply: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandPayload {
    command: Option<Str>,
    custom_data: Option<Str>,
}

/// The fields filters and routing read, from any event payload; everything optional so one
/// struct fits every event.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct View {
    message_id: Option<Str>,
    chat_id: Option<Str>,
    chat: Option<ChatRef>,
    chat_type: Option<u32>,
    author: Option<Author>,
    content: Option<Content>,
    reply_message_id: Option<Str>,
    timestamp: Option<u64>,
    command_id: Option<Str>,
    command_source: Option<CommandSource>,
    command_payload: Option<CommandPayload>,
}

impl View {
    fn chat_id<'a>(&'a self, payload: &'a str) -> Option<&'a str> {
        self.chat
            .as_ref()
            .and_then(|c| c.chat_id.as_ref())
            .or(self.chat_id.as_ref())
            .map(|s| s.get(payload))
            .or_else(|| {
                self.command_source
                    .as_ref()
                    .and_then(|s| s.message.as_ref())
                    .and_then(|m| m.chat_id(payload))
            })
    }
}

/// A string field of the routing view. Most JSON strings have no escapes, so serde_json hands
/// them out borrowed from the payload: the view keeps just their byte range (no allocation per
/// field and event). A string with escapes is kept decoded.
#[derive(Debug)]
enum Str {
    Span(u32, u32),
    Owned(Box<str>),
}

impl Str {
    fn get<'a>(&'a self, payload: &'a str) -> &'a str {
        match self {
            Str::Span(a, b) => payload.get(*a as usize..*b as usize).unwrap_or_default(),
            Str::Owned(s) => s,
        }
    }
}

thread_local! {
    /// The payload being parsed into a view: (start address, length).
    static PAYLOAD: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Str, E> {
                let (base, len) = PAYLOAD.with(|p| p.get());
                let start = (s.as_ptr() as usize).wrapping_sub(base);
                let end = start.wrapping_add(s.len());
                // Only a slice of the payload being parsed becomes a range.
                if start <= len && end <= len && start <= end && len <= u32::MAX as usize {
                    Ok(Str::Span(start as u32, end as u32))
                } else {
                    Ok(Str::Owned(s.into()))
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Str, E> {
                Ok(Str::Owned(s.into()))
            }
        }
        d.deserialize_str(V)
    }
}

struct Inner {
    id: RequestId,
    method: String,
    kind: EventKind,
    payload: Box<RawValue>,
    view: View,
    typed: OnceLock<Box<dyn std::any::Any + Send + Sync>>,
    event: OnceLock<Result<crate::types::Event, String>>,
}

/// One server event on its way to a handler: the wire method, the raw payload and quick
/// accessors for what routing and filters need. Cheap to clone.
#[derive(Clone)]
pub struct Update(Arc<Inner>);

impl fmt::Debug for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("id", &self.0.id)
            .field("method", &self.0.method)
            .field("chat_id", &self.chat_id())
            .finish_non_exhaustive()
    }
}

impl Update {
    /// Wraps a raw event. A payload that is not a JSON object still makes an `Update` (its
    /// views are empty), so a malformed event reaches the raw handlers instead of vanishing.
    pub fn new(id: RequestId, method: impl Into<String>, payload: Box<RawValue>) -> Self {
        let method = method.into();
        let text = payload.get();
        PAYLOAD.with(|p| p.set((text.as_ptr() as usize, text.len())));
        let view: View = serde_json::from_str(text).unwrap_or_else(|e| {
            tracing::debug!(%method, error = %e, "event payload does not fit the routing view");
            View::default()
        });
        PAYLOAD.with(|p| p.set((0, 0)));
        let kind = EventKind::from_method(&method);
        Update(Arc::new(Inner {
            id,
            method,
            kind,
            payload,
            view,
            typed: OnceLock::new(),
            event: OnceLock::new(),
        }))
    }

    fn str<'a>(&'a self, field: &'a Option<Str>) -> Option<&'a str> {
        field.as_ref().map(|s| s.get(self.0.payload.get()))
    }

    /// The server's frame id of this event.
    pub fn id(&self) -> RequestId {
        self.0.id
    }

    /// The wire method, e.g. `"sendMessage"`.
    pub fn method(&self) -> &str {
        &self.0.method
    }

    /// The kind of event.
    pub fn kind(&self) -> EventKind {
        self.0.kind
    }

    /// The untouched payload.
    pub fn payload(&self) -> &RawValue {
        &self.0.payload
    }

    /// The chat the event belongs to, if any (for a button press: the chat of the message that
    /// carried the button).
    pub fn chat_id(&self) -> Option<&str> {
        self.0.view.chat_id(self.0.payload.get())
    }

    /// The message id (`messageId`) of a message, edit or removal event.
    pub fn message_id(&self) -> Option<&str> {
        self.str(&self.0.view.message_id)
    }

    /// The text of a message or of an edited message, without a leading reply quote (as
    /// [`Message::text`](crate::types::Message::text) and the official client's
    /// `Message.text`), so that filters and commands see what the user typed.
    pub fn text(&self) -> Option<&str> {
        self.full_text()
            .map(|t| crate::types::message::strip_leading_reply_quote(t).1)
    }

    /// The text of a message or of an edited message exactly as received.
    pub fn full_text(&self) -> Option<&str> {
        self.str(&self.0.view.content.as_ref()?.text)
    }

    /// The author's TrueConf ID of a message.
    pub fn author_id(&self) -> Option<&str> {
        self.str(&self.0.view.author.as_ref()?.id)
    }

    /// The chat type, when the payload states it.
    pub fn chat_type(&self) -> Option<ChatType> {
        let v = &self.0.view;
        v.chat
            .as_ref()
            .and_then(|c| c.chat_type)
            .or(v.chat_type)
            .map(ChatType::from)
    }

    /// The id of the message this message replies to.
    pub fn reply_message_id(&self) -> Option<&str> {
        self.str(&self.0.view.reply_message_id)
    }

    /// What a message is (only for [`EventKind::Message`]; decodes the typed message).
    pub fn message_kind(&self) -> Option<MessageKind> {
        match self.event_ref()? {
            crate::types::Event::Message(m) => Some(m.kind()),
            _ => None,
        }
    }

    /// The command string of a button press (`commandPayload.command`).
    pub fn button_command(&self) -> Option<&str> {
        self.str(&self.0.view.command_payload.as_ref()?.command)
    }

    /// The id of the message that carried the pressed button
    /// (`commandSource.message.messageId`).
    pub fn source_message_id(&self) -> Option<&str> {
        let source = self.0.view.command_source.as_ref()?.message.as_ref()?;
        self.str(&source.message_id)
    }

    /// The custom data of a button press (`commandPayload.customData`).
    pub fn custom_data(&self) -> Option<&str> {
        self.str(&self.0.view.command_payload.as_ref()?.custom_data)
    }

    /// The `commandId` of a button press that waits for an answer.
    pub fn command_id(&self) -> Option<&str> {
        self.str(&self.0.view.command_id)
    }

    /// The id of the pressed button.
    pub fn button_id(&self) -> Option<&str> {
        self.str(&self.0.view.command_source.as_ref()?.button_id)
    }

    /// Whether the pressed button asked for an answer (`waitReply`).
    pub fn waits_reply(&self) -> bool {
        self.0
            .view
            .command_source
            .as_ref()
            .and_then(|s| s.wait_reply)
            .unwrap_or(false)
            || self.command_id().is_some()
    }

    /// The typed event, decoded once per event however many handlers ask.
    pub fn event(&self) -> crate::Result<crate::types::Event> {
        match self.0.event.get() {
            Some(cached) => cached.clone().map_err(crate::Error::Protocol),
            // The usual case is one typed extractor per event: decoding straight into the
            // caller's value saves the deep clone (one allocation per string of the message)
            // that caching first would cost.
            None => crate::types::Event::decode(&self.0.method, &self.0.payload)
                .map_err(|e| crate::Error::Protocol(e.to_string())),
        }
    }

    /// The typed event, decoded once and kept, for filters that only look at it.
    fn event_ref(&self) -> Option<&crate::types::Event> {
        self.0
            .event
            .get_or_init(|| {
                crate::types::Event::decode(&self.0.method, &self.0.payload)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .ok()
    }

    /// The payload deserialized as `T`, parsed once per event and shared by every handler
    /// and extractor asking for the same `T` first. Returns a clear error naming the method
    /// when the payload does not fit.
    pub fn decode<T>(&self) -> crate::Result<T>
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if let Some(v) = self.0.typed.get().and_then(|b| b.downcast_ref::<T>()) {
            return Ok(v.clone());
        }
        let v: T = serde_json::from_str(self.0.payload.get()).map_err(|e| {
            crate::Error::protocol(format!(
                "`{}` event payload is not a {}: {e}",
                self.0.method,
                std::any::type_name::<T>()
            ))
        })?;
        let _ = self.0.typed.set(Box::new(v.clone()));
        Ok(v)
    }

    /// A 64-bit fingerprint identifying a redelivery of an event already seen, for the events
    /// whose payload makes that unambiguous: messages (by message id) and the events carrying
    /// a timestamp. Button presses and progress reports can legitimately repeat byte for
    /// byte, so they have none.
    ///
    /// A hash instead of the key itself keeps the duplicate window free of per-event
    /// allocations; two different events sharing a fingerprint within one window (about 1 in
    /// 10^11 for 10,000 events) is far below any other source of loss. The function is fixed
    /// (FNV-1a over explicitly framed bytes), not std's `DefaultHasher`, because fingerprints
    /// outlive the process: the SQLite and Redis handled marks are read by the next release
    /// of the bot and by replicas built elsewhere, and std's hasher may change between Rust
    /// releases and hashes integers in native byte order.
    pub(crate) fn dedup_key(&self) -> Option<u64> {
        let mut h = Fingerprint::default();
        match self.0.kind {
            EventKind::Message => {
                h.field(b"m");
                h.field(self.message_id()?.as_bytes());
            }
            _ if self.0.view.timestamp.is_some() => {
                h.field(self.0.method.as_bytes());
                h.field(self.0.payload.get().as_bytes());
            }
            _ => return None,
        }
        Some(h.0)
    }
}

/// FNV-1a, 64 bits, over length-framed fields (so `("ab", "c")` and `("a", "bc")` differ).
struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Update {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let payload = RawValue::from_string(v["payload"].to_string()).unwrap();
        Update::new(
            RequestId::from(v["id"].as_u64().unwrap()),
            v["method"].as_str().unwrap(),
            payload,
        )
    }

    #[test]
    fn message_view() {
        let u = fixture("event.sendMessage.plain.json");
        assert_eq!(u.kind(), EventKind::Message);
        assert_eq!(
            u.chat_id(),
            Some("4a1f88f1070d2f43d385cde9ff61964bc6b74477")
        );
        assert_eq!(u.text(), Some("Hello, <b>bot</b>!"));
        assert_eq!(u.author_id(), Some("alice@video.example.com"));
        assert_eq!(u.chat_type(), Some(ChatType::P2p));
        assert_eq!(u.message_kind(), Some(MessageKind::Text));
        assert!(u.dedup_key().is_some());
    }

    #[test]
    fn fingerprints_are_pinned() {
        // Handled marks persist fingerprints (SQLite, Redis) across releases and replicas: a
        // change of function would make a restarted bot handle its whole window again.
        // The value comes from an independent FNV-1a of the framed fields.
        let u = fixture("event.sendMessage.plain.json");
        assert_eq!(u.dedup_key(), Some(0x0471_9631_fa0e_2fe6));
        let mut a = Fingerprint::default();
        a.field(b"ab");
        a.field(b"c");
        let mut b = Fingerprint::default();
        b.field(b"a");
        b.field(b"bc");
        assert_ne!(a.0, b.0, "fields are framed");
    }

    #[test]
    fn escaped_and_plain_strings_read_the_same() {
        let payload = r#"{"messageId":"m1","chat":{"chatId":"c\u0031","chatType":1},"author":{"id":"bob@x"},"content":{"text":"say \"hi\"\n\u00e9t\u00e9","parseMode":"text"},"timestamp":1,"type":200}"#;
        let u = Update::new(
            1,
            "sendMessage",
            RawValue::from_string(payload.into()).unwrap(),
        );
        assert_eq!(u.chat_id(), Some("c1"));
        assert_eq!(u.text(), Some("say \"hi\"\nété"));
        assert_eq!(u.author_id(), Some("bob@x"));
        assert_eq!(u.message_id(), Some("m1"));
        // Another event parsed meanwhile does not disturb this one's ranges.
        let other = fixture("event.sendMessage.plain.json");
        assert_eq!(other.author_id(), Some("alice@video.example.com"));
        assert_eq!(u.author_id(), Some("bob@x"));
    }

    #[test]
    fn button_press_view() {
        let u = fixture("event.command.waitReply.json");
        assert_eq!(u.kind(), EventKind::Command);
        assert_eq!(
            u.chat_id(),
            Some("4a1f88f1070d2f43d385cde9ff61964bc6b74477")
        );
        assert_eq!(u.button_command(), Some("/confirm"));
        assert_eq!(u.custom_data(), Some("ticket=4711"));
        assert!(u.waits_reply());
        assert_eq!(u.button_id(), Some("btn-yes"));
        assert_eq!(u.dedup_key(), None);
    }

    #[test]
    fn chatless_and_malformed_events() {
        let u = fixture("event.uploadFileProgress.json");
        assert_eq!(u.kind(), EventKind::UploadProgress);
        assert_eq!(u.chat_id(), None);
        let bad = Update::new(
            RequestId::from(1u64),
            "somethingNew",
            RawValue::from_string("[1,2]".into()).unwrap(),
        );
        assert_eq!(bad.kind(), EventKind::Unknown);
        assert_eq!(bad.chat_id(), None);
    }

    #[test]
    fn every_fixture_event_has_a_known_kind() {
        let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.starts_with("event.") {
                let u = fixture(&name);
                assert_ne!(u.kind(), EventKind::Unknown, "{name}");
                if !matches!(
                    u.kind(),
                    EventKind::UploadProgress | EventKind::LimitsChanged
                ) {
                    assert!(u.chat_id().is_some(), "{name} has a chat");
                }
                n += 1;
            }
        }
        assert!(n >= 30);
    }
}
