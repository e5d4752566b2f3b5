//! Which dialog an event belongs to.

use std::fmt;

/// Identifies one dialog in a [`Storage`](super::Storage): the bot, and the chat and/or user
/// the dialog is bound to (see [`KeyStrategy`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    /// The bot's id, so several bots can share one storage.
    pub bot_id: String,
    /// The chat, or `None` for a dialog that follows a user across chats.
    pub chat_id: Option<String>,
    /// The user, or `None` for a dialog shared by everyone in a chat.
    pub user_id: Option<String>,
}

impl StorageKey {
    /// A key from its parts.
    pub fn new(bot_id: impl Into<String>, chat_id: Option<&str>, user_id: Option<&str>) -> Self {
        Self {
            bot_id: bot_id.into(),
            chat_id: chat_id.map(str::to_owned),
            user_id: user_id.map(str::to_owned),
        }
    }

    /// The key as one string, `bot:chat:user`, with `*` for a missing part. `%`, `:` and `*`
    /// inside ids are percent-escaped, so distinct keys never share a string.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(
            self.bot_id.len()
                + self.chat_id.as_deref().map_or(1, str::len)
                + self.user_id.as_deref().map_or(1, str::len)
                + 2,
        );
        escape_into(&mut out, Some(&self.bot_id));
        out.push(':');
        escape_into(&mut out, self.chat_id.as_deref());
        out.push(':');
        escape_into(&mut out, self.user_id.as_deref());
        out
    }
}

fn escape_into(out: &mut String, part: Option<&str>) {
    let Some(part) = part else {
        out.push('*');
        return;
    };
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '*' => out.push_str("%2A"),
            c => out.push(c),
        }
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// How events map to dialogs (aiogram's `FSMStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyStrategy {
    /// One dialog per user per chat: two users in a group chat each have their own.
    #[default]
    UserInChat,
    /// One dialog per chat, shared by all its participants.
    Chat,
    /// One dialog per user, followed across every chat.
    GlobalUser,
}

impl KeyStrategy {
    /// The key for an event in `chat_id` from `user_id`; `None` when the strategy needs a user
    /// and the event has none (for example a system message).
    pub fn key(self, bot_id: &str, chat_id: &str, user_id: Option<&str>) -> Option<StorageKey> {
        match self {
            KeyStrategy::UserInChat => Some(StorageKey::new(bot_id, Some(chat_id), Some(user_id?))),
            KeyStrategy::Chat => Some(StorageKey::new(bot_id, Some(chat_id), None)),
            KeyStrategy::GlobalUser => Some(StorageKey::new(bot_id, None, Some(user_id?))),
        }
    }
}
