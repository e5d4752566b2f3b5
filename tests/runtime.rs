//! Runtime tests: the Bot handle and its actors against a small in-process server speaking the
//! Chatbot Connector protocol (HTTP + WebSocket, optionally TLS).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use trueconf_bot::bot::{Bot, BotBuilder, Call, ReconnectPolicy, RuntimeActor};
use trueconf_bot::connection::{AckMode, ConnectionState, FailureKind};
use trueconf_bot::error::DisconnectKind;
use trueconf_bot::methods::Request;
use trueconf_bot::{Error, Result};

// ---------------------------------------------------------------- test server

fn jwt(n: u32) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig{n}",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(json!({"sub": "bot", "n": n, "exp": 4_000_000_000u64}).to_string())
    )
}

#[derive(Default)]
struct Srv {
    valid: Mutex<HashSet<String>>,
    expired: Mutex<HashSet<String>>,
    issued: AtomicU32,
    logins: AtomicU32,
    connections: AtomicU32,
    requests: Mutex<Vec<(String, Value)>>,
    acks: Mutex<Vec<u64>>,
    kick: Mutex<Option<broadcast::Sender<()>>>,
    /// Stop reading sockets (so WebSocket pings go unanswered).
    mute: std::sync::atomic::AtomicBool,
    push: Mutex<Option<broadcast::Sender<String>>>,
}

impl Srv {
    fn requests(&self, method: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn kick_all(&self) {
        if let Some(k) = self.kick.lock().unwrap().as_ref() {
            let _ = k.send(());
        }
    }

    fn push(&self, frame: Value) {
        if let Some(p) = self.push.lock().unwrap().as_ref() {
            let _ = p.send(frame.to_string());
        }
    }

    fn new_token(&self) -> String {
        let t = jwt(self.issued.fetch_add(1, Ordering::SeqCst) + 1);
        self.valid.lock().unwrap().insert(t.clone());
        t
    }
}

async fn server_info() -> impl IntoResponse {
    axum::Json(json!({"product": {"display_name": "video.example.com", "version": "5.5.3.1"}}))
}

async fn token(State(srv): State<Arc<Srv>>, body: axum::Json<Value>) -> impl IntoResponse {
    srv.logins.fetch_add(1, Ordering::SeqCst);
    if body["username"] == "bot" && body["password"] == "pw" && body["client_id"] == "chat_bot" {
        let t = srv.new_token();
        (
            StatusCode::CREATED,
            axum::Json(json!({"access_token": t, "token_type": "JWT", "expires_in": 3600})),
        )
    } else if body["username"] == "sso" {
        (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "auth_method_disabled"})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_grant", "error_description": "bad"})),
        )
    }
}

async fn ws(State(srv): State<Arc<Srv>>, up: WebSocketUpgrade) -> impl IntoResponse {
    up.on_upgrade(move |socket| session(srv, socket))
}

async fn session(srv: Arc<Srv>, socket: WebSocket) {
    srv.connections.fetch_add(1, Ordering::SeqCst);
    let mut kick = srv.kick.lock().unwrap().as_ref().unwrap().subscribe();
    let mut push = srv.push.lock().unwrap().as_ref().unwrap().subscribe();
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(t) = out_rx.recv().await {
            if sink.send(Message::Text(t.into())).await.is_err() {
                break;
            }
        }
    });
    let mut authed = false;
    loop {
        if srv.mute.load(Ordering::SeqCst) {
            // Not polling the socket means no pong goes out.
            let _ = kick.recv().await;
            break;
        }
        tokio::select! {
            _ = kick.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
            p = push.recv() => if let Ok(p) = p { let _ = out_tx.send(p); },
            m = stream.next() => {
                let Some(Ok(m)) = m else { break };
                let Message::Text(text) = m else { continue };
                let f: Value = serde_json::from_str(text.as_str()).unwrap();
                let id = f["id"].as_u64().unwrap();
                if f["type"] == 2 {
                    srv.acks.lock().unwrap().push(id);
                    continue;
                }
                let method = f["method"].as_str().unwrap().to_owned();
                let payload = f["payload"].clone();
                srv.requests.lock().unwrap().push((method.clone(), payload.clone()));
                if method == "auth" {
                    let t = payload["token"].as_str().unwrap_or_default().to_owned();
                    let answer = if srv.expired.lock().unwrap().contains(&t) {
                        json!({"errorCode": 203})
                    } else if srv.valid.lock().unwrap().contains(&t) {
                        authed = true;
                        json!({"userId": "bot@video.example.com/res1", "connectionId": "c1"})
                    } else {
                        json!({"errorCode": 201})
                    };
                    let _ = out_tx.send(json!({"type": 2, "id": id, "payload": answer}).to_string());
                    continue;
                }
                if !authed {
                    let _ = out_tx.send(json!({"type": 2, "id": id, "payload": {"errorCode": 200}}).to_string());
                    continue;
                }
                let out = out_tx.clone();
                tokio::spawn(async move {
                    let answer = match method.as_str() {
                        "echo" => payload,
                        "slow" | "slowRead" => {
                            let ms = payload["ms"].as_u64().unwrap_or(0);
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            payload
                        }
                        "never" => return,
                        "sendChatActivity" => json!({"chatId": payload["chatId"], "activityType": "typing", "retryAfter": 50}),
                        m => fixture(&format!("resp.{m}.json")).unwrap_or(json!({"errorCode": 304})),
                    };
                    let _ = out.send(json!({"type": 2, "id": id, "payload": answer}).to_string());
                });
            }
        }
    }
    writer.abort();
}

/// The payload of a fixture frame.
fn fixture(name: &str) -> Option<Value> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(v["payload"].clone())
}

fn app(srv: Arc<Srv>) -> Router {
    Router::new()
        .route("/api/v4/server", get(server_info))
        .route("/bridge/api/client/v1/oauth/token", post(token))
        .route("/websocket/chat_bot", get(ws))
        .with_state(srv)
}

fn new_srv() -> Arc<Srv> {
    let srv = Arc::new(Srv::default());
    *srv.kick.lock().unwrap() = Some(broadcast::channel(4).0);
    *srv.push.lock().unwrap() = Some(broadcast::channel(1024).0);
    srv
}

async fn serve() -> (Arc<Srv>, SocketAddr) {
    let srv = new_srv();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(srv.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (srv, addr)
}

/// A TLS server with a fresh self-signed certificate for `localhost`; returns its PEM.
async fn serve_tls() -> (Arc<Srv>, SocketAddr, String) {
    let srv = new_srv();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    )
    .handle(handle.clone());
    let router = app(srv.clone());
    tokio::spawn(async move { server.serve(router.into_make_service()).await });
    let addr = handle.listening().await.unwrap();
    (srv, addr, pem)
}

fn builder(addr: SocketAddr) -> BotBuilder {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(addr.port())
        .request_timeout(Duration::from_secs(3))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200)),
        )
}

// ---------------------------------------------------------------- test requests

#[derive(Debug, Serialize)]
struct Echo {
    n: u64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct EchoResp {
    n: u64,
}

impl Request for Echo {
    const METHOD: &'static str = "echo";
    type Response = EchoResp;
}

#[derive(Debug, Serialize)]
struct Slow {
    ms: u64,
}

impl Request for Slow {
    const METHOD: &'static str = "slow";
    type Response = Value;
}

#[derive(Debug, Serialize)]
struct SlowRead {
    ms: u64,
}

impl Request for SlowRead {
    const METHOD: &'static str = "slowRead";
    const IDEMPOTENT: bool = true;
    type Response = Value;
}

#[derive(Debug, Serialize)]
struct Never;

impl Request for Never {
    const METHOD: &'static str = "never";
    type Response = Value;
}

#[derive(Debug, Serialize)]
struct Unknown;

impl Request for Unknown {
    const METHOD: &'static str = "unknownMethod";
    type Response = Value;
}

/// Polls `cond` until it holds (at most 3 s), so assertions do not depend on scheduling.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn wait_state(bot: &Bot, pred: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let mut rx = bot.state();
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| pred(s)))
        .await
        .expect("state reached in time")
        .expect("state channel open")
        .clone()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn token_auth_round_trip_and_properties() -> Result<()> {
    let (srv, addr) = serve().await;
    let token = srv.new_token();
    let bot = builder(addr).token(token.clone()).build()?;
    bot.start().await?;
    bot.start().await?; // idempotent
    assert_eq!(srv.connections.load(Ordering::SeqCst), 1);
    assert_eq!(bot.me().as_deref(), Some("bot@video.example.com"));
    assert_eq!(bot.server_name().as_deref(), Some("video.example.com"));
    assert_eq!(bot.complete_user_id("alice"), "alice@video.example.com");
    assert_eq!(bot.complete_user_id("bob@x"), "bob@x");
    let auth = &srv.requests("auth")[0];
    assert_eq!(auth["token"], token.as_str());
    assert_eq!(auth["tokenType"], "JWT");
    assert_eq!(auth["receiveUnread"], false);

    assert_eq!(bot.execute(Echo { n: 7 }).await?, EchoResp { n: 7 });
    let err = bot.execute(Unknown).await.unwrap_err();
    assert_eq!(err.api_code().map(|c| c.0), Some(304), "{err}");
    let err = bot
        .execute(Never)
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(
        bot.in_flight(),
        0,
        "a timed-out request leaves no pending entry"
    );
    bot.shutdown().await?;
    assert_eq!(*bot.state().borrow(), ConnectionState::Stopped);
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Disconnected {
                kind: DisconnectKind::ShuttingDown,
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_before_start_is_immediate() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    let mut events = bot.events().unwrap();
    tokio::time::timeout(Duration::from_millis(500), bot.shutdown())
        .await
        .expect("no waiting for a connection that never started")?;
    assert_eq!(*bot.state().borrow(), ConnectionState::Stopped);
    assert!(events.recv().await.is_none());
    assert!(matches!(
        bot.start().await,
        Err(Error::Disconnected {
            kind: DisconnectKind::ShuttingDown,
            ..
        })
    ));
    Ok(())
}

#[tokio::test]
async fn credentials_auth_fetches_a_token() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).credentials("bot", "pw").build()?;
    bot.start().await?;
    assert_eq!(srv.logins.load(Ordering::SeqCst), 1);
    let token = bot.token().expect("token fetched");
    assert!(srv.valid.lock().unwrap().contains(token.expose()));
    assert_eq!(bot.execute(Echo { n: 1 }).await?.n, 1);
    bot.shutdown().await
}

#[tokio::test]
async fn bad_credentials_and_bad_tokens_fail_fast_with_auth_errors() -> Result<()> {
    let (_srv, addr) = serve().await;
    let started = std::time::Instant::now();
    let bot = builder(addr).credentials("bot", "wrong").build()?;
    let err = bot.start().await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(
        matches!(&*bot.state().borrow(), ConnectionState::Failed(f) if f.kind == FailureKind::Auth)
    );

    let bot = builder(addr).credentials("sso", "pw").build()?;
    let err = bot.start().await.unwrap_err();
    assert!(err.to_string().contains("auth_method_disabled"), "{err}");

    let bot = builder(addr).token(jwt(999)).build()?;
    let err = bot.start().await.unwrap_err();
    assert_eq!(err.api_code().map(|c| c.0), Some(201), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no retries on auth errors"
    );
    Ok(())
}

#[tokio::test]
async fn expired_token_with_credentials_logs_in_again() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).credentials("bot", "pw").build()?;
    bot.start().await?;
    let first = bot.token().unwrap();
    srv.expired
        .lock()
        .unwrap()
        .insert(first.expose().to_owned());
    srv.kick_all();
    wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
    wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
    assert_eq!(bot.execute(Echo { n: 2 }).await?.n, 2);
    assert_eq!(srv.logins.load(Ordering::SeqCst), 2);
    assert_ne!(bot.token().unwrap(), first);

    // Without credentials an expired token is fatal.
    let t = srv.new_token();
    srv.expired.lock().unwrap().insert(t.clone());
    let bot = builder(addr).token(t).build()?;
    let err = bot.start().await.unwrap_err();
    assert_eq!(err.api_code().map(|c| c.0), Some(203), "{err}");
    Ok(())
}

#[tokio::test]
async fn server_drop_under_load_reconnects_and_nothing_hangs() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let bot = bot.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                bot.execute(Slow { ms: 300 }).await.map(|_| ())
            } else {
                bot.execute(SlowRead { ms: 300 + i })
                    .await
                    .map(|r| assert_eq!(r["ms"], 300 + i))
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.kick_all();
    let mut disconnected = 0;
    for t in tasks {
        // Every future resolves well within its deadline.
        match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(Error::Disconnected {
                kind: DisconnectKind::OutcomeUnknown,
                ..
            }))) => disconnected += 1,
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert!(disconnected <= 100, "only non-idempotent requests may fail");
    for n in 0..20 {
        assert_eq!(bot.execute(Echo { n }).await?.n, n);
    }
    assert!(srv.connections.load(Ordering::SeqCst) >= 2);
    assert_eq!(bot.in_flight(), 0);
    bot.shutdown().await
}

#[tokio::test]
async fn idempotent_reads_are_resent_after_a_drop() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let read = tokio::spawn({
        let bot = bot.clone();
        async move { bot.execute(SlowRead { ms: 300 }).await }
    });
    let write = tokio::spawn({
        let bot = bot.clone();
        async move { bot.execute(Slow { ms: 10_000 }).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    srv.kick_all();
    let err = write.await.unwrap().unwrap_err();
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
    assert_eq!(read.await.unwrap()?["ms"], 300);
    assert_eq!(srv.requests("slowRead").len(), 2, "sent once per socket");
    bot.shutdown().await
}

#[tokio::test]
async fn killed_connection_actor_is_restarted() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let first = bot
        .actor_id(RuntimeActor::Connection)
        .await
        .expect("running");
    assert!(bot.kill_actor(RuntimeActor::Connection));
    wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
    wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
    assert_eq!(bot.restarts(), 1);
    assert_ne!(bot.actor_id(RuntimeActor::Connection).await, Some(first));
    assert_eq!(bot.execute(Echo { n: 3 }).await?.n, 3);
    assert_eq!(srv.connections.load(Ordering::SeqCst), 2);
    bot.shutdown().await
}

#[tokio::test]
async fn killed_router_is_restarted_and_still_settles_lost_requests() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let first = bot
        .actor_id(RuntimeActor::RequestRouter)
        .await
        .expect("running");
    assert!(bot.kill_actor(RuntimeActor::RequestRouter));
    for _ in 0..100 {
        if bot.restarts() == 1
            && bot
                .actor_id(RuntimeActor::RequestRouter)
                .await
                .is_some_and(|r| r != first)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bot.restarts(), 1);
    assert_eq!(bot.execute(Echo { n: 6 }).await?.n, 6);
    let write = tokio::spawn({
        let bot = bot.clone();
        async move { bot.execute(Slow { ms: 10_000 }).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.kick_all();
    let err = tokio::time::timeout(Duration::from_secs(2), write)
        .await
        .expect("settled by the new router")
        .unwrap()
        .unwrap_err();
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
    bot.shutdown().await
}

#[tokio::test]
async fn restart_limit_fails_the_bot() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .restart_limit(2, Duration::from_secs(60))
        .build()?;
    bot.start().await?;
    for _ in 0..3 {
        wait_state(&bot, |s| {
            matches!(s, ConnectionState::Ready) || s.is_terminal()
        })
        .await;
        bot.kill_actor(RuntimeActor::Connection);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = wait_state(&bot, ConnectionState::is_terminal).await;
    assert!(matches!(s, ConnectionState::Failed(f) if f.kind == FailureKind::RestartLimit));
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Disconnected {
                kind: DisconnectKind::Failed(FailureKind::RestartLimit),
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_settles_100_in_flight_requests_within_its_deadline() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .shutdown_timeout(Duration::from_millis(300))
        .build()?;
    bot.start().await?;
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let bot = bot.clone();
        // Half finish inside the shutdown window, half never answer.
        let ms = if i % 2 == 0 { 50 } else { 60_000 };
        tasks.push(tokio::spawn(async move { bot.execute(Slow { ms }).await }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let began = std::time::Instant::now();
    bot.shutdown().await?;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let (mut ok, mut gone) = (0, 0);
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(1), t).await {
            Ok(Ok(Ok(_))) => ok += 1,
            Ok(Ok(Err(Error::Disconnected {
                kind: DisconnectKind::ShuttingDown,
                ..
            }))) => gone += 1,
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((ok, gone), (50, 50));
    assert_eq!(*bot.state().borrow(), ConnectionState::Stopped);
    Ok(())
}

#[tokio::test]
async fn events_are_acked_on_receive_or_after_handling() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    let mut events = bot.events().expect("first take");
    assert!(bot.events().is_none());
    bot.start().await?;
    // Event ids collide with request ids on purpose: they must not resolve requests.
    srv.push(json!({"type": 1, "id": 1, "method": "sendMessage", "payload": {"x": 1}}));
    let ev = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ev.id, ev.method.as_str()), (1, "sendMessage"));
    assert!(!ev.ack.is_pending());
    eventually("ack of event 1", || *srv.acks.lock().unwrap() == vec![1]).await;
    bot.shutdown().await?;
    assert!(events.recv().await.is_none(), "stream ends at shutdown");

    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .ack_mode(AckMode::AfterHandled)
        .build()?;
    let mut events = bot.events().unwrap();
    bot.start().await?;
    srv.push(json!({"type": 1, "id": 42, "method": "removeChat", "payload": {"chatId": "c"}}));
    let ev = events.recv().await.unwrap();
    assert!(ev.ack.is_pending());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(srv.acks.lock().unwrap().is_empty());
    ev.ack.ack();
    eventually("ack of event 42", || *srv.acks.lock().unwrap() == vec![42]).await;
    bot.shutdown().await
}

#[tokio::test]
async fn full_event_buffer_applies_backpressure() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .event_buffer(2)
        .build()?;
    let mut events = bot.events().unwrap();
    bot.start().await?;
    for id in 1..=5 {
        srv.push(json!({"type": 1, "id": id, "method": "sendMessage", "payload": {}}));
    }
    // Two in the stream, two held back by the reader; the fifth stays unread on the socket.
    eventually("four events read", || srv.acks.lock().unwrap().len() == 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.acks.lock().unwrap().len(), 4);
    for id in 1..=5 {
        assert_eq!(events.recv().await.unwrap().id, id, "order kept");
    }
    bot.shutdown().await
}

#[tokio::test]
async fn a_consumer_waiting_for_a_call_is_not_starved_by_a_full_stream() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .event_buffer(2)
        .build()?;
    let mut events = bot.events().unwrap();
    bot.start().await?;
    for id in 1..=4 {
        srv.push(json!({"type": 1, "id": id, "method": "sendMessage", "payload": {}}));
    }
    let first = events.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The stream is full again (2, 3) and 4 waits in the reader: the response still arrives.
    let r = bot
        .execute(Echo { n: first.id })
        .timeout(Duration::from_secs(1))
        .await?;
    assert_eq!(r.n, 1);
    for id in 2..=4 {
        assert_eq!(events.recv().await.unwrap().id, id);
    }
    bot.shutdown().await
}

#[tokio::test]
async fn missing_pongs_are_detected_and_the_bot_reconnects() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .keepalive(Duration::from_millis(100), Duration::from_millis(100))
        .build()?;
    bot.start().await?;
    srv.mute.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
    srv.mute.store(false, Ordering::SeqCst);
    srv.kick_all();
    wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
    assert_eq!(bot.execute(Echo { n: 4 }).await?.n, 4);
    assert!(srv.connections.load(Ordering::SeqCst) >= 2);
    bot.shutdown().await
}

#[tokio::test]
async fn requests_before_start_fail_and_offline_requests_wait_for_the_reconnect() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert_eq!(
        err.disconnect_kind(),
        Some(DisconnectKind::NotStarted),
        "{err}"
    );
    bot.start().await?;
    srv.kick_all();
    wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
    // Issued while offline: waits for the new socket instead of failing.
    assert_eq!(bot.execute(Echo { n: 9 }).await?.n, 9);
    bot.shutdown().await
}

#[tokio::test]
async fn wss_verification_modes() -> Result<()> {
    let (srv, addr, pem) = serve_tls().await;
    let tls = |b: BotBuilder| b.https(true).port(addr.port());
    let host = |addr: SocketAddr| {
        Bot::builder("localhost")
            .port(addr.port())
            .request_timeout(Duration::from_secs(3))
    };

    let bot = tls(host(addr)).token(srv.new_token()).build()?;
    let err = bot.start().await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    let bot = tls(host(addr))
        .token(srv.new_token())
        .verify_ssl(false)
        .build()?;
    bot.start().await?;
    assert_eq!(bot.execute(Echo { n: 1 }).await?.n, 1);
    bot.shutdown().await?;

    let bot = tls(host(addr))
        .token(srv.new_token())
        .ca_certificate_pem(pem.into_bytes())
        .build()?;
    bot.start().await?;
    assert_eq!(bot.execute(Echo { n: 2 }).await?.n, 2);
    bot.shutdown().await
}

/// Sends `call`, then checks the payload the server received against the `req.<fixture>.json`
/// fixture and the typed response against `resp.<method>.json` (top-level scalars).
async fn check<R>(srv: &Srv, call: Call<R>, req_fixture: &str, ignore: &[&str]) -> R::Response
where
    R: Request,
    R::Response: Serialize,
{
    let resp = call.await.unwrap_or_else(|e| panic!("{req_fixture}: {e}"));
    let mut want = fixture(&format!("req.{req_fixture}.json")).expect("request fixture");
    let mut got = srv.requests(R::METHOD).pop().expect("request logged");
    for path in ignore {
        let (a, b) = path.split_once('.').expect("a.b path");
        want[a].as_object_mut().unwrap().remove(b);
        got[a].as_object_mut().unwrap().remove(b);
    }
    assert_eq!(got, want, "request payload of {req_fixture}");
    let expected = fixture(&format!("resp.{}.json", R::METHOD)).expect("response fixture");
    let typed = serde_json::to_value(&resp).unwrap();
    for (k, v) in expected.as_object().unwrap() {
        if !v.is_object() && !v.is_array() && !v.is_null() {
            assert_eq!(typed.get(k), Some(v), "response field {k} of {}", R::METHOD);
        }
    }
    resp
}

#[tokio::test]
async fn every_method_sends_the_official_payload_and_decodes_the_response() -> Result<()> {
    use trueconf_bot::types::{
        ActivityType, AnswerType, CommandLevel, CommandStatus, CommandVisibility, ParseMode, Role,
    };
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let (p2p, group, msg, fwd, file) = (
        "4a1f88f1070d2f43d385cde9ff61964bc6b74477",
        "9b2e6c1d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c",
        "8fe61d87-6db0-4792-8f5e-e5960c7d5a06",
        "267d61f2-2ba1-4e88-83ab-bb84415f31b6",
        "f3c2a9e4b1d07a6e5c8b9d0e1f2a3b4c5d6e7f80",
    );
    let sent = check(
        &srv,
        bot.send_message(p2p, "Hello, world!"),
        "sendMessage",
        &[],
    )
    .await;
    assert_eq!(sent.message_id, msg);
    check(
        &srv,
        bot.reply_message(p2p, fwd, "Got it, **thanks**")
            .parse_mode(ParseMode::Markdown),
        "sendMessage.reply",
        &[],
    )
    .await;
    check(
        &srv,
        bot.edit_message(msg, "Hello again!"),
        "editMessage",
        &[],
    )
    .await;
    check(
        &srv,
        bot.remove_message(msg).for_all(true),
        "removeMessage",
        &[],
    )
    .await;
    check(&srv, bot.forward_message(group, fwd), "forwardMessage", &[]).await;
    check(&srv, bot.get_message_by_id(fwd), "getMessageById", &[]).await;
    let h = check(&srv, bot.get_chat_history(p2p, 2), "getChatHistory", &[]).await;
    assert_eq!(h.messages.len(), 2);
    check(
        &srv,
        bot.get_chat_history(p2p, 2).from_message(msg),
        "getChatHistory.from",
        &[],
    )
    .await;
    let chats = check(&srv, bot.get_chats(10, 1), "getChats", &[]).await;
    assert!(!chats.chats.is_empty());
    check(&srv, bot.get_chat_by_id(group), "getChatByID", &[]).await;
    // Bare logins are completed with the server's domain.
    let c = check(
        &srv,
        bot.create_personal_chat("alice"),
        "createP2PChat",
        &[],
    )
    .await;
    assert_eq!(c.chat_id, p2p);
    check(
        &srv,
        bot.create_group_chat("Support team"),
        "createGroupChat",
        &[],
    )
    .await;
    check(
        &srv,
        bot.create_channel("Release announcements"),
        "createChannel",
        &[],
    )
    .await;
    check(
        &srv,
        bot.create_favorites_chat(),
        "createFavoritesChat",
        &[],
    )
    .await;
    check(&srv, bot.delete_chat(group), "removeChat", &[]).await;
    check(
        &srv,
        bot.edit_chat_title(group, "Support team (EU)"),
        "editChatTitle",
        &[],
    )
    .await;
    check(
        &srv,
        bot.edit_chat_avatar_uploaded(group, "c0ffee00-1234-4abc-9def-0123456789ab"),
        "editChatAvatar",
        &[],
    )
    .await;
    check(&srv, bot.clear_history(group), "clearHistory", &[]).await;
    check(
        &srv,
        bot.add_participant_to_chat(group, "carol")
            .display_history(true),
        "addChatParticipant",
        &[],
    )
    .await;
    check(
        &srv,
        bot.remove_participant_from_chat(group, "carol@video.example.com"),
        "removeChatParticipant",
        &[],
    )
    .await;
    let ps = check(
        &srv,
        bot.get_chat_participants(group, 50, 1),
        "getChatParticipants",
        &[],
    )
    .await;
    assert!(ps.participants.len() >= 2);
    check(
        &srv,
        bot.get_chat_participant(group, "alice"),
        "getChatParticipant",
        &[],
    )
    .await;
    let has = check(
        &srv,
        bot.has_chat_participant(group, "alice"),
        "hasChatParticipant",
        &[],
    )
    .await;
    assert!(has.result);
    check(
        &srv,
        bot.change_participant_role(group, "alice", Role::Admin),
        "changeParticipantRole",
        &[],
    )
    .await;
    let name = check(
        &srv,
        bot.get_user_display_name("alice"),
        "getUserDisplayName",
        &[],
    )
    .await;
    assert_eq!(name.display_name, "Alice Smith");
    check(
        &srv,
        bot.send_survey(group, "Employee survey", "employee_testing"),
        "sendSurvey",
        &["content.secret"],
    )
    .await;
    check(
        &srv,
        bot.edit_survey(
            "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a",
            "Employee survey 2026",
            "employee_testing",
        )
        .anonymous(true),
        "editSurvey",
        &[],
    )
    .await;
    check(&srv, bot.get_file_info(file), "getFileInfo", &[]).await;
    let sub = check(
        &srv,
        bot.subscribe_file_progress(file),
        "subscribeFileProgress",
        &[],
    )
    .await;
    assert!(sub.result);
    check(
        &srv,
        bot.unsubscribe_file_progress(file),
        "unsubscribeFileProgress",
        &[],
    )
    .await;
    let limits = bot.get_file_upload_limits().await?;
    assert_eq!(limits.max_size, Some(104_857_600));
    assert_eq!(srv.requests("getFileUploadLimits"), vec![json!({})]);
    let activity = bot.send_chat_activity(p2p, ActivityType::Typing).await?;
    assert_eq!(activity.retry_after, 50);
    assert_eq!(
        srv.requests("sendChatActivity").pop().unwrap(),
        fixture("req.sendChatActivity.json").unwrap()
    );
    check(
        &srv,
        bot.answer_command(
            "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",
            AnswerType::Complete,
            "Ticket 4711 closed",
        )
        .status(CommandStatus::Ok)
        .visibility(CommandVisibility::Toast)
        .level(CommandLevel::Info),
        "answerCommand",
        &[],
    )
    .await;
    // Client-side validation: nothing is sent.
    let before = srv.requests("getChats").len();
    let err = bot.get_chats(10, 0).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(srv.requests("getChats").len(), before);
    bot.shutdown().await
}

#[tokio::test]
async fn default_parse_mode_and_throttle_apply_to_calls() -> Result<()> {
    use trueconf_bot::bot::ThrottleConfig;
    use trueconf_bot::types::ParseMode;
    let (srv, addr) = serve().await;
    let bot = builder(addr)
        .token(srv.new_token())
        .default_parse_mode(ParseMode::Html)
        .throttle(ThrottleConfig::new().per_chat(1, Duration::from_millis(200)))
        .build()?;
    bot.start().await?;
    bot.send_message("c1", "<b>hi</b>").await?;
    assert_eq!(
        srv.requests("sendMessage")[0]["content"]["parseMode"],
        "html"
    );
    bot.send_message("c1", "plain")
        .parse_mode(ParseMode::Text)
        .await?;
    assert_eq!(
        srv.requests("sendMessage")[1]["content"]["parseMode"],
        "text"
    );
    // c1's bucket is empty now: its next message waits ~200 ms, another chat's does not.
    let (a, b) = (bot.clone(), bot.clone());
    let c1 = tokio::spawn(async move {
        a.send_message("c1", "third").await?;
        Ok::<_, Error>(std::time::Instant::now())
    });
    let c2 = tokio::spawn(async move {
        b.send_message("c2", "other chat").await?;
        Ok::<_, Error>(std::time::Instant::now())
    });
    let (t1, t2) = (c1.await.unwrap()?, c2.await.unwrap()?);
    assert!(t2 < t1, "the other chat was not held back");
    bot.shutdown().await
}

#[tokio::test]
async fn typing_guard_repeats_after_retry_after_and_stops_on_drop() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let guard = bot.typing("chat-1");
    tokio::time::sleep(Duration::from_millis(230)).await;
    drop(guard);
    let sent = srv.requests("sendChatActivity").len();
    // retryAfter is 50 ms: about five activities in 230 ms (fewer on a busy machine).
    assert!((2..=6).contains(&sent), "{sent}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        srv.requests("sendChatActivity").len(),
        sent,
        "stopped on drop"
    );
    bot.shutdown().await
}

// ---------------------------------------------------------------- against the emulator

mod sim {
    use super::*;
    use trueconf_bot::methods::UploadFile;
    use trueconf_bot::testkit::{Sim, SimConfig};
    use trueconf_bot::types::{
        ActivityType, AnswerType, Button, CommandStatus, InlineKeyboard, ParseMode, Role,
    };

    fn bot_for(sim: &Sim) -> BotBuilder {
        builder(sim.addr())
    }

    /// The payload of the bot's latest `method` request as the emulator recorded it.
    fn last(sim: &Sim, method: &str) -> Value {
        sim.requests()
            .into_iter()
            .rev()
            .find(|r| r.method == method)
            .map(|r| r.payload)
            .unwrap_or_else(|| panic!("no {method} request recorded"))
    }

    async fn upload(sim: &Sim, bot: &Bot, name: &str, data: &'static [u8]) -> String {
        let task = bot
            .execute(UploadFile::new(name, data.len() as u64))
            .await
            .expect("uploadFile");
        let part = reqwest::multipart::Part::bytes(data)
            .file_name(name.to_owned())
            .mime_str("image/png")
            .unwrap();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )
            .build()
            .unwrap();
        let resp: Value = http
            .post(format!("{}/bridge/api/client/v1/files", sim.url()))
            .header("Upload-Task-Id", task.upload_task_id)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["temporalFileId"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn every_seed_method_against_the_emulator() -> Result<()> {
        let sim = Sim::start(SimConfig::default()).await?;
        let bot = bot_for(&sim).token(sim.bot_token()).build()?;
        bot.start().await?;
        let domain = sim.domain().to_owned();
        assert_eq!(bot.server_name().as_deref(), Some(domain.as_str()));
        assert_eq!(bot.me(), Some(sim.bot_id()));
        let alice = sim.user("alice");
        let carol = sim.user("carol");

        // Personal chat; the bare login is completed with the server's domain.
        let p2p = bot.create_personal_chat("alice").await?.chat_id;
        assert_eq!(last(&sim, "createP2PChat")["userId"], alice.id());

        let sent = bot
            .send_message(&p2p, "Hello, <b>Alice</b>")
            .parse_mode(ParseMode::Html)
            .await?;
        assert_eq!(
            last(&sim, "sendMessage")["content"],
            json!({"text": "Hello, <b>Alice</b>", "parseMode": "html"})
        );
        assert_eq!(sent.chat_id, p2p);
        assert!(sim.message(&sent.message_id).is_some());

        let incoming = alice.send_text(&p2p, "question").await?;
        let reply = bot.reply_message(&p2p, &incoming, "answer").await?;
        assert_eq!(
            last(&sim, "sendMessage")["replyMessageId"],
            incoming.as_str()
        );
        assert_eq!(
            sim.message(&reply.message_id).unwrap()["replyMessageId"],
            incoming.as_str()
        );

        let edited = bot.edit_message(&sent.message_id, "Hello again").await?;
        assert_eq!(edited.message_id, sent.message_id);
        assert_eq!(last(&sim, "editMessage")["content"]["text"], "Hello again");
        assert_eq!(
            sim.message(&sent.message_id).unwrap()["content"]["text"],
            "Hello again"
        );

        let got = bot.get_message_by_id(&sent.message_id).await?;
        assert_eq!(
            last(&sim, "getMessageById"),
            json!({"messageId": sent.message_id})
        );
        assert_eq!(got.message_id, sent.message_id);

        let history = bot.get_chat_history(&p2p, 10).await?;
        assert_eq!(
            last(&sim, "getChatHistory"),
            json!({"chatId": p2p, "count": 10})
        );
        assert!(history.messages.len() >= 3, "{}", history.messages.len());
        let older = bot
            .get_chat_history(&p2p, 1)
            .from_message(&reply.message_id)
            .await?;
        assert_eq!(
            last(&sim, "getChatHistory")["fromMessageId"],
            reply.message_id.as_str()
        );
        assert_eq!(older.messages.len(), 1);

        // Group chats and participants.
        let group = bot.create_group_chat("Support team").await?.chat_id;
        assert_eq!(
            last(&sim, "createGroupChat"),
            json!({"title": "Support team"})
        );
        assert_eq!(sim.chat_title(&group).as_deref(), Some("Support team"));
        let channel = bot.create_channel("Announcements").await?.chat_id;
        assert_eq!(
            last(&sim, "createChannel"),
            json!({"title": "Announcements"})
        );
        assert!(sim.chat_exists(&channel));
        let fav = bot.create_favorites_chat().await?.chat_id;
        assert_eq!(last(&sim, "createFavoritesChat"), json!({}));
        assert!(sim.chat_exists(&fav));

        let chats = bot.get_chats(50, 1).await?;
        assert_eq!(last(&sim, "getChats"), json!({"count": 50, "page": 1}));
        assert!(chats.chats.iter().any(|c| c.chat_id == group));
        let chat = bot.get_chat_by_id(&group).await?;
        assert_eq!(last(&sim, "getChatByID"), json!({"chatId": group}));
        assert_eq!(chat.title.as_deref(), Some("Support team"));

        bot.add_participant_to_chat(&group, "alice")
            .display_history(true)
            .await?;
        assert_eq!(
            last(&sim, "addChatParticipant"),
            json!({"chatId": group, "userId": alice.id(), "displayHistory": true})
        );
        bot.add_participant_to_chat(&group, carol.id()).await?;
        assert!(
            sim.participants(&group)
                .iter()
                .any(|(u, _)| *u == alice.id())
        );
        let list = bot.get_chat_participants(&group, 10, 1).await?;
        assert_eq!(
            last(&sim, "getChatParticipants"),
            json!({"chatId": group, "pageSize": 10, "pageNumber": 1})
        );
        assert_eq!(list.participants.len(), 3);
        let p = bot.get_chat_participant(&group, "alice").await?;
        assert_eq!(
            last(&sim, "getChatParticipant"),
            json!({"chatId": group, "userId": alice.id()})
        );
        assert_eq!(p.user_id, alice.id());
        assert!(bot.has_chat_participant(&group, "alice").await?.result);
        assert_eq!(last(&sim, "hasChatParticipant")["userId"], alice.id());
        bot.change_participant_role(&group, "alice", Role::Admin)
            .await?;
        assert_eq!(last(&sim, "changeParticipantRole")["role"], "admin");
        assert!(
            sim.participants(&group)
                .contains(&(alice.id(), "admin".to_owned()))
        );
        bot.remove_participant_from_chat(&group, "carol").await?;
        assert_eq!(
            last(&sim, "removeChatParticipant"),
            json!({"chatId": group, "userId": carol.id(), "clearHistory": false})
        );
        assert!(!bot.has_chat_participant(&group, "carol").await?.result);

        let title = bot.edit_chat_title(&group, "Support (EU)").await?;
        assert_eq!(title.chat_id, group);
        assert_eq!(sim.chat_title(&group).as_deref(), Some("Support (EU)"));
        let tmp = upload(&sim, &bot, "avatar.png", b"\x89PNG fake").await;
        bot.edit_chat_avatar_uploaded(&group, &tmp).await?;
        assert_eq!(
            last(&sim, "editChatAvatar"),
            json!({"chatId": group, "temporalFileId": tmp})
        );

        let fwd = bot.forward_message(&group, &incoming).await?;
        assert_eq!(
            last(&sim, "forwardMessage"),
            json!({"messageId": incoming, "chatId": group})
        );
        assert_eq!(fwd.chat_id, group);

        let survey = bot
            .send_survey(&group, "Employee survey", "employee_testing")
            .await?;
        let req = last(&sim, "sendSurvey");
        assert_eq!(
            req["content"]["url"],
            format!("https://{domain}/webtools/survey")
        );
        assert_eq!(req["content"]["path"], "employee_testing");
        let es = bot
            .edit_survey(
                &survey.message_id,
                "Employee survey 2026",
                "employee_testing",
            )
            .anonymous(true)
            .await?;
        assert_eq!(es.message_id, survey.message_id);
        assert_eq!(
            last(&sim, "editSurvey")["content"]["description"],
            "{{Anonymous survey}}"
        );

        let name = bot.get_user_display_name("alice").await?;
        assert_eq!(
            last(&sim, "getUserDisplayName"),
            json!({"userId": alice.id()})
        );
        assert!(!name.display_name.is_empty());

        // Files.
        let file = alice
            .upload_file(&p2p, "notes.txt", &b"hello file"[..])
            .await?;
        let info = bot.get_file_info(&file.file_id).await?;
        assert_eq!(last(&sim, "getFileInfo"), json!({"fileId": file.file_id}));
        assert_eq!(info.size, 10);
        assert!(bot.subscribe_file_progress(&file.file_id).await?.result);
        assert_eq!(
            last(&sim, "subscribeFileProgress"),
            json!({"fileId": file.file_id})
        );
        assert!(bot.unsubscribe_file_progress(&file.file_id).await?.result);
        assert_eq!(
            last(&sim, "unsubscribeFileProgress"),
            json!({"fileId": file.file_id})
        );
        let limits = bot.get_file_upload_limits().await?;
        assert_eq!(last(&sim, "getFileUploadLimits"), json!({}));
        assert_eq!(limits.max_size, None);

        // Activity and commands.
        let act = bot.send_chat_activity(&p2p, ActivityType::Typing).await?;
        assert_eq!(
            last(&sim, "sendChatActivity"),
            json!({"chatId": p2p, "activityType": "typing"})
        );
        assert_eq!(act.retry_after, 5000);
        let keyboard = InlineKeyboard::builder()
            .button(Button::command("Close", "/close").wait_reply(true))
            .build()?;
        let card = bot.send_message(&p2p, "Close?").buttons(keyboard).await?;
        let command_id = alice
            .press_button(&p2p, &card.message_id, "/close")
            .await?
            .expect("waitReply gives a command id");
        bot.answer_command(&command_id, AnswerType::Complete, "Closed")
            .status(CommandStatus::Ok)
            .await?;
        assert_eq!(
            last(&sim, "answerCommand"),
            json!({"commandId": command_id, "answerType": "complete", "message": {"text": "Closed", "status": "ok"}})
        );

        // Removal.
        bot.remove_message(&sent.message_id).for_all(true).await?;
        assert_eq!(
            last(&sim, "removeMessage"),
            json!({"messageId": sent.message_id, "forAll": true})
        );
        assert!(sim.message(&sent.message_id).is_none());
        bot.clear_history(&group).for_all(true).await?;
        assert_eq!(
            last(&sim, "clearHistory"),
            json!({"chatId": group, "forAll": true})
        );
        bot.delete_chat(&channel).await?;
        assert_eq!(last(&sim, "removeChat"), json!({"chatId": channel}));
        assert!(!sim.chat_exists(&channel));

        // A server error is typed.
        let err = bot.get_chat_by_id("no-such-chat").await.unwrap_err();
        assert_eq!(err.api_code().map(|c| c.0), Some(304), "{err}");
        bot.shutdown().await
    }

    #[tokio::test]
    async fn auth_flows_against_the_emulator() -> Result<()> {
        let sim = Sim::start(SimConfig::default()).await?;
        let bot = bot_for(&sim).credentials("bot", "bot-password").build()?;
        bot.start().await?;
        assert_eq!(bot.me(), Some(sim.bot_id()));
        bot.shutdown().await?;

        let bot = bot_for(&sim)
            .oauth_app("sim-app", "bot", "bot-password")
            .build()?;
        bot.start().await?;
        assert_eq!(bot.me(), Some(sim.bot_id()));
        bot.shutdown().await?;

        let began = std::time::Instant::now();
        let bot = bot_for(&sim).credentials("bot", "wrong").build()?;
        assert!(matches!(bot.start().await, Err(Error::Auth { .. })));
        let bot = bot_for(&sim).token(sim.expired_token_for("bot")).build();
        assert!(
            matches!(bot, Err(Error::Auth { .. })),
            "expired tokens are refused locally"
        );
        sim.set_user_disabled("bot", true);
        let bot = bot_for(&sim).token(sim.bot_token()).build()?;
        let err = bot.start().await.unwrap_err();
        assert_eq!(err.api_code().map(|c| c.0), Some(202), "{err}");
        sim.set_user_disabled("bot", false);
        sim.set_password_login(false);
        let bot = bot_for(&sim).credentials("bot", "bot-password").build()?;
        let err = bot.start().await.unwrap_err();
        assert!(err.to_string().contains("auth_method_disabled"), "{err}");
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "auth errors are not retried"
        );

        let sim = Sim::start(SimConfig {
            oauth_apps: vec![trueconf_bot::testkit::OAuthApp {
                client_id: "no-scope".into(),
                scopes: vec![],
            }],
            ..SimConfig::default()
        })
        .await?;
        let bot = bot_for(&sim)
            .oauth_app("no-scope", "bot", "bot-password")
            .build()?;
        let err = bot.start().await.unwrap_err();
        assert!(err.to_string().contains("invalidScope"), "{err}");
        let bot = bot_for(&sim)
            .oauth_app("no-scope", "bot", "wrong")
            .build()?;
        assert!(matches!(bot.start().await, Err(Error::Auth { .. })));

        let sim = Sim::start(SimConfig {
            version: "5.4.9.100".into(),
            ..SimConfig::default()
        })
        .await?;
        let bot = bot_for(&sim).token(sim.bot_token()).build()?;
        let err = bot.start().await.unwrap_err();
        assert!(err.to_string().contains("too old"), "{err}");
        assert!(matches!(
            &*bot.state().borrow(),
            ConnectionState::Failed(f) if f.kind == FailureKind::UnsupportedServer
        ));
        Ok(())
    }

    #[tokio::test]
    async fn expired_token_is_renewed_with_credentials_on_reconnect() -> Result<()> {
        let sim = Sim::start(SimConfig {
            token_ttl: Duration::from_secs(1),
            ..SimConfig::default()
        })
        .await?;
        let bot = bot_for(&sim).credentials("bot", "bot-password").build()?;
        bot.start().await?;
        let first = bot.token().unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        sim.faults().drop_connections();
        wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
        wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
        assert_ne!(bot.token().unwrap(), first, "a new token was fetched");
        bot.get_chats(10, 1).await?;
        bot.shutdown().await
    }

    #[tokio::test]
    async fn wss_with_the_emulators_self_signed_certificate() -> Result<()> {
        let sim = Sim::start(SimConfig {
            tls: true,
            ..SimConfig::default()
        })
        .await?;
        let b = || {
            Bot::builder("localhost")
                .port(sim.addr().port())
                .token(sim.bot_token())
        };
        let err = b().build()?.start().await.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err}");

        let bot = b().verify_ssl(false).build()?;
        bot.start().await?;
        bot.get_chats(10, 1).await?;
        bot.shutdown().await?;

        let pem = sim.cert_pem().expect("tls on").as_bytes().to_vec();
        let bot = b().ca_certificate_pem(pem).build()?;
        bot.start().await?;
        bot.get_chats(10, 1).await?;
        bot.shutdown().await
    }

    #[tokio::test]
    async fn server_restart_under_load_loses_nothing_silently() -> Result<()> {
        let sim = Sim::start(SimConfig::default()).await?;
        let bot = bot_for(&sim).token(sim.bot_token()).build()?;
        bot.start().await?;
        sim.user("alice");
        let chat = bot.create_personal_chat("alice").await?.chat_id;
        // The emulator delays responses one after another: 100 requests take a second.
        sim.faults().delay_responses(Duration::from_millis(10));
        let mut tasks = Vec::new();
        for i in 0..100 {
            let bot = bot.clone();
            let chat = chat.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    bot.send_message(chat, format!("m{i}")).await.map(|_| ())
                } else {
                    bot.get_chat_history(chat, 5).await.map(|_| ())
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        sim.faults().restart(Duration::from_millis(200));
        let mut lost = 0;
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(5), t).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(Error::Disconnected {
                    kind: DisconnectKind::OutcomeUnknown,
                    ..
                }))) => lost += 1,
                other => panic!("unexpected outcome: {other:?}"),
            }
        }
        assert!(
            lost <= 50,
            "only writes may fail, reads are re-sent: {lost}"
        );
        sim.faults().clear();
        for i in 0..10 {
            bot.send_message(&chat, format!("after {i}")).await?;
        }
        assert!(sim.stats().connections >= 2);
        assert_eq!(bot.in_flight(), 0);
        bot.shutdown().await
    }

    #[tokio::test]
    async fn killed_connection_is_restarted_and_keeps_answering() -> Result<()> {
        let sim = Sim::start(SimConfig::default()).await?;
        let bot = bot_for(&sim).token(sim.bot_token()).build()?;
        let mut events = bot.events().unwrap();
        bot.start().await?;
        assert!(bot.kill_actor(RuntimeActor::Connection));
        wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
        wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
        assert_eq!(bot.restarts(), 1);
        let alice = sim.user("alice");
        let chat = alice.create_p2p_with_bot().await?;
        alice.send_text(&chat, "still there?").await?;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(3), events.recv())
                .await
                .expect("event in time")
                .expect("stream open");
            seen.push(ev.method);
        }
        assert_eq!(seen, ["createP2PChat", "sendMessage"]);
        bot.send_message(&chat, "yes").await?;
        assert_eq!(sim.expect_message(&chat).await?["content"]["text"], "yes");
        eventually("all events acked", || {
            sim.stats().acked == sim.stats().pushed
        })
        .await;
        assert_eq!(
            sim.stats().acked,
            sim.stats().pushed,
            "every event acknowledged"
        );
        bot.shutdown().await
    }

    #[tokio::test]
    async fn shutdown_with_100_requests_in_flight() -> Result<()> {
        let sim = Sim::start(SimConfig::default()).await?;
        let bot = bot_for(&sim)
            .token(sim.bot_token())
            .shutdown_timeout(Duration::from_millis(200))
            .build()?;
        bot.start().await?;
        sim.faults().delay_responses(Duration::from_secs(30));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let bot = bot.clone();
                tokio::spawn(async move { bot.get_chats(10, 1).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let began = std::time::Instant::now();
        bot.shutdown().await?;
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
        for t in tasks {
            let r = tokio::time::timeout(Duration::from_secs(1), t)
                .await
                .expect("resolved")
                .unwrap();
            assert!(
                matches!(
                    r,
                    Err(Error::Disconnected {
                        kind: DisconnectKind::ShuttingDown,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        Ok(())
    }
}
