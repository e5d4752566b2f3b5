//! The message envelope (§10.1) and its content variants (§10.2).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::button::InlineKeyboard;
use super::enums::{AuthorType, ChatType, EnvelopeType, ParseMode, ReadyState, Role};

/// Who wrote a message or performed an action (`author`, `addedBy`, `removedBy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// TrueConf ID (`login@server`); empty for system notices.
    pub id: String,
    /// User or system.
    #[serde(rename = "type")]
    pub kind: AuthorType,
}

/// Ordering information of a message inside its chat (`box`). Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBox {
    /// Box id.
    pub id: i64,
    /// Opaque ordering token.
    pub position: String,
}

/// The short chat description carried by newer envelopes (`chat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRef {
    /// Chat id.
    pub chat_id: String,
    /// Chat title; `null` for some chats (e.g. Favorites).
    #[serde(default)]
    pub chat_title: Option<String>,
    /// Chat kind.
    pub chat_type: ChatType,
}

/// Text content (envelope type 200), also the content of `editMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextContent {
    /// The text, with markup according to `parse_mode`.
    pub text: String,
    /// How the text is rendered.
    #[serde(default)]
    pub parse_mode: ParseMode,
    /// Inline keyboard attached to the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<InlineKeyboard>,
}

/// File content (envelope type 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileContent {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Permanent file id, for `getFileInfo`.
    pub file_id: String,
    /// MIME type; stickers arrive as `sticker/webp`.
    pub mime_type: String,
    /// Whether the file can be downloaded yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_state: Option<ReadyState>,
}

/// Location content (envelope type 203).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationContent {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Survey content (envelope type 204).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyContent {
    /// Survey web-tool URL.
    pub url: String,
    /// Survey title.
    pub title: String,
    /// Survey campaign id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `{{Survey}}` or `{{Anonymous survey}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Button caption placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
    /// Survey app version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<u64>,
    /// Per-message secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// HTML fallback for clients that cannot show surveys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// Voice message content (envelope type 205).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceContent {
    /// Permanent file id, for `getFileInfo`.
    pub file_id: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type (e.g. `audio/ogg`).
    pub mime_type: String,
    /// Duration in seconds.
    pub duration: u64,
}

/// A participant and role (system envelope types 1 and 110).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleContent {
    /// The participant.
    pub user_id: String,
    /// Their role.
    pub role: Role,
}

/// A removed participant (system envelope type 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserContent {
    /// The participant.
    pub user_id: String,
}

/// A new chat title (system envelope type 21).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitleContent {
    /// The new title.
    pub title: String,
}

/// A new chat avatar (system envelope type 22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvatarContent {
    /// URL of the new avatar, `null` when removed.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// A history clear (system envelope type 23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearHistoryContent {
    /// Cleared for everyone rather than only for the author.
    #[serde(deserialize_with = "lenient_bool")]
    pub for_all: bool,
}

/// Accepts `true`/`false` and the strings `"true"`/`"false"` (older servers).
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B<'a> {
        Bool(bool),
        Str(&'a str),
        String(String),
    }
    let parse = |s: &str| match s.trim() {
        s if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
        s if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => Ok(false),
        other => Err(serde::de::Error::custom(format_args!(
            "expected a boolean, got {other:?}"
        ))),
    };
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Str(s) => parse(s),
        B::String(s) => parse(&s),
    }
}

/// The body of a message, selected by the envelope type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Content {
    /// 200: text, optionally with buttons.
    Text(TextContent),
    /// 201: a forwarded message (the inner envelope).
    Forwarded(Box<Message>),
    /// 202: a file (photo, video, sticker, document…).
    Attachment(FileContent),
    /// 203: a location.
    Location(LocationContent),
    /// 204: a survey.
    Survey(SurveyContent),
    /// 205: a voice message.
    Voice(VoiceContent),
    /// 1: a participant was added.
    ParticipantAdded(RoleContent),
    /// 2: a participant was removed.
    ParticipantRemoved(UserContent),
    /// 21: the chat title changed.
    ChatTitleChanged(TitleContent),
    /// 22: the chat avatar changed.
    ChatAvatarChanged(AvatarContent),
    /// 23: the history was cleared.
    HistoryCleared(ClearHistoryContent),
    /// 110: a participant's role was set.
    ParticipantRole(RoleContent),
    /// An envelope type this version of the crate does not know, kept raw.
    Unknown {
        /// The raw envelope `type`.
        envelope_type: u32,
        /// The raw `content`.
        content: Value,
    },
}

impl Content {
    /// The envelope type that carries this content.
    pub fn envelope_type(&self) -> EnvelopeType {
        match self {
            Content::Text(_) => EnvelopeType::PlainMessage,
            Content::Forwarded(_) => EnvelopeType::ForwardedMessage,
            Content::Attachment(_) => EnvelopeType::Attachment,
            Content::Location(_) => EnvelopeType::Location,
            Content::Survey(_) => EnvelopeType::Survey,
            Content::Voice(_) => EnvelopeType::VoiceMessage,
            Content::ParticipantAdded(_) => EnvelopeType::AddParticipant,
            Content::ParticipantRemoved(_) => EnvelopeType::RemoveParticipant,
            Content::ChatTitleChanged(_) => EnvelopeType::EditChatTitle,
            Content::ChatAvatarChanged(_) => EnvelopeType::EditChatAvatar,
            Content::HistoryCleared(_) => EnvelopeType::ClearChatHistory,
            Content::ParticipantRole(_) => EnvelopeType::ParticipantRole,
            Content::Unknown { envelope_type, .. } => EnvelopeType::from(*envelope_type),
        }
    }

    /// Decodes `content` straight from its JSON text (a missing one reads as `null`): no
    /// intermediate `Value` tree, so a text message costs one parse and its own strings.
    fn decode(kind: u32, content: Option<&RawValue>) -> serde_json::Result<Content> {
        fn v<'a, T: Deserialize<'a>>(raw: &'a str) -> serde_json::Result<T> {
            serde_json::from_str(raw)
        }
        let raw = content.map_or("null", RawValue::get);
        Ok(match EnvelopeType::from(kind) {
            EnvelopeType::PlainMessage => Content::Text(v(raw)?),
            EnvelopeType::ForwardedMessage => Content::Forwarded(Box::new(v(raw)?)),
            EnvelopeType::Attachment => Content::Attachment(v(raw)?),
            EnvelopeType::Location => Content::Location(v(raw)?),
            EnvelopeType::Survey => Content::Survey(v(raw)?),
            EnvelopeType::VoiceMessage => Content::Voice(v(raw)?),
            EnvelopeType::AddParticipant => Content::ParticipantAdded(v(raw)?),
            EnvelopeType::RemoveParticipant => Content::ParticipantRemoved(v(raw)?),
            EnvelopeType::EditChatTitle => Content::ChatTitleChanged(v(raw)?),
            EnvelopeType::EditChatAvatar => Content::ChatAvatarChanged(v(raw)?),
            EnvelopeType::ClearChatHistory => Content::HistoryCleared(v(raw)?),
            EnvelopeType::ParticipantRole => Content::ParticipantRole(v(raw)?),
            EnvelopeType::Unknown(_) => Content::Unknown {
                envelope_type: kind,
                content: v(raw)?,
            },
        })
    }

    fn encode(&self) -> serde_json::Result<Value> {
        use serde_json::to_value as v;
        match self {
            Content::Text(c) => v(c),
            Content::Forwarded(c) => v(c),
            Content::Attachment(c) => v(c),
            Content::Location(c) => v(c),
            Content::Survey(c) => v(c),
            Content::Voice(c) => v(c),
            Content::ParticipantAdded(c) | Content::ParticipantRole(c) => v(c),
            Content::ParticipantRemoved(c) => v(c),
            Content::ChatTitleChanged(c) => v(c),
            Content::ChatAvatarChanged(c) => v(c),
            Content::HistoryCleared(c) => v(c),
            Content::Unknown { content, .. } => Ok(content.clone()),
        }
    }
}

/// What a message is, for filtering (classified like the official client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// An attachment with an `image/` MIME type.
    Photo,
    /// An attachment with a `video/` MIME type.
    Video,
    /// An attachment with a `sticker/` MIME type.
    Sticker,
    /// An attachment with an `audio/` MIME type (not a document).
    Audio,
    /// Any other attachment.
    Document,
    /// A voice message (205).
    Voice,
    /// A location.
    Location,
    /// A survey.
    Survey,
    /// A forwarded message.
    Forwarded,
    /// A shared contact: a `text/vcard` attachment, or a text that is exactly one TrueConf
    /// profile link.
    Contact,
    /// A system notice (envelope types below 200).
    System,
    /// An unknown user envelope type.
    Unknown,
}

/// One message envelope: the `sendMessage` event payload, a `getMessageById` response, a
/// history item, a forwarded inner message, a reply target or a chat's last message.
///
/// Both envelope generations decode: top-level `chatId` (older servers), nested `chat`
/// (newer), or both; keys are re-encoded exactly as they arrived.
///
/// Decoding needs serde_json (text, bytes, a reader or a `Value`): `content` is held as raw
/// JSON until the envelope `type`, which may come after it, says what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EnvelopeIn", into = "RawEnvelope")]
pub struct Message {
    /// Message id.
    pub message_id: String,
    /// Top-level `chatId` (older envelope shape), when present.
    pub chat_id: Option<String>,
    /// Nested `chat` (newer envelope shape), when present.
    pub chat: Option<ChatRef>,
    /// Unix time in milliseconds.
    pub timestamp: u64,
    /// Author.
    pub author: Author,
    /// Ordering info; absent in forwarded inner envelopes and chats' last messages.
    pub r#box: Option<MessageBox>,
    /// The body, selected by the envelope type.
    pub content: Content,
    /// Whether the message was edited; absent in some envelopes.
    pub is_edited: Option<bool>,
    /// Id of the message this one replies to.
    pub reply_message_id: Option<String>,
    /// The replied-to message, expanded one level.
    pub reply_message: Option<Box<Message>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chat: Option<ChatRef>,
    timestamp: u64,
    #[serde(rename = "type")]
    kind: u32,
    author: Author,
    #[serde(default, rename = "box", skip_serializing_if = "Option::is_none")]
    bx: Option<MessageBox>,
    #[serde(default)]
    content: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_edited: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_message: Option<Box<Message>>,
}

/// The envelope as it arrives: like [`RawEnvelope`], but `content` stays JSON text until
/// `type` (which may come after it) says what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeIn {
    message_id: String,
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default)]
    chat: Option<ChatRef>,
    timestamp: u64,
    #[serde(rename = "type")]
    kind: u32,
    author: Author,
    #[serde(default, rename = "box")]
    bx: Option<MessageBox>,
    #[serde(default)]
    content: Option<Box<RawValue>>,
    #[serde(default)]
    is_edited: Option<bool>,
    #[serde(default)]
    reply_message_id: Option<String>,
    #[serde(default)]
    reply_message: Option<Box<Message>>,
}

impl TryFrom<EnvelopeIn> for Message {
    type Error = String;

    fn try_from(r: EnvelopeIn) -> Result<Self, String> {
        let content = Content::decode(r.kind, r.content.as_deref())
            .map_err(|e| format!("content of envelope type {}: {e}", r.kind))?;
        Ok(Message {
            message_id: r.message_id,
            chat_id: r.chat_id,
            chat: r.chat,
            timestamp: r.timestamp,
            author: r.author,
            r#box: r.bx,
            content,
            is_edited: r.is_edited,
            reply_message_id: r.reply_message_id,
            reply_message: r.reply_message,
        })
    }
}

impl From<Message> for RawEnvelope {
    fn from(m: Message) -> Self {
        RawEnvelope {
            kind: m.content.envelope_type().code(),
            // Every content type serialises from plain strings, numbers and JSON values.
            content: m.content.encode().unwrap_or(Value::Null),
            message_id: m.message_id,
            chat_id: m.chat_id,
            chat: m.chat,
            timestamp: m.timestamp,
            author: m.author,
            bx: m.r#box,
            is_edited: m.is_edited,
            reply_message_id: m.reply_message_id,
            reply_message: m.reply_message,
        }
    }
}

impl Message {
    /// The chat id, from the nested `chat` or the older top-level `chatId`.
    pub fn chat_id(&self) -> Option<&str> {
        self.chat
            .as_ref()
            .map(|c| c.chat_id.as_str())
            .or(self.chat_id.as_deref())
    }

    /// The chat kind, when the envelope carries the nested `chat`.
    pub fn chat_type(&self) -> Option<ChatType> {
        self.chat.as_ref().map(|c| c.chat_type)
    }

    /// The author's TrueConf ID (empty for system notices).
    pub fn author_id(&self) -> &str {
        &self.author.id
    }

    /// The envelope type.
    pub fn envelope_type(&self) -> EnvelopeType {
        self.content.envelope_type()
    }

    /// The text of a text message, without the leading reply quote: as the official
    /// client's `Message.text`, a reply that quotes part of the replied message
    /// (`<quote class="reply">…</quote><br>…`) gives only the text after the quote. Markup
    /// is kept. [`Message::full_text`] gives the text exactly as received.
    pub fn text(&self) -> Option<&str> {
        self.full_text().map(|t| strip_leading_reply_quote(t).1)
    }

    /// The text of a text message exactly as received (markup and reply quote included).
    pub fn full_text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(t) => Some(&t.text),
            _ => None,
        }
    }

    /// The raw (still escaped) body of a leading reply quote, if the text starts with one;
    /// `format::reply_quote` unescapes it.
    pub fn reply_quote_html(&self) -> Option<&str> {
        self.full_text()
            .and_then(|t| strip_leading_reply_quote(t).0)
    }

    /// The parse mode of a text message.
    pub fn parse_mode(&self) -> Option<&ParseMode> {
        match &self.content {
            Content::Text(t) => Some(&t.parse_mode),
            _ => None,
        }
    }

    /// The inline keyboard of a text message.
    pub fn buttons(&self) -> Option<&InlineKeyboard> {
        match &self.content {
            Content::Text(t) => t.buttons.as_ref(),
            _ => None,
        }
    }

    /// The attached file, for attachments.
    pub fn file(&self) -> Option<&FileContent> {
        match &self.content {
            Content::Attachment(f) => Some(f),
            _ => None,
        }
    }

    /// The id of the message this one replies to.
    pub fn reply_to_id(&self) -> Option<&str> {
        self.reply_message_id
            .as_deref()
            .or_else(|| self.reply_message.as_ref().map(|m| m.message_id.as_str()))
    }

    /// Whether this is a system notice (participant, title, avatar, history, role changes).
    pub fn is_system(&self) -> bool {
        self.envelope_type().is_system()
    }

    /// Whether the message was edited.
    pub fn is_edited(&self) -> bool {
        self.is_edited.unwrap_or(false)
    }

    /// What the message is, classified by envelope type and (for attachments) MIME type.
    pub fn kind(&self) -> MessageKind {
        match &self.content {
            Content::Text(t) if is_profile_link(&t.text) => MessageKind::Contact,
            Content::Text(_) => MessageKind::Text,
            Content::Forwarded(_) => MessageKind::Forwarded,
            Content::Attachment(f) => classify_mime(&f.mime_type),
            Content::Location(_) => MessageKind::Location,
            Content::Survey(_) => MessageKind::Survey,
            Content::Voice(_) => MessageKind::Voice,
            Content::Unknown { envelope_type, .. } if *envelope_type >= 200 => MessageKind::Unknown,
            _ => MessageKind::System,
        }
    }
}

/// Classifies an attachment by MIME type as the official client does.
pub fn classify_mime(mime: &str) -> MessageKind {
    let mime = mime.trim().to_ascii_lowercase();
    if mime.starts_with("image/") {
        MessageKind::Photo
    } else if mime.starts_with("video/") {
        MessageKind::Video
    } else if mime.starts_with("sticker/") {
        MessageKind::Sticker
    } else if mime.starts_with("audio/") {
        MessageKind::Audio
    } else if mime.starts_with("text/vcard") || mime.starts_with("text/x-vcard") {
        MessageKind::Contact
    } else {
        MessageKind::Document
    }
}

/// A text that is exactly one `<a href="trueconf:…">Name</a>` link is a shared contact.
/// Splits `<quote class="reply">QUOTE</quote>` + one or more `<br>` off the start of `text`:
/// `(Some(QUOTE), rest)`, or `(None, text)` when it does not start so. The same grammar as the
/// official client's `STRIP_QUOTE_RE` (`<quote\s+class="reply">(.*?)</quote>(?:<br>)+`, also
/// accepting `<br/>`), in one linear pass.
pub(crate) fn strip_leading_reply_quote(text: &str) -> (Option<&str>, &str) {
    fn split(text: &str) -> Option<(&str, &str)> {
        let rest = text.strip_prefix("<quote")?;
        let attrs = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        if attrs.len() == rest.len() {
            return None;
        }
        let body = attrs.strip_prefix("class=\"reply\">")?;
        let close = body.find("</quote>")?;
        let mut after = &body[close + "</quote>".len()..];
        let mut brs = 0;
        while let Some(r) = ["<br>", "<br/>", "<br />"]
            .iter()
            .find_map(|b| after.strip_prefix(b))
        {
            after = r;
            brs += 1;
        }
        (brs > 0).then_some((&body[..close], after))
    }
    match split(text) {
        Some((quote, rest)) => (Some(quote), rest),
        None => (None, text),
    }
}

fn is_profile_link(text: &str) -> bool {
    let t = text.trim();
    let rest = t
        .strip_prefix("<a href=\"trueconf:")
        .or_else(|| t.strip_prefix("<a href='trueconf:"));
    match rest {
        Some(rest) => rest.ends_with("</a>") && rest.matches("<a").count() == 0,
        None => false,
    }
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.encode()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}
