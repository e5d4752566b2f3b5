//! Chats: creating the four kinds (personal, group, channel, favourites), listing them,
//! renaming, changing the avatar, clearing history and deleting.
//!
//! A chat change is both an event to every participant and, in groups and channels, a system
//! notice in the chat's history; each operation here does both, so scripted users and bot
//! requests leave the same trace.

use bytes::Bytes;
use serde_json::{Value, json};

use super::State;
use super::access::is_manager;
use super::model::ChatRecord;
use super::payload::{Request, check_title};
use crate::testkit::wire::{
    ApiResult, CHANNEL, E_BAD_PAYLOAD, E_NO_RIGHTS, FAVORITES, GROUP, P2P, SYS_AVATAR_CHANGED,
    SYS_HISTORY_CLEARED, SYS_ROLE_SET, SYS_TITLE_CHANGED, hex40, now_ms,
};

impl State {
    /// Creates a chat owned by `actor` with `members`, and tells every participant.
    pub(crate) fn create_chat(
        &mut self,
        actor: &str,
        chat_type: u8,
        title: Option<String>,
        members: &[String],
        except: Option<u64>,
    ) -> String {
        let id = hex40();
        let title_for_journal = self.journal.as_ref().and(title.clone());
        let own_role = match chat_type {
            FAVORITES => "favorites_owner",
            P2P => "user",
            _ => "owner",
        };
        let mut participants = vec![(actor.to_owned(), own_role)];
        for member in members {
            if !participants.iter().any(|(login, _)| login == member) {
                participants.push((member.clone(), "user"));
            }
        }
        self.chats.insert(
            id.clone(),
            ChatRecord::new(title, chat_type, participants, None),
        );
        self.chat_order.push(id.clone());
        self.journal_chat(actor, &id, chat_type, title_for_journal.as_deref(), members);
        if matches!(chat_type, GROUP | CHANNEL) {
            self.post_system(
                &id,
                SYS_ROLE_SET,
                json!({ "userId": self.full_id(actor), "role": "owner" }),
            );
        }
        let method = match chat_type {
            P2P => "createP2PChat",
            GROUP => "createGroupChat",
            CHANNEL => "createChannel",
            _ => "createFavoritesChat",
        };
        let chat_object = self.chat_object(&id);
        self.broadcast(&id, except, method, chat_object);
        id
    }

    /// The personal chat of `first` and `second`, if they have one.
    fn p2p_between(&self, first: &str, second: &str) -> Option<String> {
        self.chat_order
            .iter()
            .find(|id| {
                self.chats.get(*id).is_some_and(|chat| {
                    chat.chat_type == P2P
                        && chat.participants.iter().any(|(login, _)| login == first)
                        && chat.participants.iter().any(|(login, _)| login == second)
                })
            })
            .cloned()
    }

    /// The personal chat of `actor` and `other`, created if missing.
    pub(crate) fn create_p2p(&mut self, actor: &str, other: &str, except: Option<u64>) -> String {
        if let Some(id) = self.p2p_between(actor, other) {
            return id;
        }
        // A personal chat is titled after the human side (the bot's view of it).
        let human = if self.users.get(other).is_some_and(|user| user.bot) {
            actor
        } else {
            other
        };
        let title = self.users.get(human).map(|user| user.display_name.clone());
        self.create_chat(actor, P2P, title, &[other.to_owned()], except)
    }

    /// Renames a group or channel; returns the timestamp.
    pub(crate) fn edit_title(
        &mut self,
        actor: &str,
        chat: &str,
        title: &str,
        except: Option<u64>,
    ) -> ApiResult<u64> {
        self.require_manager(chat, actor)?;
        check_title(title)?;
        if let Some(record) = self.chats.get_mut(chat) {
            record.title = Some(title.to_owned());
        }
        self.broadcast(
            chat,
            except,
            "editChatTitle",
            json!({ "chatId": chat, "title": title }),
        );
        self.post_system(chat, SYS_TITLE_CHANGED, json!({ "title": title }));
        Ok(now_ms())
    }

    /// Stores the image as a file and makes its download URL the chat's avatar.
    pub(crate) fn set_avatar(
        &mut self,
        actor: &str,
        chat: &str,
        name: &str,
        data: Bytes,
        except: Option<u64>,
    ) -> ApiResult<String> {
        self.require_manager(chat, actor)?;
        let mime = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let file_id = self.store_file(name, mime, data.into(), true);
        let url = self
            .files
            .get(&file_id)
            .map(|file| self.file_url(&file_id, &file.token, "download"))
            .unwrap_or_default();
        if let Some(record) = self.chats.get_mut(chat) {
            record.avatar_url = Some(url.clone());
        }
        self.broadcast(
            chat,
            except,
            "editChatAvatar",
            json!({ "chatId": chat, "avatarUrl": url }),
        );
        self.post_system(chat, SYS_AVATAR_CHANGED, json!({ "avatarUrl": url }));
        Ok(url)
    }

    /// Clears the history for everyone (managers; anyone in a personal chat) or hides it for
    /// `actor` only.
    pub(crate) fn clear_history(
        &mut self,
        actor: &str,
        chat: &str,
        for_all: bool,
        except: Option<u64>,
    ) -> ApiResult<()> {
        let role = self.role(chat, actor)?;
        let ids = self.chat(chat)?.history.clone();
        if !for_all {
            for id in ids {
                if let Some(message) = self.messages.get_mut(&id) {
                    message.hidden_for.push(actor.to_owned());
                }
            }
            return Ok(());
        }
        if !is_manager(role) && self.chat(chat)?.chat_type != P2P {
            return Err(E_NO_RIGHTS);
        }
        for id in &ids {
            self.messages.remove(id);
        }
        if let Some(record) = self.chats.get_mut(chat) {
            record.history.clear();
        }
        self.broadcast(
            chat,
            except,
            "clearHistory",
            json!({ "chatId": chat, "forAll": true }),
        );
        self.post_system(chat, SYS_HISTORY_CLEARED, json!({ "forAll": true }));
        Ok(())
    }

    /// Deletes a chat and its messages (only the owner may delete a group or channel).
    pub(crate) fn remove_chat(
        &mut self,
        actor: &str,
        chat: &str,
        except: Option<u64>,
    ) -> ApiResult<()> {
        let role = self.role(chat, actor)?;
        let record = self.chat(chat)?;
        if matches!(record.chat_type, GROUP | CHANNEL) && role != "owner" {
            return Err(E_NO_RIGHTS);
        }
        self.broadcast(chat, except, "removeChat", json!({ "chatId": chat }));
        if let Some(record) = self.chats.remove(chat) {
            for id in record.history {
                self.messages.remove(&id);
            }
        }
        self.chat_order.retain(|id| id != chat);
        Ok(())
    }

    /// `getChats`: the caller's chats in creation order, one page.
    pub(super) fn api_get_chats(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let count = req.u64_field("count")? as usize;
        let page = req.u64_field("page")? as usize;
        if count == 0 || page == 0 {
            return Err(E_BAD_PAYLOAD);
        }
        let mine: Vec<Value> = self
            .chat_order
            .iter()
            .filter(|id| self.role(id, req.login).is_ok())
            .skip((page - 1).saturating_mul(count))
            .take(count)
            .map(|id| self.chat_object(id))
            .collect();
        Ok(json!({ "chats": mine }))
    }

    /// `getChatByID`.
    pub(super) fn api_get_chat_by_id(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("chatId")?;
        self.role(id, req.login)?;
        Ok(self.chat_object(id))
    }

    /// `createP2PChat`.
    pub(super) fn api_create_p2p_chat(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let other = self.login_of(req.str_field("userId")?)?;
        let id = self.create_p2p(req.login, &other, req.except());
        Ok(json!({ "chatId": id }))
    }

    /// `createGroupChat`, or `createChannel` when `channel` is set.
    pub(super) fn api_create_titled_chat(
        &mut self,
        req: &Request<'_>,
        channel: bool,
    ) -> ApiResult<Value> {
        let title = req.opt_str_field("title")?;
        let name = req.opt_str_field("name")?;
        let title = title.or(name).ok_or(E_BAD_PAYLOAD)?;
        check_title(title)?;
        let chat_type = if channel { CHANNEL } else { GROUP };
        let id = self.create_chat(
            req.login,
            chat_type,
            Some(title.to_owned()),
            &[],
            req.except(),
        );
        Ok(json!({ "chatId": id }))
    }

    /// `createFavoritesChat`: the caller's one favourites chat, created if missing.
    pub(super) fn api_create_favorites_chat(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let existing = self.chat_order.iter().find(|id| {
            self.chats.get(*id).is_some_and(|chat| {
                chat.chat_type == FAVORITES
                    && chat
                        .participants
                        .iter()
                        .any(|(login, _)| login == req.login)
            })
        });
        let id = match existing {
            Some(id) => id.clone(),
            None => self.create_chat(req.login, FAVORITES, None, &[], req.except()),
        };
        Ok(json!({ "chatId": id }))
    }

    /// `removeChat`.
    pub(super) fn api_remove_chat(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        self.remove_chat(req.login, req.str_field("chatId")?, req.except())?;
        Ok(json!({}))
    }

    /// `editChatTitle`.
    pub(super) fn api_edit_chat_title(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let timestamp = self.edit_title(req.login, chat, req.str_field("title")?, req.except())?;
        Ok(json!({ "chatId": chat, "timestamp": timestamp }))
    }

    /// `editChatAvatar`: the avatar is a file the caller uploaded before.
    pub(super) fn api_edit_chat_avatar(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let temporal_id = req.str_field("temporalFileId")?;
        self.require_manager(chat, req.login)?;
        let upload = self.take_temporal_file(temporal_id, req.login)?;
        self.set_avatar(
            req.login,
            chat,
            &upload.name,
            upload.data.to_bytes(),
            req.except(),
        )?;
        Ok(json!({}))
    }

    /// `clearHistory`.
    pub(super) fn api_clear_history(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        self.clear_history(
            req.login,
            req.str_field("chatId")?,
            req.bool_field("forAll")?,
            req.except(),
        )?;
        Ok(json!({}))
    }
}
