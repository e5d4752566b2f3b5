//! How stored records look on the wire: message envelopes, chat objects, author references
//! and download URLs.
//!
//! The same chat or message is shown in events, in method answers and to test assertions;
//! building each shape in one place keeps them identical wherever they appear.

use serde_json::{Value, json};

use super::State;

impl State {
    /// The short chat reference inside an envelope.
    pub(super) fn chat_ref(&self, id: &str) -> Value {
        let chat = self.chats.get(id);
        json!({
            "chatId": id,
            "chatTitle": chat.and_then(|record| record.title.clone()),
            "chatType": chat.map(|record| record.chat_type).unwrap_or(0),
        })
    }

    /// An `author` object; an empty login is the server itself.
    pub(super) fn author_ref(&self, login: &str) -> Value {
        if login.is_empty() {
            json!({ "id": "", "type": 0 })
        } else {
            json!({ "id": self.full_id(login), "type": 1 })
        }
    }

    /// The envelope of message `id`; with `expand_reply`, the replied-to message is embedded.
    pub(super) fn envelope(&self, id: &str, expand_reply: bool) -> Option<Value> {
        let message = self.messages.get(id)?;
        let mut envelope = json!({
            "messageId": id,
            "chatId": message.chat,
            "chat": self.chat_ref(&message.chat),
            "timestamp": message.timestamp,
            "type": message.kind,
            "author": self.author_ref(&message.author),
            "box": { "id": message.box_id, "position": format!("{:010}", message.box_id) },
            "content": message.content,
            "isEdited": message.edited,
        });
        if let Some(reply_to) = &message.reply_to {
            envelope["replyMessageId"] = json!(reply_to);
            if expand_reply && let Some(replied) = self.envelope(reply_to, false) {
                envelope["replyMessage"] = replied;
            }
        }
        Some(envelope)
    }

    /// The chat object of `getChats`, `getChatByID` and the chat-creation events.
    pub(super) fn chat_object(&self, id: &str) -> Value {
        let Some(chat) = self.chats.get(id) else {
            return Value::Null;
        };
        let last = chat.history.last().and_then(|message_id| {
            let envelope = self.envelope(message_id, false)?;
            Some(json!({
                "messageId": envelope["messageId"], "timestamp": envelope["timestamp"],
                "author": envelope["author"], "type": envelope["type"],
                "content": envelope["content"], "chat": envelope["chat"],
            }))
        });
        json!({
            "chatId": id,
            "title": chat.title,
            "chatType": chat.chat_type,
            "unreadMessages": 0,
            "avatarUrl": chat.avatar_url,
            "lastMessage": last,
        })
    }

    /// The URL serving file `id` (`what` = `download` or `preview`).
    pub(super) fn file_url(&self, id: &str, token: &str, what: &str) -> String {
        format!(
            "{}/bridge/api/client/v1/files/{id}/{what}?token={token}",
            self.base_url
        )
    }
}
