//! Messages: posting them (by users, the bot or the server itself), editing, removing,
//! forwarding, reading history, and the chat-activity notice.
//!
//! [`State::post`] is the one way a message comes into being, whatever its type, so every
//! message gets a box number, lands in history, reaches every participant and — when the bot
//! wrote it — the outbox that `expect_message` reads.

use std::sync::Arc;

use serde_json::{Value, json};

use super::State;
use super::access::is_manager;
use super::model::MessageRecord;
use super::payload::{Request, text_content};
use super::surveys::edited_survey;
use crate::testkit::wire::{
    ApiResult, CHANNEL, E_BAD_PAYLOAD, E_FILE_NOT_READY, E_NO_CHAT, E_NO_MESSAGE, E_NO_RIGHTS,
    FILE_READY, MSG_FILE, MSG_FORWARD, MSG_SURVEY, MSG_TEXT, P2P, now_ms, uuid,
};

impl State {
    /// Creates a message authored by `actor` (or the system when `actor` is empty) and pushes it
    /// to every participant's connections except `except`.
    pub(super) fn post(
        &mut self,
        actor: &str,
        chat_id: &str,
        kind: u16,
        content: Value,
        reply_to: Option<&str>,
        except: Option<u64>,
    ) -> ApiResult<(String, u64)> {
        let system = actor.is_empty();
        let chat = self.chat(chat_id)?;
        if !system {
            let role = self.role(chat_id, actor)?;
            if chat.chat_type == CHANNEL && !matches!(role, "owner" | "admin" | "writer") {
                return Err(E_NO_RIGHTS);
            }
        }
        let id = uuid();
        let timestamp = now_ms();
        if let Some(load_index) = chat.load {
            // Load chats keep no history: only the echo bookkeeping matters.
            if let (Some(run), false) = (self.load.as_mut(), system)
                && self.users.get(actor).is_some_and(|user| user.bot)
                && let Some(text) = content.get("text").and_then(Value::as_str)
            {
                run.on_reply(load_index, text, except.unwrap_or(0));
            }
            return Ok((id, timestamp));
        }
        if let Some(replied) = reply_to
            && self
                .messages
                .get(replied)
                .is_none_or(|message| message.chat != chat_id)
        {
            return Err(E_NO_MESSAGE);
        }
        let chat = self.chats.get_mut(chat_id).ok_or(E_NO_CHAT)?;
        chat.next_box += 1;
        let box_id = chat.next_box;
        chat.history.push(id.clone());
        self.messages.insert(
            id.clone(),
            MessageRecord {
                chat: chat_id.to_owned(),
                author: actor.to_owned(),
                timestamp,
                kind,
                content,
                edited: false,
                reply_to: reply_to.map(str::to_owned),
                box_id,
                hidden_for: Vec::new(),
            },
        );
        if self
            .activity
            .get(chat_id)
            .is_some_and(|(login, _, _)| login == actor)
        {
            self.activity.remove(chat_id);
        }
        if !system {
            let content = &self.messages[&id].content;
            let content = self.journal.is_some().then(|| content.clone());
            if let Some(content) = content {
                self.journal_post(actor, chat_id, &id, kind, &content, reply_to);
            }
        }
        let envelope = self.envelope(&id, true).unwrap_or(Value::Null);
        if !system && self.users.get(actor).is_some_and(|user| user.bot) {
            self.outbox
                .push_back((chat_id.to_owned(), envelope.clone()));
        }
        let text: Arc<str> = envelope.to_string().into();
        for member in self.members(chat_id) {
            self.deliver(&member, except, "sendMessage", &text, system);
        }
        Ok((id, timestamp))
    }

    /// Posts a system notice (envelope type below 200) in `chat`.
    pub(super) fn post_system(&mut self, chat: &str, kind: u16, content: Value) {
        let _ = self.post("", chat, kind, content, None, None);
    }

    /// Posts a text message after checking its content.
    pub(crate) fn send_text(
        &mut self,
        actor: &str,
        chat: &str,
        content: Value,
        reply_to: Option<&str>,
        except: Option<u64>,
    ) -> ApiResult<(String, u64)> {
        let content = text_content(&content)?;
        self.post(actor, chat, MSG_TEXT, content, reply_to, except)
    }

    /// Edits a text message or a survey of `actor`; returns the edit's timestamp.
    pub(crate) fn edit(
        &mut self,
        actor: &str,
        message_id: &str,
        content: Value,
        except: Option<u64>,
    ) -> ApiResult<u64> {
        let message = self.messages.get(message_id).ok_or(E_NO_MESSAGE)?;
        if message.author != actor {
            return Err(E_NO_RIGHTS);
        }
        let content = match message.kind {
            MSG_TEXT => text_content(&content)?,
            MSG_SURVEY => edited_survey(&message.content, &content)?,
            _ => return Err(E_NO_RIGHTS),
        };
        let timestamp = now_ms();
        let chat = message.chat.clone();
        let is_text = message.kind == MSG_TEXT;
        if let Some(message) = self.messages.get_mut(message_id) {
            message.content = content.clone();
            message.edited = true;
        }
        self.journal_edit(actor, &chat, message_id, &content);
        // PROTOCOL.md §9 defines the `editMessage` event for text only, and the official
        // client's model requires text content: a survey edit is stored (readable with
        // `getMessageById`) but announced to nobody (ARCHITECTURE.md, protocol decisions).
        if !is_text {
            return Ok(timestamp);
        }
        self.broadcast(
            &chat,
            except,
            "editMessage",
            json!({
                "chatId": chat, "messageId": message_id, "timestamp": timestamp,
                "content": content,
            }),
        );
        Ok(timestamp)
    }

    /// Removes a message for everyone, or hides it for `actor` only.
    pub(crate) fn remove(
        &mut self,
        actor: &str,
        message_id: &str,
        for_all: bool,
        except: Option<u64>,
    ) -> ApiResult<()> {
        let message = self.messages.get(message_id).ok_or(E_NO_MESSAGE)?;
        let chat = message.chat.clone();
        let role = self.role(&chat, actor)?;
        if !for_all {
            if let Some(message) = self.messages.get_mut(message_id) {
                message.hidden_for.push(actor.to_owned());
            }
            return Ok(());
        }
        let is_p2p = self.chat(&chat)?.chat_type == P2P;
        if message.author != actor && (is_p2p || !is_manager(role)) {
            return Err(E_NO_RIGHTS);
        }
        self.messages.remove(message_id);
        self.journal_remove(actor, &chat, message_id);
        if let Some(record) = self.chats.get_mut(&chat) {
            record.history.retain(|id| id != message_id);
        }
        let removed_by = self.author_ref(actor);
        self.broadcast(
            &chat,
            except,
            "removeMessage",
            json!({ "chatId": chat, "messageId": message_id, "removedBy": removed_by }),
        );
        Ok(())
    }

    /// The chat's envelopes, oldest first; with a `viewer`, without those hidden for them.
    pub(crate) fn history(&self, chat: &str, viewer: Option<&str>) -> Vec<Value> {
        self.chats
            .get(chat)
            .map(|record| {
                record
                    .history
                    .iter()
                    .filter(|id| {
                        viewer.is_none_or(|viewer| {
                            self.messages.get(*id).is_some_and(|message| {
                                !message.hidden_for.iter().any(|hidden| hidden == viewer)
                            })
                        })
                    })
                    .filter_map(|id| self.envelope(id, true))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One envelope, the replied-to message embedded.
    pub(crate) fn message(&self, id: &str) -> Option<Value> {
        self.envelope(id, true)
    }

    /// `sendMessage`.
    pub(super) fn api_send_message(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let content = req.field("content")?;
        let reply_to = req.opt_str_field("replyMessageId")?;
        let (id, timestamp) =
            self.send_text(req.login, chat, content.clone(), reply_to, req.except())?;
        Ok(json!({ "chatId": chat, "messageId": id, "timestamp": timestamp }))
    }

    /// `editMessage`.
    pub(super) fn api_edit_message(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        self.api_edit_of_kind(req, MSG_TEXT)
    }

    /// `editMessage` and `editSurvey`: an edit of a message that must be of type `kind`.
    pub(super) fn api_edit_of_kind(&mut self, req: &Request<'_>, kind: u16) -> ApiResult<Value> {
        let id = req.str_field("messageId")?;
        let content = req.field("content")?;
        if self.messages.get(id).ok_or(E_NO_MESSAGE)?.kind != kind {
            return Err(E_NO_RIGHTS);
        }
        let timestamp = self.edit(req.login, id, content.clone(), req.except())?;
        Ok(json!({ "messageId": id, "timestamp": timestamp }))
    }

    /// `removeMessage`.
    pub(super) fn api_remove_message(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("messageId")?;
        let for_all = req.bool_field("forAll")?;
        self.remove(req.login, id, for_all, req.except())?;
        Ok(json!({}))
    }

    /// `forwardMessage`: a copy of a message the caller can see, without its box.
    pub(super) fn api_forward_message(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("messageId")?;
        let chat = req.str_field("chatId")?;
        let message = self.messages.get(id).ok_or(E_NO_MESSAGE)?;
        self.role(&message.chat, req.login)
            .map_err(|_| E_NO_MESSAGE)?;
        if message.kind == MSG_FILE
            && self
                .files
                .get(message.content["fileId"].as_str().unwrap_or_default())
                .is_none_or(|file| file.ready != FILE_READY)
        {
            return Err(E_FILE_NOT_READY);
        }
        let mut forwarded = self.envelope(id, false).ok_or(E_NO_MESSAGE)?;
        if let Some(fields) = forwarded.as_object_mut() {
            fields.remove("box");
        }
        let (new_id, timestamp) =
            self.post(req.login, chat, MSG_FORWARD, forwarded, None, req.except())?;
        Ok(json!({ "chatId": chat, "messageId": new_id, "timestamp": timestamp }))
    }

    /// `getMessageById`.
    pub(super) fn api_get_message_by_id(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("messageId")?;
        let message = self.messages.get(id).ok_or(E_NO_MESSAGE)?;
        self.role(&message.chat, req.login)
            .map_err(|_| E_NO_MESSAGE)?;
        self.envelope(id, true).ok_or(E_NO_MESSAGE)
    }

    /// `getChatHistory`: the `count` messages before `fromMessageId` (or the newest), oldest
    /// first.
    pub(super) fn api_get_chat_history(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let count = req.u64_field("count")? as usize;
        let from = req.opt_str_field("fromMessageId")?;
        self.role(chat, req.login)?;
        if count == 0 {
            return Err(E_BAD_PAYLOAD);
        }
        let visible = self.history(chat, Some(req.login));
        let end = match from {
            None => visible.len(),
            Some(from) => visible
                .iter()
                .position(|envelope| envelope["messageId"] == from)
                .ok_or(E_NO_MESSAGE)?,
        };
        let page = visible[end.saturating_sub(count)..end].to_vec();
        Ok(json!({ "chatId": chat, "count": page.len(), "messages": page }))
    }

    /// `sendChatActivity`: checked, acknowledged and shown on the web page until the user
    /// posts; nobody else is told.
    pub(super) fn api_send_chat_activity(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let kind = req.str_field("activityType")?;
        if !matches!(kind, "typing" | "choosing_sticker" | "uploading_file") {
            return Err(E_BAD_PAYLOAD);
        }
        self.role(chat, req.login)?;
        self.activity.insert(
            chat.to_owned(),
            (req.login.to_owned(), kind.to_owned(), now_ms()),
        );
        Ok(json!({ "chatId": chat, "activityType": kind, "retryAfter": 5000 }))
    }
}
