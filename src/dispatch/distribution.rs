//! Which conversation (lane) an event runs on: the distribution key.
//!
//! Events with the same key run one at a time, in arrival order; events with different keys
//! run in parallel. The key decides both the ordering a handler can rely on and how much
//! parallelism a busy chat gets.

use std::fmt;
use std::sync::Arc;

use super::update::Update;
use crate::conversation::LaneKey;

/// The function of a [`Distribution::Custom`] key.
type KeyFn = Arc<dyn Fn(&Update) -> Option<String> + Send + Sync>;

/// How events are spread over conversations; see
/// [`DispatcherBuilder::distribution`](super::DispatcherBuilder::distribution).
///
/// | key | order kept | runs in parallel |
/// |---|---|---|
/// | [`Chat`](Self::Chat) (default) | every event of a chat, in arrival order | different chats |
/// | [`UserInChat`](Self::UserInChat) | each user's events within a chat | different users, even in one group chat |
/// | [`Custom`](Self::Custom) | events whose function returns the same key | events with different keys |
///
/// Events without a chat (upload limits, file progress), and events for which a custom
/// function returns `None`, share one extra lane, the global one, in arrival order.
///
/// With any key but `Chat`, two handlers of the same chat may run at once: replies of
/// different users can interleave, and dialog state (`fsm`) must be keyed to match (a
/// per-user-in-chat key strategy for `UserInChat`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Distribution {
    /// One lane per chat (the default): a chat's events never overlap.
    #[default]
    Chat,
    /// One lane per user in each chat: a user's events keep their order, different users of
    /// a group chat are served in parallel. Events without an author fall back to the chat's
    /// lane.
    UserInChat,
    /// One lane per value the function returns (`None`: the global lane), as teloxide's
    /// distribution function.
    Custom(KeyFn),
}

impl fmt::Debug for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Chat => f.write_str("Chat"),
            Distribution::UserInChat => f.write_str("UserInChat"),
            Distribution::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl Distribution {
    /// A [`Custom`](Self::Custom) key from a function of the event.
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&Update) -> Option<String> + Send + Sync + 'static,
    {
        Distribution::Custom(Arc::new(f))
    }

    /// The lane of `update`.
    pub(super) fn lane(&self, update: &Update) -> LaneKey {
        match self {
            Distribution::Chat => LaneKey::new(update.chat_id()),
            Distribution::UserInChat => match (update.chat_id(), update.author_id()) {
                // The unit separator cannot occur in either id, so no two pairs collide.
                (Some(chat), Some(user)) => LaneKey::new(Some(&format!("{chat}\u{1f}{user}"))),
                (chat, _) => LaneKey::new(chat),
            },
            Distribution::Custom(f) => LaneKey::new(f(update).as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RawValue;

    fn message(chat: &str, author: &str) -> Update {
        let payload = format!(
            r#"{{"messageId":"m","chat":{{"chatId":"{chat}","chatTitle":"t","chatType":2}},"timestamp":1,"type":200,"author":{{"id":"{author}","type":1}},"box":{{"id":1,"position":"1"}},"content":{{"text":"hi","parseMode":"text"}}}}"#
        );
        Update::new(1, "sendMessage", RawValue::from_string(payload).unwrap())
    }

    #[test]
    fn keys_separate_what_they_promise_to() {
        let (a1, a2, b1) = (message("a", "u1"), message("a", "u2"), message("b", "u1"));
        let chat = Distribution::Chat;
        assert!(chat.lane(&a1) == chat.lane(&a2));
        assert!(chat.lane(&a1) != chat.lane(&b1));
        let user = Distribution::UserInChat;
        assert!(user.lane(&a1) != user.lane(&a2));
        assert!(user.lane(&a1) != user.lane(&b1));
        assert!(user.lane(&a1) == user.lane(&message("a", "u1")));
        let all = Distribution::custom(|_| None);
        assert!(all.lane(&a1) == LaneKey::Global && all.lane(&b1) == LaneKey::Global);
        let by_user = Distribution::custom(|u| u.author_id().map(str::to_owned));
        assert!(by_user.lane(&a1) == by_user.lane(&b1));
        assert!(by_user.lane(&a1) != by_user.lane(&a2));
    }
}
