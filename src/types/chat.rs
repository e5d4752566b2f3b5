//! Chats (§8.4) and participants (§8.5).

use serde::{Deserialize, Serialize};

use super::enums::{AuthorType, ChatType, Role};
use super::macros::double_option;
use super::message::Message;

/// A chat as returned by `getChatByID`, `getChats` and the chat-created events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// Chat id.
    pub chat_id: String,
    /// Title; `null` for some chats (e.g. Favorites).
    #[serde(default)]
    pub title: Option<String>,
    /// Chat kind.
    pub chat_type: ChatType,
    /// Number of messages the bot has not read.
    #[serde(default)]
    pub unread_messages: u64,
    /// Avatar URL: absent, `null`, or a URL (kept as received).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub avatar_url: Option<Option<String>>,
    /// The newest message (an envelope without `box`/`isEdited`).
    #[serde(default)]
    pub last_message: Option<Box<Message>>,
}

impl Chat {
    /// The avatar URL, if the chat has one.
    pub fn avatar_url(&self) -> Option<&str> {
        self.avatar_url.as_ref().and_then(|u| u.as_deref())
    }
}

/// A chat participant (`getChatParticipants` items, `getChatParticipant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// TrueConf ID.
    pub user_id: String,
    /// Role in the chat.
    pub role: Role,
    /// User or system account (only in `getChatParticipant`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AuthorType>,
}
