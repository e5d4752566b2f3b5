//! The [`Bot`] facade: what users hold.
//!
//! A `Bot` is a cheap clone of an `Arc` over the runtime. [`Bot::builder`] configures it,
//! [`Bot::start`] connects (spawning the supervised actors), every protocol method returns
//! a [`Call`] that can be refined with setters and then `.await`ed, and [`Bot::events`]
//! hands out the stream of server events. The facade imports the runtime; nothing in the
//! runtime knows about it.

mod builder;
mod call;
mod files;
mod lifecycle;
mod methods;
mod parity;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};

pub use self::builder::BotBuilder;
pub use self::call::Call;
pub(crate) use self::call::{QUEUE_SCOPE, QueueScope};
pub use self::methods::ActivityGuard;
pub use self::parity::{HealthSnapshot, HealthStatus};
use crate::methods::Request;
use crate::runtime::Runtime;
pub use crate::runtime::config::{ReconnectPolicy, Secret};
pub(crate) use crate::runtime::connection::EventBudget;
pub use crate::runtime::connection::{
    AckMode, Acknowledger, ConnectionState, Failure, FailureKind, ServerEvent, TlsOptions,
};
pub use crate::runtime::requests::{Rate, ThrottleConfig};
pub use crate::runtime::transfer::{InputFile, SendFileCall};
#[cfg(feature = "testkit")]
pub use crate::runtime::{RuntimeActor, RuntimeActorId};
use crate::types::ParseMode;

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
    runtime: Arc<Runtime>,
    _handles: Arc<Handles>,
}

/// Dropped with the last handle of a bot (the runtime never holds one).
struct Handles(Arc<Runtime>);

impl Drop for Handles {
    fn drop(&mut self) {
        let runtime = &self.0;
        // Never started, or shut down already: nothing runs that needs stopping.
        if !runtime.is_running() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::debug!("last Bot handle dropped; shutting down");
                let runtime = runtime.clone();
                rt.spawn(async move {
                    let _ = runtime.shutdown().await;
                });
            }
            Err(_) => runtime.halt(),
        }
    }
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("server", &self.runtime.config().host)
            .field("me", &self.me())
            .field("state", &self.runtime.states().current())
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
    pub(crate) fn from_runtime(runtime: Arc<Runtime>) -> Self {
        Bot {
            _handles: Arc::new(Handles(runtime.clone())),
            runtime,
        }
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The server's domain (from `/api/v4/server`), once connected.
    pub fn server_name(&self) -> Option<String> {
        self.runtime.domain().map(str::to_owned)
    }

    /// The current access token (`Debug`/`Display` redact it).
    pub fn token(&self) -> Option<Secret> {
        self.runtime.token()
    }

    /// The bot's own user id (`login@domain`, without the `/resource`), once authorised.
    pub fn me(&self) -> Option<String> {
        self.runtime.me()
    }

    /// The parse mode used when a call does not set one.
    pub fn default_parse_mode(&self) -> ParseMode {
        self.runtime.config().default_parse_mode.clone()
    }

    /// Watches the connection state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.runtime.states().subscribe()
    }

    /// How many times the supervisor restarted a child actor.
    pub fn restarts(&self) -> u64 {
        self.runtime.restarts()
    }

    /// Requests currently waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.runtime.requester().in_flight()
    }

    /// Bytes of events read from the socket and not yet acknowledged or dropped, counted
    /// against [`BotBuilder::event_memory`].
    pub fn buffered_event_bytes(&self) -> usize {
        self.runtime.event_budget().used()
    }

    /// The budget behind [`Bot::buffered_event_bytes`], for a dispatcher's counters (which
    /// must not keep the bot itself alive).
    pub(crate) fn event_budget(&self) -> Arc<EventBudget> {
        self.runtime.event_budget().clone()
    }

    /// Whether events whose acknowledgement is lost come again on the next connection:
    /// acknowledged after handling, with `receive_unread` (PROTOCOL.md §14.8).
    pub(crate) fn redelivers_unacked(&self) -> bool {
        let config = self.runtime.config();
        config.ack_mode == crate::runtime::config::AckMode::AfterHandled && config.receive_unread
    }

    /// Takes the event stream. Returns `None` after the first call. Take it **before**
    /// [`Bot::start`]: events arriving while nobody holds the stream are acknowledged and
    /// discarded.
    ///
    /// The stream is bounded ([`BotBuilder::event_buffer`]). A consumer may await bot calls
    /// while the stream is full, but once twice the buffer is waiting the connection stops
    /// reading and calls stall until their timeout: under heavy load, hand events to other
    /// tasks instead of awaiting calls in the draining loop. The same happens while the events
    /// not yet acknowledged or dropped fill [`BotBuilder::event_memory`]: do not keep events
    /// (or their [`Acknowledger`]s) longer than needed.
    pub fn events(&self) -> Option<EventStream> {
        self.runtime.take_events().map(|rx| EventStream { rx })
    }

    /// Completes a bare login with `@<server domain>` (§3); ids with `@` are kept.
    pub fn complete_user_id(&self, user_id: impl Into<String>) -> String {
        let id = user_id.into();
        match self.runtime.domain() {
            Some(domain) if !id.contains('@') && !id.is_empty() => format!("{id}@{domain}"),
            _ => id,
        }
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
        if self.runtime.requester().is_throttled() {
            call.chat = Some(chat.to_owned());
        }
        call
    }
}

/// Fault injection into the runtime's actors (feature `testkit`).
#[cfg(feature = "testkit")]
impl Bot {
    /// Which incarnation of a runtime actor runs now (`None` before `start`); a restarted
    /// actor has a new one.
    pub async fn actor_id(&self, actor: RuntimeActor) -> Option<RuntimeActorId> {
        self.runtime.whois(actor).await
    }

    /// Kills a runtime actor, as a crash would; the supervisor restarts it (counted in
    /// [`Bot::restarts`]). Returns whether the bot was running.
    pub fn kill_actor(&self, actor: RuntimeActor) -> bool {
        self.runtime.kill(actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
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
