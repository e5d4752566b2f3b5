//! Chat participants: listing and looking them up, adding, removing, and changing roles.
//!
//! Membership decides who receives every later event of a chat, so a change here is announced
//! to the chat (event plus system notice) before or after the member list changes, exactly as
//! each participant must see it: a removed member still hears of their removal, an added one
//! first gets the chat itself.

use std::sync::Arc;

use serde_json::{Value, json};

use super::State;
use super::payload::{Request, parse_role};
use crate::testkit::wire::{
    ApiResult, CHANNEL, E_ALREADY_IN_CHAT, E_BAD_PAYLOAD, E_NO_CHAT, E_NOT_PARTICIPANT,
    SYS_PARTICIPANT_ADDED, SYS_PARTICIPANT_REMOVED, SYS_ROLE_SET, now_ms,
};

impl State {
    /// Adds `login` to a group or channel `actor` manages.
    pub(crate) fn add_participant(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        except: Option<u64>,
    ) -> ApiResult<()> {
        self.require_manager(chat, actor)?;
        if self.role(chat, login).is_ok() {
            return Err(E_ALREADY_IN_CHAT);
        }
        let timestamp = now_ms();
        let record = self.chats.get_mut(chat).ok_or(E_NO_CHAT)?;
        record.participants.push((login.to_owned(), "user"));
        let method = if record.chat_type == CHANNEL {
            "createChannel"
        } else {
            "createGroupChat"
        };
        self.journal_join(actor, chat, login);
        let chat_object: Arc<str> = self.chat_object(chat).to_string().into();
        self.deliver(login, None, method, &chat_object, false);
        let (user_id, added_by) = (self.full_id(login), self.author_ref(actor));
        self.broadcast(
            chat,
            except,
            "addChatParticipant",
            json!({ "chatId": chat, "userId": user_id, "timestamp": timestamp, "addedBy": added_by }),
        );
        self.post_system(
            chat,
            SYS_PARTICIPANT_ADDED,
            json!({ "userId": user_id, "role": "user" }),
        );
        Ok(())
    }

    /// Removes `login` (by a manager, or `login` leaving); with `clear`, their messages too.
    pub(crate) fn remove_participant(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        clear: bool,
        except: Option<u64>,
    ) -> ApiResult<()> {
        if actor != login {
            self.require_manager(chat, actor)?;
        }
        self.role(chat, login)?;
        let timestamp = now_ms();
        let (user_id, removed_by) = (self.full_id(login), self.author_ref(actor));
        self.broadcast(
            chat,
            except,
            "removeChatParticipant",
            json!({
                "chatId": chat, "userId": user_id, "timestamp": timestamp,
                "removedBy": removed_by,
            }),
        );
        self.post_system(chat, SYS_PARTICIPANT_REMOVED, json!({ "userId": user_id }));
        let messages = &mut self.messages;
        if let Some(record) = self.chats.get_mut(chat) {
            record.participants.retain(|(member, _)| member != login);
            if clear {
                record.history.retain(|id| {
                    let keep = messages
                        .get(id)
                        .is_none_or(|message| message.author != login);
                    if !keep {
                        messages.remove(id);
                    }
                    keep
                });
            }
        }
        Ok(())
    }

    /// Gives `login` the role `role` in a chat `actor` manages.
    pub(crate) fn set_role(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        role: &'static str,
        except: Option<u64>,
    ) -> ApiResult<()> {
        self.require_manager(chat, actor)?;
        self.role(chat, login)?;
        if let Some(record) = self.chats.get_mut(chat) {
            for participant in record
                .participants
                .iter_mut()
                .filter(|(member, _)| member == login)
            {
                participant.1 = role;
            }
        }
        let user_id = self.full_id(login);
        self.broadcast(
            chat,
            except,
            "changeParticipantRole",
            json!({ "chatId": chat, "userId": user_id, "role": role, "timestamp": now_ms() }),
        );
        self.post_system(
            chat,
            SYS_ROLE_SET,
            json!({ "userId": user_id, "role": role }),
        );
        Ok(())
    }

    /// `getChatParticipants`: one page of `(userId, role)`.
    pub(super) fn api_get_chat_participants(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let page_size = req.u64_field("pageSize")? as usize;
        let page = req.u64_field("pageNumber")? as usize;
        self.role(chat, req.login)?;
        if page_size == 0 || page == 0 {
            return Err(E_BAD_PAYLOAD);
        }
        let list: Vec<Value> = self
            .chat(chat)?
            .participants
            .iter()
            .skip((page - 1).saturating_mul(page_size))
            .take(page_size)
            .map(|(login, role)| json!({ "userId": self.full_id(login), "role": role }))
            .collect();
        Ok(json!({ "participants": list }))
    }

    /// `getChatParticipant`.
    pub(super) fn api_get_chat_participant(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let role = self.looked_up_role(req)?.map_err(|_| E_NOT_PARTICIPANT)?;
        let login = self.login_of(req.str_field("userId")?)?;
        Ok(json!({ "userId": self.full_id(&login), "role": role, "type": 1 }))
    }

    /// `hasChatParticipant`.
    pub(super) fn api_has_chat_participant(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let role = self.looked_up_role(req)?;
        Ok(json!({ "result": role.is_ok() }))
    }

    /// After checking the caller is in `chatId`: the role `userId` has there, or why not.
    fn looked_up_role(&self, req: &Request<'_>) -> ApiResult<ApiResult<&'static str>> {
        let chat = req.str_field("chatId")?;
        let user_id = req.str_field("userId")?;
        self.role(chat, req.login)?;
        Ok(self
            .login_of(user_id)
            .and_then(|login| self.role(chat, &login)))
    }

    /// `addChatParticipant`.
    pub(super) fn api_add_chat_participant(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let login = self.login_of(req.str_field("userId")?)?;
        req.bool_field("displayHistory")?;
        self.add_participant(req.login, chat, &login, req.except())?;
        Ok(json!({}))
    }

    /// `removeChatParticipant`.
    pub(super) fn api_remove_chat_participant(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let login = self.login_of(req.str_field("userId")?)?;
        let clear = req.bool_field("clearHistory")?;
        self.remove_participant(req.login, chat, &login, clear, req.except())?;
        Ok(json!({}))
    }

    /// `changeParticipantRole`.
    pub(super) fn api_change_participant_role(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let login = self.login_of(req.str_field("userId")?)?;
        let role = parse_role(req.field("role")?)?;
        self.set_role(req.login, chat, &login, role, req.except())?;
        Ok(json!({}))
    }
}
