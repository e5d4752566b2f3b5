//! Waiting for the bot: its next message in a chat, an edit, a removal, a file, a new session.
//!
//! The bot runs concurrently with the test, so everything here waits, woken by every change of
//! the emulator's state and bounded by a timeout, instead of reading once and racing the bot.
//! Failures are typed: [`Error::Timeout`] when nothing came (naming what was awaited), and
//! [`Error::Unexpected`] when something else came.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::Sim;
use crate::error::{Error, Result};
use crate::testkit::view::{SimAttachment, SimMessage};

impl Sim {
    /// The default timeout of the `expect_*` waits ([`SimConfig::expect_timeout`], 5 s unless
    /// changed).
    ///
    /// [`SimConfig::expect_timeout`]: crate::testkit::SimConfig::expect_timeout
    pub fn expect_timeout(&self) -> Duration {
        self.shared.cfg.expect_timeout
    }

    /// Waits (up to [`expect_timeout`](Self::expect_timeout)) for the next message the bot
    /// posted in `chat`. Each bot message is returned once, in the order the bot posted them.
    pub async fn expect_message(&self, chat: &str) -> Result<SimMessage> {
        self.expect_message_within(chat, self.expect_timeout())
            .await
    }

    /// [`expect_message`](Self::expect_message) with an explicit timeout.
    pub async fn expect_message_within(&self, chat: &str, timeout: Duration) -> Result<SimMessage> {
        self.shared
            .wait_for(&format!("a bot message in chat {chat}"), timeout, |state| {
                let index = state.outbox.iter().position(|(id, _)| id == chat)?;
                state.outbox.remove(index).map(|(_, envelope)| envelope)
            })
            .await
            .map(SimMessage::from_envelope)
    }

    /// Waits for the next `n` bot messages in `chat`.
    pub async fn expect_messages(&self, chat: &str, n: usize) -> Result<Vec<SimMessage>> {
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            messages.push(self.expect_message(chat).await?);
        }
        Ok(messages)
    }

    /// Waits for the bot's next message in `chat` and checks that its text (or a survey's
    /// title, a file's name) contains `needle`; [`Error::Unexpected`] names what it said.
    pub async fn expect_text(&self, chat: &str, needle: &str) -> Result<SimMessage> {
        let message = self.expect_message(chat).await?;
        if message.text_or_title().contains(needle) {
            return Ok(message);
        }
        Err(Error::Unexpected {
            expected: format!("a bot message containing {needle:?} in chat {chat}"),
            found: format!("{:?}", message.summary()),
        })
    }

    /// Waits for the bot's next message in `chat` and checks that it is a file; returns the
    /// message and its file (read the bytes with [`file_bytes`](Self::file_bytes)).
    pub async fn expect_file(&self, chat: &str) -> Result<(SimMessage, SimAttachment)> {
        let message = self.expect_message(chat).await?;
        match message.file() {
            Some(file) => Ok((message, file)),
            None => Err(Error::Unexpected {
                expected: format!("a file from the bot in chat {chat}"),
                found: format!("a {:?} message: {:?}", message.kind, message.summary()),
            }),
        }
    }

    /// Asserts that the bot posts nothing in `chat` for `quiet`.
    pub async fn expect_no_message(&self, chat: &str, quiet: Duration) -> Result<()> {
        match self.expect_message_within(chat, quiet).await {
            Err(Error::Timeout { .. }) => Ok(()),
            Ok(message) => Err(Error::Unexpected {
                expected: format!("no bot message in chat {chat} for {quiet:?}"),
                found: format!("{:?}", message.summary()),
            }),
            Err(e) => Err(e),
        }
    }

    /// Waits until `message` (a snapshot taken earlier) has been edited: its content differs
    /// from the snapshot's. Returns the edited message; [`Error::Unexpected`] if it was removed
    /// instead.
    pub async fn expect_edit(&self, message: &SimMessage) -> Result<SimMessage> {
        let id = message.id.clone();
        let before = message.raw()["content"].clone();
        let found = self
            .shared
            .wait_for(
                &format!("an edit of message {id}"),
                self.expect_timeout(),
                |state| match state.message(&id) {
                    None => Some(None),
                    Some(now) if now["content"] != before => Some(Some(now)),
                    Some(_) => None,
                },
            )
            .await?;
        found
            .map(SimMessage::from_envelope)
            .ok_or_else(|| Error::Unexpected {
                expected: format!("an edit of message {id}"),
                found: "its removal".into(),
            })
    }

    /// Waits until message `id` has been removed for everyone.
    pub async fn expect_removed(&self, id: &str) -> Result<()> {
        self.shared
            .wait_for(
                &format!("the removal of message {id}"),
                self.expect_timeout(),
                |state| state.message(id).is_none().then_some(()),
            )
            .await
    }

    /// Waits until a bot is connected with a **new** session: one that authenticated after the
    /// session the previous call returned for (the first call takes any live session).
    ///
    /// So "restart the bot, `wait_for_bot`, send" is safe: the old socket may still be open
    /// for a moment after the old bot stopped, but it is not the new session, and a message
    /// sent to it would be lost. To ask whether some bot is connected right now, use
    /// [`authed_connections`](Self::authed_connections).
    pub async fn wait_for_bot(&self, timeout: Duration) -> Result<()> {
        let seen = self.seen_session.load(Relaxed);
        let session = self
            .shared
            .wait_for("a new authenticated bot session", timeout, |state| {
                state.newest_session().filter(|session| *session > seen)
            })
            .await?;
        self.seen_session.fetch_max(session, Relaxed);
        Ok(())
    }

    /// Waits until some session is authenticated, new or not (the load runner's check).
    pub(crate) async fn wait_for_live_session(&self, timeout: Duration) -> Result<()> {
        self.shared
            .wait_for("an authenticated bot connection", timeout, |state| {
                state.newest_session().map(drop)
            })
            .await
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails with [`Error::Timeout`] naming
/// `what` after `timeout`. For conditions outside the emulator (a handler's side effect); the
/// emulator's own state has the waking `expect_*` methods.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= until {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
