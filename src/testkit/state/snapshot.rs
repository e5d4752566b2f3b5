//! The whole state as the web page shows it: users, chats (with their participants and
//! latest messages) and who is typing where.
//!
//! One read-only JSON document, built under the state lock, so the page never sees a chat
//! without its messages or a message of a chat it does not know.

use serde_json::{Value, json};

use super::State;

/// Messages per chat the page gets (the newest ones).
const PAGE_MESSAGES: usize = 300;

impl State {
    /// Users, chats in creation order and typing activity, for the web page.
    pub(crate) fn snapshot(&self, bot_login: &str) -> Value {
        let mut users: Vec<Value> = self
            .users
            .iter()
            .filter(|(login, _)| !login.starts_with("load-user-"))
            .map(|(login, user)| {
                json!({
                    "login": login, "id": self.full_id(login), "name": user.display_name,
                    "bot": login == bot_login,
                })
            })
            .collect();
        users.sort_by(|a, b| a["login"].as_str().cmp(&b["login"].as_str()));
        let chats: Vec<Value> = self
            .chat_order
            .iter()
            .filter_map(|id| {
                let chat = self.chats.get(id)?;
                if chat.load.is_some() {
                    return None;
                }
                let history = &chat.history[chat.history.len().saturating_sub(PAGE_MESSAGES)..];
                let participants: Vec<Value> = chat
                    .participants
                    .iter()
                    .map(|(login, role)| json!({ "login": login, "role": role }))
                    .collect();
                let messages: Vec<Value> = history
                    .iter()
                    .filter_map(|message| self.envelope(message, false))
                    .collect();
                let typing = self
                    .activity
                    .get(id)
                    .map(|(login, kind, at)| json!({ "login": login, "kind": kind, "at": at }));
                Some(json!({
                    "id": id, "title": chat.title, "type": chat.chat_type,
                    "participants": participants, "messages": messages, "typing": typing,
                }))
            })
            .collect();
        json!({
            "domain": self.domain, "bot": bot_login, "users": users, "chats": chats,
            "now": crate::testkit::wire::now_ms(),
        })
    }
}
