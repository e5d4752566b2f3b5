//! [`BotBuilder`]: every setting of a bot, checked once at `build()`.

use std::sync::Arc;
use std::time::Duration;

use super::Bot;
use crate::error::{Error, Result};
use crate::runtime::config::{AuthSource, Config, ReconnectPolicy, Secret};
use crate::runtime::connection::tls::{client_config, http_client};
use crate::runtime::connection::{AckMode, ConnectionState, StateHook, TlsOptions};
use crate::runtime::requests::ThrottleConfig;
use crate::runtime::{Runtime, RuntimeParts};
use crate::types::ParseMode;

/// Default limit of one incoming WebSocket message and frame.
const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// Default limit of the requests queued for one socket.
const DEFAULT_WRITE_QUEUE: usize = 8 << 20;

/// Default budget of events held at once: a small share of a 1 GiB VM, and tens of thousands
/// of ordinary (few KiB) events, far more than a busy bot needs in flight.
const DEFAULT_EVENT_MEMORY: usize = 64 << 20;

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
    event_memory: usize,
    offline_queue: usize,
    keepalive: Duration,
    pong_timeout: Duration,
    connect_timeout: Duration,
    write_queue_limit: usize,
    restart_limit: (u32, Duration),
    throttle: ThrottleConfig,
    default_parse_mode: ParseMode,
    hook: Option<StateHook>,
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

    /// Use `wss`/`https` (default) or plain `ws`/`http`. Plain is for testing only: the token
    /// and password then travel unencrypted, and a warning is logged.
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
    /// beyond that the connection stops reading until the consumer catches up. The bytes of
    /// those events are bounded on their own by [`event_memory`](Self::event_memory).
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n;
        self
    }

    /// How many bytes of events the bot holds at once, at most (default 64 MiB): events read
    /// from the socket and not done with yet, wherever they wait (held back by the reader, in
    /// the event stream, in a chat's queue, in a running handler). An event counts its payload
    /// and method plus 512 bytes for what carries it, from when it is read until its
    /// [`Acknowledger`](crate::bot::Acknowledger) is acknowledged or dropped (the dispatcher
    /// does that after the handler or the overflow handler), in both [`AckMode`]s.
    ///
    /// While the budget is full the connection stops reading the socket, so backpressure
    /// reaches the server through TCP. Responses come on the same socket, so they wait too: a
    /// handler awaiting a call resumes when other events are done, or its call times out.
    /// Reading resumes as soon as anything is given back, so one event bigger than the whole
    /// budget still gets through; at most the budget plus one event is held. Zero is taken as
    /// 1 (one event at a time).
    ///
    /// The default fits a small VM as well as a large machine: ordinary events are a few KiB,
    /// so it holds tens of thousands. Raise it where memory is plentiful and the server sends
    /// bursts of large events ([`max_message_size`](Self::max_message_size) each at most).
    pub fn event_memory(mut self, bytes: usize) -> Self {
        self.event_memory = bytes;
        self
    }

    /// How many requests may wait for a reconnect at once (default 1024); more fail at once
    /// with [`Error::Disconnected`].
    pub fn offline_queue(mut self, n: usize) -> Self {
        self.offline_queue = n;
        self
    }

    /// WebSocket ping interval and pong deadline (default 30 s and 10 s).
    ///
    /// The pong deadline is also the write deadline: a socket that takes longer than
    /// `pong_timeout` to accept one frame, a ping or a flush (at most 128 KiB of buffered
    /// bytes), because the server stopped reading, is declared lost and the bot reconnects.
    ///
    /// Zero is taken as 1 ms.
    pub fn keepalive(mut self, interval: Duration, pong_timeout: Duration) -> Self {
        self.keepalive = interval.max(Duration::from_millis(1));
        self.pong_timeout = pong_timeout.max(Duration::from_millis(1));
        self
    }

    /// How long one connection attempt may take to open the socket: TCP connect, TLS and the
    /// WebSocket upgrade together (default 10 s; zero is taken as 1 ms). An attempt that takes
    /// longer (a server or load balancer that accepts and goes silent) counts as a failed
    /// attempt of the [`reconnect`](Self::reconnect) policy. `auth` is bounded by the
    /// [`request_timeout`](Self::request_timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// How many bytes of requests may wait in one socket's writer queue (default 8 MiB; zero is
    /// taken as 1). When it is full, further calls wait for room (within their timeout)
    /// instead of piling up in memory; a request larger than the limit waits for an empty
    /// queue. Acknowledgements are not held back.
    pub fn write_queue_limit(mut self, bytes: usize) -> Self {
        self.write_queue_limit = bytes.max(1);
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
        if !self.https {
            tracing::warn!(
                "TLS is off (`https(false)`): the token, the password, messages and files cross \
                 the network unencrypted"
            );
        }
        let tls = client_config(&self.tls)?;
        let http = http_client(&tls, self.https)
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
            event_memory: self.event_memory,
            offline_queue: self.offline_queue,
            keepalive: self.keepalive,
            pong_timeout: self.pong_timeout,
            connect_timeout: self.connect_timeout,
            write_queue_limit: self.write_queue_limit,
            restart_limit: self.restart_limit,
            default_parse_mode: self.default_parse_mode,
            max_message_size: self.max_message_size,
            max_frame_size: self.max_frame_size,
        };
        let runtime = Runtime::new(RuntimeParts {
            config,
            tls: Arc::new(tls),
            http,
            throttle: self.throttle,
            token: self.token,
            hook: self.hook,
        });
        Ok(Bot::from_runtime(runtime))
    }
}

impl Bot {
    /// Starts configuring a bot for `server` (a host name such as `video.example.com`).
    ///
    /// Also installs rustls' `ring` provider as the process default if none is installed
    /// yet, so that `reqwest::Client::new()` in your own code keeps working although this
    /// crate's reqwest features are unified into yours (see
    /// [`install_crypto_provider`](crate::connection::install_crypto_provider)).
    pub fn builder(server: impl Into<String>) -> BotBuilder {
        crate::runtime::connection::install_crypto_provider();
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
            event_memory: DEFAULT_EVENT_MEMORY,
            offline_queue: 1024,
            keepalive: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_queue_limit: DEFAULT_WRITE_QUEUE,
            restart_limit: (5, Duration::from_secs(10)),
            throttle: ThrottleConfig::default(),
            default_parse_mode: ParseMode::Text,
            hook: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            max_frame_size: DEFAULT_MAX_MESSAGE,
        }
    }
}
