//! The [`Sim`] handle: starting the server on a real socket, the facts a test needs to point a
//! bot at it (URLs, tokens, certificate), and the test-side setup of accounts and chats.
//!
//! The handle owns the server's lifetime (dropping it shuts the server down); the assertions a
//! test makes while it runs are in `inspect`, the load runner in `load`.

mod expect;
mod inspect;
mod load;
mod replay;

pub use expect::eventually;
pub use replay::ReplayOptions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum_server::accept::NoDelayAcceptor;

use super::config::{SimConfig, UploadLimits};
use super::faults::Faults;
use super::jwt;
use super::server;
use super::shared::Shared;
use super::state::State;
use super::user::SimUser;
use super::wire::{CHANNEL, GROUP, Out};
use crate::error::{Error, Result};

/// Receives each line of a conversation's transcript (see [`Sim::set_transcript`]).
pub type TranscriptSink = Arc<dyn Fn(&str) + Send + Sync>;

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
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    addr: SocketAddr,
    cert_pem: Option<String>,
    /// The newest bot session [`Sim::wait_for_bot`] has returned for.
    seen_session: AtomicU64,
    /// Where [`Person`](crate::testkit::Person) conversations are written.
    pub(super) transcript: std::sync::Mutex<Option<TranscriptSink>>,
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
    /// Binds [`SimConfig::bind`] (127.0.0.1 unless changed) and starts serving.
    pub async fn start(cfg: SimConfig) -> Result<Sim> {
        let listener = std::net::TcpListener::bind((cfg.bind, cfg.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = initial_state(&cfg, addr);
        let shared = Arc::new(Shared::new(cfg, state));
        if shared.cfg.web {
            // The page's inspector shows the frames from the start, not from when it opened.
            shared.tap.enable();
        }
        let app = server::router(shared.clone());
        let handle = axum_server::Handle::new();
        let cert_pem = serve(listener, app, handle.clone(), shared.cfg.tls).await?;
        Ok(Sim {
            shared,
            handle,
            addr,
            cert_pem,
            seen_session: AtomicU64::new(0),
            transcript: std::sync::Mutex::new(None),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        let scheme = if self.shared.cfg.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// WebSocket URL of the chat-bot endpoint.
    pub fn ws_url(&self) -> String {
        let scheme = if self.shared.cfg.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/websocket/chat_bot", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server domain.
    pub fn domain(&self) -> &str {
        &self.shared.cfg.domain
    }

    /// PEM of the self-signed certificate when TLS is on, for clients that should trust it.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The bot's full id, `login@domain`.
    pub fn bot_id(&self) -> String {
        format!("{}@{}", self.shared.cfg.bot.login, self.shared.cfg.domain)
    }

    /// A valid token for the bot account.
    pub fn bot_token(&self) -> String {
        self.shared.token_for(&self.shared.cfg.bot.login)
    }

    /// A valid token for any known account (the account is created if missing).
    pub fn token_for(&self, login: &str) -> String {
        self.shared.state().ensure_user(login);
        self.shared.token_for(login)
    }

    /// A correctly signed token whose `exp` has passed (`auth` answers 203).
    pub fn expired_token_for(&self, login: &str) -> String {
        self.shared.state().ensure_user(login);
        let subject = format!("{login}@{}", self.shared.cfg.domain);
        jwt::sign(&self.shared.secret, &subject, jwt::now_secs() - 60)
    }

    /// A scripted user (created on first use).
    pub fn user(&self, login: &str) -> SimUser {
        self.shared.state().ensure_user(login);
        SimUser::new(self.shared.clone(), login)
    }

    /// Disables or re-enables an account (`auth` then answers 202, the token endpoint 401).
    pub fn set_user_disabled(&self, login: &str, disabled: bool) {
        if let Some(user) = self.shared.state().users.get_mut(login) {
            user.disabled = disabled;
        }
    }

    /// Switches the password grant of the token endpoint on or off (off → 403).
    pub fn set_password_login(&self, enabled: bool) {
        self.shared.password_login.store(enabled, Relaxed);
    }

    /// Creates a group chat owned by `owner` with `members` (logins; include the bot's login to
    /// add the bot). Members that are bots get a `createGroupChat` event.
    pub async fn create_group(&self, owner: &SimUser, title: &str, members: &[&str]) -> String {
        self.create(owner, GROUP, title, members)
    }

    /// Creates a channel owned by `owner`; members join as plain users (they cannot post until
    /// made `writer`).
    pub async fn create_channel(&self, owner: &SimUser, title: &str, members: &[&str]) -> String {
        self.create(owner, CHANNEL, title, members)
    }

    fn create(&self, owner: &SimUser, chat_type: u8, title: &str, members: &[&str]) -> String {
        let mut state = self.shared.state();
        for member in members {
            state.ensure_user(member);
        }
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        state.create_chat(
            owner.login(),
            chat_type,
            Some(title.to_owned()),
            &members,
            None,
        )
    }

    /// Changes the upload limits and pushes the `getFileUploadLimits` event to bots.
    pub fn set_upload_limits(&self, limits: UploadLimits) {
        self.shared.state().set_limits(limits);
        self.shared.notify.notify_waiters();
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> Faults {
        Faults::new(self.shared.clone())
    }

    /// Stops the server and closes every socket (close code 1001).
    pub fn shutdown(&self) {
        self.handle.shutdown();
        // Upgraded WebSocket connections outlive the HTTP server; close them explicitly.
        self.shared
            .send_all(|| Out::Close(1001, "server shutting down"));
    }
}

/// The state a fresh server starts with: the configured accounts, the bot marked as a bot.
fn initial_state(cfg: &SimConfig, addr: SocketAddr) -> State {
    let scheme = if cfg.tls { "https" } else { "http" };
    let mut state = State::new(cfg.domain.clone());
    state.base_url = format!("{scheme}://{addr}");
    for account in std::iter::once(&cfg.bot).chain(&cfg.users) {
        state.ensure_user(&account.login);
        if let Some(user) = state.users.get_mut(&account.login) {
            user.password = Some(account.password.clone());
            if let Some(name) = &account.display_name {
                user.display_name = name.clone();
            }
        }
    }
    if let Some(bot) = state.users.get_mut(&cfg.bot.login) {
        bot.bot = true;
    }
    state
}

/// Serves `app` on `listener` in a background task, over TLS with a fresh self-signed
/// certificate when `tls` is set; returns that certificate's PEM.
async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    handle: axum_server::Handle<SocketAddr>,
    tls: bool,
) -> Result<Option<String>> {
    let app = app.into_make_service();
    if !tls {
        // Small frames both ways: without TCP_NODELAY, Nagle plus delayed ACKs add up to
        // 40 ms to an echo whenever the socket is not busy.
        let server = axum_server::from_tcp(listener)?
            .acceptor(NoDelayAcceptor)
            .handle(handle);
        tokio::spawn(async move {
            if let Err(e) = server.serve(app).await {
                tracing::error!(error = %e, "trueconf-sim server stopped");
            }
        });
        return Ok(None);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert_and_key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| Error::transport("cannot create a self-signed certificate", e))?;
    let pem = cert_and_key.cert.pem();
    let tls_config = axum_server::tls_rustls::RustlsConfig::from_pem(
        pem.clone().into_bytes(),
        cert_and_key.signing_key.serialize_pem().into_bytes(),
    )
    .await?;
    let server = axum_server::from_tcp_rustls(listener, tls_config)?
        .map(|acceptor| acceptor.acceptor(NoDelayAcceptor))
        .handle(handle);
    tokio::spawn(async move {
        if let Err(e) = server.serve(app).await {
            tracing::error!(error = %e, "trueconf-sim server stopped");
        }
    });
    Ok(Some(pem))
}
