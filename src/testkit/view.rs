//! Typed views of what the emulator holds: messages, their buttons, files and surveys, and
//! chats, so a test reads `message.text()` instead of digging through `["content"]["text"]`.
//!
//! They are snapshots built from the wire shapes the emulator keeps (the message envelope of
//! PROTOCOL.md §10.1, the chat records). Every view keeps the envelope it came from
//! ([`SimMessage::raw`]) for the fields it does not model, and indexing a [`SimMessage`] with a
//! key (`message["content"]`) reads that envelope, as the raw JSON did.

use serde_json::Value;

/// What kind of message an envelope carries (its `type`, PROTOCOL.md §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Plain or formatted text (type 200), possibly with inline buttons.
    Text,
    /// A forwarded message (201).
    Forward,
    /// A file or sticker (202).
    File,
    /// A survey card (204).
    Survey,
    /// A system notice (below 200): participants added or removed, title changed, …
    System(u16),
    /// Any other type number.
    Other(u16),
}

impl MessageKind {
    /// The kind for a wire `type` number.
    pub fn from_code(code: u16) -> MessageKind {
        match code {
            200 => MessageKind::Text,
            201 => MessageKind::Forward,
            202 => MessageKind::File,
            204 => MessageKind::Survey,
            n if n < 200 => MessageKind::System(n),
            n => MessageKind::Other(n),
        }
    }
}

/// What pressing an inline button does (PROTOCOL.md §10.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonAction {
    /// Sends `command` (with `custom_data`) back to the bot as a `command` event.
    Command {
        /// The command string.
        command: String,
        /// Opaque data echoed with the command.
        custom_data: Option<String>,
        /// Whether the bot asked for a `commandId` to answer.
        wait_reply: bool,
    },
    /// Opens a link.
    Url(String),
    /// The user's client sends this text (or puts it in the input box).
    Message(String),
    /// Copies this text to the clipboard.
    Copy(String),
    /// A button kind the view does not know.
    Other(String),
}

/// One inline button of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimButton {
    /// Caption (empty for a `url` button without one).
    pub label: String,
    /// What it does.
    pub action: ButtonAction,
}

impl SimButton {
    /// The command of a command button.
    pub fn command(&self) -> Option<&str> {
        match &self.action {
            ButtonAction::Command { command, .. } => Some(command),
            _ => None,
        }
    }

    fn from_json(button: &Value) -> SimButton {
        let text = |key: &str| button.get(key).and_then(Value::as_str).map(str::to_owned);
        let kind = text("type").unwrap_or_default();
        let action = match (kind.as_str(), text("command"), text("url")) {
            ("command", Some(command), _) | ("", Some(command), _) => ButtonAction::Command {
                command,
                custom_data: text("customData"),
                wait_reply: button["waitReply"] == true,
            },
            ("url", _, Some(url)) | ("", None, Some(url)) => ButtonAction::Url(url),
            ("message", _, _) => ButtonAction::Message(text("message").unwrap_or_default()),
            ("copy", _, _) => ButtonAction::Copy(text("data").unwrap_or_default()),
            (other, _, _) => ButtonAction::Other(other.to_owned()),
        };
        SimButton {
            label: text("label").unwrap_or_default(),
            action,
        }
    }
}

/// The file a file message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAttachment {
    /// Permanent file id (for [`Sim::file_bytes`](crate::testkit::Sim::file_bytes)).
    pub file_id: String,
    /// File name.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the upload has finished (`readyState` 2).
    pub ready: bool,
}

/// The card of a survey message (PROTOCOL.md §8, `sendSurvey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSurvey {
    /// Title.
    pub title: String,
    /// The survey page's base URL.
    pub url: String,
    /// The survey campaign id.
    pub path: String,
    /// Description (a `{{…}}` placeholder the clients localise).
    pub description: String,
    /// The HTML fallback with the survey's link.
    pub alt: String,
}

impl SimSurvey {
    /// The link a user follows: `url?id=path`.
    pub fn link(&self) -> String {
        format!("{}?id={}", self.url, self.path)
    }
}

/// A message as the emulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    /// Message id.
    pub id: String,
    /// Chat id.
    pub chat_id: String,
    /// The author's full id (`login@domain`); empty for the server's system notices.
    pub author: String,
    /// Its kind.
    pub kind: MessageKind,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Whether it was edited.
    pub edited: bool,
    /// The message it replies to.
    pub reply_to: Option<String>,
    raw: Value,
}

impl SimMessage {
    /// The view of a message envelope.
    pub fn from_envelope(envelope: Value) -> SimMessage {
        let text = |key: &str| {
            envelope
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        SimMessage {
            id: text("messageId"),
            chat_id: text("chatId"),
            author: envelope["author"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            kind: MessageKind::from_code(envelope["type"].as_u64().unwrap_or(0) as u16),
            timestamp: envelope["timestamp"].as_u64().unwrap_or(0),
            edited: envelope["isEdited"] == true,
            reply_to: envelope
                .get("replyMessageId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            raw: envelope,
        }
    }

    /// The envelope exactly as the emulator holds it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The envelope, taken out of the view.
    pub fn into_raw(self) -> Value {
        self.raw
    }

    fn content_str(&self, key: &str) -> Option<&str> {
        self.raw["content"].get(key).and_then(Value::as_str)
    }

    /// The text of a text message, as sent (HTML or Markdown source included); of a forward,
    /// the forwarded message's text.
    pub fn text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => self.content_str("text"),
            MessageKind::Forward => self.raw["content"]["content"]["text"].as_str(),
            _ => None,
        }
    }

    /// The text, or for other kinds what a chat list would show (a survey's title, a file's
    /// name); empty when there is nothing.
    pub fn text_or_title(&self) -> &str {
        self.text()
            .or_else(|| self.content_str("title"))
            .or_else(|| self.content_str("name"))
            .unwrap_or_default()
    }

    /// The parse mode of a text message (`text`, `markdown`, `html`).
    pub fn parse_mode(&self) -> Option<&str> {
        self.content_str("parseMode")
    }

    /// The inline keyboard, row by row (empty without one).
    pub fn buttons(&self) -> Vec<Vec<SimButton>> {
        self.raw["content"]["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .map(|row| row.iter().map(SimButton::from_json).collect())
            .collect()
    }

    /// The button whose command is `command`.
    pub fn button(&self, command: &str) -> Option<SimButton> {
        self.buttons()
            .into_iter()
            .flatten()
            .find(|button| button.command() == Some(command))
    }

    /// The file of a file message.
    pub fn file(&self) -> Option<SimAttachment> {
        if self.kind != MessageKind::File {
            return None;
        }
        let content = &self.raw["content"];
        Some(SimAttachment {
            file_id: content["fileId"].as_str().unwrap_or_default().to_owned(),
            name: content["name"].as_str().unwrap_or_default().to_owned(),
            mime: content["mimeType"].as_str().unwrap_or_default().to_owned(),
            size: content["size"].as_u64().unwrap_or(0),
            ready: content["readyState"] == 2,
        })
    }

    /// The card of a survey message.
    pub fn survey(&self) -> Option<SimSurvey> {
        if self.kind != MessageKind::Survey {
            return None;
        }
        let text = |key| self.content_str(key).unwrap_or_default().to_owned();
        Some(SimSurvey {
            title: text("title"),
            url: text("url"),
            path: text("path"),
            description: text("description"),
            alt: text("alt"),
        })
    }

    /// One line for a transcript: the text, the buttons, or what kind of message it is.
    pub fn summary(&self) -> String {
        let mut line = match self.kind {
            MessageKind::Survey => format!("[survey card] {}", self.text_or_title()),
            MessageKind::File => format!(
                "[file] {}",
                self.file()
                    .map(|f| f.name)
                    .unwrap_or_else(|| "(attachment)".into())
            ),
            _ => self.text_or_title().to_owned(),
        };
        let labels: Vec<String> = self
            .buttons()
            .into_iter()
            .flatten()
            .map(|button| format!("[{}]", button.label))
            .collect();
        if !labels.is_empty() {
            line.push_str("  ");
            line.push_str(&labels.join(" "));
        }
        line
    }
}

impl std::ops::Index<&str> for SimMessage {
    type Output = Value;

    /// A field of the raw envelope (`Value::Null` when absent), as on the JSON itself.
    fn index(&self, key: &str) -> &Value {
        &self.raw[key]
    }
}

impl std::fmt::Display for SimMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// The kind of a chat (PROTOCOL.md §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// A personal chat of two.
    P2p,
    /// A group chat.
    Group,
    /// The owner's "Favorites".
    Favorites,
    /// A channel (only owners, admins and writers post).
    Channel,
    /// Another type number.
    Other(u8),
}

impl ChatKind {
    /// The kind for a wire `chatType`.
    pub fn from_code(code: u8) -> ChatKind {
        match code {
            1 => ChatKind::P2p,
            2 => ChatKind::Group,
            5 => ChatKind::Favorites,
            6 => ChatKind::Channel,
            n => ChatKind::Other(n),
        }
    }
}

/// A chat as the emulator stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChat {
    /// Chat id.
    pub id: String,
    /// Title (personal chats have none).
    pub title: Option<String>,
    /// Its kind.
    pub kind: ChatKind,
    /// Participants as `(full user id, role)`, in joining order.
    pub participants: Vec<(String, String)>,
}
