//! The Connection actor and the socket task it owns: connect, authorise, read, write, keep
//! alive, reconnect.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{SinkExt, StreamExt};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::Instrument;

use super::http::{self, ConnectError};
use super::{AckMode, Acknowledger, ConnectionState, Failure, FailureKind, ServerEvent};
use crate::bot::Secret;
use crate::bot::config::AuthSource;
use crate::bot::core::{Core, read, write};
use crate::error::{ApiErrorCode, DisconnectKind, Error};
use crate::protocol::{Frame, RawValue};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Messages of the [`ConnectionActor`].
#[derive(Debug)]
pub(crate) enum ConnMsg {
    /// The socket task ended (shut down or gave up).
    Finished,
}

/// Owns the socket task; when the actor dies (stopped, killed, panicked) the task is aborted
/// with it, the socket closes, and the router settles what was in flight.
pub(crate) struct ConnectionActor;

/// Aborts the task it holds when dropped, so an actor's background task dies with the actor.
pub(crate) struct TaskGuard(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = TaskGuard;
    type Arguments = Arc<Core>;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        core: Arc<Core>,
    ) -> Result<TaskGuard, ActorProcessingErr> {
        Ok(TaskGuard(tokio::spawn(run(core, myself))))
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        _state: &mut TaskGuard,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnMsg::Finished => myself.stop(Some("connection finished".into())),
        }
        Ok(())
    }
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

async fn run(core: Arc<Core>, me: ActorRef<ConnMsg>) {
    let mut backoff = core.config.reconnect.backoff();
    let mut attempt: u32 = 0;
    let mut connected_before = false;
    // Events the full stream could not take yet; see `session`.
    let mut overflow: VecDeque<ServerEvent> = VecDeque::new();
    let failure = loop {
        if core.shutdown.is_cancelled() {
            break None;
        }
        core.set_state(if attempt == 0 && !connected_before {
            ConnectionState::Connecting
        } else {
            ConnectionState::Reconnecting {
                attempt: attempt.max(1),
            }
        });
        let span = tracing::info_span!("connection", url = %core.config.ws_url(), attempt);
        match establish(&core).instrument(span.clone()).await {
            Ok(ws) => {
                attempt = 0;
                connected_before = true;
                backoff = core.config.reconnect.backoff();
                match session(&core, ws, &mut overflow).instrument(span).await {
                    SessionEnd::Shutdown => break None,
                    SessionEnd::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost; reconnecting")
                    }
                }
            }
            Err(ConnectError::Fatal(f)) => break Some(f),
            Err(ConnectError::Transient(e)) => {
                tracing::warn!(error = %e, attempt, "connecting failed")
            }
        }
        let Some(delay) = backoff.next() else {
            break Some(Failure::new(
                FailureKind::RetriesExhausted,
                format!(
                    "gave up reconnecting to {} after {} consecutive failures",
                    core.config.ws_url(),
                    attempt + 1
                ),
            ));
        };
        attempt += 1;
        core.set_state(ConnectionState::Reconnecting { attempt });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = core.shutdown.cancelled() => break None,
        }
    };
    match failure {
        Some(f) => {
            tracing::error!(failure = %f, "connection failed for good");
            core.table
                .fail_all(DisconnectKind::Failed(f.kind), &f.message);
            core.set_state(ConnectionState::Failed(f));
        }
        None => core.set_state(ConnectionState::Stopped),
    }
    let _ = me.send_message(ConnMsg::Finished);
}

/// Server info, token, socket and `auth`.
async fn establish(core: &Core) -> Result<Ws, ConnectError> {
    if core.domain.get().is_none() {
        let info = http::server_info(&core.http, &core.config)
            .await
            .map_err(|e| classify_tls(e, "server info"))?;
        if let Some(info) = info {
            tracing::debug!(domain = %info.domain(), version = %info.product.version, "server info");
            let _ = core.domain.set(info.product.display_name);
        }
    }
    let current = read(&core.token).clone();
    let (token, fresh) = match current {
        Some(t) => (t, false),
        None => {
            let t = http::fetch_token(&core.http, &core.config)
                .await
                .map_err(|e| classify_tls(e, "token"))?
                .ok_or_else(|| {
                    ConnectError::Fatal(Failure::new(FailureKind::Auth, "no token configured"))
                })?;
            *write(&core.token) = Some(t.clone());
            (t, true)
        }
    };
    let connector = if core.config.https {
        Connector::Rustls(core.tls.clone())
    } else {
        Connector::Plain
    };
    let limits = WebSocketConfig::default()
        .max_message_size(Some(core.config.max_message_size))
        .max_frame_size(Some(core.config.max_frame_size));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        core.config.ws_url(),
        Some(limits),
        true,
        Some(connector),
    )
    .await
    .map_err(|e| {
        classify_tls(
            Error::transport("WebSocket connect failed", e).into(),
            "socket",
        )
    })?;
    core.set_state(ConnectionState::Authenticating);
    match authorise(core, &mut ws, &token).await {
        Ok(user_id) => {
            let me = user_id.split('/').next().unwrap_or(&user_id).to_owned();
            tracing::info!(bot = %me, "authorised");
            *write(&core.me) = Some(me);
            Ok(ws)
        }
        Err(AuthError::Rejected(code)) => {
            let relogin = !matches!(core.config.auth, AuthSource::Token);
            if code == ApiErrorCode::CREDENTIALS_EXPIRED && relogin && !fresh {
                tracing::info!("token expired; logging in again");
                *write(&core.token) = None;
                return Err(ConnectError::Transient(Error::Auth {
                    reason: "token expired".into(),
                    code: Some(code),
                }));
            }
            let mut f = Failure::new(
                FailureKind::Auth,
                format!("the server rejected the token: {}", code.meaning()),
            );
            f.code = Some(code);
            Err(ConnectError::Fatal(f))
        }
        Err(AuthError::Other(e)) => Err(ConnectError::Transient(e)),
    }
}

/// A certificate the client refuses will not become acceptable by retrying.
fn classify_tls(e: ConnectError, what: &str) -> ConnectError {
    let ConnectError::Transient(err) = e else {
        return e;
    };
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(c) = cur {
        // io::Error hides its payload from `source()`; look inside nested ones.
        let mut inner = Some(c);
        let mut rustls_err = None;
        while let Some(i) = inner {
            if let Some(r) = i.downcast_ref::<rustls::Error>() {
                rustls_err = Some(r);
                break;
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        if let Some(rustls::Error::InvalidCertificate(cert)) = rustls_err {
            return ConnectError::Fatal(Failure::new(
                FailureKind::Tls,
                format!(
                    "{what}: the server's TLS certificate was rejected ({cert:?}); configure \
                     `ca_certificate_pem` or, for testing only, `verify_ssl(false)`"
                ),
            ));
        }
        cur = c.source();
    }
    ConnectError::Transient(err)
}

enum AuthError {
    Rejected(ApiErrorCode),
    Other(Error),
}

async fn authorise(core: &Core, ws: &mut Ws, token: &Secret) -> Result<String, AuthError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Auth<'a> {
        token: &'a str,
        token_type: &'static str,
        receive_unread: bool,
        receive_system_message_envelopes: bool,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AuthResp {
        #[serde(default)]
        error_code: u32,
        #[serde(default)]
        user_id: String,
    }
    let payload = serde_json::value::to_raw_value(&Auth {
        token: token.expose(),
        token_type: "JWT",
        receive_unread: core.config.receive_unread,
        receive_system_message_envelopes: core.config.receive_system_messages,
    })
    .map_err(|e| AuthError::Other(Error::protocol(format!("auth payload: {e}"))))?;
    let id = core.table.next_id();
    ws.send(Message::text(Frame::request(id, "auth", payload).encode()))
        .await
        .map_err(|e| AuthError::Other(Error::transport("sending auth failed", e)))?;
    let timeout = core.request_timeout();
    let answer = tokio::time::timeout(timeout, async {
        while let Some(msg) = ws.next().await {
            let msg = msg.map_err(|e| Error::transport("socket failed during auth", e))?;
            let Message::Text(text) = msg else { continue };
            match Frame::decode(text.as_str()) {
                Ok(Frame::Response { id: rid, payload }) if rid == id => return Ok(payload),
                Ok(other) => tracing::debug!(id = other.id(), "frame before auth answer ignored"),
                Err(e) => tracing::warn!(error = %e, "malformed frame during auth"),
            }
        }
        Err(Error::Transport {
            message: "socket closed during auth".into(),
            source: None,
        })
    })
    .await
    .map_err(|_| {
        AuthError::Other(Error::Timeout {
            what: "auth".into(),
            after: timeout,
        })
    })?
    .map_err(AuthError::Other)?;
    let raw = answer.as_deref().map(RawValue::get).unwrap_or("{}");
    let resp: AuthResp = serde_json::from_str(raw)
        .map_err(|e| AuthError::Other(Error::protocol(format!("auth response: {e}"))))?;
    if resp.error_code != 0 {
        return Err(AuthError::Rejected(ApiErrorCode(resp.error_code)));
    }
    Ok(resp.user_id)
}

/// Marks the socket generation offline however the session ends (including an abort).
struct OfflineGuard<'a> {
    core: &'a Core,
    epoch: u64,
}

impl Drop for OfflineGuard<'_> {
    fn drop(&mut self) {
        self.core.go_offline(self.epoch);
    }
}

async fn session(core: &Core, ws: Ws, overflow: &mut VecDeque<ServerEvent>) -> SessionEnd {
    if core.config.ack_mode == AckMode::AfterHandled {
        // Unacknowledged: the server delivers them again on this connection. OnReceive
        // events were acknowledged on receipt, so they are kept and delivered from here.
        overflow.clear();
    }
    let (tx, rx) = mpsc::unbounded_channel::<Frame>();
    let epoch = core.go_online(tx.clone());
    let _offline = OfflineGuard { core, epoch };
    core.set_state(ConnectionState::Ready);
    let (sink, mut stream) = ws.split();
    let awaiting_pong = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        core.shutdown.clone(),
        core.config.keepalive,
        core.config.pong_timeout,
        awaiting_pong.clone(),
    ));
    let mut writer = WriterTask(writer);
    // Events the full stream could not take yet. While it holds fewer than `event_buffer`
    // events the socket is still read, so responses keep flowing to a consumer that waits for
    // a bot call; once it is full too, reading stops (backpressure).
    let cap = core.config.event_buffer.max(1);
    loop {
        let sender = if overflow.is_empty() {
            None
        } else {
            match read(&core.events_tx).clone() {
                Some(s) => Some(s),
                None => {
                    // Shutting down: un-acked events are re-delivered to the next session.
                    overflow.clear();
                    continue;
                }
            }
        };
        tokio::select! {
            permit = async {
                match &sender {
                    Some(s) => s.reserve().await,
                    None => std::future::pending().await,
                }
            }, if sender.is_some() => match permit {
                Ok(permit) => {
                    if let Some(ev) = overflow.pop_front() {
                        permit.send(ev);
                    }
                }
                Err(_) => overflow.clear(),
            },
            _ = core.stop_events.cancelled(), if !overflow.is_empty() => overflow.clear(),
            msg = stream.next(), if overflow.len() < cap => match msg {
                Some(Ok(Message::Text(text))) => on_text(core, &tx, text.as_str(), overflow),
                Some(Ok(Message::Pong(_))) => awaiting_pong.store(false, Ordering::Release),
                Some(Ok(Message::Close(frame))) => {
                    return SessionEnd::Lost(format!("server closed the socket ({frame:?})"));
                }
                Some(Ok(_)) => {}
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                    // Refused before it was buffered; its id is unknown, so it cannot be acked.
                    tracing::error!(
                        error = %e,
                        max_message_size = core.config.max_message_size,
                        max_frame_size = core.config.max_frame_size,
                        "protocol error: incoming message over the size limit; reconnecting"
                    );
                    return SessionEnd::Lost(format!("protocol error: {e}"));
                }
                Some(Err(e)) => return SessionEnd::Lost(format!("socket error: {e}")),
                None => return SessionEnd::Lost("socket ended".into()),
            },
            end = &mut writer.0 => {
                return match end {
                    Ok(Ok(())) => SessionEnd::Shutdown,
                    Ok(Err(reason)) => SessionEnd::Lost(reason),
                    Err(e) => SessionEnd::Lost(format!("writer task failed: {e}")),
                };
            }
        }
    }
}

struct WriterTask(tokio::task::JoinHandle<Result<(), String>>);

impl Drop for WriterTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn on_text(
    core: &Core,
    tx: &mpsc::UnboundedSender<Frame>,
    text: &str,
    overflow: &mut VecDeque<ServerEvent>,
) {
    match Frame::decode(text) {
        Ok(Frame::Response { id, payload }) => core.table.resolve(id, payload),
        Ok(Frame::Request {
            id,
            method,
            payload,
        }) => deliver(core, tx, id, method, payload, overflow),
        Err(e) => tracing::warn!(error = %e, "malformed frame dropped"),
    }
}

fn deliver(
    core: &Core,
    tx: &mpsc::UnboundedSender<Frame>,
    id: u64,
    method: String,
    payload: Box<RawValue>,
    overflow: &mut VecDeque<ServerEvent>,
) {
    crate::transfer::observe(core, &method, &payload);
    let events = read(&core.events_tx).clone();
    let Some(events) = events else {
        // Nobody consumes events. While running, ack them so the server does not keep
        // re-delivering; while shutting down, leave them for the next session.
        if !core.stop_events.is_cancelled() {
            let _ = tx.send(Frame::ack(id));
        }
        return;
    };
    let ack = match core.config.ack_mode {
        AckMode::OnReceive => {
            let _ = tx.send(Frame::ack(id));
            Acknowledger::noop(id)
        }
        AckMode::AfterHandled => Acknowledger::new(id, tx.clone()),
    };
    let event = ServerEvent {
        id,
        method,
        payload,
        ack,
    };
    if !overflow.is_empty() {
        overflow.push_back(event);
        return;
    }
    match events.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(event)) => overflow.push_back(event),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::debug!(id, "event stream dropped; event discarded");
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    shutdown: tokio_util::sync::CancellationToken,
    keepalive: std::time::Duration,
    pong_timeout: std::time::Duration,
    awaiting_pong: Arc<AtomicBool>,
) -> Result<(), String> {
    const BATCH: usize = 128;
    let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let mut pong_deadline: Option<Instant> = None;
    let far = || Instant::now() + std::time::Duration::from_secs(86_400);
    let err = |e: tokio_tungstenite::tungstenite::Error| format!("write failed: {e}");
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(frame) = frame else { return Err("writer queue closed".into()) };
                sink.feed(Message::text(frame.encode())).await.map_err(err)?;
                // Frames queued meanwhile go out with the same flush; one yield first lets the
                // tasks already woken (handlers holding their replies) add theirs, which turns
                // many small writes into a few large ones.
                let mut yielded = false;
                let mut n = 0;
                while n < BATCH {
                    match rx.try_recv() {
                        Ok(f) => {
                            sink.feed(Message::text(f.encode())).await.map_err(err)?;
                            n += 1;
                        }
                        Err(_) if !yielded => {
                            yielded = true;
                            tokio::task::yield_now().await;
                        }
                        Err(_) => break,
                    }
                }
                sink.flush().await.map_err(err)?;
            }
            _ = ping.tick() => {
                let answered = !awaiting_pong.swap(true, Ordering::AcqRel);
                sink.send(Message::Ping(Default::default())).await.map_err(err)?;
                // An unanswered earlier ping keeps its deadline.
                if answered || pong_deadline.is_none() {
                    pong_deadline = Some(Instant::now() + pong_timeout);
                }
            }
            _ = sleep_until(pong_deadline.unwrap_or_else(far)), if pong_deadline.is_some() => {
                if awaiting_pong.load(Ordering::Acquire) {
                    return Err(format!("no pong within {pong_timeout:?}"));
                }
                pong_deadline = None;
            }
            _ = shutdown.cancelled() => {
                // Whatever was queued before the shutdown (acks, last requests) goes first.
                while let Ok(f) = rx.try_recv() {
                    let _ = sink.feed(Message::text(f.encode())).await;
                }
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bot shutdown".into(),
                    })))
                    .await;
                let _ = sink.close().await;
                return Ok(());
            }
        }
    }
}
