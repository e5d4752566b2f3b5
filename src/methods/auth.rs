//! `auth` (§5).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Request;
use crate::error::{Error, Result};

/// `auth`: must be the first request on every new connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// The JWT access token.
    pub token: String,
    /// Always `"JWT"`.
    pub token_type: String,
    /// Push messages that arrived while the bot was offline.
    pub receive_unread: bool,
    /// Also deliver system envelopes as `sendMessage` events.
    pub receive_system_message_envelopes: bool,
}

impl Auth {
    /// Authorises with `token`; both flags off, as the official client defaults.
    pub fn new(token: impl Into<String>) -> Self {
        Auth {
            token: token.into(),
            token_type: "JWT".into(),
            receive_unread: false,
            receive_system_message_envelopes: false,
        }
    }

    /// Asks for messages that arrived while offline.
    pub fn receive_unread(mut self, on: bool) -> Self {
        self.receive_unread = on;
        self
    }

    /// Asks for system envelopes.
    pub fn receive_system_messages(mut self, on: bool) -> Self {
        self.receive_system_message_envelopes = on;
        self
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("receive_unread", &self.receive_unread)
            .field(
                "receive_system_message_envelopes",
                &self.receive_system_message_envelopes,
            )
            .finish()
    }
}

/// `auth` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    /// The bot's full id, possibly with a `/resource` suffix.
    pub user_id: String,
    /// Id of this WebSocket session.
    pub connection_id: String,
}

impl AuthResponse {
    /// The bot's own id: `user_id` up to the first `/`.
    pub fn bot_id(&self) -> &str {
        self.user_id.split('/').next().unwrap_or(&self.user_id)
    }
}

impl Request for Auth {
    const METHOD: &'static str = "auth";
    type Response = AuthResponse;

    fn validate(&self) -> Result<()> {
        if self.token.is_empty() || self.token.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "token",
                "must be non-empty and contain no whitespace",
            ));
        }
        Ok(())
    }
}
