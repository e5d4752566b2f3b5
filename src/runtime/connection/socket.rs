//! The socket task: connect, authorise, run a session, and reconnect with back-off until
//! the bot shuts down or a failure is final.
//!
//! The task never decides what a state change means for the rest of the bot: it reports
//! each step as a [`LinkEvent`] to its supervisor, which publishes the connection state,
//! tells the RequestRouter about lost sockets and the FileTransfer actor about new ones.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::args::{LinkEvent, SocketArgs, Ws};
use super::event::ServerEvent;
use super::http::{self, ConnectError};
use super::session::{SessionEnd, session};
use super::state::{Failure, FailureKind};
use crate::error::{ApiErrorCode, Error};
use crate::protocol::{Frame, RawValue};
use crate::runtime::config::{AuthSource, Config, ReconnectPolicy, Secret};

/// The wait before the first reconnect after a working socket was lost: a random share of
/// `first_retry_jitter` (with jitter on), so bots that lost their sockets together do not all
/// come back in the same millisecond, while none waits out a back-off meant for failures.
fn first_retry_delay(policy: &ReconnectPolicy) -> Duration {
    let cap = policy.first_retry_jitter.min(policy.min_delay);
    if policy.jitter && !cap.is_zero() {
        cap.mul_f64(rand::random::<f64>())
    } else {
        Duration::ZERO
    }
}

/// The socket task: runs until `close` is cancelled or the failure is final.
///
/// Back-off is for consecutive failures only. A socket that was authorised and then lost (the
/// server restarted, a load balancer cut it) is followed by a new attempt at once (after at
/// most `ReconnectPolicy::first_retry_jitter` of jitter); if that fails, the back-off runs from its first
/// delay. A session that authorised but then ended before anything came on it, and before the
/// back-off's first delay passed, counts as a failure of its own kind: a server that accepts
/// `auth` and closes at once is retried with growing delays instead of in a tight loop (and
/// for ever, since each attempt did get through).
pub(super) async fn run(args: SocketArgs, close: CancellationToken) {
    let report = |e: LinkEvent| {
        let _ = args.report.send_message(e);
    };
    let policy = args.config.reconnect;
    let mut backoff = policy.backoff();
    let mut flapping = policy.max_retries(None).backoff();
    let mut attempt: u32 = 0;
    let mut connected_before = false;
    // Events the full stream could not take yet; see `session`.
    let mut overflow: VecDeque<ServerEvent> = VecDeque::new();
    let failure = loop {
        if close.is_cancelled() {
            break None;
        }
        report(LinkEvent::Connecting {
            attempt: if connected_before {
                attempt.max(1)
            } else {
                attempt
            },
        });
        let span = tracing::info_span!("connection", url = %args.config.ws_url(), attempt);
        match establish(&args).instrument(span.clone()).await {
            Ok(ws) => {
                attempt = 0;
                connected_before = true;
                backoff = policy.backoff();
                let up = tokio::time::Instant::now();
                match session(&args, ws, &mut overflow, &close)
                    .instrument(span)
                    .await
                {
                    SessionEnd::Shutdown => break None,
                    SessionEnd::Lost { reason, received } => {
                        let worked = received || up.elapsed() >= policy.min_delay;
                        let delay = if worked {
                            flapping = policy.max_retries(None).backoff();
                            first_retry_delay(&policy)
                        } else {
                            flapping.next().unwrap_or(policy.max_delay)
                        };
                        tracing::warn!(%reason, ?delay, "connection lost; reconnecting");
                        report(LinkEvent::Connecting { attempt: 1 });
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = close.cancelled() => break None,
                        }
                        continue;
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
                    args.config.ws_url(),
                    attempt + 1
                ),
            ));
        };
        attempt += 1;
        report(LinkEvent::Connecting { attempt });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = close.cancelled() => break None,
        }
    };
    if let Some(f) = &failure {
        tracing::error!(failure = %f, "connection failed for good");
    }
    report(LinkEvent::Closed(failure));
}

/// Server info, token, socket and `auth`.
async fn establish(args: &SocketArgs) -> Result<Ws, ConnectError> {
    let identity = &args.identity;
    if identity.domain().is_none() {
        let info = http::server_info(&args.http, &args.config)
            .await
            .map_err(|e| classify_tls(e, "server info"))?;
        if let Some(info) = info {
            tracing::debug!(domain = %info.domain(), version = %info.product.version, "server info");
            identity.set_domain(info.product.display_name);
        }
    }
    let current = identity.token();
    let (token, fresh) = match current {
        Some(t) => (t, false),
        None => {
            let t = http::fetch_token(&args.http, &args.config)
                .await
                .map_err(|e| classify_tls(e, "token"))?
                .ok_or_else(|| {
                    ConnectError::Fatal(Failure::new(FailureKind::Auth, "no token configured"))
                })?;
            identity.set_token(Some(t.clone()));
            (t, true)
        }
    };
    let mut ws = open(&args.config, &args.tls).await?;
    let _ = args.report.send_message(LinkEvent::Authenticating);
    match authorise(args, &mut ws, &token).await {
        Ok(user_id) => {
            let me = user_id.split('/').next().unwrap_or(&user_id).to_owned();
            tracing::info!(bot = %me, "authorised");
            identity.set_me(me);
            Ok(ws)
        }
        Err(AuthError::Rejected(code)) => {
            let relogin = !matches!(args.config.auth, AuthSource::Token);
            if code == ApiErrorCode::CREDENTIALS_EXPIRED && relogin && !fresh {
                tracing::info!("token expired; logging in again");
                identity.set_token(None);
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

/// TCP keepalive: the kernel probes an idle connection after this long…
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// …and every this long after that, so a peer that vanished without a FIN or RST (a rebooted
/// NAT, a pulled cable) is noticed even while no WebSocket ping is running (before `auth`).
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Opens the socket: TCP connect, TLS and the WebSocket upgrade, all within
/// `connect_timeout`, on a stream of our own so nodelay and keepalive are set too. A server
/// that accepts and then goes silent costs one failed attempt, not a bot stuck connecting.
async fn open(config: &Config, tls: &Arc<rustls::ClientConfig>) -> Result<Ws, ConnectError> {
    let url = config.ws_url();
    let timeout = config.connect_timeout;
    let connector = if config.https {
        Connector::Rustls(tls.clone())
    } else {
        Connector::Plain
    };
    let limits = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_frame_size));
    let handshake = async {
        // An IPv6 literal is bracketed in the URL, not in a socket address.
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let stream = TcpStream::connect((host, config.port))
            .await
            .map_err(|e| Error::transport(format!("TCP connect to {url} failed"), e))?;
        tune(&stream);
        let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
            url.as_str(),
            stream,
            Some(limits),
            Some(connector),
        )
        .await
        .map_err(|e| {
            classify_tls(
                Error::transport("WebSocket connect failed", e).into(),
                "socket",
            )
        })?;
        Ok(ws)
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| {
            ConnectError::Transient(Error::Timeout {
                what: format!("opening {url} (TCP, TLS and WebSocket upgrade)"),
                after: timeout,
            })
        })?
}

/// Nagle off (frames are small and latency matters) and TCP keepalive on. Neither is worth
/// failing the attempt over: a socket without them still works.
fn tune(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not disable Nagle's algorithm");
    }
    let keepalive = TcpKeepalive::new().with_time(TCP_KEEPALIVE_IDLE);
    // Elsewhere the system's probe interval applies.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "windows"
    ))]
    let keepalive = keepalive.with_interval(TCP_KEEPALIVE_INTERVAL);
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "could not enable TCP keepalive");
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

async fn authorise(args: &SocketArgs, ws: &mut Ws, token: &Secret) -> Result<String, AuthError> {
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
        receive_unread: args.config.receive_unread,
        receive_system_message_envelopes: args.config.receive_system_messages,
    })
    .map_err(|e| AuthError::Other(Error::protocol(format!("auth payload: {e}"))))?;
    let id = args.responses.next_id();
    let timeout = args.config.request_timeout;
    // Sending is inside the deadline too: a server that stops reading blocks the send.
    let answer = tokio::time::timeout(timeout, async {
        ws.send(Message::text(Frame::request(id, "auth", payload).encode()))
            .await
            .map_err(|e| Error::transport("sending auth failed", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opened_sockets_have_tcp_keepalive_and_no_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&stream);
        assert!(SockRef::from(&stream).keepalive().unwrap());
        assert!(stream.nodelay().unwrap());
    }

    #[test]
    fn the_first_retry_waits_at_most_its_jitter() {
        let policy = ReconnectPolicy::default();
        let cap = policy.first_retry_jitter;
        assert!(cap <= Duration::from_millis(100), "the issue's bound");
        assert!((0..1000).all(|_| first_retry_delay(&policy) <= cap));
        // Never above the back-off's first delay, and none at all without jitter.
        let short = policy.min_delay(Duration::from_millis(5));
        assert!((0..1000).all(|_| first_retry_delay(&short) <= Duration::from_millis(5)));
        assert_eq!(first_retry_delay(&policy.jitter(false)), Duration::ZERO);
        let wide = policy.first_retry_jitter(Duration::from_millis(80));
        assert!(
            (0..1000).any(|_| first_retry_delay(&wide) > cap),
            "the setting is used"
        );
    }
}
