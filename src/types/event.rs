//! Server → client events (§9).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::chat::Chat;
use super::enums::Role;
use super::file::UploadLimits;
use super::message::{Author, Message, TextContent, lenient_bool};
use crate::error::{Error, Result};

/// `command` event: a user pressed a command button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandEvent {
    /// Present only for `waitReply` buttons; answer with `answerCommand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// Where the command came from.
    pub command_source: CommandSource,
    /// The command itself.
    pub command_payload: CommandPayload,
}

impl CommandEvent {
    /// The command string (`commandPayload.command`).
    pub fn command(&self) -> &str {
        &self.command_payload.command
    }

    /// The button's custom data.
    pub fn custom_data(&self) -> Option<&str> {
        self.command_payload.custom_data.as_deref()
    }

    /// The chat of the message carrying the button.
    pub fn chat_id(&self) -> Option<&str> {
        self.command_source
            .message
            .as_ref()
            .and_then(|m| m.chat_id())
    }
}

/// `commandSource` of a [`CommandEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandSource {
    /// Source kind, e.g. `"button"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message that carried the button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Message>>,
    /// The pressed button's `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_id: Option<String>,
    /// Whether the button asked for a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_reply: Option<bool>,
}

/// `commandPayload` of a [`CommandEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandPayload {
    /// Payload kind, e.g. `"command"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The button's command.
    pub command: String,
    /// The button's custom data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
}

/// `editMessage` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEdited {
    /// Chat id.
    pub chat_id: String,
    /// Edited message id (expected; unconfirmed by the official client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Edit time, ms.
    pub timestamp: u64,
    /// The new content.
    pub content: TextContent,
}

/// `removeMessage` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRemoved {
    /// Chat id.
    pub chat_id: String,
    /// Removed message id.
    pub message_id: String,
    /// Who removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<Author>,
}

/// Which method announced a new chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatCreatedKind {
    /// `createP2PChat`.
    P2p,
    /// `createGroupChat`.
    Group,
    /// `createChannel`.
    Channel,
    /// `createFavoritesChat`.
    Favorites,
}

impl ChatCreatedKind {
    /// The event method.
    pub fn method(self) -> &'static str {
        match self {
            ChatCreatedKind::P2p => "createP2PChat",
            ChatCreatedKind::Group => "createGroupChat",
            ChatCreatedKind::Channel => "createChannel",
            ChatCreatedKind::Favorites => "createFavoritesChat",
        }
    }
}

/// `{chatId}` payloads (`removeChat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatRemoved {
    /// Chat id.
    pub chat_id: String,
}

/// `editChatTitle` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatTitleEdited {
    /// Chat id.
    pub chat_id: String,
    /// New title.
    pub title: String,
}

/// `editChatAvatar` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatAvatarEdited {
    /// Chat id.
    pub chat_id: String,
    /// New avatar URL; `null` when removed.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// `clearHistory` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryCleared {
    /// Chat id.
    pub chat_id: String,
    /// Cleared for everyone (older servers send the strings `"true"`/`"false"`).
    #[serde(deserialize_with = "lenient_bool")]
    pub for_all: bool,
}

/// `addChatParticipant` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantAdded {
    /// Chat id.
    pub chat_id: String,
    /// The new participant.
    pub user_id: String,
    /// When, ms.
    pub timestamp: u64,
    /// Who added them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<Author>,
}

/// `removeChatParticipant` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRemoved {
    /// Chat id.
    pub chat_id: String,
    /// The removed participant.
    pub user_id: String,
    /// When, ms.
    pub timestamp: u64,
    /// Who removed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<Author>,
}

/// `changeParticipantRole` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRoleChanged {
    /// Chat id.
    pub chat_id: String,
    /// The participant.
    pub user_id: String,
    /// Their new role.
    pub role: Role,
    /// When, ms.
    pub timestamp: u64,
}

/// `uploadFileProgress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadProgress {
    /// File id.
    pub file_id: String,
    /// Bytes received so far.
    pub progress: u64,
}

/// One server → client event, decoded by its method.
// Most events are messages, so boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// `sendMessage`: a new message (user or system envelope).
    Message(Message),
    /// `command`: a command button was pressed.
    Command(CommandEvent),
    /// `editMessage`.
    MessageEdited(MessageEdited),
    /// `removeMessage`.
    MessageRemoved(MessageRemoved),
    /// `createP2PChat` / `createGroupChat` / `createChannel` / `createFavoritesChat`.
    ChatCreated {
        /// Which method announced it.
        kind: ChatCreatedKind,
        /// The chat.
        chat: Chat,
    },
    /// `removeChat`.
    ChatRemoved(ChatRemoved),
    /// `editChatTitle`.
    ChatTitleEdited(ChatTitleEdited),
    /// `editChatAvatar`.
    ChatAvatarEdited(ChatAvatarEdited),
    /// `clearHistory`.
    HistoryCleared(HistoryCleared),
    /// `addChatParticipant`.
    ParticipantAdded(ParticipantAdded),
    /// `removeChatParticipant`.
    ParticipantRemoved(ParticipantRemoved),
    /// `changeParticipantRole`.
    ParticipantRoleChanged(ParticipantRoleChanged),
    /// `getFileUploadLimits`: the administrator changed the limits.
    UploadLimitsChanged(UploadLimits),
    /// `uploadFileProgress`.
    UploadProgress(UploadProgress),
    /// Any other method, kept raw.
    Unknown {
        /// The event method.
        method: String,
        /// The untouched payload.
        payload: Box<RawValue>,
    },
}

impl Event {
    /// Decodes the payload of a server request with method `method`. Unknown methods become
    /// [`Event::Unknown`]; a payload that does not fit its known method is an
    /// [`Error::Protocol`] naming the method and the reason.
    pub fn decode(method: &str, payload: &RawValue) -> Result<Event> {
        fn de<'a, T: Deserialize<'a>>(method: &str, payload: &'a RawValue) -> Result<T> {
            serde_json::from_str(payload.get())
                .map_err(|e| Error::protocol(format!("malformed `{method}` event payload: {e}")))
        }
        let created = |kind| -> Result<Event> {
            Ok(Event::ChatCreated {
                kind,
                chat: de(method, payload)?,
            })
        };
        Ok(match method {
            "sendMessage" => Event::Message(de(method, payload)?),
            "command" => Event::Command(de(method, payload)?),
            "editMessage" => Event::MessageEdited(de(method, payload)?),
            "removeMessage" => Event::MessageRemoved(de(method, payload)?),
            "createP2PChat" => created(ChatCreatedKind::P2p)?,
            "createGroupChat" => created(ChatCreatedKind::Group)?,
            "createChannel" => created(ChatCreatedKind::Channel)?,
            "createFavoritesChat" => created(ChatCreatedKind::Favorites)?,
            "removeChat" => Event::ChatRemoved(de(method, payload)?),
            "editChatTitle" => Event::ChatTitleEdited(de(method, payload)?),
            "editChatAvatar" => Event::ChatAvatarEdited(de(method, payload)?),
            "clearHistory" => Event::HistoryCleared(de(method, payload)?),
            "addChatParticipant" => Event::ParticipantAdded(de(method, payload)?),
            "removeChatParticipant" => Event::ParticipantRemoved(de(method, payload)?),
            "changeParticipantRole" => Event::ParticipantRoleChanged(de(method, payload)?),
            "getFileUploadLimits" => Event::UploadLimitsChanged(de(method, payload)?),
            "uploadFileProgress" => Event::UploadProgress(de(method, payload)?),
            other => Event::Unknown {
                method: other.to_owned(),
                payload: payload.to_owned(),
            },
        })
    }

    /// The event method.
    pub fn method(&self) -> &str {
        match self {
            Event::Message(_) => "sendMessage",
            Event::Command(_) => "command",
            Event::MessageEdited(_) => "editMessage",
            Event::MessageRemoved(_) => "removeMessage",
            Event::ChatCreated { kind, .. } => kind.method(),
            Event::ChatRemoved(_) => "removeChat",
            Event::ChatTitleEdited(_) => "editChatTitle",
            Event::ChatAvatarEdited(_) => "editChatAvatar",
            Event::HistoryCleared(_) => "clearHistory",
            Event::ParticipantAdded(_) => "addChatParticipant",
            Event::ParticipantRemoved(_) => "removeChatParticipant",
            Event::ParticipantRoleChanged(_) => "changeParticipantRole",
            Event::UploadLimitsChanged(_) => "getFileUploadLimits",
            Event::UploadProgress(_) => "uploadFileProgress",
            Event::Unknown { method, .. } => method,
        }
    }

    /// The chat the event belongs to, for routing to per-chat workers. `None` for
    /// server-wide events (upload limits, upload progress) and unknown methods.
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Event::Message(m) => m.chat_id(),
            Event::Command(c) => c.chat_id(),
            Event::MessageEdited(e) => Some(&e.chat_id),
            Event::MessageRemoved(e) => Some(&e.chat_id),
            Event::ChatCreated { chat, .. } => Some(&chat.chat_id),
            Event::ChatRemoved(e) => Some(&e.chat_id),
            Event::ChatTitleEdited(e) => Some(&e.chat_id),
            Event::ChatAvatarEdited(e) => Some(&e.chat_id),
            Event::HistoryCleared(e) => Some(&e.chat_id),
            Event::ParticipantAdded(e) => Some(&e.chat_id),
            Event::ParticipantRemoved(e) => Some(&e.chat_id),
            Event::ParticipantRoleChanged(e) => Some(&e.chat_id),
            Event::UploadLimitsChanged(_) | Event::UploadProgress(_) | Event::Unknown { .. } => {
                None
            }
        }
    }

    /// The message, for `sendMessage` events.
    pub fn as_message(&self) -> Option<&Message> {
        match self {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }

    /// Encodes the payload back to JSON.
    pub fn payload(&self) -> Result<Box<RawValue>> {
        let raw = match self {
            Event::Message(e) => serde_json::value::to_raw_value(e),
            Event::Command(e) => serde_json::value::to_raw_value(e),
            Event::MessageEdited(e) => serde_json::value::to_raw_value(e),
            Event::MessageRemoved(e) => serde_json::value::to_raw_value(e),
            Event::ChatCreated { chat, .. } => serde_json::value::to_raw_value(chat),
            Event::ChatRemoved(e) => serde_json::value::to_raw_value(e),
            Event::ChatTitleEdited(e) => serde_json::value::to_raw_value(e),
            Event::ChatAvatarEdited(e) => serde_json::value::to_raw_value(e),
            Event::HistoryCleared(e) => serde_json::value::to_raw_value(e),
            Event::ParticipantAdded(e) => serde_json::value::to_raw_value(e),
            Event::ParticipantRemoved(e) => serde_json::value::to_raw_value(e),
            Event::ParticipantRoleChanged(e) => serde_json::value::to_raw_value(e),
            Event::UploadLimitsChanged(e) => serde_json::value::to_raw_value(e),
            Event::UploadProgress(e) => serde_json::value::to_raw_value(e),
            Event::Unknown { payload, .. } => return Ok(payload.clone()),
        };
        raw.map_err(|e| Error::protocol(format!("encoding `{}` event: {e}", self.method())))
    }

    /// Encodes the event back to `(method, payload)`.
    pub fn encode(&self) -> Result<(String, Box<RawValue>)> {
        Ok((self.method().to_owned(), self.payload()?))
    }
}
