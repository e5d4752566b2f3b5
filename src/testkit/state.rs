//! The emulated server's state and every client→server method, on raw `serde_json::Value`.
//!
//! This is deliberately an independent reading of PROTOCOL.md: it shares no types with the
//! client side of the crate, so a dialect mistake in the client shows up as a test failure here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::config::UploadLimits;
use super::load::LoadRun;
use super::pattern::Blob;
use super::records::{RecordedRequest, SimStats};
use super::wire::{
    CHANNEL, E_ACCESS_DENIED, E_ALREADY_IN_CHAT, E_BAD_PAYLOAD, E_EXPIRED, E_FILE_NOT_READY,
    E_INVALID_CREDENTIALS, E_NO_CHAT, E_NO_FILE, E_NO_MESSAGE, E_NO_RIGHTS, E_NO_ROLE,
    E_NOT_AUTHORIZED, E_NOT_PARTICIPANT, E_UNKNOWN_METHOD, E_UNSUPPORTED_CREDENTIALS,
    E_UPLOAD_FAILED, E_USER_DISABLED, FAVORITES, GROUP, Out, P2P, ROLES, hex40, now_ms, uuid,
};

type R<T> = Result<T, u16>;

/// A pushed event kept until acked, so it can be re-delivered.
#[derive(Clone)]
pub(crate) struct Event {
    seq: u64,
    method: Cow<'static, str>,
    payload: Arc<str>,
    system: bool,
}

pub(crate) struct Conn {
    pub(crate) login: Option<String>,
    pub(crate) tx: UnboundedSender<Out>,
    system: bool,
    next_event_id: u64,
    unacked: BTreeMap<u64, Event>,
}

pub(crate) struct UserRec {
    pub(crate) display_name: String,
    pub(crate) password: Option<String>,
    pub(crate) disabled: bool,
    /// Accounts that connect over WebSocket: their events are queued while they are offline.
    pub(crate) bot: bool,
}

pub(crate) struct ChatRec {
    pub(crate) title: Option<String>,
    chat_type: u8,
    pub(crate) participants: Vec<(String, &'static str)>,
    history: Vec<String>,
    avatar_url: Option<String>,
    next_box: u64,
    /// Index of the chat in the running load test, if it is a load chat.
    pub(crate) load: Option<u32>,
}

struct MsgRec {
    chat: String,
    author: String,
    ts: u64,
    kind: u16,
    content: Value,
    edited: bool,
    reply_to: Option<String>,
    box_id: u64,
    hidden_for: Vec<String>,
}

pub(crate) struct FileRec {
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) data: Blob,
    pub(crate) ready: u8,
    pub(crate) received: u64,
    pub(crate) token: String,
    pub(crate) preview: Option<(String, String, Bytes)>,
    subscribers: HashSet<u64>,
}

pub(crate) struct TempFile {
    owner: String,
    name: String,
    mime: String,
    data: Blob,
    preview: Option<(String, String, Bytes)>,
}

struct UploadTask {
    owner: String,
    name: String,
    size: u64,
}

pub(crate) struct State {
    pub(crate) domain: String,
    pub(crate) base_url: String,
    pub(crate) users: HashMap<String, UserRec>,
    pub(crate) chats: HashMap<String, ChatRec>,
    chat_order: Vec<String>,
    messages: HashMap<String, MsgRec>,
    pub(crate) files: HashMap<String, FileRec>,
    temporal: HashMap<String, TempFile>,
    tasks: HashMap<String, UploadTask>,
    commands: HashSet<String>,
    pub(crate) limits: UploadLimits,
    pub(crate) conns: HashMap<u64, Conn>,
    pending: HashMap<String, Vec<Event>>,
    next_seq: u64,
    pub(crate) stats: SimStats,
    pub(crate) outbox: VecDeque<(String, Value)>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) record_requests: bool,
    pub(crate) load: Option<LoadRun>,
    /// Failures injected per method: (error code, remaining count; `None` = forever).
    pub(crate) failures: HashMap<String, (u16, Option<u32>)>,
}

fn s<'a>(p: &'a Value, k: &str) -> R<&'a str> {
    p.get(k).and_then(Value::as_str).ok_or(E_BAD_PAYLOAD)
}

fn opt_s<'a>(p: &'a Value, k: &str) -> R<Option<&'a str>> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v)),
        Some(_) => Err(E_BAD_PAYLOAD),
    }
}

fn b(p: &Value, k: &str) -> R<bool> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(v)) => Ok(*v),
        Some(_) => Err(E_BAD_PAYLOAD),
    }
}

fn u(p: &Value, k: &str) -> R<u64> {
    p.get(k).and_then(Value::as_u64).ok_or(E_BAD_PAYLOAD)
}

fn parse_role(v: &Value) -> R<&'static str> {
    match v {
        Value::String(r) => ROLES
            .iter()
            .find(|x| **x == r.as_str())
            .copied()
            .ok_or(E_NO_ROLE),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| ROLES.get(i as usize))
            .copied()
            .ok_or(E_NO_ROLE),
        _ => Err(E_BAD_PAYLOAD),
    }
}

fn manager(role: &str) -> bool {
    matches!(role, "owner" | "admin" | "favorites_owner")
}

/// `{text, parseMode, buttons?}` checked the way a server would.
fn text_content(c: &Value) -> R<Value> {
    let text = s(c, "text")?;
    let mode = s(c, "parseMode")?;
    if !matches!(mode, "text" | "markdown" | "html") || text.is_empty() {
        return Err(E_BAD_PAYLOAD);
    }
    if mode == "text" && text.chars().count() > 4096 {
        return Err(E_BAD_PAYLOAD);
    }
    let mut out = json!({ "text": text, "parseMode": mode });
    if let Some(buttons) = c.get("buttons") {
        let rows = buttons.as_array().ok_or(E_BAD_PAYLOAD)?;
        let mut total = 0;
        for row in rows {
            let row = row.as_array().ok_or(E_BAD_PAYLOAD)?;
            if row.len() > 8 {
                return Err(E_BAD_PAYLOAD);
            }
            for button in row {
                total += 1;
                let kind = s(button, "type")?;
                let key = match kind {
                    "command" => "command",
                    "url" => "url",
                    "message" => "message",
                    "copy" => "data",
                    _ => return Err(E_BAD_PAYLOAD),
                };
                s(button, key)?;
            }
        }
        if rows.len() > 8 || total > 64 {
            return Err(E_BAD_PAYLOAD);
        }
        out["buttons"] = buttons.clone();
    }
    Ok(out)
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
            temporal: HashMap::new(),
            tasks: HashMap::new(),
            commands: HashSet::new(),
            limits: UploadLimits::default(),
            conns: HashMap::new(),
            pending: HashMap::new(),
            next_seq: 0,
            stats: SimStats::default(),
            outbox: VecDeque::new(),
            requests: Vec::new(),
            record_requests: true,
            load: None,
            failures: HashMap::new(),
        }
    }

    pub(crate) fn full_id(&self, login: &str) -> String {
        format!("{login}@{}", self.domain)
    }

    /// Resolves a wire `userId` (`login@domain`, optionally `/resource`) to a known login.
    fn login_of(&self, user_id: &str) -> R<String> {
        let bare = user_id.split('/').next().unwrap_or(user_id);
        let (login, domain) = bare.split_once('@').ok_or(E_ACCESS_DENIED)?;
        if domain != self.domain || !self.users.contains_key(login) {
            return Err(E_ACCESS_DENIED);
        }
        Ok(login.to_owned())
    }

    pub(crate) fn ensure_user(&mut self, login: &str) {
        self.users.entry(login.to_owned()).or_insert_with(|| {
            let mut c = login.chars();
            let display_name = c
                .next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default();
            UserRec {
                display_name,
                password: None,
                disabled: false,
                bot: false,
            }
        });
    }

    fn chat(&self, id: &str) -> R<&ChatRec> {
        self.chats.get(id).ok_or(E_NO_CHAT)
    }

    fn role(&self, chat: &str, login: &str) -> R<&'static str> {
        self.chat(chat)?
            .participants
            .iter()
            .find(|(l, _)| l == login)
            .map(|(_, r)| *r)
            .ok_or(E_NOT_PARTICIPANT)
    }

    fn members(&self, chat: &str) -> Vec<String> {
        self.chats
            .get(chat)
            .map(|c| c.participants.iter().map(|(l, _)| l.clone()).collect())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- events

    /// Sends `method(payload)` to every authenticated connection of `login` except `except`;
    /// queues it when the account is a bot with no connection at all.
    pub(crate) fn deliver(
        &mut self,
        login: &str,
        except: Option<u64>,
        method: &str,
        payload: &Arc<str>,
        system: bool,
    ) {
        self.next_seq += 1;
        let ev = Event {
            seq: self.next_seq,
            method: Cow::Owned(quote(method)),
            payload: payload.clone(),
            system,
        };
        let mut online = false;
        let mut pushed = 0;
        for (id, conn) in self.conns.iter_mut() {
            if conn.login.as_deref() != Some(login) {
                continue;
            }
            online = true;
            if Some(*id) == except || (system && !conn.system) {
                continue;
            }
            push(conn, ev.clone());
            pushed += 1;
        }
        self.stats.pushed += pushed;
        if !online && self.users.get(login).is_some_and(|u| u.bot) {
            self.pending.entry(login.to_owned()).or_default().push(ev);
        }
    }

    fn broadcast(&mut self, chat: &str, except: Option<u64>, method: &str, payload: Value) {
        let text: Arc<str> = payload.to_string().into();
        for m in self.members(chat) {
            self.deliver(&m, except, method, &text, false);
        }
    }

    /// Pushes an event to one connection (fault injection: unknown methods).
    pub(crate) fn push_raw(&mut self, conn: u64, method: &str, payload: Value) {
        self.next_seq += 1;
        let ev = Event {
            seq: self.next_seq,
            method: Cow::Owned(quote(method)),
            payload: payload.to_string().into(),
            system: false,
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            push(c, ev);
            self.stats.pushed += 1;
        }
    }

    pub(crate) fn ack(&mut self, conn: u64, id: u64) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.unacked.remove(&id).is_some()
        {
            self.stats.acked += 1;
        }
    }

    pub(crate) fn open(&mut self, id: u64, tx: UnboundedSender<Out>) {
        self.stats.connections += 1;
        self.conns.insert(
            id,
            Conn {
                login: None,
                tx,
                system: false,
                next_event_id: 0,
                unacked: BTreeMap::new(),
            },
        );
    }

    /// A socket closed: its un-acked events wait for the account's next `receiveUnread` login.
    pub(crate) fn close(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        self.files.values_mut().for_each(|f| {
            f.subscribers.remove(&id);
        });
        if let Some(login) = conn.login
            && !conn.unacked.is_empty()
        {
            let q = self.pending.entry(login).or_default();
            q.extend(conn.unacked.into_values());
            q.sort_by_key(|e| e.seq);
        }
    }

    pub(crate) fn authed(&self, conn: u64) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.login.as_deref())
    }

    /// `auth`: answers it itself so the auth response precedes any re-delivered event.
    pub(crate) fn auth(&mut self, conn: u64, req_id: u64, p: &Value, secret: &[u8]) {
        let result = self.check_auth(p, secret);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (login, unread, system) = match result {
            Ok(x) => x,
            Err(code) => {
                let _ = c.tx.send(Out::Text(format!(
                    r#"{{"type":2,"id":{req_id},"payload":{{"errorCode":{code}}}}}"#
                )));
                return;
            }
        };
        c.login = Some(login.clone());
        c.system = system;
        let resp = json!({
            "userId": format!("{login}@{}/{}", self.domain, &hex40()[..8]),
            "connectionId": uuid(),
        });
        let _ = c.tx.send(Out::Text(format!(
            r#"{{"type":2,"id":{req_id},"payload":{resp}}}"#
        )));
        self.stats.auths += 1;
        if let Some(u) = self.users.get_mut(&login) {
            u.bot = true;
        }
        if unread && let Some(q) = self.pending.remove(&login) {
            let c = self.conns.get_mut(&conn).into_iter().next();
            if let Some(c) = c {
                for ev in q.into_iter().filter(|e| !e.system || system) {
                    push(c, ev);
                    self.stats.pushed += 1;
                    self.stats.redelivered += 1;
                }
            }
        }
    }

    fn check_auth(&self, p: &Value, secret: &[u8]) -> R<(String, bool, bool)> {
        let token = s(p, "token")?;
        if p.get("tokenType").and_then(Value::as_str) != Some("JWT") {
            return Err(E_UNSUPPORTED_CREDENTIALS);
        }
        let sub = super::jwt::verify(secret, token).map_err(|e| match e {
            super::jwt::TokenError::Invalid => E_INVALID_CREDENTIALS,
            super::jwt::TokenError::Expired => E_EXPIRED,
        })?;
        let login = sub.split('@').next().unwrap_or_default().to_owned();
        let user = self.users.get(&login).ok_or(E_INVALID_CREDENTIALS)?;
        if user.disabled {
            return Err(E_USER_DISABLED);
        }
        Ok((
            login,
            b(p, "receiveUnread")?,
            b(p, "receiveSystemMessageEnvelopes")?,
        ))
    }

    // ---------------------------------------------------------------- objects on the wire

    fn chat_ref(&self, id: &str) -> Value {
        let c = self.chats.get(id);
        json!({
            "chatId": id,
            "chatTitle": c.and_then(|c| c.title.clone()),
            "chatType": c.map(|c| c.chat_type).unwrap_or(0),
        })
    }

    fn author(&self, login: &str) -> Value {
        if login.is_empty() {
            json!({ "id": "", "type": 0 })
        } else {
            json!({ "id": self.full_id(login), "type": 1 })
        }
    }

    fn envelope(&self, id: &str, expand_reply: bool) -> Option<Value> {
        let m = self.messages.get(id)?;
        let mut e = json!({
            "messageId": id,
            "chatId": m.chat,
            "chat": self.chat_ref(&m.chat),
            "timestamp": m.ts,
            "type": m.kind,
            "author": self.author(&m.author),
            "box": { "id": m.box_id, "position": format!("{:010}", m.box_id) },
            "content": m.content,
            "isEdited": m.edited,
        });
        if let Some(r) = &m.reply_to {
            e["replyMessageId"] = json!(r);
            if expand_reply && let Some(inner) = self.envelope(r, false) {
                e["replyMessage"] = inner;
            }
        }
        Some(e)
    }

    fn chat_object(&self, id: &str) -> Value {
        let Some(c) = self.chats.get(id) else {
            return Value::Null;
        };
        let last = c.history.last().and_then(|m| {
            let e = self.envelope(m, false)?;
            Some(json!({
                "messageId": e["messageId"], "timestamp": e["timestamp"], "author": e["author"],
                "type": e["type"], "content": e["content"], "chat": e["chat"],
            }))
        });
        json!({
            "chatId": id,
            "title": c.title,
            "chatType": c.chat_type,
            "unreadMessages": 0,
            "avatarUrl": c.avatar_url,
            "lastMessage": last,
        })
    }

    fn file_url(&self, id: &str, token: &str, what: &str) -> String {
        format!(
            "{}/bridge/api/client/v1/files/{id}/{what}?token={token}",
            self.base_url
        )
    }

    // ---------------------------------------------------------------- shared operations

    /// Creates a message authored by `actor` (or the system when `actor` is empty) and pushes it
    /// to every participant's connections except `except`.
    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        actor: &str,
        chat_id: &str,
        kind: u16,
        content: Value,
        reply_to: Option<&str>,
        except: Option<u64>,
    ) -> R<(String, u64)> {
        let system = actor.is_empty();
        let chat = self.chat(chat_id)?;
        if !system {
            let role = self.role(chat_id, actor)?;
            if chat.chat_type == CHANNEL && !matches!(role, "owner" | "admin" | "writer") {
                return Err(E_NO_RIGHTS);
            }
        }
        let id = uuid();
        let ts = now_ms();
        if let Some(idx) = chat.load {
            // Load chats keep no history: only the echo bookkeeping matters.
            if let (Some(run), false) = (self.load.as_mut(), system)
                && self.users.get(actor).is_some_and(|u| u.bot)
                && let Some(text) = content.get("text").and_then(Value::as_str)
            {
                run.on_reply(idx, text);
            }
            return Ok((id, ts));
        }
        if let Some(r) = reply_to
            && self.messages.get(r).is_none_or(|m| m.chat != chat_id)
        {
            return Err(E_NO_MESSAGE);
        }
        let chat = self.chats.get_mut(chat_id).ok_or(E_NO_CHAT)?;
        chat.next_box += 1;
        let box_id = chat.next_box;
        chat.history.push(id.clone());
        self.messages.insert(
            id.clone(),
            MsgRec {
                chat: chat_id.to_owned(),
                author: actor.to_owned(),
                ts,
                kind,
                content,
                edited: false,
                reply_to: reply_to.map(str::to_owned),
                box_id,
                hidden_for: Vec::new(),
            },
        );
        let env = self.envelope(&id, true).unwrap_or(Value::Null);
        if !system && self.users.get(actor).is_some_and(|u| u.bot) {
            self.outbox.push_back((chat_id.to_owned(), env.clone()));
        }
        let text: Arc<str> = env.to_string().into();
        for m in self.members(chat_id) {
            self.deliver(&m, except, "sendMessage", &text, system);
        }
        Ok((id, ts))
    }

    fn system(&mut self, chat: &str, kind: u16, content: Value) {
        let _ = self.post("", chat, kind, content, None, None);
    }

    pub(crate) fn create_chat(
        &mut self,
        actor: &str,
        chat_type: u8,
        title: Option<String>,
        members: &[String],
        except: Option<u64>,
    ) -> String {
        let id = hex40();
        let own_role = match chat_type {
            FAVORITES => "favorites_owner",
            P2P => "user",
            _ => "owner",
        };
        let mut participants = vec![(actor.to_owned(), own_role)];
        for m in members {
            if !participants.iter().any(|(l, _)| l == m) {
                participants.push((m.clone(), "user"));
            }
        }
        self.chats.insert(
            id.clone(),
            ChatRec {
                title,
                chat_type,
                participants,
                history: Vec::new(),
                avatar_url: None,
                next_box: 0,
                load: None,
            },
        );
        self.chat_order.push(id.clone());
        if matches!(chat_type, GROUP | CHANNEL) {
            self.system(
                &id,
                110,
                json!({ "userId": self.full_id(actor), "role": "owner" }),
            );
        }
        let method = match chat_type {
            P2P => "createP2PChat",
            GROUP => "createGroupChat",
            CHANNEL => "createChannel",
            _ => "createFavoritesChat",
        };
        let obj = self.chat_object(&id);
        self.broadcast(&id, except, method, obj);
        id
    }

    pub(crate) fn p2p_between(&self, a: &str, b: &str) -> Option<String> {
        self.chat_order
            .iter()
            .find(|id| {
                self.chats.get(*id).is_some_and(|c| {
                    c.chat_type == P2P
                        && c.participants.iter().any(|(l, _)| l == a)
                        && c.participants.iter().any(|(l, _)| l == b)
                })
            })
            .cloned()
    }

    pub(crate) fn create_p2p(&mut self, actor: &str, other: &str, except: Option<u64>) -> String {
        if let Some(id) = self.p2p_between(actor, other) {
            return id;
        }
        // A personal chat is titled after the human side (the bot's view of it).
        let human = if self.users.get(other).is_some_and(|u| u.bot) {
            actor
        } else {
            other
        };
        let title = self.users.get(human).map(|u| u.display_name.clone());
        self.create_chat(actor, P2P, title, &[other.to_owned()], except)
    }

    pub(crate) fn send_text(
        &mut self,
        actor: &str,
        chat: &str,
        content: Value,
        reply: Option<&str>,
        except: Option<u64>,
    ) -> R<(String, u64)> {
        let content = text_content(&content)?;
        self.post(actor, chat, 200, content, reply, except)
    }

    pub(crate) fn edit(
        &mut self,
        actor: &str,
        msg_id: &str,
        content: Value,
        except: Option<u64>,
    ) -> R<u64> {
        let m = self.messages.get(msg_id).ok_or(E_NO_MESSAGE)?;
        if m.author != actor {
            return Err(E_NO_RIGHTS);
        }
        let content = match m.kind {
            200 => text_content(&content)?,
            // editSurvey: a partial update of the survey fields.
            204 => {
                let mut merged = m.content.clone();
                for k in ["path", "title", "description", "buttonText", "alt"] {
                    merged[k] = json!(s(&content, k)?);
                }
                merged
            }
            _ => return Err(E_NO_RIGHTS),
        };
        let ts = now_ms();
        let chat = m.chat.clone();
        if let Some(m) = self.messages.get_mut(msg_id) {
            m.content = content.clone();
            m.edited = true;
        }
        self.broadcast(
            &chat,
            except,
            "editMessage",
            json!({ "chatId": chat, "messageId": msg_id, "timestamp": ts, "content": content }),
        );
        Ok(ts)
    }

    pub(crate) fn remove(
        &mut self,
        actor: &str,
        msg_id: &str,
        for_all: bool,
        except: Option<u64>,
    ) -> R<()> {
        let m = self.messages.get(msg_id).ok_or(E_NO_MESSAGE)?;
        let chat = m.chat.clone();
        let role = self.role(&chat, actor)?;
        if !for_all {
            if let Some(m) = self.messages.get_mut(msg_id) {
                m.hidden_for.push(actor.to_owned());
            }
            return Ok(());
        }
        let is_p2p = self.chat(&chat)?.chat_type == P2P;
        if m.author != actor && (is_p2p || !manager(role)) {
            return Err(E_NO_RIGHTS);
        }
        self.messages.remove(msg_id);
        if let Some(c) = self.chats.get_mut(&chat) {
            c.history.retain(|x| x != msg_id);
        }
        let by = self.author(actor);
        self.broadcast(
            &chat,
            except,
            "removeMessage",
            json!({ "chatId": chat, "messageId": msg_id, "removedBy": by }),
        );
        Ok(())
    }

    fn require_manager(&self, chat: &str, actor: &str) -> R<()> {
        let role = self.role(chat, actor)?;
        if !manager(role) || matches!(self.chat(chat)?.chat_type, P2P | FAVORITES) {
            return Err(E_NO_RIGHTS);
        }
        Ok(())
    }

    pub(crate) fn add_participant(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        except: Option<u64>,
    ) -> R<()> {
        self.require_manager(chat, actor)?;
        if self.role(chat, login).is_ok() {
            return Err(E_ALREADY_IN_CHAT);
        }
        let ts = now_ms();
        let c = self.chats.get_mut(chat).ok_or(E_NO_CHAT)?;
        c.participants.push((login.to_owned(), "user"));
        let method = if c.chat_type == CHANNEL {
            "createChannel"
        } else {
            "createGroupChat"
        };
        let obj: Arc<str> = self.chat_object(chat).to_string().into();
        self.deliver(login, None, method, &obj, false);
        let (uid, by) = (self.full_id(login), self.author(actor));
        self.broadcast(
            chat,
            except,
            "addChatParticipant",
            json!({ "chatId": chat, "userId": uid, "timestamp": ts, "addedBy": by }),
        );
        self.system(chat, 1, json!({ "userId": uid, "role": "user" }));
        Ok(())
    }

    pub(crate) fn remove_participant(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        clear: bool,
        except: Option<u64>,
    ) -> R<()> {
        if actor != login {
            self.require_manager(chat, actor)?;
        }
        self.role(chat, login)?;
        let ts = now_ms();
        let (uid, by) = (self.full_id(login), self.author(actor));
        self.broadcast(
            chat,
            except,
            "removeChatParticipant",
            json!({ "chatId": chat, "userId": uid, "timestamp": ts, "removedBy": by }),
        );
        self.system(chat, 2, json!({ "userId": uid }));
        let messages = &mut self.messages;
        if let Some(c) = self.chats.get_mut(chat) {
            c.participants.retain(|(l, _)| l != login);
            if clear {
                c.history.retain(|id| {
                    let keep = messages.get(id).is_none_or(|m| m.author != login);
                    if !keep {
                        messages.remove(id);
                    }
                    keep
                });
            }
        }
        Ok(())
    }

    pub(crate) fn set_role(
        &mut self,
        actor: &str,
        chat: &str,
        login: &str,
        role: &'static str,
        except: Option<u64>,
    ) -> R<()> {
        self.require_manager(chat, actor)?;
        self.role(chat, login)?;
        if let Some(c) = self.chats.get_mut(chat) {
            for p in c.participants.iter_mut().filter(|(l, _)| l == login) {
                p.1 = role;
            }
        }
        let uid = self.full_id(login);
        self.broadcast(
            chat,
            except,
            "changeParticipantRole",
            json!({ "chatId": chat, "userId": uid, "role": role, "timestamp": now_ms() }),
        );
        self.system(chat, 110, json!({ "userId": uid, "role": role }));
        Ok(())
    }

    pub(crate) fn edit_title(
        &mut self,
        actor: &str,
        chat: &str,
        title: &str,
        except: Option<u64>,
    ) -> R<u64> {
        self.require_manager(chat, actor)?;
        if title.is_empty() || title.chars().count() > 256 {
            return Err(E_BAD_PAYLOAD);
        }
        if let Some(c) = self.chats.get_mut(chat) {
            c.title = Some(title.to_owned());
        }
        self.broadcast(
            chat,
            except,
            "editChatTitle",
            json!({ "chatId": chat, "title": title }),
        );
        self.system(chat, 21, json!({ "title": title }));
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
    ) -> R<String> {
        self.require_manager(chat, actor)?;
        let mime = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let fid = self.store_file(name, mime, data.into(), true);
        let url = self
            .files
            .get(&fid)
            .map(|f| self.file_url(&fid, &f.token, "download"))
            .unwrap_or_default();
        if let Some(c) = self.chats.get_mut(chat) {
            c.avatar_url = Some(url.clone());
        }
        self.broadcast(
            chat,
            except,
            "editChatAvatar",
            json!({ "chatId": chat, "avatarUrl": url }),
        );
        self.system(chat, 22, json!({ "avatarUrl": url }));
        Ok(url)
    }

    pub(crate) fn clear_history(
        &mut self,
        actor: &str,
        chat: &str,
        for_all: bool,
        except: Option<u64>,
    ) -> R<()> {
        let role = self.role(chat, actor)?;
        let ids = self.chat(chat)?.history.clone();
        if !for_all {
            for id in ids {
                if let Some(m) = self.messages.get_mut(&id) {
                    m.hidden_for.push(actor.to_owned());
                }
            }
            return Ok(());
        }
        if !manager(role) && self.chat(chat)?.chat_type != P2P {
            return Err(E_NO_RIGHTS);
        }
        for id in &ids {
            self.messages.remove(id);
        }
        if let Some(c) = self.chats.get_mut(chat) {
            c.history.clear();
        }
        self.broadcast(
            chat,
            except,
            "clearHistory",
            json!({ "chatId": chat, "forAll": true }),
        );
        self.system(chat, 23, json!({ "forAll": true }));
        Ok(())
    }

    pub(crate) fn remove_chat(&mut self, actor: &str, chat: &str, except: Option<u64>) -> R<()> {
        let role = self.role(chat, actor)?;
        let c = self.chat(chat)?;
        if matches!(c.chat_type, GROUP | CHANNEL) && role != "owner" {
            return Err(E_NO_RIGHTS);
        }
        self.broadcast(chat, except, "removeChat", json!({ "chatId": chat }));
        if let Some(c) = self.chats.remove(chat) {
            for id in c.history {
                self.messages.remove(&id);
            }
        }
        self.chat_order.retain(|x| x != chat);
        Ok(())
    }

    /// Stores a finished user upload as a permanent file (ready or still uploading).
    pub(crate) fn store_file(&mut self, name: &str, mime: &str, data: Blob, ready: bool) -> String {
        let id = hex40();
        let size = data.len();
        self.files.insert(
            id.clone(),
            FileRec {
                name: name.to_owned(),
                mime: mime.to_owned(),
                data,
                ready: if ready { 2 } else { 1 },
                received: if ready { size } else { 0 },
                token: hex40(),
                preview: None,
                subscribers: HashSet::new(),
            },
        );
        id
    }

    pub(crate) fn post_file(
        &mut self,
        actor: &str,
        chat: &str,
        file_id: &str,
        reply: Option<&str>,
        except: Option<u64>,
    ) -> R<(String, u64)> {
        let f = self.files.get(file_id).ok_or(E_NO_FILE)?;
        let content = json!({
            "name": f.name, "size": f.data.len(), "fileId": file_id,
            "mimeType": f.mime, "readyState": f.ready,
        });
        self.post(actor, chat, 202, content, reply, except)
    }

    pub(crate) fn file_progress(&mut self, file_id: &str, received: u64, ready: bool) {
        let Some(f) = self.files.get_mut(file_id) else {
            return;
        };
        f.received = received.min(f.data.len());
        if ready {
            f.ready = 2;
            f.received = f.data.len();
        }
        let payload: Arc<str> = json!({ "fileId": file_id, "progress": f.received })
            .to_string()
            .into();
        let subs: Vec<u64> = f.subscribers.iter().copied().collect();
        for conn in subs {
            self.next_seq += 1;
            let ev = Event {
                seq: self.next_seq,
                method: Cow::Borrowed("\"uploadFileProgress\""),
                payload: payload.clone(),
                system: false,
            };
            if let Some(c) = self.conns.get_mut(&conn) {
                push(c, ev);
                self.stats.pushed += 1;
            }
        }
        // Messages carrying the file show its new state.
        let state = self.files.get(file_id).map(|f| f.ready).unwrap_or(0);
        for m in self.messages.values_mut() {
            if m.kind == 202 && m.content["fileId"] == file_id {
                m.content["readyState"] = json!(state);
            }
        }
    }

    pub(crate) fn set_limits(&mut self, limits: UploadLimits) {
        self.limits = limits;
        let payload: Arc<str> = self.limits.to_json().to_string().into();
        let bots: Vec<String> = self
            .users
            .iter()
            .filter(|(_, u)| u.bot)
            .map(|(l, _)| l.clone())
            .collect();
        for b in bots {
            self.deliver(&b, None, "getFileUploadLimits", &payload, false);
        }
    }

    /// A user pressed the `command` button of a message: build and push the `command` event.
    pub(crate) fn press(
        &mut self,
        actor: &str,
        chat: &str,
        msg_id: &str,
        command: &str,
    ) -> R<Option<String>> {
        self.role(chat, actor)?;
        let m = self.messages.get(msg_id).ok_or(E_NO_MESSAGE)?;
        if m.chat != chat {
            return Err(E_NO_MESSAGE);
        }
        let button = m.content["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .find(|b| b["type"] == "command" && b["command"] == command)
            .cloned()
            .ok_or(E_NO_MESSAGE)?;
        let to = match button.get("to").and_then(Value::as_str) {
            Some(to) => self.login_of(to)?,
            None => m.author.clone(),
        };
        let wait = button["waitReply"] == true;
        let mut source = json!({
            "type": "button",
            "message": self.envelope(msg_id, false),
            "waitReply": wait,
        });
        if let Some(id) = button.get("id") {
            source["buttonId"] = id.clone();
        }
        let mut cmd = json!({ "type": "command", "command": command });
        if let Some(d) = button.get("customData") {
            cmd["customData"] = d.clone();
        }
        let mut payload = json!({ "commandSource": source, "commandPayload": cmd });
        let command_id = wait.then(uuid);
        if let Some(id) = &command_id {
            payload["commandId"] = json!(id);
            self.commands.insert(id.clone());
        }
        self.deliver(&to, None, "command", &payload.to_string().into(), false);
        Ok(command_id)
    }

    pub(crate) fn history(&self, chat: &str, viewer: Option<&str>) -> Vec<Value> {
        self.chats
            .get(chat)
            .map(|c| {
                c.history
                    .iter()
                    .filter(|id| {
                        viewer.is_none_or(|v| {
                            self.messages
                                .get(*id)
                                .is_some_and(|m| !m.hidden_for.iter().any(|h| h == v))
                        })
                    })
                    .filter_map(|id| self.envelope(id, true))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn message(&self, id: &str) -> Option<Value> {
        self.envelope(id, true)
    }

    pub(crate) fn role_check(&self, chat: &str, login: &str) -> R<()> {
        self.role(chat, login).map(drop)
    }

    /// A personal chat of the load test: not listed by `getChats`, keeps no history.
    pub(crate) fn insert_load_chat(&mut self, id: &str, bot: &str, user: &str, idx: u32) {
        self.chats.insert(
            id.to_owned(),
            ChatRec {
                title: Some(format!("Load {idx}")),
                chat_type: P2P,
                participants: vec![(bot.to_owned(), "user"), (user.to_owned(), "user")],
                history: Vec::new(),
                avatar_url: None,
                next_box: 0,
                load: Some(idx),
            },
        );
    }

    /// Pushes load event `seq`, built without a `Value` tree: this runs for every event.
    pub(crate) fn push_load_event(&mut self, bot: &str, chat: &str, user: &str, seq: u64) {
        let payload = format!(
            r#"{{"messageId":"{}","chatId":"{chat}","chat":{{"chatId":"{chat}","chatTitle":"Load","chatType":1}},"timestamp":{},"type":200,"author":{{"id":"{user}@{}","type":1}},"box":{{"id":{seq},"position":"{seq:010}"}},"content":{{"text":"{}","parseMode":"text"}},"isEdited":false}}"#,
            uuid(),
            now_ms(),
            self.domain,
            super::load::event_text(seq),
        );
        self.deliver(bot, None, "sendMessage", &payload.into(), false);
        if let Some(run) = self.load.as_mut() {
            run.sent(seq, Instant::now());
        }
    }

    // ---------------------------------------------------------------- bot methods

    /// Runs one client→server method (everything but `auth`).
    pub(crate) fn call(&mut self, conn: u64, method: &str, p: &Value) -> R<Value> {
        if let Some((code, left)) = self.failures.get_mut(method) {
            let code = *code;
            match left {
                Some(0) => {
                    self.failures.remove(method);
                }
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        self.failures.remove(method);
                    }
                    return Err(code);
                }
                None => return Err(code),
            }
        }
        let me = self.authed(conn).ok_or(E_NOT_AUTHORIZED)?.to_owned();
        let me = me.as_str();
        let ex = Some(conn);
        if !p.is_object() {
            return Err(E_BAD_PAYLOAD);
        }
        match method {
            "sendMessage" => {
                let chat = s(p, "chatId")?;
                let content = p.get("content").ok_or(E_BAD_PAYLOAD)?;
                let reply = opt_s(p, "replyMessageId")?;
                let (id, ts) = self.send_text(me, chat, content.clone(), reply, ex)?;
                Ok(json!({ "chatId": chat, "messageId": id, "timestamp": ts }))
            }
            "editMessage" => {
                let id = s(p, "messageId")?;
                let content = p.get("content").ok_or(E_BAD_PAYLOAD)?;
                let m = self.messages.get(id).ok_or(E_NO_MESSAGE)?;
                if m.kind != 200 {
                    return Err(E_NO_RIGHTS);
                }
                let ts = self.edit(me, id, content.clone(), ex)?;
                Ok(json!({ "messageId": id, "timestamp": ts }))
            }
            "editSurvey" => {
                let id = s(p, "messageId")?;
                let content = p.get("content").ok_or(E_BAD_PAYLOAD)?;
                if self.messages.get(id).ok_or(E_NO_MESSAGE)?.kind != 204 {
                    return Err(E_NO_RIGHTS);
                }
                let ts = self.edit(me, id, content.clone(), ex)?;
                Ok(json!({ "messageId": id, "timestamp": ts }))
            }
            "removeMessage" => {
                let id = s(p, "messageId")?;
                let for_all = b(p, "forAll")?;
                self.remove(me, id, for_all, ex)?;
                Ok(json!({}))
            }
            "forwardMessage" => {
                let id = s(p, "messageId")?;
                let chat = s(p, "chatId")?;
                let m = self.messages.get(id).ok_or(E_NO_MESSAGE)?;
                self.role(&m.chat, me).map_err(|_| E_NO_MESSAGE)?;
                if m.kind == 202
                    && self
                        .files
                        .get(m.content["fileId"].as_str().unwrap_or_default())
                        .is_none_or(|f| f.ready != 2)
                {
                    return Err(E_FILE_NOT_READY);
                }
                let mut inner = self.envelope(id, false).ok_or(E_NO_MESSAGE)?;
                if let Some(o) = inner.as_object_mut() {
                    o.remove("box");
                }
                let (mid, ts) = self.post(me, chat, 201, inner, None, ex)?;
                Ok(json!({ "chatId": chat, "messageId": mid, "timestamp": ts }))
            }
            "getMessageById" => {
                let id = s(p, "messageId")?;
                let m = self.messages.get(id).ok_or(E_NO_MESSAGE)?;
                self.role(&m.chat, me).map_err(|_| E_NO_MESSAGE)?;
                self.envelope(id, true).ok_or(E_NO_MESSAGE)
            }
            "getChatHistory" => {
                let chat = s(p, "chatId")?;
                let count = u(p, "count")? as usize;
                let from = opt_s(p, "fromMessageId")?;
                self.role(chat, me)?;
                if count == 0 {
                    return Err(E_BAD_PAYLOAD);
                }
                let all = self.history(chat, Some(me));
                let end = match from {
                    None => all.len(),
                    Some(f) => all
                        .iter()
                        .position(|e| e["messageId"] == f)
                        .ok_or(E_NO_MESSAGE)?,
                };
                let page = all[end.saturating_sub(count)..end].to_vec();
                Ok(json!({ "chatId": chat, "count": page.len(), "messages": page }))
            }
            "sendChatActivity" => {
                let chat = s(p, "chatId")?;
                let kind = s(p, "activityType")?;
                if !matches!(kind, "typing" | "choosing_sticker" | "uploading_file") {
                    return Err(E_BAD_PAYLOAD);
                }
                self.role(chat, me)?;
                Ok(json!({ "chatId": chat, "activityType": kind, "retryAfter": 5000 }))
            }
            "answerCommand" => {
                let id = s(p, "commandId")?;
                let kind = s(p, "answerType")?;
                if !matches!(kind, "complete" | "timeout" | "cancel" | "message") {
                    return Err(E_BAD_PAYLOAD);
                }
                let text = p.get("message").map(|m| s(m, "text")).transpose()?;
                if text.is_some_and(|t| t.is_empty() || t.len() > 255 || !t.is_ascii()) {
                    return Err(E_BAD_PAYLOAD);
                }
                if !self.commands.remove(id) {
                    return Err(E_NO_MESSAGE);
                }
                Ok(json!({}))
            }
            "uploadFile" => {
                let size = u(p, "fileSize")?;
                let name = s(p, "fileName")?;
                if !self.limits.allows(name, size) {
                    return Err(E_UPLOAD_FAILED);
                }
                let task = uuid();
                self.tasks.insert(
                    task.clone(),
                    UploadTask {
                        owner: me.to_owned(),
                        name: name.to_owned(),
                        size,
                    },
                );
                Ok(json!({ "uploadTaskId": task }))
            }
            "sendFile" => {
                let chat = s(p, "chatId")?;
                let reply = opt_s(p, "replyMessageId")?;
                let content = p.get("content").ok_or(E_BAD_PAYLOAD)?;
                let tmp = s(content, "temporalFileId")?;
                let caption = match content.get("caption") {
                    None | Some(Value::Null) => None,
                    Some(c) => Some(text_content(c)?),
                };
                self.role(chat, me)?;
                let t = self.temporal.get(tmp).ok_or(E_NO_FILE)?;
                if t.owner != me {
                    return Err(E_NO_FILE);
                }
                let t = self.temporal.remove(tmp).ok_or(E_NO_FILE)?;
                let fid = self.store_file(&t.name, &t.mime, t.data, true);
                if let Some(f) = self.files.get_mut(&fid) {
                    f.preview = t.preview;
                }
                let (mid, ts) = self.post_file(me, chat, &fid, reply, ex)?;
                let mut resp =
                    json!({ "chatId": chat, "messageId": mid, "timestamp": ts, "fileId": fid });
                if let Some(c) = caption {
                    let (cid, _) = self.post(me, chat, 200, c, None, ex)?;
                    resp["captionMessageId"] = json!(cid);
                }
                Ok(resp)
            }
            "getFileInfo" => {
                let id = s(p, "fileId")?;
                let f = self.files.get(id).ok_or(E_NO_FILE)?;
                let ready = f.ready == 2;
                let previews = f.preview.as_ref().map(|(n, m, d)| {
                    json!([{ "name": n, "size": d.len(), "mimeType": m,
                             "downloadUrl": self.file_url(id, &f.token, "preview") }])
                });
                Ok(json!({
                    "fileId": id, "name": f.name, "size": f.data.len(), "mimeType": f.mime,
                    "readyState": f.ready,
                    "downloadUrl": ready.then(|| self.file_url(id, &f.token, "download")),
                    "previews": previews,
                }))
            }
            "subscribeFileProgress" | "unsubscribeFileProgress" => {
                let id = s(p, "fileId")?;
                let f = self.files.get_mut(id).ok_or(E_NO_FILE)?;
                if method == "subscribeFileProgress" {
                    f.subscribers.insert(conn);
                } else {
                    f.subscribers.remove(&conn);
                }
                Ok(json!({ "result": true }))
            }
            "getFileUploadLimits" => Ok(self.limits.to_json()),
            "getChats" => {
                let count = u(p, "count")? as usize;
                let page = u(p, "page")? as usize;
                if count == 0 || page == 0 {
                    return Err(E_BAD_PAYLOAD);
                }
                let mine: Vec<Value> = self
                    .chat_order
                    .iter()
                    .filter(|id| self.role(id, me).is_ok())
                    .skip((page - 1).saturating_mul(count))
                    .take(count)
                    .map(|id| self.chat_object(id))
                    .collect();
                Ok(json!({ "chats": mine }))
            }
            "getChatByID" => {
                let id = s(p, "chatId")?;
                self.role(id, me)?;
                Ok(self.chat_object(id))
            }
            "createP2PChat" => {
                let other = self.login_of(s(p, "userId")?)?;
                let id = self.create_p2p(me, &other, ex);
                Ok(json!({ "chatId": id }))
            }
            "createGroupChat" | "createChannel" => {
                let title = opt_s(p, "title")?
                    .or(opt_s(p, "name")?)
                    .ok_or(E_BAD_PAYLOAD)?;
                if title.is_empty() || title.chars().count() > 256 {
                    return Err(E_BAD_PAYLOAD);
                }
                let kind = if method == "createChannel" {
                    CHANNEL
                } else {
                    GROUP
                };
                let id = self.create_chat(me, kind, Some(title.to_owned()), &[], ex);
                Ok(json!({ "chatId": id }))
            }
            "createFavoritesChat" => {
                let existing = self.chat_order.iter().find(|id| {
                    self.chats.get(*id).is_some_and(|c| {
                        c.chat_type == FAVORITES && c.participants.iter().any(|(l, _)| l == me)
                    })
                });
                let id = match existing {
                    Some(id) => id.clone(),
                    None => self.create_chat(me, FAVORITES, None, &[], ex),
                };
                Ok(json!({ "chatId": id }))
            }
            "removeChat" => {
                self.remove_chat(me, s(p, "chatId")?, ex)?;
                Ok(json!({}))
            }
            "editChatTitle" => {
                let chat = s(p, "chatId")?;
                let ts = self.edit_title(me, chat, s(p, "title")?, ex)?;
                Ok(json!({ "chatId": chat, "timestamp": ts }))
            }
            "editChatAvatar" => {
                let chat = s(p, "chatId")?;
                let tmp = s(p, "temporalFileId")?;
                self.require_manager(chat, me)?;
                let t = self.temporal.get(tmp).ok_or(E_NO_FILE)?;
                if t.owner != me {
                    return Err(E_NO_FILE);
                }
                let t = self.temporal.remove(tmp).ok_or(E_NO_FILE)?;
                self.set_avatar(me, chat, &t.name, t.data.to_bytes(), ex)?;
                Ok(json!({}))
            }
            "clearHistory" => {
                self.clear_history(me, s(p, "chatId")?, b(p, "forAll")?, ex)?;
                Ok(json!({}))
            }
            "getChatParticipants" => {
                let chat = s(p, "chatId")?;
                let size = u(p, "pageSize")? as usize;
                let page = u(p, "pageNumber")? as usize;
                self.role(chat, me)?;
                if size == 0 || page == 0 {
                    return Err(E_BAD_PAYLOAD);
                }
                let list: Vec<Value> = self
                    .chat(chat)?
                    .participants
                    .iter()
                    .skip((page - 1).saturating_mul(size))
                    .take(size)
                    .map(|(l, r)| json!({ "userId": self.full_id(l), "role": r }))
                    .collect();
                Ok(json!({ "participants": list }))
            }
            "getChatParticipant" | "hasChatParticipant" => {
                let chat = s(p, "chatId")?;
                let uid = s(p, "userId")?;
                self.role(chat, me)?;
                let role = self.login_of(uid).and_then(|l| self.role(chat, &l));
                if method == "hasChatParticipant" {
                    return Ok(json!({ "result": role.is_ok() }));
                }
                let role = role.map_err(|_| E_NOT_PARTICIPANT)?;
                let login = self.login_of(uid)?;
                Ok(json!({ "userId": self.full_id(&login), "role": role, "type": 1 }))
            }
            "addChatParticipant" => {
                let chat = s(p, "chatId")?;
                let login = self.login_of(s(p, "userId")?)?;
                b(p, "displayHistory")?;
                self.add_participant(me, chat, &login, ex)?;
                Ok(json!({}))
            }
            "removeChatParticipant" => {
                let chat = s(p, "chatId")?;
                let login = self.login_of(s(p, "userId")?)?;
                self.remove_participant(me, chat, &login, b(p, "clearHistory")?, ex)?;
                Ok(json!({}))
            }
            "changeParticipantRole" => {
                let chat = s(p, "chatId")?;
                let login = self.login_of(s(p, "userId")?)?;
                let role = parse_role(p.get("role").ok_or(E_BAD_PAYLOAD)?)?;
                self.set_role(me, chat, &login, role, ex)?;
                Ok(json!({}))
            }
            "sendSurvey" => {
                let chat = s(p, "chatId")?;
                let reply = opt_s(p, "replyMessageId")?;
                let c = p.get("content").ok_or(E_BAD_PAYLOAD)?;
                for k in [
                    "url",
                    "path",
                    "title",
                    "description",
                    "buttonText",
                    "secret",
                    "alt",
                ] {
                    s(c, k)?;
                }
                c.get("appVersion")
                    .filter(|v| v.is_number())
                    .ok_or(E_BAD_PAYLOAD)?;
                let (id, ts) = self.post(me, chat, 204, c.clone(), reply, ex)?;
                Ok(json!({ "chatId": chat, "messageId": id, "timestamp": ts }))
            }
            "getUserDisplayName" => {
                let login = self.login_of(s(p, "userId")?)?;
                let name = self
                    .users
                    .get(&login)
                    .map(|u| u.display_name.clone())
                    .unwrap_or_default();
                Ok(json!({ "displayName": name }))
            }
            _ => Err(E_UNKNOWN_METHOD),
        }
    }

    /// HTTP upload for a task created by `uploadFile`.
    pub(crate) fn upload(
        &mut self,
        task: &str,
        mime: String,
        data: Blob,
        preview: Option<(String, String, Bytes)>,
    ) -> Result<String, &'static str> {
        let t = self.tasks.get(task).ok_or("unknown Upload-Task-Id")?;
        if t.size != data.len() {
            return Err("file part size differs from uploadFile.fileSize");
        }
        let t = self.tasks.remove(task).ok_or("unknown Upload-Task-Id")?;
        let id = uuid();
        self.temporal.insert(
            id.clone(),
            TempFile {
                owner: t.owner,
                name: t.name,
                mime,
                data,
                preview,
            },
        );
        Ok(id)
    }

    pub(crate) fn record(&mut self, method: &str, payload: &Value) {
        if self.record_requests {
            self.requests.push(RecordedRequest {
                method: method.to_owned(),
                payload: payload.clone(),
            });
        }
    }
}

fn push(conn: &mut Conn, ev: Event) {
    conn.next_event_id += 1;
    let id = conn.next_event_id;
    let frame = format!(
        r#"{{"type":1,"id":{id},"method":{},"payload":{}}}"#,
        ev.method, ev.payload
    );
    conn.unacked.insert(id, ev);
    let _ = conn.tx.send(Out::Text(frame));
}

/// Used by fault injection to reach live sockets.
pub(crate) fn authed_conns(state: &State) -> Vec<u64> {
    state
        .conns
        .iter()
        .filter(|(_, c)| c.login.is_some())
        .map(|(id, _)| *id)
        .collect()
}

fn quote(method: &str) -> String {
    serde_json::to_string(method).unwrap_or_default()
}
