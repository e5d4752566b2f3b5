//! Scripted users: the humans of a test, acting on the emulator's state directly instead of
//! over a socket.
//!
//! A test wants "alice writes hi" to be one call that cannot itself fail for network reasons,
//! yet the bot must see exactly the events a real client's action would cause. So every
//! [`SimUser`] action runs the same state operation a client request would, under the state
//! lock, and reports the error code a server would answer as an [`Error::Api`].

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::pattern::Blob;
use super::records::SentFile;
use super::shared::Shared;
use super::state::State;
use super::wire::{ApiResult, FILE_NOT_AVAILABLE};
use crate::error::{ApiErrorCode, Error, Result};

/// A file a scripted user is still uploading (`readyState` 1).
pub struct Upload {
    shared: Arc<Shared>,
    /// The posted message and file.
    pub file: SentFile,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("file", &self.file).finish()
    }
}

impl Upload {
    /// Reports `received` bytes: subscribers get `uploadFileProgress`.
    pub fn progress(&self, received: u64) {
        self.shared
            .state()
            .file_progress(&self.file.file_id, received, false);
    }

    /// Abandons the upload: the file becomes NOT_AVAILABLE (`readyState` 0).
    pub fn fail(&self) {
        if let Some(file) = self.shared.state().files.get_mut(&self.file.file_id) {
            file.ready = FILE_NOT_AVAILABLE;
        }
        self.shared.notify.notify_waiters();
    }

    /// Completes the upload: the file becomes READY and subscribers get a final progress event.
    pub fn finish(&self) {
        self.shared
            .state()
            .file_progress(&self.file.file_id, u64::MAX, true);
    }
}

/// A scripted user acting through the emulator's state (no socket).
#[derive(Clone)]
pub struct SimUser {
    shared: Arc<Shared>,
    login: String,
}

impl std::fmt::Debug for SimUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimUser")
            .field("login", &self.login)
            .finish()
    }
}

impl SimUser {
    /// A handle for `login`, which must already exist in the state.
    pub(crate) fn new(shared: Arc<Shared>, login: &str) -> Self {
        SimUser {
            shared,
            login: login.to_owned(),
        }
    }

    /// Login without domain.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Full TrueConf id, `login@domain`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.login, self.shared.cfg.domain)
    }

    /// Runs one action under the state lock, wakes waiting assertions, and turns an error code
    /// into the error a client would get for `method`.
    fn run<T>(
        &self,
        method: &'static str,
        action: impl FnOnce(&mut State) -> ApiResult<T>,
    ) -> Result<T> {
        let result = action(&mut self.shared.state());
        self.shared.notify.notify_waiters();
        result.map_err(|code| api_error(method, code))
    }

    /// Opens (or finds) the personal chat with the bot; the bot gets `createP2PChat`.
    pub async fn create_p2p_with_bot(&self) -> Result<String> {
        let bot = self.shared.cfg.bot.login.clone();
        self.run("createP2PChat", |state| {
            Ok(state.create_p2p(&self.login, &bot, None))
        })
    }

    /// Sends a plain-text message; returns its id.
    pub async fn send_text(&self, chat: &str, text: &str) -> Result<String> {
        self.send(chat, json!({ "text": text, "parseMode": "text" }), None)
    }

    /// Sends an HTML message; returns its id.
    pub async fn send_html(&self, chat: &str, html: &str) -> Result<String> {
        self.send(chat, json!({ "text": html, "parseMode": "html" }), None)
    }

    /// Sends a text message with any `content` object (`{text, parseMode, buttons?}`).
    pub async fn send_content(&self, chat: &str, content: Value) -> Result<String> {
        self.send(chat, content, None)
    }

    /// Replies to `message` with plain text; returns the reply's id.
    pub async fn reply(&self, chat: &str, message: &str, text: &str) -> Result<String> {
        self.send(
            chat,
            json!({ "text": text, "parseMode": "text" }),
            Some(message),
        )
    }

    /// Replies to `message` with any text `content` (`{text, parseMode}`); returns the reply's id.
    pub async fn reply_content(&self, chat: &str, message: &str, content: Value) -> Result<String> {
        self.send(chat, content, Some(message))
    }

    fn send(&self, chat: &str, content: Value, reply_to: Option<&str>) -> Result<String> {
        self.run("sendMessage", |state| {
            state
                .send_text(&self.login, chat, content, reply_to, None)
                .map(|(message_id, _)| message_id)
        })
    }

    /// Sends a message that @-mentions the bot (an HTML `trueconf:` link).
    pub async fn mention_bot(&self, chat: &str) -> Result<String> {
        let bot = format!("{}@{}", self.shared.cfg.bot.login, self.shared.cfg.domain);
        self.send_html(chat, &format!(r#"<a href="trueconf:{bot}">@bot</a> hello"#))
            .await
    }

    /// Edits one of this user's text messages.
    pub async fn edit(&self, message: &str, text: &str) -> Result<()> {
        self.run("editMessage", |state| {
            state
                .edit(
                    &self.login,
                    message,
                    json!({ "text": text, "parseMode": "text" }),
                    None,
                )
                .map(drop)
        })
    }

    /// Removes a message for everyone.
    pub async fn remove(&self, message: &str) -> Result<()> {
        self.run("removeMessage", |state| {
            state.remove(&self.login, message, true, None)
        })
    }

    /// Uploads a file and posts it in `chat`, READY at once.
    pub async fn upload_file(
        &self,
        chat: &str,
        name: &str,
        data: impl Into<Bytes>,
    ) -> Result<SentFile> {
        self.upload(chat, name, Into::<Bytes>::into(data), true)
    }

    /// Posts a file that is still UPLOADING; drive it with [`Upload::progress`] and
    /// [`Upload::finish`].
    pub async fn start_upload(
        &self,
        chat: &str,
        name: &str,
        data: impl Into<Bytes>,
    ) -> Result<Upload> {
        let file = self.upload(chat, name, Into::<Bytes>::into(data), false)?;
        Ok(Upload {
            shared: self.shared.clone(),
            file,
        })
    }

    /// Posts a READY file of `len` generated [`pattern`] bytes, stored without holding them in
    /// memory (for large-download tests).
    ///
    /// [`pattern`]: fn@crate::testkit::pattern
    pub async fn upload_pattern_file(&self, chat: &str, name: &str, len: u64) -> Result<SentFile> {
        self.upload(chat, name, Blob::Pattern(len), true)
    }

    fn upload(
        &self,
        chat: &str,
        name: &str,
        data: impl Into<Blob>,
        ready: bool,
    ) -> Result<SentFile> {
        let data = data.into();
        let mime = mime_of(name);
        self.run("sendFile", |state| {
            state.role_check(chat, &self.login)?;
            let file_id = state.store_file(name, mime, data, ready);
            let (message_id, _) = state.post_file(&self.login, chat, &file_id, None, None)?;
            Ok(SentFile {
                message_id,
                file_id,
            })
        })
    }

    /// Presses the `command` button `command` of the bot message `message`; the bot gets a
    /// `command` event. Returns the `commandId` for `waitReply` buttons. Error 306 when the
    /// message has no such button.
    pub async fn press_button(
        &self,
        chat: &str,
        message: &str,
        command: &str,
    ) -> Result<Option<String>> {
        self.run("command", |state| {
            state.press(&self.login, chat, message, command)
        })
    }

    /// Adds `login` to a group or channel this user manages.
    pub async fn add_participant(&self, chat: &str, login: &str) -> Result<()> {
        self.run("addChatParticipant", |state| {
            state.ensure_user(login);
            state.add_participant(&self.login, chat, login, None)
        })
    }

    /// Removes `login` from a chat this user manages.
    pub async fn remove_participant(&self, chat: &str, login: &str) -> Result<()> {
        self.run("removeChatParticipant", |state| {
            state.remove_participant(&self.login, chat, login, false, None)
        })
    }

    /// Changes the role of `login` (`"admin"`, `"writer"`, …).
    pub async fn set_role(&self, chat: &str, login: &str, role: &str) -> Result<()> {
        let role = ["owner", "admin", "user", "writer"]
            .into_iter()
            .find(|known| *known == role)
            .ok_or_else(|| Error::invalid("role", format!("unknown role {role:?}")))?;
        self.run("changeParticipantRole", |state| {
            state.set_role(&self.login, chat, login, role, None)
        })
    }

    /// Renames a chat.
    pub async fn rename_chat(&self, chat: &str, title: &str) -> Result<()> {
        self.run("editChatTitle", |state| {
            state.edit_title(&self.login, chat, title, None).map(drop)
        })
    }

    /// Sets a chat's avatar from image bytes; members get `editChatAvatar`.
    pub async fn set_chat_avatar(
        &self,
        chat: &str,
        name: &str,
        data: impl Into<Bytes>,
    ) -> Result<String> {
        let data = data.into();
        self.run("editChatAvatar", |state| {
            state.set_avatar(&self.login, chat, name, data, None)
        })
    }

    /// Clears a chat's history for everyone.
    pub async fn clear_history(&self, chat: &str) -> Result<()> {
        self.run("clearHistory", |state| {
            state.clear_history(&self.login, chat, true, None)
        })
    }

    /// Deletes a chat.
    pub async fn remove_chat(&self, chat: &str) -> Result<()> {
        self.run("removeChat", |state| {
            state.remove_chat(&self.login, chat, None)
        })
    }
}

/// The error a client gets when `method` is answered with `code`.
fn api_error(method: &'static str, code: u16) -> Error {
    Error::Api {
        method,
        code: ApiErrorCode(code as u32),
        payload: Some(format!(r#"{{"errorCode":{code}}}"#)),
    }
}

/// The MIME type a scripted user's client would send for a file called `name`.
fn mime_of(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "json" => "application/json",
        "vcf" | "vcard" => "text/vcard",
        _ => "application/octet-stream",
    }
}
