//! Inspection: snapshots of what the running emulator holds (messages, chats, files, requests,
//! counters). What the bot has yet to do is waited for in `expect`, not read here: a read
//! would race the bot.

use bytes::Bytes;
use serde_json::Value;

use super::Sim;
use crate::error::Result;
use crate::sync::lock;
use crate::testkit::pattern::Blob;
use crate::testkit::records::{RecordedRequest, SimFile, SimStats};
use crate::testkit::view::{ChatKind, SimChat, SimMessage};

impl Sim {
    /// Every request the bot made so far, in order (`auth` included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// Waits until the bot has made a request with this method and returns its payload.
    pub async fn expect_request(&self, method: &str) -> Result<Value> {
        self.shared
            .wait_for(
                &format!("a {method} request"),
                self.shared.cfg.expect_timeout,
                |state| {
                    state
                        .requests
                        .iter()
                        .rev()
                        .find(|request| request.method == method)
                        .map(|request| request.payload.clone())
                },
            )
            .await
    }

    /// The chat's messages, oldest first (system notices included).
    pub fn history(&self, chat: &str) -> Vec<SimMessage> {
        self.shared
            .state()
            .history(chat, None)
            .into_iter()
            .map(SimMessage::from_envelope)
            .collect()
    }

    /// One message by id (`None` once removed).
    pub fn message(&self, id: &str) -> Option<SimMessage> {
        self.shared
            .state()
            .message(id)
            .map(SimMessage::from_envelope)
    }

    /// One chat: title, kind and participants.
    pub fn chat(&self, id: &str) -> Option<SimChat> {
        let state = self.shared.state();
        let record = state.chats.get(id)?;
        Some(SimChat {
            id: id.to_owned(),
            title: record.title.clone(),
            kind: ChatKind::from_code(record.chat_type),
            participants: record
                .participants
                .iter()
                .map(|(login, role)| (state.full_id(login), (*role).to_owned()))
                .collect(),
        })
    }

    /// Participants of a chat as `(full user id, role)`.
    pub fn participants(&self, chat: &str) -> Vec<(String, String)> {
        let state = self.shared.state();
        state
            .chats
            .get(chat)
            .map(|record| {
                record
                    .participants
                    .iter()
                    .map(|(login, role)| (state.full_id(login), (*role).to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Title of a chat.
    pub fn chat_title(&self, chat: &str) -> Option<String> {
        self.shared
            .state()
            .chats
            .get(chat)
            .and_then(|record| record.title.clone())
    }

    /// Whether the chat exists.
    pub fn chat_exists(&self, chat: &str) -> bool {
        self.shared.state().chats.contains_key(chat)
    }

    /// Contents of a stored file (pattern files are generated in full: mind their size).
    pub fn file_bytes(&self, file_id: &str) -> Option<Bytes> {
        self.shared
            .state()
            .files
            .get(file_id)
            .map(|file| file.data.to_bytes())
    }

    /// The `Range` header (if any) of every file download request so far, in order.
    pub fn download_ranges(&self) -> Vec<Option<String>> {
        lock(&self.shared.download_ranges).clone()
    }

    /// What the emulator stored for a file: name, MIME type, size and preview.
    pub fn file_info(&self, file_id: &str) -> Option<SimFile> {
        let state = self.shared.state();
        let file = state.files.get(file_id)?;
        Some(SimFile {
            name: file.name.clone(),
            mime: file.mime.clone(),
            size: file.data.len(),
            pattern: matches!(file.data, Blob::Pattern(_)),
            preview: file.preview.clone(),
        })
    }

    /// Counters (pushed / acked / re-delivered events, connections).
    pub fn stats(&self) -> SimStats {
        self.shared.state().stats.clone()
    }

    /// Number of live WebSocket connections that passed `auth`.
    pub fn authed_connections(&self) -> usize {
        self.shared.state().authed_conn_ids().len()
    }
}
