//! Recording a session and replaying a transcript's user side against a bot, comparing the
//! bot's side with what was recorded (the format is described on `testkit::Transcript`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tokio::time::Instant;

use super::Sim;
use crate::error::{Error, Result};
use crate::testkit::transcript::{
    Action, Difference, ReplayReport, Side, Transcript, TranscriptEntry, comparable,
};
use crate::testkit::view::SimMessage;
use crate::testkit::wire::{CHANNEL, GROUP, MSG_FILE, MSG_TEXT, P2P};

/// The contents of the bot's edits of the same message from `entries[0]` (an edit) on: the
/// edits a replay accepts in its place, since fast edits may coalesce.
fn later_edits<'a>(entries: &'a [TranscriptEntry], entry: &TranscriptEntry) -> Vec<&'a Value> {
    let Action::Edit { message, .. } = &entry.action else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| e.side == Side::Bot)
        .filter_map(|e| match &e.action {
            Action::Edit {
                message: m,
                content,
                ..
            } if m == message => Some(content),
            _ => None,
        })
        .collect()
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Wait this long for each thing the bot is expected to do.
    pub timeout: Duration,
    /// Keep the recorded pauses between the users' actions.
    pub timing: bool,
    /// After the last entry, watch the chats this long for replies the transcript does not
    /// have (zero: do not check).
    pub quiet: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            timeout: Duration::from_secs(10),
            timing: false,
            quiet: Duration::from_millis(200),
        }
    }
}

/// Names (`{{chat:1}}`) ↔ this run's ids, and the last state of each bot message seen.
#[derive(Default)]
struct Names {
    real: HashMap<String, String>,
    seen: HashMap<String, SimMessage>,
}

impl Names {
    fn real(&self, name: &str) -> Option<String> {
        self.real.get(name).cloned()
    }

    /// `value` with every name replaced by this run's id.
    fn to_real(&self, value: &Value) -> Value {
        self.map_strings(value, true)
    }

    /// `value` with every id of this run replaced by its name.
    fn to_names(&self, value: &Value) -> Value {
        self.map_strings(value, false)
    }

    fn map_strings(&self, value: &Value, to_real: bool) -> Value {
        match value {
            Value::String(text) => {
                let mut text = text.clone();
                for (name, id) in &self.real {
                    let (from, to) = if to_real { (name, id) } else { (id, name) };
                    if text.contains(from.as_str()) {
                        text = text.replace(from.as_str(), to);
                    }
                }
                Value::String(text)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.map_strings(v, to_real)).collect())
            }
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.map_strings(v, to_real)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

impl Sim {
    /// Starts recording everything users and the bot do (chats created, messages posted,
    /// edited and removed, buttons pressed); read it with [`transcript`](Self::transcript).
    pub fn start_recording(&self) {
        self.shared.state().start_journal();
    }

    /// What was recorded since [`start_recording`](Self::start_recording).
    pub fn transcript(&self) -> Transcript {
        let (entries, users) = {
            let state = self.shared.state();
            let bot = &self.shared.cfg.bot.login;
            let mut users: Vec<String> = state
                .users
                .keys()
                .filter(|login| *login != bot && !login.starts_with("load-user-"))
                .cloned()
                .collect();
            users.sort();
            (state.journal_entries(), users)
        };
        Transcript {
            bot: self.shared.cfg.bot.login.clone(),
            users,
            entries: entries
                .into_iter()
                .filter_map(|entry| serde_json::from_value(entry).ok())
                .collect(),
        }
    }

    /// Plays the users' side of `transcript` against the connected bot and compares what the
    /// bot does with the bot's side. Differences are reported, not errors: the error is only
    /// for a transcript that names a chat or message it never introduced.
    pub async fn replay(
        &self,
        transcript: &Transcript,
        options: &ReplayOptions,
    ) -> Result<ReplayReport> {
        let mut names = Names::default();
        let mut report = ReplayReport::default();
        let started = Instant::now();
        let bot = transcript.bot.as_str();
        for login in &transcript.users {
            self.shared.state().ensure_user(login);
        }
        for (index, entry) in transcript.entries.iter().enumerate() {
            report.entries += 1;
            let outcome = match entry.side {
                Side::User => {
                    if options.timing {
                        tokio::time::sleep_until(started + Duration::from_millis(entry.at_ms))
                            .await;
                    }
                    self.replay_user(entry, bot, &mut names).await
                }
                Side::Bot => {
                    let later = later_edits(&transcript.entries[index..], entry);
                    self.replay_bot(entry, options, &later, &mut names).await
                }
            };
            if let Err((expected, found)) = outcome {
                report.differences.push(Difference {
                    entry: index,
                    expected,
                    found,
                });
            }
        }
        if !options.quiet.is_zero() {
            let chats: HashSet<String> = names
                .real
                .iter()
                .filter(|(name, _)| name.starts_with("{{chat:"))
                .map(|(_, id)| id.clone())
                .collect();
            for chat in chats {
                if let Ok(extra) = self.expect_message_within(&chat, options.quiet).await {
                    report.differences.push(Difference {
                        entry: transcript.entries.len(),
                        expected: "no further bot message".into(),
                        found: format!("{:?}", extra.summary()),
                    });
                }
            }
        }
        Ok(report)
    }

    async fn replay_user(
        &self,
        entry: &TranscriptEntry,
        bot: &str,
        names: &mut Names,
    ) -> std::result::Result<(), (String, String)> {
        let user = self.user(&entry.actor);
        let failed = |what: &str, e: Error| (format!("{} to {what}", entry.actor), e.to_string());
        let chat_of = |names: &Names, chat: &str| {
            names
                .real(chat)
                .ok_or_else(|| (format!("a known chat {chat}"), "none".to_owned()))
        };
        match &entry.action {
            Action::Chat {
                chat,
                chat_type,
                title,
                members,
            } => {
                let id = match *chat_type {
                    P2P if members.iter().any(|m| m == bot) => user
                        .create_p2p_with_bot()
                        .await
                        .map_err(|e| failed("open a chat with the bot", e))?,
                    GROUP | CHANNEL => {
                        let members: Vec<&str> = members.iter().map(String::as_str).collect();
                        self.create(&user, *chat_type, title.as_deref().unwrap_or(""), &members)
                    }
                    other => {
                        return Err((
                            "a chat a replay can create".into(),
                            format!("chat type {other}"),
                        ));
                    }
                };
                names.real.insert(chat.clone(), id);
            }
            Action::Post {
                chat,
                message,
                kind,
                content,
                reply_to,
                file,
                ..
            } => {
                let real_chat = chat_of(names, chat)?;
                let id = match *kind {
                    MSG_TEXT => {
                        let content = names.to_real(content);
                        let sent = match reply_to.as_deref().and_then(|r| names.real(r)) {
                            Some(replied) => {
                                user.reply_content(&real_chat, &replied, content).await
                            }
                            None => user.send_content(&real_chat, content).await,
                        };
                        sent.map_err(|e| failed("send a message", e))?
                    }
                    MSG_FILE => {
                        let name = content["name"].as_str().unwrap_or("file");
                        let file = file.clone().unwrap_or_default();
                        let sent = if let Some(len) = file["pattern"].as_u64() {
                            user.upload_pattern_file(&real_chat, name, len).await
                        } else {
                            let data = base64::engine::general_purpose::STANDARD
                                .decode(file["base64"].as_str().unwrap_or_default())
                                .map_err(|e| ("a base64 file".to_owned(), e.to_string()))?;
                            user.upload_file(&real_chat, name, data).await
                        };
                        sent.map_err(|e| failed("send a file", e))?.message_id
                    }
                    other => {
                        return Err((
                            "a message a replay can post".into(),
                            format!("type {other}"),
                        ));
                    }
                };
                names.real.insert(message.clone(), id);
            }
            Action::Edit {
                message, content, ..
            } => {
                let id = names
                    .real(message)
                    .ok_or_else(|| (format!("a known message {message}"), "none".to_owned()))?;
                let text = names.to_real(content)["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                user.edit(&id, &text)
                    .await
                    .map_err(|e| failed("edit a message", e))?;
            }
            Action::Remove { message, .. } => {
                let id = names
                    .real(message)
                    .ok_or_else(|| (format!("a known message {message}"), "none".to_owned()))?;
                user.remove(&id)
                    .await
                    .map_err(|e| failed("remove a message", e))?;
            }
            Action::Join { chat, member } => {
                let real_chat = chat_of(names, chat)?;
                user.add_participant(&real_chat, member)
                    .await
                    .map_err(|e| failed(&format!("add {member}"), e))?;
            }
            Action::Press {
                chat,
                message,
                command,
            } => {
                let real_chat = chat_of(names, chat)?;
                let id = names.real(message).ok_or_else(|| {
                    (
                        format!("the bot message {message} with button {command:?}"),
                        "no such message in this run".to_owned(),
                    )
                })?;
                user.press_button(&real_chat, &id, command)
                    .await
                    .map_err(|e| failed(&format!("press {command:?}"), e))?;
            }
        }
        Ok(())
    }

    async fn replay_bot(
        &self,
        entry: &TranscriptEntry,
        options: &ReplayOptions,
        later: &[&Value],
        names: &mut Names,
    ) -> std::result::Result<(), (String, String)> {
        match &entry.action {
            Action::Chat {
                chat,
                chat_type,
                title,
                ..
            } => {
                let known: HashSet<String> = names.real.values().cloned().collect();
                let id = self
                    .shared
                    .wait_for("a chat created by the bot", options.timeout, |state| {
                        state.find_new_chat(*chat_type, title.as_deref(), &known)
                    })
                    .await
                    .map_err(|e| {
                        (
                            format!("the bot to create the chat {title:?}"),
                            e.to_string(),
                        )
                    })?;
                names.real.insert(chat.clone(), id);
            }
            Action::Post {
                chat,
                message,
                kind,
                content,
                contains,
                ..
            } => {
                let real_chat = names
                    .real(chat)
                    .ok_or_else(|| (format!("a known chat {chat}"), "none".to_owned()))?;
                let expected = comparable(*kind, content);
                let got = self
                    .expect_message_within(&real_chat, options.timeout)
                    .await
                    .map_err(|e| (format!("the bot to post {expected}"), e.to_string()))?;
                names.real.insert(message.clone(), got.id.clone());
                let kind_code = got.raw()["type"].as_u64().unwrap_or(0) as u16;
                let found = names.to_names(&comparable(kind_code, &got.raw()["content"]));
                names.seen.insert(message.clone(), got);
                if let Some(needle) = contains {
                    let text = found["text"].as_str().unwrap_or_default();
                    if kind_code != *kind || !text.contains(needle.as_str()) {
                        return Err((
                            format!("the bot to post a text containing {needle:?}"),
                            format!("{found} (type {kind_code})"),
                        ));
                    }
                    return Ok(());
                }
                if kind_code != *kind || found != expected {
                    return Err((
                        format!("the bot to post {expected}"),
                        format!("{found} (type {kind_code})"),
                    ));
                }
            }
            Action::Edit {
                message, content, ..
            } => {
                let id = names
                    .real(message)
                    .ok_or_else(|| (format!("a known message {message}"), "none".to_owned()))?;
                let kind = names
                    .seen
                    .get(message)
                    .and_then(|m| m.raw()["type"].as_u64())
                    .unwrap_or(200) as u16;
                let expected = comparable(kind, content);
                let accepted: Vec<Value> = later.iter().map(|c| comparable(kind, c)).collect();
                let deadline = Instant::now() + options.timeout;
                loop {
                    let now = self.message(&id);
                    let found = now
                        .as_ref()
                        .map(|m| names.to_names(&comparable(kind, &m.raw()["content"])));
                    if found.as_ref() == Some(&expected)
                        || found.as_ref().is_some_and(|f| accepted.contains(f))
                    {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err((
                            format!("the bot to edit {message} to {expected}"),
                            found.map_or("the message is gone".into(), |f| f.to_string()),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Action::Remove { message, .. } => {
                let id = names
                    .real(message)
                    .ok_or_else(|| (format!("a known message {message}"), "none".to_owned()))?;
                let deadline = Instant::now() + options.timeout;
                while self.message(&id).is_some() {
                    if Instant::now() >= deadline {
                        return Err((
                            format!("the bot to remove {message}"),
                            "it is still there".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Action::Join { chat, member } => {
                let real_chat = names
                    .real(chat)
                    .ok_or_else(|| (format!("a known chat {chat}"), "none".to_owned()))?;
                self.shared
                    .wait_for(
                        &format!("{member} in chat {chat}"),
                        options.timeout,
                        |state| state.is_participant(&real_chat, member).then_some(()),
                    )
                    .await
                    .map_err(|e| (format!("the bot to add {member} to {chat}"), e.to_string()))?;
            }
            Action::Press { .. } => {}
        }
        Ok(())
    }
}
