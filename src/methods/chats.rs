//! Chat methods (§8.4).

use serde::{Deserialize, Deserializer, Serialize};

use super::{Empty, Request, request};
use crate::error::{Error, Result};
use crate::types::Chat;

/// Longest group chat or channel title.
pub const MAX_TITLE_LEN: usize = 256;

/// `getChats`: a page of the bot's chats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetChats {
    /// Chats per page.
    pub count: u32,
    /// Page number (≥ 1).
    pub page: u32,
}

impl GetChats {
    /// Page `page` (from 1) with `count` chats per page.
    pub fn new(count: u32, page: u32) -> Self {
        GetChats { count, page }
    }
}

impl Default for GetChats {
    fn default() -> Self {
        GetChats { count: 10, page: 1 }
    }
}

/// `getChats` response: the server may send a bare array or `{"chats": […]}`; encodes as the
/// object form.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ChatList {
    /// The chats.
    pub chats: Vec<Chat>,
}

impl<'de> Deserialize<'de> for ChatList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // A visitor rather than an untagged enum: that would buffer the chats first, which
        // the messages inside them (raw `content`) cannot go through.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ChatList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of chats or an object with `chats`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<ChatList, A::Error> {
                let chats =
                    Vec::<Chat>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ChatList { chats })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ChatList, A::Error> {
                let mut chats = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "chats" {
                        chats = map.next_value()?;
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ChatList { chats })
            }
        }
        d.deserialize_any(V)
    }
}

impl Request for GetChats {
    const METHOD: &'static str = "getChats";
    const IDEMPOTENT: bool = true;
    type Response = ChatList;

    fn validate(&self) -> Result<()> {
        if self.page < 1 {
            return Err(Error::invalid("page", "must be at least 1; got 0"));
        }
        Ok(())
    }
}

/// `getChatByID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetChatById {
    /// Chat id.
    pub chat_id: String,
}

impl GetChatById {
    /// Fetches `chat_id`.
    pub fn new(chat_id: impl Into<String>) -> Self {
        GetChatById {
            chat_id: chat_id.into(),
        }
    }
}

request!(GetChatById, "getChatByID", Chat, idempotent);

/// `{chatId}`: a chat was created (or the existing one returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedChat {
    /// Chat id.
    pub chat_id: String,
}

/// `createP2PChat`: the personal chat with a user (existing or new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateP2PChat {
    /// The other user (a bare login is completed with the server domain).
    pub user_id: String,
}

impl CreateP2PChat {
    /// The personal chat with `user_id`.
    pub fn new(user_id: impl Into<String>) -> Self {
        CreateP2PChat {
            user_id: user_id.into(),
        }
    }
}

request!(CreateP2PChat, "createP2PChat", CreatedChat, users(user_id));

fn check_title(title: &str) -> Result<()> {
    if title.trim().is_empty() {
        return Err(Error::invalid("title", "must not be empty"));
    }
    let n = title.chars().count();
    if n > MAX_TITLE_LEN {
        return Err(Error::invalid(
            "title",
            format!("at most {MAX_TITLE_LEN} characters; got {n}"),
        ));
    }
    Ok(())
}

/// `createGroupChat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroupChat {
    /// Title (1–256 characters).
    pub title: String,
}

impl CreateGroupChat {
    /// A group chat titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        CreateGroupChat {
            title: title.into(),
        }
    }
}

impl Request for CreateGroupChat {
    const METHOD: &'static str = "createGroupChat";
    type Response = CreatedChat;

    fn validate(&self) -> Result<()> {
        check_title(&self.title)
    }
}

/// `createChannel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateChannel {
    /// Title (1–256 characters).
    pub title: String,
}

impl CreateChannel {
    /// A channel titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        CreateChannel {
            title: title.into(),
        }
    }
}

impl Request for CreateChannel {
    const METHOD: &'static str = "createChannel";
    type Response = CreatedChat;

    fn validate(&self) -> Result<()> {
        check_title(&self.title)
    }
}

/// `createFavoritesChat` (payload `{}`): the bot's own "saved messages" chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateFavoritesChat {}

request!(CreateFavoritesChat, "createFavoritesChat", CreatedChat);

/// `removeChat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveChat {
    /// Chat id.
    pub chat_id: String,
}

impl RemoveChat {
    /// Deletes `chat_id`.
    pub fn new(chat_id: impl Into<String>) -> Self {
        RemoveChat {
            chat_id: chat_id.into(),
        }
    }
}

request!(RemoveChat, "removeChat", Empty);

/// `editChatTitle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditChatTitle {
    /// Chat id.
    pub chat_id: String,
    /// New title.
    pub title: String,
}

impl EditChatTitle {
    /// Renames `chat_id`.
    pub fn new(chat_id: impl Into<String>, title: impl Into<String>) -> Self {
        EditChatTitle {
            chat_id: chat_id.into(),
            title: title.into(),
        }
    }
}

/// `editChatTitle` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitleEdited {
    /// Chat id.
    pub chat_id: String,
    /// Server time, ms.
    pub timestamp: u64,
}

request!(EditChatTitle, "editChatTitle", TitleEdited);

/// `editChatAvatar`: sets an uploaded image as the chat avatar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditChatAvatar {
    /// Chat id.
    pub chat_id: String,
    /// From the HTTP upload.
    pub temporal_file_id: String,
}

impl EditChatAvatar {
    /// Sets `temporal_file_id` as the avatar of `chat_id`.
    pub fn new(chat_id: impl Into<String>, temporal_file_id: impl Into<String>) -> Self {
        EditChatAvatar {
            chat_id: chat_id.into(),
            temporal_file_id: temporal_file_id.into(),
        }
    }
}

request!(EditChatAvatar, "editChatAvatar", Empty);

/// `clearHistory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearHistory {
    /// Chat id.
    pub chat_id: String,
    /// Clear for everyone (`true`) or only for the bot (`false`, the default).
    pub for_all: bool,
}

impl ClearHistory {
    /// Clears `chat_id` for the bot only.
    pub fn new(chat_id: impl Into<String>) -> Self {
        ClearHistory {
            chat_id: chat_id.into(),
            for_all: false,
        }
    }

    /// Clears for everyone.
    pub fn for_all(mut self, for_all: bool) -> Self {
        self.for_all = for_all;
        self
    }
}

request!(ClearHistory, "clearHistory", Empty);
