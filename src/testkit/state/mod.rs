//! The emulated server's state and every client→server method, on raw `serde_json::Value`.
//!
//! This is deliberately an independent reading of PROTOCOL.md: it shares no types with the
//! client side of the crate, so a dialect mistake in the client shows up as a test failure here.
//!
//! This file holds the [`State`] itself and routes each method name to the domain file that
//! implements it; each domain (chats, participants, messages, surveys, commands, files, users,
//! authorisation, event delivery) adds its own `impl State` block in a file of its own. The
//! operations a method shares with scripted users (post a message, add a participant, …) are
//! `pub(crate)` so both paths cause exactly the same events.

mod access;
mod auth;
mod chats;
mod commands;
mod delivery;
mod files;
mod journal;
mod load_chats;
mod messages;
mod model;
mod participants;
mod payload;
mod snapshot;
mod surveys;
mod users;
mod views;

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use self::model::{
    ChatRecord, Connection, Event, FileRecord, Journal, MessageRecord, TemporalFile, UploadTask,
    UserRecord,
};
use self::payload::Request;
use super::config::UploadLimits;
use super::load::LoadRun;
use super::records::{RecordedRequest, SimStats};
use super::wire::{ApiResult, E_BAD_PAYLOAD, E_NOT_AUTHORIZED, E_UNKNOWN_METHOD};

pub(crate) struct State {
    pub(crate) domain: String,
    /// `scheme://host:port` of the server, for download URLs.
    pub(crate) base_url: String,
    pub(crate) users: HashMap<String, UserRecord>,
    pub(crate) chats: HashMap<String, ChatRecord>,
    /// Chat ids in creation order (`getChats` pages through it).
    chat_order: Vec<String>,
    messages: HashMap<String, MessageRecord>,
    pub(crate) files: HashMap<String, FileRecord>,
    temporal_files: HashMap<String, TemporalFile>,
    upload_tasks: HashMap<String, UploadTask>,
    /// `commandId`s of `waitReply` button presses not yet answered.
    pending_commands: HashSet<String>,
    pub(crate) limits: UploadLimits,
    pub(crate) conns: HashMap<u64, Connection>,
    /// Events for accounts with no live connection, by login, in push order.
    offline_queue: HashMap<String, Vec<Event>>,
    next_seq: u64,
    pub(crate) stats: SimStats,
    /// Messages the bot posted, `(chat id, envelope)`, until an `expect_message` takes them.
    pub(crate) outbox: VecDeque<(String, Value)>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) record_requests: bool,
    pub(crate) load: Option<LoadRun>,
    /// Failures injected per method: (error code, remaining count; `None` = forever).
    pub(crate) failures: HashMap<String, (u16, Option<u32>)>,
    /// The latest `sendChatActivity` per chat: (login, activity, when in ms), until that user
    /// posts in the chat.
    activity: HashMap<String, (String, String, u64)>,
    /// The session recording, when one was asked for.
    pub(crate) journal: Option<Journal>,
}

impl State {
    pub(crate) fn new(domain: String) -> Self {
        State {
            domain,
            base_url: String::new(),
            users: HashMap::new(),
            chats: HashMap::new(),
            chat_order: Vec::new(),
            messages: HashMap::new(),
            files: HashMap::new(),
            temporal_files: HashMap::new(),
            upload_tasks: HashMap::new(),
            pending_commands: HashSet::new(),
            limits: UploadLimits::default(),
            conns: HashMap::new(),
            offline_queue: HashMap::new(),
            next_seq: 0,
            stats: SimStats::default(),
            outbox: VecDeque::new(),
            requests: Vec::new(),
            record_requests: true,
            load: None,
            failures: HashMap::new(),
            activity: HashMap::new(),
            journal: None,
        }
    }

    /// Remembers a client request for [`Sim::requests`](crate::testkit::Sim::requests).
    pub(crate) fn record(&mut self, method: &str, payload: &Value) {
        if self.record_requests {
            self.requests.push(RecordedRequest {
                method: method.to_owned(),
                payload: payload.clone(),
            });
        }
    }

    /// Runs one client→server method (everything but `auth`).
    pub(crate) fn call(&mut self, conn: u64, method: &str, payload: &Value) -> ApiResult<Value> {
        if let Some(code) = self.take_injected_failure(method) {
            return Err(code);
        }
        let login = self.authed(conn).ok_or(E_NOT_AUTHORIZED)?.to_owned();
        if !payload.is_object() {
            return Err(E_BAD_PAYLOAD);
        }
        let req = Request {
            conn,
            login: &login,
            payload,
        };
        match method {
            // messages.rs
            "sendMessage" => self.api_send_message(&req),
            "editMessage" => self.api_edit_message(&req),
            "removeMessage" => self.api_remove_message(&req),
            "forwardMessage" => self.api_forward_message(&req),
            "getMessageById" => self.api_get_message_by_id(&req),
            "getChatHistory" => self.api_get_chat_history(&req),
            "sendChatActivity" => self.api_send_chat_activity(&req),
            // surveys.rs
            "sendSurvey" => self.api_send_survey(&req),
            "editSurvey" => self.api_edit_survey(&req),
            // commands.rs
            "answerCommand" => self.api_answer_command(&req),
            // files.rs
            "uploadFile" => self.api_upload_file(&req),
            "sendFile" => self.api_send_file(&req),
            "getFileInfo" => self.api_get_file_info(&req),
            "subscribeFileProgress" => self.api_file_progress_subscription(&req, true),
            "unsubscribeFileProgress" => self.api_file_progress_subscription(&req, false),
            "getFileUploadLimits" => Ok(self.limits.to_json()),
            // chats.rs
            "getChats" => self.api_get_chats(&req),
            "getChatByID" => self.api_get_chat_by_id(&req),
            "createP2PChat" => self.api_create_p2p_chat(&req),
            "createGroupChat" => self.api_create_titled_chat(&req, false),
            "createChannel" => self.api_create_titled_chat(&req, true),
            "createFavoritesChat" => self.api_create_favorites_chat(&req),
            "removeChat" => self.api_remove_chat(&req),
            "editChatTitle" => self.api_edit_chat_title(&req),
            "editChatAvatar" => self.api_edit_chat_avatar(&req),
            "clearHistory" => self.api_clear_history(&req),
            // participants.rs
            "getChatParticipants" => self.api_get_chat_participants(&req),
            "getChatParticipant" => self.api_get_chat_participant(&req),
            "hasChatParticipant" => self.api_has_chat_participant(&req),
            "addChatParticipant" => self.api_add_chat_participant(&req),
            "removeChatParticipant" => self.api_remove_chat_participant(&req),
            "changeParticipantRole" => self.api_change_participant_role(&req),
            // users.rs
            "getUserDisplayName" => self.api_get_user_display_name(&req),
            _ => Err(E_UNKNOWN_METHOD),
        }
    }

    /// The error code `method` must fail with now, if fault injection says so; counts down a
    /// limited failure and forgets it when it is used up.
    fn take_injected_failure(&mut self, method: &str) -> Option<u16> {
        let (code, remaining) = self.failures.get_mut(method)?;
        let code = *code;
        match remaining {
            Some(0) => {
                self.failures.remove(method);
                None
            }
            Some(left) => {
                *left -= 1;
                if *left == 0 {
                    self.failures.remove(method);
                }
                Some(code)
            }
            None => Some(code),
        }
    }
}
