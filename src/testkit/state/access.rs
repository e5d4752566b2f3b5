//! Who may do what in a chat: membership, roles, and the manager rights that editing a chat or
//! its participants requires.
//!
//! Every domain asks these questions before it changes anything, so the error codes for "no
//! such chat" (304), "not a participant" (305) and "no rights" (303) come from one place.

use super::State;
use super::model::ChatRecord;
use crate::testkit::wire::{ApiResult, E_NO_CHAT, E_NO_RIGHTS, E_NOT_PARTICIPANT, FAVORITES, P2P};

/// Whether `role` may manage a chat (edit it, remove others' messages, add participants).
pub(super) fn is_manager(role: &str) -> bool {
    matches!(role, "owner" | "admin" | "favorites_owner")
}

impl State {
    pub(super) fn chat(&self, id: &str) -> ApiResult<&ChatRecord> {
        self.chats.get(id).ok_or(E_NO_CHAT)
    }

    /// The role of `login` in `chat`.
    pub(super) fn role(&self, chat: &str, login: &str) -> ApiResult<&'static str> {
        self.chat(chat)?
            .participants
            .iter()
            .find(|(participant, _)| participant == login)
            .map(|(_, role)| *role)
            .ok_or(E_NOT_PARTICIPANT)
    }

    /// Fails unless `login` is a participant of `chat`.
    pub(crate) fn role_check(&self, chat: &str, login: &str) -> ApiResult<()> {
        self.role(chat, login).map(drop)
    }

    /// Logins of the participants of `chat` (none when there is no such chat).
    pub(super) fn members(&self, chat: &str) -> Vec<String> {
        self.chats
            .get(chat)
            .map(|record| {
                record
                    .participants
                    .iter()
                    .map(|(login, _)| login.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails unless `actor` manages `chat`, which must be a group or channel.
    pub(super) fn require_manager(&self, chat: &str, actor: &str) -> ApiResult<()> {
        let role = self.role(chat, actor)?;
        if !is_manager(role) || matches!(self.chat(chat)?.chat_type, P2P | FAVORITES) {
            return Err(E_NO_RIGHTS);
        }
        Ok(())
    }
}
