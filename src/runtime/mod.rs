//! The runtime: the supervised actors that keep a bot connected, and the [`Runtime`] value
//! the `Bot` facade holds to start, watch and stop them.
//!
//! ```text
//! Runtime ── start() ──► Supervisor ──┬── RequestRouter   (connection::Link, requests::RequestTable)
//!                                     ├── Connection      (socket task: auth, read, write, reconnect)
//!                                     └── FileTransfer    (progress subscriptions)
//! ```
//!
//! The runtime imports only the model (`protocol`, `types`, `methods`, `error`) and never
//! the facade or the dispatch layer: events leave it as values in a bounded queue. Each
//! part is owned by one module, which alone changes it: the connection owns the link and
//! the identity, the request module the pending table and the request path, the transfer
//! module the progress state, the supervisor the published state and the restart budget.
//! [`Runtime`] only holds them together and wires them at start.

pub(crate) mod config;
pub mod connection;
pub(crate) mod requests;
mod supervisor;
pub(crate) mod telemetry;
pub mod transfer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::config::{Config, Secret};
use self::connection::{
    ConnectionState, EventBudget, EventOutlet, Failure, FailureKind, Identity, Link, ServerEvent,
    SocketArgs, StateBoard, StateHook,
};
use self::requests::{RequestTable, Requester, ThrottleConfig, requester::RequesterParts};
#[cfg(feature = "testkit")]
pub use self::supervisor::{RuntimeActor, RuntimeActorId};
use self::supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
use self::transfer::Transfers;
use crate::error::{DisconnectKind, Error, Result};
use crate::sync::{read, write};

/// Everything a started bot runs on, held together for the facade.
pub(crate) struct Runtime {
    config: Arc<Config>,
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    states: Arc<StateBoard>,
    link: Arc<Link>,
    identity: Arc<Identity>,
    events: Arc<EventOutlet>,
    table: Arc<RequestTable>,
    requester: Requester,
    transfers: Arc<Transfers>,
    restarts: Arc<AtomicU64>,
    /// Closes every socket at once when the supervisor is gone (the graceful way is a
    /// message to the supervisor).
    halt: CancellationToken,
    started: tokio::sync::Mutex<bool>,
    supervisor: RwLock<Option<ActorRef<SupervisorMsg>>>,
}

/// What [`Runtime::new`] is given by the builder.
pub(crate) struct RuntimeParts {
    pub config: Config,
    pub tls: Arc<rustls::ClientConfig>,
    pub http: reqwest::Client,
    pub throttle: ThrottleConfig,
    pub token: Option<Secret>,
    pub hook: Option<StateHook>,
}

impl Runtime {
    pub(crate) fn new(parts: RuntimeParts) -> Arc<Self> {
        let config = Arc::new(parts.config);
        let states = Arc::new(StateBoard::new(parts.hook));
        let link = Arc::new(Link::default());
        let identity = Arc::new(Identity::new(parts.token));
        let table = Arc::new(RequestTable::default());
        let requester = Requester::new(RequesterParts {
            table: table.clone(),
            link: link.clone(),
            states: states.clone(),
            identity: identity.clone(),
            throttle: parts.throttle,
            timeout: config.request_timeout,
            offline_queue: config.offline_queue,
        });
        let transfers = Arc::new(Transfers::new(
            requester.clone(),
            config.clone(),
            parts.tls.clone(),
        ));
        Arc::new(Runtime {
            events: Arc::new(EventOutlet::new(config.event_buffer, config.event_memory)),
            config,
            tls: parts.tls,
            http: parts.http,
            states,
            link,
            identity,
            table,
            requester,
            transfers,
            restarts: Arc::default(),
            halt: CancellationToken::new(),
            started: tokio::sync::Mutex::new(false),
            supervisor: RwLock::new(None),
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn states(&self) -> &StateBoard {
        &self.states
    }

    pub(crate) fn requester(&self) -> &Requester {
        &self.requester
    }

    pub(crate) fn transfers(&self) -> &Arc<Transfers> {
        &self.transfers
    }

    pub(crate) fn token(&self) -> Option<Secret> {
        self.identity.token()
    }

    pub(crate) fn domain(&self) -> Option<&str> {
        self.identity.domain()
    }

    pub(crate) fn me(&self) -> Option<String> {
        self.identity.me()
    }

    /// `GET /api/v4/server` now (not cached), with the bot's HTTP client and its rules.
    pub(crate) async fn fetch_server_info(&self) -> Result<crate::types::ServerInfo> {
        use self::connection::tls::{MAX_SMALL_BODY, http_error, read_small_body};
        let url = format!("{}/api/v4/server", self.config.http_base());
        let resp = self
            .http
            .get(&url)
            .timeout(self.config.request_timeout)
            .send()
            .await
            .map_err(|e| http_error("server info", e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::http(
                Some(status.as_u16()),
                format!("server info: the server answered {status}"),
            ));
        }
        let body = read_small_body(resp, MAX_SMALL_BODY, "server info").await?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::protocol(format!("unreadable server info: {e}")))
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Acquire)
    }

    /// The memory budget of events read and not yet done with.
    pub(crate) fn event_budget(&self) -> &Arc<EventBudget> {
        self.events.budget()
    }

    pub(crate) fn take_events(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        self.events.take_receiver()
    }

    /// Whether `start` ran (or runs right now) and no shutdown began.
    pub(crate) fn is_running(&self) -> bool {
        let started = self.started.try_lock().map_or(true, |s| *s);
        started && !self.requester.is_closed()
    }

    /// Connects and authorises; returns once the bot is ready or failed. Idempotent.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<()> {
        {
            let mut started = self.started.lock().await;
            if !*started {
                if self.requester.is_closed() {
                    return Err(Error::disconnected(
                        DisconnectKind::ShuttingDown,
                        "the bot was shut down",
                    ));
                }
                if self.events.discard_untaken() {
                    tracing::info!(
                        "no event stream taken before start(): events are acknowledged and \
                         discarded"
                    );
                }
                self.states.publish(ConnectionState::Connecting);
                let (sup, stopped) = Actor::spawn(None, Supervisor, self.supervisor_args())
                    .await
                    .map_err(|e| {
                        Error::disconnected(
                            DisconnectKind::Internal,
                            format!("could not start the runtime: {e}"),
                        )
                    })?;
                *write(&self.supervisor) = Some(sup);
                // Nothing supervises the supervisor: if it ever stops on its own (a panic in
                // it), fail the bot so `run` returns instead of waiting forever.
                let watched = Arc::downgrade(self);
                tokio::spawn(async move {
                    let _ = stopped.await;
                    if let Some(rt) = watched.upgrade()
                        && !rt.requester.is_closed()
                    {
                        rt.supervisor_gone();
                    }
                });
                *started = true;
            }
        }
        terminal_result(&self.states.settled().await, false)
    }

    /// Waits until the bot is shut down (`Ok`) or failed for good (`Err`).
    pub(crate) async fn finished(&self) -> Result<()> {
        terminal_result(&self.states.finished().await, true)
    }

    fn supervisor_args(&self) -> SupervisorArgs {
        let (config, tls, http) = (self.config.clone(), self.tls.clone(), self.http.clone());
        let (identity, link, events) = (
            self.identity.clone(),
            self.link.clone(),
            self.events.clone(),
        );
        let (responses, tap, halt) = (
            self.table.clone(),
            self.transfers.clone(),
            self.halt.clone(),
        );
        SupervisorArgs {
            config: self.config.clone(),
            states: self.states.clone(),
            table: self.table.clone(),
            transfers: self.transfers.clone(),
            restarts: self.restarts.clone(),
            socket: Box::new(move |report| SocketArgs {
                config: config.clone(),
                tls: tls.clone(),
                http: http.clone(),
                identity: identity.clone(),
                link: link.clone(),
                events: events.clone(),
                responses: responses.clone(),
                tap: Some(tap.clone()),
                halt: halt.clone(),
                report,
            }),
        }
    }

    /// The supervisor stopped without a shutdown. When that follows a failure it reported
    /// itself, the state is terminal already and stays as it is.
    fn supervisor_gone(&self) {
        let f = Failure::new(
            FailureKind::Internal,
            "the runtime's supervisor stopped unexpectedly; nothing would reconnect",
        );
        if !self.states.is_terminal() {
            tracing::error!(failure = %f, "bot runtime lost");
        }
        self.events.close();
        self.halt.cancel();
        self.table
            .fail_all(DisconnectKind::Failed(f.kind), &f.message);
        self.states.publish(ConnectionState::Failed(f));
    }

    /// Graceful shutdown: stop taking events and new requests, let in-flight requests finish
    /// within the shutdown timeout, fail the rest, close the socket, stop the actors.
    pub(crate) async fn shutdown(&self) -> Result<()> {
        let deadline = self.config.shutdown_timeout;
        let until = Instant::now() + deadline + Duration::from_secs(1);
        if self.requester.close() {
            let _ = tokio::time::timeout_at(until, self.states.finished()).await;
            return Ok(());
        }
        self.events.close();
        if !*self.started.lock().await {
            self.states.publish(ConnectionState::Stopped);
            return Ok(());
        }
        let sup = read(&self.supervisor).clone();
        let drained = match &sup {
            Some(s) => s
                .call(
                    |reply| SupervisorMsg::Shutdown { deadline, reply },
                    Some(deadline + Duration::from_secs(1)),
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
            self.halt.cancel();
            self.table
                .fail_all(DisconnectKind::ShuttingDown, "the bot is shutting down")
        });
        if failed > 0 {
            tracing::info!(failed, "requests failed by shutdown");
        }
        let _ = tokio::time::timeout_at(until, self.states.finished()).await;
        self.states.publish(ConnectionState::Stopped);
        let sup = write(&self.supervisor).take();
        if let Some(sup) = sup {
            let _ = sup
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(1)))
                .await;
        }
        Ok(())
    }

    /// Shutdown without a tokio runtime to run it on: close the socket at least; the actors
    /// stop with it.
    pub(crate) fn halt(&self) {
        self.requester.close();
        self.events.close();
        self.halt.cancel();
    }

    /// Which actor currently plays `role`.
    #[cfg(feature = "testkit")]
    pub(crate) async fn whois(&self, role: RuntimeActor) -> Option<RuntimeActorId> {
        let sup = read(&self.supervisor).clone()?;
        match sup
            .call(
                |r| SupervisorMsg::Whois(role, r),
                Some(Duration::from_secs(5)),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(id)) => id,
            _ => None,
        }
    }

    /// Kills the actor that plays `role`; the supervisor restarts it.
    #[cfg(feature = "testkit")]
    pub(crate) fn kill(&self, role: RuntimeActor) -> bool {
        read(&self.supervisor)
            .as_ref()
            .is_some_and(|s| s.send_message(SupervisorMsg::Kill(role)).is_ok())
    }

    /// Kills the supervisor itself (tests of the watcher).
    #[cfg(test)]
    pub(crate) fn kill_supervisor(&self) -> bool {
        read(&self.supervisor).as_ref().map(|s| s.kill()).is_some()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::Bot;

    #[tokio::test]
    async fn a_supervisor_that_dies_fails_the_bot_instead_of_hanging() {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}.s", e.encode(b"{}"), e.encode(b"{}"));
        // h.example never answers: the bot keeps reconnecting until its supervisor is gone.
        let bot = Bot::builder("h.example")
            .https(false)
            .token(token)
            .offline_queue(0)
            .build()
            .expect("valid");
        let starting = tokio::spawn({
            let bot = bot.clone();
            async move { bot.start().await }
        });
        while !bot.runtime().kill_supervisor() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let result = tokio::time::timeout(Duration::from_secs(5), starting)
            .await
            .expect("start() returned")
            .unwrap();
        assert!(
            matches!(
                &result,
                Err(Error::Disconnected {
                    kind: DisconnectKind::Failed(FailureKind::Internal),
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(matches!(
            bot.runtime().states().current(),
            ConnectionState::Failed(f) if f.kind == FailureKind::Internal
        ));
        assert!(bot.send_message("c", "x").await.is_err());
    }
}
