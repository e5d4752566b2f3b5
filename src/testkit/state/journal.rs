//! Recording a session: every chat created, message posted, edited or removed, and button
//! pressed, by users and by the bot, as transcript entries (see `testkit::Transcript`).
//!
//! Ids differ from run to run, so the journal names chats and messages by their order of
//! appearance (`{{chat:1}}`, `{{message:3}}`) and writes those names wherever a real id
//! appears in a text too; replay maps them back to the ids of its own run.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::State;
use super::model::Journal;
use crate::testkit::pattern::Blob;
use crate::testkit::wire::MSG_FILE;

/// Files up to this size are kept in the transcript (base64); larger ones by size only.
const MAX_RECORDED_FILE: u64 = 1 << 20;

impl Journal {
    pub(super) fn new() -> Self {
        Journal {
            started: tokio::time::Instant::now(),
            entries: Vec::new(),
            names: std::collections::HashMap::new(),
            chats: 0,
            messages: 0,
        }
    }

    fn name(&mut self, id: &str, chat: bool) -> String {
        if let Some(name) = self.names.get(id) {
            return name.clone();
        }
        let name = if chat {
            self.chats += 1;
            format!("{{{{chat:{}}}}}", self.chats)
        } else {
            self.messages += 1;
            format!("{{{{message:{}}}}}", self.messages)
        };
        self.names.insert(id.to_owned(), name.clone());
        name
    }

    /// `value` with every known id replaced by its name, in every string.
    fn named(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => {
                let mut text = text.clone();
                for (id, name) in &self.names {
                    if text.contains(id.as_str()) {
                        text = text.replace(id.as_str(), name);
                    }
                }
                Value::String(text)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.named(v)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.named(v)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }

    fn push(&mut self, mut entry: Value) {
        entry["at_ms"] = json!(self.started.elapsed().as_millis() as u64);
        self.entries.push(entry);
    }
}

impl State {
    /// Starts recording (forgetting an earlier recording).
    pub(crate) fn start_journal(&mut self) {
        self.journal = Some(Journal::new());
    }

    fn side(&self, actor: &str) -> &'static str {
        if self.users.get(actor).is_some_and(|user| user.bot) {
            "bot"
        } else {
            "user"
        }
    }

    /// A chat was created.
    pub(super) fn journal_chat(
        &mut self,
        actor: &str,
        chat: &str,
        chat_type: u8,
        title: Option<&str>,
        members: &[String],
    ) {
        let side = self.side(actor);
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let name = journal.name(chat, true);
        journal.push(json!({
            "side": side, "actor": actor, "action": "chat", "chat": name,
            "chatType": chat_type, "title": title, "members": members,
        }));
    }

    /// A message was posted (not a system notice).
    pub(super) fn journal_post(
        &mut self,
        actor: &str,
        chat: &str,
        message: &str,
        kind: u16,
        content: &Value,
        reply_to: Option<&str>,
    ) {
        if self.journal.is_none() {
            return;
        }
        let side = self.side(actor);
        let file = (kind == MSG_FILE && side == "user")
            .then(|| content["fileId"].as_str())
            .flatten()
            .and_then(|id| self.files.get(id))
            .map(|file| match &file.data {
                Blob::Pattern(len) => json!({ "pattern": len }),
                data if data.len() <= MAX_RECORDED_FILE => json!({
                    "base64": base64::engine::general_purpose::STANDARD.encode(data.to_bytes()),
                }),
                data => json!({ "pattern": data.len() }),
            });
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let chat = journal.name(chat, true);
        let reply_to = reply_to.map(|id| journal.name(id, false));
        let content = journal.named(content);
        let message = journal.name(message, false);
        let mut entry = json!({
            "side": side, "actor": actor, "action": "post", "chat": chat, "message": message,
            "kind": kind, "content": content,
        });
        if let Some(reply_to) = reply_to {
            entry["replyTo"] = json!(reply_to);
        }
        if let Some(file) = file {
            entry["file"] = file;
        }
        journal.push(entry);
    }

    /// A message was edited.
    pub(super) fn journal_edit(&mut self, actor: &str, chat: &str, message: &str, content: &Value) {
        let side = self.side(actor);
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let (chat, message) = (journal.name(chat, true), journal.name(message, false));
        let content = journal.named(content);
        journal.push(json!({
            "side": side, "actor": actor, "action": "edit", "chat": chat, "message": message,
            "content": content,
        }));
    }

    /// A message was removed for everyone.
    pub(super) fn journal_remove(&mut self, actor: &str, chat: &str, message: &str) {
        let side = self.side(actor);
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let (chat, message) = (journal.name(chat, true), journal.name(message, false));
        journal.push(json!({
            "side": side, "actor": actor, "action": "remove", "chat": chat, "message": message,
        }));
    }

    /// A participant was added.
    pub(super) fn journal_join(&mut self, actor: &str, chat: &str, member: &str) {
        let side = self.side(actor);
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let chat = journal.name(chat, true);
        journal.push(json!({
            "side": side, "actor": actor, "action": "join", "chat": chat, "member": member,
        }));
    }

    /// A button was pressed.
    pub(super) fn journal_press(&mut self, actor: &str, chat: &str, message: &str, command: &str) {
        let side = self.side(actor);
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let (chat, message) = (journal.name(chat, true), journal.name(message, false));
        journal.push(json!({
            "side": side, "actor": actor, "action": "press", "chat": chat, "message": message,
            "command": command,
        }));
    }
}

impl State {
    /// The oldest chat of `chat_type` titled `title` not in `known` (a replay looking for the
    /// chat a bot created).
    pub(crate) fn find_new_chat(
        &self,
        chat_type: u8,
        title: Option<&str>,
        known: &std::collections::HashSet<String>,
    ) -> Option<String> {
        self.chat_order
            .iter()
            .find(|id| {
                !known.contains(*id)
                    && self.chats.get(*id).is_some_and(|chat| {
                        chat.chat_type == chat_type && chat.title.as_deref() == title
                    })
            })
            .cloned()
    }

    /// Whether `login` takes part in `chat`.
    pub(crate) fn is_participant(&self, chat: &str, login: &str) -> bool {
        self.chats
            .get(chat)
            .is_some_and(|record| record.participants.iter().any(|(l, _)| l == login))
    }

    /// The entries recorded so far (empty when not recording).
    pub(crate) fn journal_entries(&self) -> Vec<Value> {
        self.journal
            .as_ref()
            .map(|journal| journal.entries.clone())
            .unwrap_or_default()
    }
}
