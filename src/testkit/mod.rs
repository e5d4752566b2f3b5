//! An in-process, stateful emulator of the TrueConf server side of the Chatbot Connector
//! protocol, for tests, demos and benchmarks (feature `testkit`).
//!
//! The emulator speaks the real wire protocol over a real socket: HTTP token and upload
//! endpoints, the WebSocket at `/websocket/chat_bot`, JWT authorisation, acknowledgements and
//! re-delivery, and every client→server method with the documented error codes. Tests drive
//! scripted users ([`SimUser`]) and assert on what the bot sent.
//!
//! It is written on raw `serde_json::Value`, independently of the crate's own protocol types, so
//! a dialect mistake on the client side fails a test instead of being mirrored here.
//!
//! ```no_run
//! # async fn demo() -> trueconf_bot::Result<()> {
//! use trueconf_bot::testkit::{Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig::default()).await?;
//! println!("connect a bot to {} with token {}", sim.url(), sim.bot_token());
//! let alice = sim.user("alice");
//! let chat = alice.create_p2p_with_bot().await?;
//! alice.send_text(&chat, "hi").await?;
//! let answer = sim.expect_message(&chat).await?;
//! assert_eq!(answer["content"]["text"], "hi");
//! # Ok(()) }
//! ```
//!
//! Acknowledgements: every event frame the emulator pushes is remembered until the client acks
//! it (`{"type":2,"id":N}`). Events still un-acked when a socket closes, and events for a bot
//! account that has no connection, are pushed again — as ordinary events, in their original
//! order — to the next connection of that account that authenticates with
//! `receiveUnread: true`. [`Sim::stats`] counts pushed, acked and re-delivered events.
//!
//! Faults ([`Sim::faults`]): drop a socket after N frames, delay responses, refuse handshakes
//! for a while, send a malformed frame or an unknown event, restart (close every socket, refuse
//! briefly, keep state), make a method fail with a chosen error code.
//!
//! Emulator conventions where the protocol leaves room (documented so tests can rely on them):
//! user ids must be complete (`login@domain`) and name a known user, otherwise error 302;
//! `getChatHistory` returns the `count` messages *before* `fromMessageId` (exclusive, or the
//! newest ones), oldest first; `getChats` answers `{"chats":[…]}`; roles are strings; a
//! caption given to `sendFile` becomes a separate message reported as `captionMessageId`.

mod config;
mod jwt;
mod load;
mod pattern;
mod records;
mod server;
mod state;
mod wire;

use crate::sync::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum_server::accept::NoDelayAcceptor;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{ApiErrorCode, Error, Result};

pub use config::{Account, ExtensionFilter, OAuthApp, SimConfig, UploadLimits};
pub use load::{LoadReport, LoadSpec};
pub use pattern::{PatternReader, is_pattern, pattern, pattern_byte};
pub use records::{RecordedRequest, SentFile, SimFile, SimStats};

pub(crate) struct Inner {
    cfg: SimConfig,
    state: Mutex<state::State>,
    secret: [u8; 32],
    notify: Notify,
    next_conn: AtomicU64,
    password_login: AtomicBool,
    drop_after: AtomicU64,
    delay_us: AtomicU64,
    /// Downloads: cut the next one after this many bytes (one-shot; `u64::MAX` = off).
    cut_download: AtomicU64,
    /// Downloads: stall every one after this many bytes (`u64::MAX` = off).
    stall_download: AtomicU64,
    /// Downloads: answer `Range` requests with the whole file (200), as servers without range
    /// support do.
    ignore_ranges: AtomicBool,
    /// The `Range` header of every file download request.
    download_ranges: Mutex<Vec<Option<String>>>,
    refuse_until: Mutex<Option<Instant>>,
    web_tokens: Mutex<HashMap<String, String>>,
    auth_codes: Mutex<HashMap<String, String>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        lock(&self.state)
    }

    fn token_for(&self, login: &str) -> String {
        let exp = jwt::now_secs() + self.cfg.token_ttl.as_secs() as i64;
        jwt::sign(&self.secret, &format!("{login}@{}", self.cfg.domain), exp)
    }

    fn check_password(&self, login: &str, password: &str) -> Option<String> {
        let st = self.lock();
        let u = st.users.get(login)?;
        (u.password.as_deref() == Some(password) && !u.disabled).then(|| login.to_owned())
    }

    fn refusing(&self) -> bool {
        lock(&self.refuse_until).is_some_and(|t| Instant::now() < t)
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Relaxed))
    }

    /// Counts one sent frame against the drop-after fault; `true` = drop after this one.
    fn count_frame(&self) -> bool {
        if self.drop_after.load(Relaxed) == 0 {
            return false;
        }
        self.drop_after
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok_and(|before| before == 1)
    }

    fn send_all(&self, out: impl Fn() -> wire::Out) {
        let st = self.lock();
        for id in st.authed_conn_ids() {
            if let Some(c) = st.conns.get(&id) {
                let _ = c.tx.send(out());
            }
        }
    }

    /// Waits until `check` yields a value or the timeout passes.
    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut state::State) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check(&mut self.lock()) {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                });
            }
        }
    }
}

fn api(method: &'static str, code: u16) -> Error {
    Error::Api {
        method,
        code: ApiErrorCode(code as u32),
        payload: Some(format!(r#"{{"errorCode":{code}}}"#)),
    }
}

/// A running emulator. Dropping it stops the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> trueconf_bot::Result<()> {
/// use trueconf_bot::testkit::{Sim, SimConfig};
///
/// let sim = Sim::start(SimConfig::default()).await?;
/// // Point a bot at it: plain HTTP/WS on 127.0.0.1, a ready-made token.
/// let (port, token) = (sim.addr().port(), sim.bot_token());
/// let alice = sim.user("alice");
/// let team = sim.create_group(&alice, "Team", &["bot", "bob"]).await;
/// assert_eq!(sim.chat_title(&team).as_deref(), Some("Team"));
/// assert_eq!(sim.participants(&team).len(), 3); // alice (the owner), the bot and bob
/// // Faults for resilience tests: drop sockets, delay responses, fail a method.
/// sim.faults().fail_method("sendMessage", 304, Some(1));
/// # let _ = (port, token);
/// # Ok(()) }
/// ```
pub struct Sim {
    inner: Arc<Inner>,
    handle: axum_server::Handle<SocketAddr>,
    addr: SocketAddr,
    cert_pem: Option<String>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("url", &self.url()).finish()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Sim {
    /// Binds 127.0.0.1 and starts serving.
    pub async fn start(cfg: SimConfig) -> Result<Sim> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", cfg.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let scheme = if cfg.tls { "https" } else { "http" };
        let mut st = state::State::new(cfg.domain.clone());
        st.base_url = format!("{scheme}://{addr}");
        for a in std::iter::once(&cfg.bot).chain(&cfg.users) {
            st.ensure_user(&a.login);
            if let Some(u) = st.users.get_mut(&a.login) {
                u.password = Some(a.password.clone());
                if let Some(n) = &a.display_name {
                    u.display_name = n.clone();
                }
            }
        }
        if let Some(u) = st.users.get_mut(&cfg.bot.login) {
            u.bot = true;
        }
        let inner = Arc::new(Inner {
            password_login: AtomicBool::new(cfg.password_login),
            cfg,
            state: Mutex::new(st),
            secret: rand::random(),
            notify: Notify::new(),
            next_conn: AtomicU64::new(1),
            drop_after: AtomicU64::new(0),
            delay_us: AtomicU64::new(0),
            cut_download: AtomicU64::new(u64::MAX),
            stall_download: AtomicU64::new(u64::MAX),
            download_ranges: Mutex::new(Vec::new()),
            ignore_ranges: AtomicBool::new(false),
            refuse_until: Mutex::new(None),
            web_tokens: Mutex::new(HashMap::new()),
            auth_codes: Mutex::new(HashMap::new()),
        });
        let app = server::router(inner.clone()).into_make_service();
        let handle = axum_server::Handle::new();
        let mut cert_pem = None;
        if inner.cfg.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])
            .map_err(|e| Error::transport("cannot create a self-signed certificate", e))?;
            let pem = ck.cert.pem();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
                pem.clone().into_bytes(),
                ck.signing_key.serialize_pem().into_bytes(),
            )
            .await?;
            cert_pem = Some(pem);
            let server = axum_server::from_tcp_rustls(listener, tls)?
                .map(|a| a.acceptor(NoDelayAcceptor))
                .handle(handle.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "trueconf-sim server stopped");
                }
            });
        } else {
            // Small frames both ways: without TCP_NODELAY, Nagle plus delayed ACKs add up to
            // 40 ms to an echo whenever the socket is not busy.
            let server = axum_server::from_tcp(listener)?
                .acceptor(NoDelayAcceptor)
                .handle(handle.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "trueconf-sim server stopped");
                }
            });
        }
        Ok(Sim {
            inner,
            handle,
            addr,
            cert_pem,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        let scheme = if self.inner.cfg.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// WebSocket URL of the chat-bot endpoint.
    pub fn ws_url(&self) -> String {
        let scheme = if self.inner.cfg.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/websocket/chat_bot", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server domain.
    pub fn domain(&self) -> &str {
        &self.inner.cfg.domain
    }

    /// PEM of the self-signed certificate when TLS is on, for clients that should trust it.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The bot's full id, `login@domain`.
    pub fn bot_id(&self) -> String {
        format!("{}@{}", self.inner.cfg.bot.login, self.inner.cfg.domain)
    }

    /// A valid token for the bot account.
    pub fn bot_token(&self) -> String {
        self.inner.token_for(&self.inner.cfg.bot.login)
    }

    /// A valid token for any known account (the account is created if missing).
    pub fn token_for(&self, login: &str) -> String {
        self.inner.lock().ensure_user(login);
        self.inner.token_for(login)
    }

    /// A correctly signed token whose `exp` has passed (`auth` answers 203).
    pub fn expired_token_for(&self, login: &str) -> String {
        self.inner.lock().ensure_user(login);
        let sub = format!("{login}@{}", self.inner.cfg.domain);
        jwt::sign(&self.inner.secret, &sub, jwt::now_secs() - 60)
    }

    /// A scripted user (created on first use).
    pub fn user(&self, login: &str) -> SimUser {
        self.inner.lock().ensure_user(login);
        SimUser {
            inner: self.inner.clone(),
            login: login.to_owned(),
        }
    }

    /// Disables or re-enables an account (`auth` then answers 202, the token endpoint 401).
    pub fn set_user_disabled(&self, login: &str, disabled: bool) {
        if let Some(u) = self.inner.lock().users.get_mut(login) {
            u.disabled = disabled;
        }
    }

    /// Switches the password grant of the token endpoint on or off (off → 403).
    pub fn set_password_login(&self, enabled: bool) {
        self.inner.password_login.store(enabled, Relaxed);
    }

    /// Creates a group chat owned by `owner` with `members` (logins; include the bot's login to
    /// add the bot). Members that are bots get a `createGroupChat` event.
    pub async fn create_group(&self, owner: &SimUser, title: &str, members: &[&str]) -> String {
        self.create(owner, wire::GROUP, title, members)
    }

    /// Creates a channel owned by `owner`; members join as plain users (they cannot post until
    /// made `writer`).
    pub async fn create_channel(&self, owner: &SimUser, title: &str, members: &[&str]) -> String {
        self.create(owner, wire::CHANNEL, title, members)
    }

    fn create(&self, owner: &SimUser, kind: u8, title: &str, members: &[&str]) -> String {
        let mut st = self.inner.lock();
        for m in members {
            st.ensure_user(m);
        }
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        st.create_chat(&owner.login, kind, Some(title.to_owned()), &members, None)
    }

    /// Waits (up to the configured timeout) for the next message the bot posted in `chat` and
    /// returns its envelope. Each message is returned once.
    pub async fn expect_message(&self, chat: &str) -> Result<Value> {
        self.expect_message_within(chat, self.inner.cfg.expect_timeout)
            .await
    }

    /// [`expect_message`](Self::expect_message) with an explicit timeout.
    pub async fn expect_message_within(&self, chat: &str, timeout: Duration) -> Result<Value> {
        self.inner
            .wait_for(&format!("a bot message in chat {chat}"), timeout, |st| {
                let i = st.outbox.iter().position(|(c, _)| c == chat)?;
                st.outbox.remove(i).map(|(_, v)| v)
            })
            .await
    }

    /// Waits for the next `n` bot messages in `chat`.
    pub async fn expect_messages(&self, chat: &str, n: usize) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.expect_message(chat).await?);
        }
        Ok(out)
    }

    /// Asserts that the bot posts nothing in `chat` for `quiet`.
    pub async fn expect_no_message(&self, chat: &str, quiet: Duration) -> Result<()> {
        match self.expect_message_within(chat, quiet).await {
            Err(Error::Timeout { .. }) => Ok(()),
            Ok(v) => Err(Error::protocol(format!("unexpected bot message: {v}"))),
            Err(e) => Err(e),
        }
    }

    /// Every request the bot made so far, in order (`auth` included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// Waits until the bot has made a request with this method and returns its payload.
    pub async fn expect_request(&self, method: &str) -> Result<Value> {
        self.inner
            .wait_for(
                &format!("a {method} request"),
                self.inner.cfg.expect_timeout,
                |st| {
                    st.requests
                        .iter()
                        .rev()
                        .find(|r| r.method == method)
                        .map(|r| r.payload.clone())
                },
            )
            .await
    }

    /// The chat's history as message envelopes, oldest first (system envelopes included).
    pub fn history(&self, chat: &str) -> Vec<Value> {
        self.inner.lock().history(chat, None)
    }

    /// One message envelope by id.
    pub fn message(&self, id: &str) -> Option<Value> {
        self.inner.lock().message(id)
    }

    /// Participants of a chat as `(full user id, role)`.
    pub fn participants(&self, chat: &str) -> Vec<(String, String)> {
        let st = self.inner.lock();
        st.chats
            .get(chat)
            .map(|c| {
                c.participants
                    .iter()
                    .map(|(l, r)| (st.full_id(l), (*r).to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Title of a chat.
    pub fn chat_title(&self, chat: &str) -> Option<String> {
        self.inner
            .lock()
            .chats
            .get(chat)
            .and_then(|c| c.title.clone())
    }

    /// Whether the chat exists.
    pub fn chat_exists(&self, chat: &str) -> bool {
        self.inner.lock().chats.contains_key(chat)
    }

    /// Contents of a stored file (pattern files are generated in full: mind their size).
    pub fn file_bytes(&self, file_id: &str) -> Option<Bytes> {
        self.inner
            .lock()
            .files
            .get(file_id)
            .map(|f| f.data.to_bytes())
    }

    /// The `Range` header (if any) of every file download request so far, in order.
    pub fn download_ranges(&self) -> Vec<Option<String>> {
        lock(&self.inner.download_ranges).clone()
    }

    /// What the emulator stored for a file: name, MIME type, size and preview.
    pub fn file_info(&self, file_id: &str) -> Option<SimFile> {
        let st = self.inner.lock();
        let f = st.files.get(file_id)?;
        Some(SimFile {
            name: f.name.clone(),
            mime: f.mime.clone(),
            size: f.data.len(),
            pattern: matches!(f.data, pattern::Blob::Pattern(_)),
            preview: f
                .preview
                .as_ref()
                .map(|(n, m, d)| (n.clone(), m.clone(), d.clone())),
        })
    }

    /// Counters (pushed / acked / re-delivered events, connections).
    pub fn stats(&self) -> SimStats {
        self.inner.lock().stats.clone()
    }

    /// Number of live WebSocket connections that passed `auth`.
    pub fn authed_connections(&self) -> usize {
        self.inner.lock().authed_conn_ids().len()
    }

    /// Waits until at least one connection of any account has passed `auth`.
    pub async fn wait_for_bot(&self, timeout: Duration) -> Result<()> {
        self.inner
            .wait_for("an authenticated bot connection", timeout, |st| {
                (!st.authed_conn_ids().is_empty()).then_some(())
            })
            .await
    }

    /// Changes the upload limits and pushes the `getFileUploadLimits` event to bots.
    pub fn set_upload_limits(&self, limits: UploadLimits) {
        self.inner.lock().set_limits(limits);
        self.inner.notify.notify_waiters();
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> Faults {
        Faults {
            inner: self.inner.clone(),
        }
    }

    /// Runs a load test against the connected bot (see [`LoadSpec`]). Load chats keep no
    /// history and requests are not recorded while it runs.
    pub async fn run_load(&self, spec: LoadSpec) -> Result<LoadReport> {
        self.wait_for_bot(spec.connect_timeout).await?;
        let bot = self.inner.cfg.bot.login.clone();
        let (chats, sem, done, recording) = {
            let mut st = self.inner.lock();
            let mut chats = Vec::new();
            for c in 0..spec.chats.max(1) {
                let user = format!("load-user-{c}");
                st.ensure_user(&user);
                let id = wire::hex40();
                st.insert_load_chat(&id, &bot, &user, c);
                chats.push((id, user));
            }
            let run = load::LoadRun::new(&spec);
            let (sem, done) = (run.sem.clone(), run.done.clone());
            st.load = Some(run);
            let recording = std::mem::replace(&mut st.record_requests, false);
            (chats, sem, done, recording)
        };
        let started = Instant::now();
        let done_wait = done.notified();
        tokio::pin!(done_wait);
        done_wait.as_mut().enable();
        let deadline = started + spec.timeout;
        let mut seq = 0u64;
        let mut timed_out = false;
        while seq < spec.events {
            let mut want = (sem.available_permits() as u64).clamp(1, spec.events - seq);
            if let Some(rate) = spec.rate.filter(|r| r.is_finite() && *r > 0.0) {
                // Event `seq` is due at `seq / rate`; the timer's 1 ms granularity makes
                // small bursts, so push whatever is due by now in one go.
                let due_at = started + Duration::from_secs_f64(seq as f64 / rate);
                if tokio::time::timeout_at(deadline, tokio::time::sleep_until(due_at))
                    .await
                    .is_err()
                {
                    timed_out = true;
                    break;
                }
                let due = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
                want = want.min(due.saturating_sub(seq).max(1));
            }
            match tokio::time::timeout_at(deadline, sem.acquire_many(want as u32)).await {
                Ok(Ok(p)) => p.forget(),
                _ => {
                    timed_out = true;
                    break;
                }
            }
            let mut st = self.inner.lock();
            for _ in 0..want {
                let (chat, user) = &chats[(seq % chats.len() as u64) as usize];
                st.push_load_event(&bot, chat, user, seq);
                seq += 1;
            }
        }
        if !timed_out && spec.events > 0 {
            let _ = tokio::time::timeout_at(deadline, done_wait).await;
        }
        let mut st = self.inner.lock();
        st.record_requests = recording;
        for (id, _) in &chats {
            st.chats.remove(id);
        }
        let run = st
            .load
            .take()
            .ok_or_else(|| Error::protocol("load run vanished"))?;
        Ok(run.report(seq, started))
    }

    /// Stops the server and closes every socket (close code 1001).
    pub fn shutdown(&self) {
        self.handle.shutdown();
        // Upgraded WebSocket connections outlive the HTTP server; close them explicitly.
        self.inner
            .send_all(|| wire::Out::Close(1001, "server shutting down"));
    }
}

/// Runtime fault injection.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    /// Drops the next socket abruptly (no close frame) once `n` more frames have been sent to
    /// clients; one-shot. `0` disarms.
    pub fn drop_after_frames(&self, n: u64) {
        self.inner.drop_after.store(n, Relaxed);
    }

    /// Delays every response by `d` (`Duration::ZERO` = off).
    pub fn delay_responses(&self, d: Duration) {
        self.inner
            .delay_us
            .store(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// Refuses WebSocket handshakes (HTTP 503) for `d`.
    pub fn refuse_connections(&self, d: Duration) {
        *lock(&self.inner.refuse_until) = Some(Instant::now() + d);
    }

    /// Sends a frame that is not valid JSON to every authenticated connection.
    pub fn send_malformed_frame(&self) {
        self.inner
            .send_all(|| wire::Out::Text(r#"{"type":1,"id":"#.to_owned()));
    }

    /// Sends `text` verbatim as one WebSocket text frame to every authenticated connection
    /// (bad-input tests: wrong types, unknown response ids, huge or deeply nested frames).
    pub fn send_raw_frame(&self, text: impl Into<String>) {
        let text = text.into();
        self.inner.send_all(|| wire::Out::Text(text.clone()));
    }

    /// Pushes an event with an unknown method to every authenticated connection (it must be
    /// acked like any other).
    pub fn send_unknown_event(&self, method: &str, payload: Value) {
        let mut st = self.inner.lock();
        for id in st.authed_conn_ids() {
            st.push_raw(id, method, payload.clone());
        }
    }

    /// Simulates a server restart: closes every socket (close code 1012) and refuses new
    /// connections for `down`. State is kept.
    pub fn restart(&self, down: Duration) {
        self.refuse_connections(down);
        self.inner
            .send_all(|| wire::Out::Close(1012, "service restart"));
    }

    /// Drops every socket abruptly, without a close frame.
    pub fn drop_connections(&self) {
        self.inner.send_all(|| wire::Out::Drop);
    }

    /// Makes `method` fail with `code`: `times` times, or always when `None`.
    pub fn fail_method(&self, method: &str, code: u16, times: Option<u32>) {
        self.inner
            .lock()
            .failures
            .insert(method.to_owned(), (code, times));
    }

    /// Cuts the next file download (connection aborted) after `bytes` body bytes; one-shot.
    pub fn cut_next_download_after(&self, bytes: u64) {
        self.inner.cut_download.store(bytes, Relaxed);
    }

    /// Makes every file download stop sending after `bytes` body bytes (the connection stays
    /// open) until [`Faults::clear`]; `None` disarms.
    pub fn stall_downloads_after(&self, bytes: Option<u64>) {
        self.inner
            .stall_download
            .store(bytes.unwrap_or(u64::MAX), Relaxed);
    }

    /// Makes file downloads ignore `Range` headers and send the whole file, as a server without
    /// range support would.
    pub fn ignore_download_ranges(&self, on: bool) {
        self.inner.ignore_ranges.store(on, Relaxed);
    }

    /// Removes every injected method failure and the response delay.
    pub fn clear(&self) {
        self.ignore_download_ranges(false);
        self.inner.lock().failures.clear();
        self.stall_downloads_after(None);
        self.inner.cut_download.store(u64::MAX, Relaxed);
        self.delay_responses(Duration::ZERO);
        self.drop_after_frames(0);
        *lock(&self.inner.refuse_until) = None;
    }
}

/// A file a scripted user is still uploading (`readyState` 1).
pub struct Upload {
    inner: Arc<Inner>,
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
        self.inner
            .lock()
            .file_progress(&self.file.file_id, received, false);
    }

    /// Abandons the upload: the file becomes NOT_AVAILABLE (`readyState` 0).
    pub fn fail(&self) {
        if let Some(f) = self.inner.lock().files.get_mut(&self.file.file_id) {
            f.ready = wire::FILE_NOT_AVAILABLE;
        }
        self.inner.notify.notify_waiters();
    }

    /// Completes the upload: the file becomes READY and subscribers get a final progress event.
    pub fn finish(&self) {
        self.inner
            .lock()
            .file_progress(&self.file.file_id, u64::MAX, true);
    }
}

/// A scripted user acting through the emulator's state (no socket).
#[derive(Clone)]
pub struct SimUser {
    inner: Arc<Inner>,
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
    /// Login without domain.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Full TrueConf id, `login@domain`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.login, self.inner.cfg.domain)
    }

    fn run<T>(
        &self,
        method: &'static str,
        f: impl FnOnce(&mut state::State) -> std::result::Result<T, u16>,
    ) -> Result<T> {
        let r = f(&mut self.inner.lock());
        self.inner.notify.notify_waiters();
        r.map_err(|c| api(method, c))
    }

    /// Opens (or finds) the personal chat with the bot; the bot gets `createP2PChat`.
    pub async fn create_p2p_with_bot(&self) -> Result<String> {
        let bot = self.inner.cfg.bot.login.clone();
        self.run("createP2PChat", |st| {
            Ok(st.create_p2p(&self.login, &bot, None))
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

    fn send(&self, chat: &str, content: Value, reply: Option<&str>) -> Result<String> {
        self.run("sendMessage", |st| {
            st.send_text(&self.login, chat, content, reply, None)
                .map(|x| x.0)
        })
    }

    /// Sends a message that @-mentions the bot (an HTML `trueconf:` link).
    pub async fn mention_bot(&self, chat: &str) -> Result<String> {
        let bot = format!("{}@{}", self.inner.cfg.bot.login, self.inner.cfg.domain);
        self.send_html(chat, &format!(r#"<a href="trueconf:{bot}">@bot</a> hello"#))
            .await
    }

    /// Edits one of this user's text messages.
    pub async fn edit(&self, message: &str, text: &str) -> Result<()> {
        self.run("editMessage", |st| {
            st.edit(
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
        self.run("removeMessage", |st| {
            st.remove(&self.login, message, true, None)
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
            inner: self.inner.clone(),
            file,
        })
    }

    /// Posts a READY file of `len` generated [`pattern`] bytes, stored without holding them in
    /// memory (for large-download tests).
    pub async fn upload_pattern_file(&self, chat: &str, name: &str, len: u64) -> Result<SentFile> {
        self.upload(chat, name, pattern::Blob::Pattern(len), true)
    }

    fn upload(
        &self,
        chat: &str,
        name: &str,
        data: impl Into<pattern::Blob>,
        ready: bool,
    ) -> Result<SentFile> {
        let data = data.into();
        let mime = mime_of(name);
        self.run("sendFile", |st| {
            st.role_check(chat, &self.login)?;
            let file_id = st.store_file(name, mime, data, ready);
            let (message_id, _) = st.post_file(&self.login, chat, &file_id, None, None)?;
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
        self.run("command", |st| {
            st.press(&self.login, chat, message, command)
        })
    }

    /// Adds `login` to a group or channel this user manages.
    pub async fn add_participant(&self, chat: &str, login: &str) -> Result<()> {
        self.run("addChatParticipant", |st| {
            st.ensure_user(login);
            st.add_participant(&self.login, chat, login, None)
        })
    }

    /// Removes `login` from a chat this user manages.
    pub async fn remove_participant(&self, chat: &str, login: &str) -> Result<()> {
        self.run("removeChatParticipant", |st| {
            st.remove_participant(&self.login, chat, login, false, None)
        })
    }

    /// Changes the role of `login` (`"admin"`, `"writer"`, …).
    pub async fn set_role(&self, chat: &str, login: &str, role: &str) -> Result<()> {
        let role = ["owner", "admin", "user", "writer"]
            .into_iter()
            .find(|r| *r == role)
            .ok_or_else(|| Error::invalid("role", format!("unknown role {role:?}")))?;
        self.run("changeParticipantRole", |st| {
            st.set_role(&self.login, chat, login, role, None)
        })
    }

    /// Renames a chat.
    pub async fn rename_chat(&self, chat: &str, title: &str) -> Result<()> {
        self.run("editChatTitle", |st| {
            st.edit_title(&self.login, chat, title, None).map(drop)
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
        self.run("editChatAvatar", |st| {
            st.set_avatar(&self.login, chat, name, data, None)
        })
    }

    /// Clears a chat's history for everyone.
    pub async fn clear_history(&self, chat: &str) -> Result<()> {
        self.run("clearHistory", |st| {
            st.clear_history(&self.login, chat, true, None)
        })
    }

    /// Deletes a chat.
    pub async fn remove_chat(&self, chat: &str) -> Result<()> {
        self.run("removeChat", |st| st.remove_chat(&self.login, chat, None))
    }
}

fn mime_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Durations in JSON reports are milliseconds (floating point).
mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64((v / 1000.0).max(0.0)))
    }
}
