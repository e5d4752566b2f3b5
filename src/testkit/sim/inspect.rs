//! Assertions and inspection: what a test asks the running emulator about the bot's
//! behaviour.
//!
//! The bot runs concurrently with the test, so anything the bot has yet to do is an `expect_*`
//! that waits (woken by every state change, bounded by a timeout) rather than a read that
//! races; things already settled are plain snapshots.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::Sim;
use crate::error::{Error, Result};
use crate::sync::lock;
use crate::testkit::pattern::Blob;
use crate::testkit::records::{RecordedRequest, SimFile, SimStats};

impl Sim {
    /// Waits (up to the configured timeout) for the next message the bot posted in `chat` and
    /// returns its envelope. Each message is returned once.
    pub async fn expect_message(&self, chat: &str) -> Result<Value> {
        self.expect_message_within(chat, self.shared.cfg.expect_timeout)
            .await
    }

    /// [`expect_message`](Self::expect_message) with an explicit timeout.
    pub async fn expect_message_within(&self, chat: &str, timeout: Duration) -> Result<Value> {
        self.shared
            .wait_for(&format!("a bot message in chat {chat}"), timeout, |state| {
                let index = state.outbox.iter().position(|(id, _)| id == chat)?;
                state.outbox.remove(index).map(|(_, envelope)| envelope)
            })
            .await
    }

    /// Waits for the next `n` bot messages in `chat`.
    pub async fn expect_messages(&self, chat: &str, n: usize) -> Result<Vec<Value>> {
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            messages.push(self.expect_message(chat).await?);
        }
        Ok(messages)
    }

    /// Asserts that the bot posts nothing in `chat` for `quiet`.
    pub async fn expect_no_message(&self, chat: &str, quiet: Duration) -> Result<()> {
        match self.expect_message_within(chat, quiet).await {
            Err(Error::Timeout { .. }) => Ok(()),
            Ok(envelope) => Err(Error::protocol(format!(
                "unexpected bot message: {envelope}"
            ))),
            Err(e) => Err(e),
        }
    }

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

    /// The chat's history as message envelopes, oldest first (system envelopes included).
    pub fn history(&self, chat: &str) -> Vec<Value> {
        self.shared.state().history(chat, None)
    }

    /// One message envelope by id.
    pub fn message(&self, id: &str) -> Option<Value> {
        self.shared.state().message(id)
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

    /// Waits until at least one connection of any account has passed `auth`.
    pub async fn wait_for_bot(&self, timeout: Duration) -> Result<()> {
        self.shared
            .wait_for("an authenticated bot connection", timeout, |state| {
                (!state.authed_conn_ids().is_empty()).then_some(())
            })
            .await
    }
}
