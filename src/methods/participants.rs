//! Participant methods (§8.5). Bare logins in `userId` are completed with the server domain
//! via [`Request::complete_user_ids`](super::Request::complete_user_ids).

use serde::{Deserialize, Serialize};

use super::{BoolResult, Empty, Request, request};
use crate::error::{Error, Result};
use crate::types::{Participant, Role};

/// `getChatParticipants`: a page of participants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetChatParticipants {
    /// Chat id.
    pub chat_id: String,
    /// Participants per page.
    pub page_size: u32,
    /// Page number (from 1).
    pub page_number: u32,
}

impl GetChatParticipants {
    /// Page `page_number` of `chat_id`'s participants.
    pub fn new(chat_id: impl Into<String>, page_size: u32, page_number: u32) -> Self {
        GetChatParticipants {
            chat_id: chat_id.into(),
            page_size,
            page_number,
        }
    }
}

/// `getChatParticipants` response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParticipantList {
    /// The participants.
    #[serde(default)]
    pub participants: Vec<Participant>,
}

impl Request for GetChatParticipants {
    const METHOD: &'static str = "getChatParticipants";
    const IDEMPOTENT: bool = true;
    type Response = ParticipantList;

    fn validate(&self) -> Result<()> {
        if self.page_number < 1 {
            return Err(Error::invalid("pageNumber", "must be at least 1; got 0"));
        }
        Ok(())
    }
}

macro_rules! chat_user {
    ($(#[$m:meta])* $ty:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $ty {
            /// Chat id.
            pub chat_id: String,
            /// The user (a bare login is completed with the server domain).
            pub user_id: String,
        }

        impl $ty {
            /// For `user_id` in `chat_id`.
            pub fn new(chat_id: impl Into<String>, user_id: impl Into<String>) -> Self {
                $ty {
                    chat_id: chat_id.into(),
                    user_id: user_id.into(),
                }
            }
        }
    };
}

chat_user!(
    /// `getChatParticipant`: one participant (error 305 when not a participant).
    GetChatParticipant
);
request!(
    GetChatParticipant,
    "getChatParticipant",
    Participant,
    idempotent,
    users(user_id)
);

chat_user!(
    /// `hasChatParticipant` (deprecated by the official client in favour of
    /// `getChatParticipant`).
    HasChatParticipant
);
request!(
    HasChatParticipant,
    "hasChatParticipant",
    BoolResult,
    idempotent,
    users(user_id)
);

/// `addChatParticipant` (`displayHistory` is always sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddChatParticipant {
    /// Chat id.
    pub chat_id: String,
    /// The user (a bare login is completed with the server domain).
    pub user_id: String,
    /// Show them the earlier history (default `false`).
    pub display_history: bool,
}

impl AddChatParticipant {
    /// Adds `user_id` to `chat_id`.
    pub fn new(chat_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        AddChatParticipant {
            chat_id: chat_id.into(),
            user_id: user_id.into(),
            display_history: false,
        }
    }

    /// Shows the new participant the earlier history.
    pub fn display_history(mut self, display: bool) -> Self {
        self.display_history = display;
        self
    }
}

request!(
    AddChatParticipant,
    "addChatParticipant",
    Empty,
    users(user_id)
);

/// `removeChatParticipant` (`clearHistory` is always sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveChatParticipant {
    /// Chat id.
    pub chat_id: String,
    /// The user (a bare login is completed with the server domain).
    pub user_id: String,
    /// Also clear the history for them (default `false`).
    pub clear_history: bool,
}

impl RemoveChatParticipant {
    /// Removes `user_id` from `chat_id`.
    pub fn new(chat_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        RemoveChatParticipant {
            chat_id: chat_id.into(),
            user_id: user_id.into(),
            clear_history: false,
        }
    }

    /// Also clears the history for them.
    pub fn clear_history(mut self, clear: bool) -> Self {
        self.clear_history = clear;
        self
    }
}

request!(
    RemoveChatParticipant,
    "removeChatParticipant",
    Empty,
    users(user_id)
);

/// `changeParticipantRole`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeParticipantRole {
    /// Chat id.
    pub chat_id: String,
    /// The user (a bare login is completed with the server domain).
    pub user_id: String,
    /// The new role (sent as a string).
    pub role: Role,
}

impl ChangeParticipantRole {
    /// Gives `user_id` the role `role` in `chat_id`.
    pub fn new(chat_id: impl Into<String>, user_id: impl Into<String>, role: Role) -> Self {
        ChangeParticipantRole {
            chat_id: chat_id.into(),
            user_id: user_id.into(),
            role,
        }
    }
}

request!(
    ChangeParticipantRole,
    "changeParticipantRole",
    Empty,
    users(user_id)
);
