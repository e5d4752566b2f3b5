//! The [`Bot`] handle users call.
//!
//! A `Bot` is a cheap clone of an `Arc`. [`Bot::builder`] configures it, [`Bot::start`]
//! connects (spawning the supervised actors), every protocol method is an async method
//! returning a [`Call`] that can be refined with setters and then `.await`ed, and
//! [`Bot::events`] hands out the stream of server events.

pub(crate) mod config;
pub(crate) mod core;
mod files;
mod methods;
mod throttle;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use ractor::{Actor, ActorCell};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

pub use self::config::ReconnectPolicy;
use self::config::{AuthSource, Config};
use self::core::{Core, lock, read, write};
pub use self::methods::ActivityGuard;
pub use self::throttle::{Rate, ThrottleConfig};
use crate::connection::{AckMode, ConnectionState, ServerEvent, TlsOptions};
use crate::error::{DisconnectKind, Error, Result};
use crate::methods::{Request, decode_response};
use crate::protocol::Frame;
use crate::router::{Outcome, Pending, RouterMsg};
use crate::supervisor::Supervisor;
use crate::types::ParseMode;

/// Default limit of one incoming WebSocket message and frame.
const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// A secret string (token, password). `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::from(secret.into()))
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Configures a [`Bot`]. Start with [`Bot::builder`].
///
/// ```no_run
/// # async fn demo() -> trueconf_bot::Result<()> {
/// use trueconf_bot::bot::Bot;
/// let bot = Bot::builder("video.example.com")
///     .credentials("helpdesk_bot", "secret")
///     .receive_unread(true)
///     .build()?;
/// let mut events = bot.events().expect("first call");
/// bot.start().await?;
/// while let Some(event) = events.recv().await {
///     println!("{}", event.method);
/// }
/// # Ok(()) }
/// ```
#[must_use]
pub struct BotBuilder {
    server: String,
    token: Option<Secret>,
    auth: Option<AuthSource>,
    port: Option<u16>,
    https: bool,
    tls: TlsOptions,
    receive_unread: bool,
    receive_system_messages: bool,
    request_timeout: Duration,
    shutdown_timeout: Duration,
    reconnect: ReconnectPolicy,
    ack_mode: AckMode,
    event_buffer: usize,
    offline_queue: usize,
    keepalive: Duration,
    pong_timeout: Duration,
    restart_limit: (u32, Duration),
    throttle: ThrottleConfig,
    default_parse_mode: ParseMode,
    hook: Option<core::StateHook>,
    max_message_size: usize,
    max_frame_size: usize,
}

impl std::fmt::Debug for BotBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotBuilder")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("https", &self.https)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl BotBuilder {
    /// The bot's fixed access token (a JWT). Without credentials it cannot be renewed.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self.auth = Some(AuthSource::Token);
        self
    }

    /// Log in with the bot account's login and password (OAuth password grant); the token is
    /// fetched on start and fetched again when the server says it expired.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.token = None;
        self.auth = Some(AuthSource::Credentials {
            user: user.into(),
            password: Secret::new(password),
        });
        self
    }

    /// Log in through a registered OAuth application, for servers with password login to the
    /// Bridge disabled.
    pub fn oauth_app(
        mut self,
        client_id: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.token = None;
        self.auth = Some(AuthSource::OAuthApp {
            client_id: client_id.into(),
            user: user.into(),
            password: Secret::new(password),
        });
        self
    }

    /// The server port (default: 443 with HTTPS, 4309 without).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Use `wss`/`https` (default) or plain `ws`/`http`.
    pub fn https(mut self, on: bool) -> Self {
        self.https = on;
        self
    }

    /// `false` accepts any server certificate. For testing only; a warning is logged.
    pub fn verify_ssl(mut self, on: bool) -> Self {
        self.tls.verify = on;
        self
    }

    /// Trust these PEM-encoded CA certificates instead of the system roots.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Ask the server for messages that arrived while the bot was offline (default off).
    pub fn receive_unread(mut self, on: bool) -> Self {
        self.receive_unread = on;
        self
    }

    /// Ask the server for system envelopes (participant changes, renames…; default off).
    pub fn receive_system_messages(mut self, on: bool) -> Self {
        self.receive_system_messages = on;
        self
    }

    /// How long a request may take, including waiting for a reconnect (default 10 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// How long [`Bot::shutdown`] lets in-flight requests finish (default 5 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// Reconnect back-off and retry budget.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// When events are acknowledged (default [`AckMode::OnReceive`]).
    pub fn ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// Capacity of the event stream (default 1024). When it is full, up to as many events
    /// again are held back while the socket is still read (so responses keep arriving);
    /// beyond that the connection stops reading until the consumer catches up.
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n;
        self
    }

    /// How many requests may wait for a reconnect at once (default 1024); more fail at once
    /// with [`Error::Disconnected`].
    pub fn offline_queue(mut self, n: usize) -> Self {
        self.offline_queue = n;
        self
    }

    /// WebSocket ping interval and pong deadline (default 30 s and 10 s).
    pub fn keepalive(mut self, interval: Duration, pong_timeout: Duration) -> Self {
        self.keepalive = interval;
        self.pong_timeout = pong_timeout;
        self
    }

    /// How often the supervisor may restart a child actor: `max` restarts within `window`
    /// (default 5 in 10 s); one more and the bot fails.
    pub fn restart_limit(mut self, max: u32, window: Duration) -> Self {
        self.restart_limit = (max, window);
        self
    }

    /// Client-side rate limits.
    pub fn throttle(mut self, throttle: ThrottleConfig) -> Self {
        self.throttle = throttle;
        self
    }

    /// Parse mode of texts sent without an explicit one (default plain text).
    pub fn default_parse_mode(mut self, mode: ParseMode) -> Self {
        self.default_parse_mode = mode;
        self
    }

    /// Largest incoming WebSocket message (default 16 MiB) and frame (default 16 MiB) the bot
    /// accepts. A bigger one is refused before it is buffered: the error is logged as a
    /// protocol error and the bot reconnects. Zero is taken as 1.
    pub fn max_message_size(mut self, message: usize, frame: usize) -> Self {
        self.max_message_size = message.max(1);
        self.max_frame_size = frame.max(1);
        self
    }

    /// Called on every connection state change (health reporting). Keep it quick.
    pub fn on_state_change(
        mut self,
        hook: impl Fn(&ConnectionState) + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Checks the settings and builds the bot (nothing is connected yet).
    pub fn build(self) -> Result<Bot> {
        let host = self
            .server
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(Error::invalid(
                "server",
                format!(
                    "expected a host name such as `video.example.com`, got {:?}",
                    self.server
                ),
            ));
        }
        let auth = self.auth.ok_or_else(|| {
            Error::invalid(
                "token",
                "set a token, credentials or an OAuth application before build()",
            )
        })?;
        if let Some(t) = &self.token {
            crate::protocol::token::check(t.expose(), std::time::SystemTime::now())?;
        }
        if let AuthSource::Credentials { user, .. } | AuthSource::OAuthApp { user, .. } = &auth
            && user.trim().is_empty()
        {
            return Err(Error::invalid("user", "the login must not be empty"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::invalid(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        let tls = connection::tls::client_config(&self.tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .user_agent(concat!("trueconf-bot-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.request_timeout)
            .read_timeout(self.request_timeout)
            .build()
            .map_err(|e| Error::Http {
                status: None,
                message: "HTTP client setup failed".into(),
                source: Some(Box::new(e)),
            })?;
        let config = Config {
            host,
            port: self.port.unwrap_or(if self.https { 443 } else { 4309 }),
            https: self.https,
            auth,
            receive_unread: self.receive_unread,
            receive_system_messages: self.receive_system_messages,
            request_timeout: self.request_timeout,
            shutdown_timeout: self.shutdown_timeout,
            reconnect: self.reconnect,
            ack_mode: self.ack_mode,
            event_buffer: self.event_buffer,
            offline_queue: self.offline_queue,
            keepalive: self.keepalive,
            pong_timeout: self.pong_timeout,
            restart_limit: self.restart_limit,
            default_parse_mode: self.default_parse_mode,
            max_message_size: self.max_message_size,
            max_frame_size: self.max_frame_size,
        };
        let core = Core::new(
            config,
            http,
            Arc::new(tls),
            throttle::Throttle::new(self.throttle),
            self.token,
            self.hook,
        );
        let core = Arc::new(core);
        Ok(Bot {
            _handles: Some(Arc::new(Handles(core.clone()))),
            core,
        })
    }
}

use crate::connection;

/// A cheap-to-clone handle to a bot: configuration, connection, and every protocol method.
///
/// Methods are named as in the official Python client and return a [`Call`]: optional
/// arguments chain before `.await`.
///
/// ```no_run
/// # async fn demo() -> trueconf_bot::Result<()> {
/// use trueconf_bot::bot::Bot;
/// use trueconf_bot::types::Role;
///
/// let bot = Bot::builder("video.example.com").token("eyJ…").build()?;
/// bot.start().await?;
/// let chat = bot.create_group_chat("Release team").await?.chat_id;
/// bot.add_participant_to_chat(&chat, "alice").display_history(true).await?;
/// bot.change_participant_role(&chat, "alice", Role::Admin).await?;
/// let hello = bot.send_message(&chat, "Welcome!").await?;
/// bot.reply_message(&chat, &hello.message_id, "(a reply)").await?;
/// bot.shutdown().await?;
/// # Ok(()) }
/// ```
///
/// Dropping the last handle of a started bot shuts it down gracefully in the background, as
/// [`Bot::shutdown`] would (handles held by the dispatcher, by handler contexts and by pending
/// calls count too).
#[derive(Clone)]
pub struct Bot {
    pub(crate) core: Arc<Core>,
    /// Shared by the user's handles only, never by the runtime's own (`Bot::internal`).
    _handles: Option<Arc<Handles>>,
}

/// Dropped with the last user handle of a bot.
struct Handles(Arc<Core>);

impl Drop for Handles {
    fn drop(&mut self) {
        let core = &self.0;
        // Never started (or starting right now, holding the lock): nothing runs that needs
        // stopping, or `start` will see the events stream closed.
        let started = core.started.try_lock().map_or(true, |s| *s);
        if !started || core.shutting_down.load(Ordering::Acquire) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::debug!("last Bot handle dropped; shutting down");
                let core = core.clone();
                rt.spawn(async move {
                    let _ = shutdown(&core).await;
                });
            }
            // Outside the runtime: close the socket at least; the actors stop with it.
            Err(_) => {
                core.stop_events.cancel();
                core.shutdown.cancel();
            }
        }
    }
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("server", &self.core.config.host)
            .field("me", &self.me())
            .field("state", &self.core.state())
            .finish()
    }
}

/// The server events of a bot, in arrival order. Ends when the bot shuts down.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<ServerEvent>,
}

impl EventStream {
    /// The next event; `None` once the bot is shut down.
    pub async fn recv(&mut self) -> Option<ServerEvent> {
        self.rx.recv().await
    }

    /// The underlying bounded receiver.
    pub fn into_inner(self) -> mpsc::Receiver<ServerEvent> {
        self.rx
    }
}

impl futures_util::Stream for EventStream {
    type Item = ServerEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServerEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Bot {
    /// A handle for the runtime's own use: it does not keep the bot alive.
    pub(crate) fn internal(core: Arc<Core>) -> Self {
        Bot {
            core,
            _handles: None,
        }
    }

    /// Starts configuring a bot for `server` (a host name such as `video.example.com`).
    pub fn builder(server: impl Into<String>) -> BotBuilder {
        BotBuilder {
            server: server.into(),
            token: None,
            auth: None,
            port: None,
            https: true,
            tls: TlsOptions {
                verify: true,
                ca_pem: None,
            },
            receive_unread: false,
            receive_system_messages: false,
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
            ack_mode: AckMode::default(),
            event_buffer: 1024,
            offline_queue: 1024,
            keepalive: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            restart_limit: (5, Duration::from_secs(10)),
            throttle: ThrottleConfig::default(),
            default_parse_mode: ParseMode::Text,
            hook: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            max_frame_size: DEFAULT_MAX_MESSAGE,
        }
    }

    /// The server's domain (from `/api/v4/server`), once connected.
    pub fn server_name(&self) -> Option<String> {
        self.core.domain.get().cloned()
    }

    /// The current access token (`Debug`/`Display` redact it).
    pub fn token(&self) -> Option<Secret> {
        read(&self.core.token).clone()
    }

    /// The bot's own user id (`login@domain`, without the `/resource`), once authorised.
    pub fn me(&self) -> Option<String> {
        read(&self.core.me).clone()
    }

    /// The parse mode used when a call does not set one.
    pub fn default_parse_mode(&self) -> ParseMode {
        self.core.config.default_parse_mode.clone()
    }

    /// Watches the connection state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.core.subscribe()
    }

    /// How many times the supervisor restarted a child actor.
    pub fn restarts(&self) -> u64 {
        self.core.restarts.load(Ordering::Acquire)
    }

    /// Requests currently waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.core.table.len()
    }

    /// The current Connection actor, for supervision tooling and fault-injection tests.
    pub fn connection_actor(&self) -> Option<ActorCell> {
        read(&self.core.connection).as_ref().map(|r| r.get_cell())
    }

    /// The current RequestRouter actor, for supervision tooling and fault-injection tests.
    pub fn router_actor(&self) -> Option<ActorCell> {
        read(&self.core.router).as_ref().map(|r| r.get_cell())
    }

    /// Takes the event stream. Returns `None` after the first call. Take it **before**
    /// [`Bot::start`]: events arriving while nobody holds the stream are acknowledged and
    /// discarded.
    ///
    /// The stream is bounded ([`BotBuilder::event_buffer`]). A consumer may await bot calls
    /// while the stream is full, but once twice the buffer is waiting the connection stops
    /// reading and calls stall until their timeout: under heavy load, hand events to other
    /// tasks instead of awaiting calls in the draining loop.
    pub fn events(&self) -> Option<EventStream> {
        lock(&self.core.events_rx)
            .take()
            .map(|rx| EventStream { rx })
    }

    /// Completes a bare login with `@<server domain>` (§3); ids with `@` are kept.
    pub fn complete_user_id(&self, user_id: impl Into<String>) -> String {
        let id = user_id.into();
        match self.core.domain.get() {
            Some(domain) if !id.contains('@') && !id.is_empty() => format!("{id}@{domain}"),
            _ => id,
        }
    }

    /// Connects and authorises; returns once the bot is ready. Calling it again is harmless.
    /// A rejected token or credentials, an unsupported server, or a refused certificate fail
    /// at once; network trouble is retried per the [`ReconnectPolicy`].
    pub async fn start(&self) -> Result<()> {
        let core = &self.core;
        {
            let mut started = core.started.lock().await;
            if !*started {
                if core.shutting_down.load(Ordering::Acquire) {
                    return Err(Error::disconnected(
                        DisconnectKind::ShuttingDown,
                        "the bot was shut down",
                    ));
                }
                if lock(&core.events_rx).take().is_some() {
                    tracing::info!(
                        "no event stream taken before start(): events are acknowledged and \
                         discarded"
                    );
                    *write(&core.events_tx) = None;
                }
                core.set_state(ConnectionState::Connecting);
                let (sup, stopped) =
                    Actor::spawn(None, Supervisor, core.clone())
                        .await
                        .map_err(|e| {
                            Error::disconnected(
                                DisconnectKind::Internal,
                                format!("could not start the runtime: {e}"),
                            )
                        })?;
                *write(&core.supervisor) = Some(sup);
                // Nothing supervises the supervisor: if it ever stops on its own (a panic in
                // it), fail the bot so `run` returns instead of waiting forever.
                let watched = Arc::downgrade(core);
                tokio::spawn(async move {
                    let _ = stopped.await;
                    if let Some(core) = watched.upgrade()
                        && !core.shutting_down.load(Ordering::Acquire)
                    {
                        supervisor_gone(&core);
                    }
                });
                *started = true;
            }
        }
        let mut rx = core.subscribe();
        let state = rx
            .wait_for(|s| matches!(s, ConnectionState::Ready) || s.is_terminal())
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped);
        terminal_result(&state, false)
    }

    /// Starts the bot and waits until it is shut down (`Ok`) or fails for good (`Err`).
    pub async fn run(&self) -> Result<()> {
        self.start().await?;
        let mut rx = self.core.subscribe();
        let state = rx
            .wait_for(ConnectionState::is_terminal)
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped);
        terminal_result(&state, true)
    }

    /// Like [`Bot::run`], but shuts down gracefully on Ctrl-C or SIGTERM.
    pub async fn run_until_signal(&self) -> Result<()> {
        self.start().await?;
        let mut rx = self.core.subscribe();
        tokio::select! {
            s = rx.wait_for(ConnectionState::is_terminal) => {
                let state = s.map(|s| s.clone()).unwrap_or(ConnectionState::Stopped);
                return terminal_result(&state, true);
            }
            _ = shutdown_signal() => tracing::info!("signal received; shutting down"),
        }
        self.shutdown().await
    }

    /// Graceful shutdown: stop taking events and new requests, let in-flight requests finish
    /// within the shutdown timeout, fail the rest with [`Error::Disconnected`], close the
    /// socket cleanly and stop the actors.
    pub async fn shutdown(&self) -> Result<()> {
        shutdown(&self.core).await
    }

    /// Sends any typed request. The per-method functions build on this.
    pub fn execute<R: Request>(&self, request: R) -> Call<R> {
        Call {
            bot: self.clone(),
            request,
            chat: None,
            timeout: None,
        }
    }

    pub(crate) fn call_in<R: Request>(&self, chat: &str, request: R) -> Call<R> {
        let mut call = self.execute(request);
        if self.core.throttle.is_some() {
            call.chat = Some(chat.to_owned());
        }
        call
    }
}

/// The supervisor stopped without a shutdown. When that follows a failure it reported itself,
/// the state is terminal already and stays as it is.
fn supervisor_gone(core: &Core) {
    let f = connection::Failure::new(
        connection::FailureKind::Internal,
        "the runtime's supervisor stopped unexpectedly; nothing would reconnect",
    );
    if !core.state().is_terminal() {
        tracing::error!(failure = %f, "bot runtime lost");
    }
    core.stop_events.cancel();
    core.shutdown.cancel();
    core.table
        .fail_all(DisconnectKind::Failed(f.kind), &f.message);
    core.set_state(ConnectionState::Failed(f));
}

/// The body of [`Bot::shutdown`], also run when the last handle goes.
async fn shutdown(core: &Arc<Core>) -> Result<()> {
    let deadline = core.config.shutdown_timeout;
    let until = Instant::now() + deadline + Duration::from_secs(1);
    if core.shutting_down.swap(true, Ordering::AcqRel) {
        let mut rx = core.subscribe();
        let _ = tokio::time::timeout_at(until, rx.wait_for(ConnectionState::is_terminal)).await;
        return Ok(());
    }
    core.stop_events.cancel();
    *write(&core.events_tx) = None;
    lock(&core.events_rx).take();
    if !*core.started.lock().await {
        core.set_state(ConnectionState::Stopped);
        return Ok(());
    }
    let router = read(&core.router).clone();
    let drained = match router {
        Some(r) => r
            .call(
                |reply| RouterMsg::Drain { deadline, reply },
                Some(deadline + Duration::from_millis(500)),
            )
            .await
            .ok()
            .and_then(|r| match r {
                ractor::rpc::CallResult::Success(n) => Some(n),
                _ => None,
            }),
        None => None,
    };
    let failed = drained.unwrap_or_else(|| {
        core.table
            .fail_all(DisconnectKind::ShuttingDown, "the bot is shutting down")
    });
    if failed > 0 {
        tracing::info!(failed, "requests failed by shutdown");
    }
    core.shutdown.cancel();
    let mut rx = core.subscribe();
    let _ = tokio::time::timeout_at(until, rx.wait_for(ConnectionState::is_terminal)).await;
    core.set_state(ConnectionState::Stopped);
    let sup = write(&core.supervisor).take();
    if let Some(sup) = sup {
        let _ = sup
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(1)))
            .await;
    }
    Ok(())
}

/// `start()` treats a stop as an error (it did not get ready); `run()` does not.
fn terminal_result(state: &ConnectionState, stopped_ok: bool) -> Result<()> {
    match state {
        ConnectionState::Failed(f) => Err(f.to_error()),
        ConnectionState::Stopped if !stopped_ok => Err(Error::disconnected(
            DisconnectKind::ShuttingDown,
            "the bot was shut down",
        )),
        _ => Ok(()),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One pending method call: refine it with setters, then `.await` it.
///
/// ```no_run
/// # async fn demo(bot: trueconf_bot::bot::Bot, req: impl trueconf_bot::methods::Request) {
/// let response = bot.execute(req).timeout(std::time::Duration::from_secs(3)).await;
/// # let _ = response;
/// # }
/// ```
#[must_use = "a call does nothing until awaited"]
pub struct Call<R: Request> {
    bot: Bot,
    request: R,
    chat: Option<String>,
    timeout: Option<Duration>,
}

impl<R: Request + std::fmt::Debug> std::fmt::Debug for Call<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &R::METHOD)
            .field("request", &self.request)
            .finish()
    }
}

impl<R: Request> Call<R> {
    /// Changes the request with any of its setters: `.map(|r| r.some_setter(x))`.
    pub fn map(mut self, f: impl FnOnce(R) -> R) -> Self {
        self.request = f(self.request);
        self
    }

    /// Overrides the bot's request timeout for this call.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The request as it will be sent.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// The request, without sending it.
    pub fn into_request(self) -> R {
        self.request
    }
}

impl<R: Request> IntoFuture for Call<R> {
    type Output = Result<R::Response>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R::Response>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!("request", method = R::METHOD, id = tracing::field::Empty);
        Box::pin(execute(self.bot.core, self.request, self.chat, self.timeout).instrument(span))
    }
}

/// Removes a pending entry when the caller gives up (timeout, dropped future).
struct PendingGuard<'a> {
    core: &'a Core,
    id: Option<u64>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.core.table.remove(id);
        }
    }
}

struct OfflineSlot<'a>(&'a Core);

impl Drop for OfflineSlot<'_> {
    fn drop(&mut self) {
        self.0.offline_waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn execute<R: Request>(
    core: Arc<Core>,
    mut request: R,
    chat: Option<String>,
    timeout: Option<Duration>,
) -> Result<R::Response> {
    request.validate()?;
    if let Some(domain) = core.domain.get() {
        request.complete_user_ids(domain);
    }
    let started = Instant::now();
    let after = timeout.unwrap_or(core.config.request_timeout);
    let deadline = started + after;
    if let Some(t) = &core.throttle {
        t.acquire(chat.as_deref()).await;
    }
    let mut payload = Some(serde_json::value::to_raw_value(&request).map_err(|e| {
        Error::invalid(
            "request",
            format!("`{}` could not be encoded: {e}", R::METHOD),
        )
    })?);
    drop(request);
    let result = loop {
        if core.shutting_down.load(Ordering::Acquire) {
            break Err(Error::disconnected(
                DisconnectKind::ShuttingDown,
                "the bot is shutting down",
            ));
        }
        let writer = match core.writer() {
            Some(w) => w,
            None => match wait_online(&core, deadline, after, R::METHOD).await {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
        };
        let id = core.table.next_id();
        tracing::Span::current().record("id", id);
        let (tx, rx) = oneshot::channel();
        core.table.insert(
            id,
            Pending {
                method: R::METHOD,
                epoch: writer.epoch,
                idempotent: R::IDEMPOTENT,
                tx,
            },
        );
        let mut guard = PendingGuard {
            core: &core,
            id: Some(id),
        };
        let body = match (R::IDEMPOTENT, payload.take()) {
            (true, Some(p)) => {
                payload = Some(p.clone());
                p
            }
            (_, Some(p)) => p,
            (_, None) => break Err(Error::protocol("request payload lost")),
        };
        if let Err(mpsc::error::SendError(frame)) =
            writer.tx.send(Frame::request(id, R::METHOD, body))
        {
            // Never written: the socket is gone, so it is safe to wait and send again.
            core.table.remove(id);
            guard.id = None;
            if let Frame::Request { payload: p, .. } = frame {
                payload = Some(p);
            }
            core.go_offline(writer.epoch);
            continue;
        }
        if core.generation() != writer.epoch && core.table.remove(id).is_some() {
            // The socket died around the send and the router's sweep missed this entry.
            guard.id = None;
            if R::IDEMPOTENT {
                continue;
            }
            break Err(Error::disconnected(
                DisconnectKind::OutcomeUnknown,
                format!(
                    "connection lost while sending `{}`; it may or may not have been applied",
                    R::METHOD
                ),
            ));
        }
        let outcome = tokio::time::timeout_at(deadline, rx).await;
        match outcome {
            Err(_) => {
                break Err(Error::Timeout {
                    what: R::METHOD.to_owned(),
                    after,
                });
            }
            Ok(Err(_)) => {
                guard.id = None;
                break Err(Error::disconnected(
                    DisconnectKind::Internal,
                    format!("`{}` was dropped by the runtime", R::METHOD),
                ));
            }
            Ok(Ok(outcome)) => {
                guard.id = None;
                match outcome {
                    Outcome::Response(p) => break decode_response::<R>(p.as_deref()),
                    Outcome::Retry => {
                        tracing::debug!(id, "re-sending idempotent request after reconnect");
                        continue;
                    }
                    Outcome::Failed(e) => break Err(e),
                }
            }
        }
    };
    let elapsed = started.elapsed();
    match &result {
        Ok(_) => tracing::debug!(method = R::METHOD, ?elapsed, "request ok"),
        Err(e) => tracing::debug!(method = R::METHOD, ?elapsed, error = %e, "request failed"),
    }
    result
}

async fn wait_online(core: &Core, deadline: Instant, after: Duration, method: &str) -> Result<()> {
    let mut rx = core.subscribe();
    let state = rx.borrow().clone();
    match state {
        ConnectionState::Failed(f) => return Err(f.to_error()),
        ConnectionState::Stopped => {
            return Err(Error::disconnected(
                DisconnectKind::ShuttingDown,
                "the bot is stopped",
            ));
        }
        ConnectionState::Idle => {
            return Err(Error::disconnected(
                DisconnectKind::NotStarted,
                "the bot is not started: call `start()` or `run()` first",
            ));
        }
        _ => {}
    }
    let waiting = core.offline_waiters.fetch_add(1, Ordering::AcqRel);
    let _slot = OfflineSlot(core);
    if waiting >= core.config.offline_queue {
        return Err(Error::disconnected(
            DisconnectKind::OfflineQueueFull,
            format!("offline: {waiting} requests already wait for the reconnect"),
        ));
    }
    let wait = rx.wait_for(|s| matches!(s, ConnectionState::Ready) || s.is_terminal());
    match tokio::time::timeout_at(deadline, wait).await {
        Err(_) => Err(Error::Timeout {
            what: format!("{method} (waiting for the connection)"),
            after,
        }),
        Ok(Err(_)) => Err(Error::disconnected(
            DisconnectKind::ShuttingDown,
            "the bot is gone",
        )),
        Ok(Ok(s)) => match &*s {
            ConnectionState::Failed(f) => Err(f.to_error()),
            ConnectionState::Ready => Ok(()),
            _ => Err(Error::disconnected(
                DisconnectKind::ShuttingDown,
                "the bot is stopped",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(claims: serde_json::Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            e.encode(claims.to_string())
        )
    }

    #[test]
    fn build_rejects_malformed_and_expired_tokens() {
        assert!(Bot::builder("h.example").token("abc").build().is_err());
        let expired = Bot::builder("h.example")
            .token(jwt(serde_json::json!({"exp": 1})))
            .build()
            .unwrap_err();
        assert!(matches!(expired, Error::Auth { .. }), "{expired}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let bot = Bot::builder("h.example")
            .https(false)
            .token(jwt(serde_json::json!({"sub": "bot"})))
            .build()
            .expect("valid");
        let shown = format!("{:?} {:?}", bot, bot.token());
        assert!(!shown.contains("sig"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn builder_rejects_bad_servers_and_missing_auth() {
        let t = jwt(serde_json::json!({}));
        assert!(Bot::builder("").token(t.clone()).build().is_err());
        assert!(Bot::builder("a/b").token(t).build().is_err());
        let e = Bot::builder("h.example").build().unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                argument: "token",
                ..
            }
        ));
    }
}

/// The request path without sockets: a fake writer stands in for the connection, and tokio's
/// paused clock makes the timeouts exact.
#[cfg(test)]
mod offline_tests {
    use super::*;
    use crate::methods::{GetChats, SendMessage};
    use crate::protocol::RawValue;

    fn bot(offline_queue: usize) -> Bot {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let token = format!("{}.{}.s", e.encode(b"{}"), e.encode(b"{}"));
        Bot::builder("h.example")
            .https(false)
            .token(token)
            .offline_queue(offline_queue)
            .request_timeout(Duration::from_secs(10))
            .build()
            .expect("valid")
    }

    fn online(bot: &Bot) -> (u64, mpsc::UnboundedReceiver<Frame>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let epoch = bot.core.go_online(tx);
        bot.core.set_state(ConnectionState::Ready);
        (epoch, rx)
    }

    fn offline(bot: &Bot, epoch: u64) {
        bot.core.go_offline(epoch);
        bot.core
            .set_state(ConnectionState::Reconnecting { attempt: 1 });
    }

    fn answer(bot: &Bot, frame: &Frame, json: &str) {
        let raw = RawValue::from_string(json.to_owned()).expect("json");
        bot.core.table.resolve(frame.id(), Some(raw));
    }

    #[tokio::test(start_paused = true)]
    async fn offline_requests_wait_in_a_bounded_queue_and_time_out() {
        let bot = bot(1);
        bot.core.set_state(ConnectionState::Connecting);
        let waiting = tokio::spawn(bot.get_chats(10, 1).into_future());
        tokio::task::yield_now().await;
        let err = bot.get_chats(10, 1).await.unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::OfflineQueueFull),
            "{err}"
        );

        let (epoch, mut rx) = online(&bot);
        let frame = rx.recv().await.expect("sent once online");
        answer(&bot, &frame, r#"{"chats":[]}"#);
        assert!(
            waiting
                .await
                .expect("joined")
                .expect("answered")
                .chats
                .is_empty()
        );

        offline(&bot, epoch);
        let began = Instant::now();
        let err = bot.get_chats(10, 1).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(began.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_socket_resends_reads_and_fails_writes() {
        let bot = bot(16);
        let (epoch, mut rx) = online(&bot);
        let read = tokio::spawn(bot.get_chats(10, 1).into_future());
        let write = tokio::spawn(bot.send_message("c", "hi").into_future());
        let first = rx.recv().await.expect("read sent");
        let _ = rx.recv().await.expect("write sent");
        offline(&bot, epoch);
        let err = write.await.expect("joined").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Disconnected {
                    kind: DisconnectKind::OutcomeUnknown,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(bot.in_flight(), 0);

        let (_, mut rx) = online(&bot);
        let again = rx.recv().await.expect("read re-sent on the new socket");
        assert!(again.id() > first.id(), "a fresh id, never reused");
        // A late answer to the old id resolves nothing.
        answer(&bot, &first, r#"{"chats":[]}"#);
        answer(&bot, &again, r#"{"chats":[]}"#);
        assert!(read.await.expect("joined").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_and_cancelled_calls_leave_nothing_behind() {
        let bot = bot(16);
        let (_, mut rx) = online(&bot);
        let call = tokio::spawn(bot.execute(SendMessage::new("c", "x")).into_future());
        let frame = rx.recv().await.expect("sent");
        answer(&bot, &frame, r#"{"errorCode":304}"#);
        let err = call.await.expect("joined").unwrap_err();
        assert_eq!(err.api_code().map(|c| c.0), Some(304));

        let call = tokio::spawn(bot.execute(GetChats::new(1, 1)).into_future());
        let _ = rx.recv().await.expect("sent");
        assert_eq!(bot.in_flight(), 1);
        call.abort();
        let _ = call.await;
        assert_eq!(
            bot.in_flight(),
            0,
            "a dropped call removes its pending entry"
        );
    }

    #[tokio::test]
    async fn a_supervisor_that_dies_fails_the_bot_instead_of_hanging() {
        // h.example never answers: the bot keeps reconnecting until its supervisor is gone.
        let bot = bot(0);
        let starting = tokio::spawn({
            let bot = bot.clone();
            async move { bot.start().await }
        });
        let sup = loop {
            if let Some(s) = read(&bot.core.supervisor).clone() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        sup.kill();
        let result = tokio::time::timeout(Duration::from_secs(5), starting)
            .await
            .expect("start() returned")
            .unwrap();
        assert!(
            matches!(
                &result,
                Err(Error::Disconnected {
                    kind: DisconnectKind::Failed(connection::FailureKind::Internal),
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(matches!(
            bot.core.state(),
            ConnectionState::Failed(f) if f.kind == connection::FailureKind::Internal
        ));
        assert!(bot.send_message("c", "x").await.is_err());
    }
}
