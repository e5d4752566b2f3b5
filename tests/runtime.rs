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
use trueconf_bot::bot::{Bot, BotBuilder, ReconnectPolicy};
use trueconf_bot::connection::{AckMode, ConnectionState, FailureKind};
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
    axum::Json(json!({"product": {"display_name": "test.local", "version": "5.5.3.1"}}))
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
        tokio::select! {
            _ = kick.recv() => break,
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
                        json!({"userId": "bot@test.local/res1", "connectionId": "c1"})
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
                        _ => json!({"errorCode": 304}),
                    };
                    let _ = out.send(json!({"type": 2, "id": id, "payload": answer}).to_string());
                });
            }
        }
    }
    writer.abort();
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
    assert_eq!(bot.me().as_deref(), Some("bot@test.local"));
    assert_eq!(bot.server_name().as_deref(), Some("test.local"));
    assert_eq!(bot.complete_user_id("alice"), "alice@test.local");
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
    assert_eq!(bot.in_flight(), 0, "a timed-out request leaves no pending entry");
    bot.shutdown().await?;
    assert_eq!(*bot.state().borrow(), ConnectionState::Stopped);
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err}");
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
    assert!(matches!(&*bot.state().borrow(), ConnectionState::Failed(f) if f.kind == FailureKind::Auth));

    let bot = builder(addr).credentials("sso", "pw").build()?;
    let err = bot.start().await.unwrap_err();
    assert!(err.to_string().contains("auth_method_disabled"), "{err}");

    let bot = builder(addr).token(jwt(999)).build()?;
    let err = bot.start().await.unwrap_err();
    assert_eq!(err.api_code().map(|c| c.0), Some(201), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "no retries on auth errors");
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
                bot.execute(SlowRead { ms: 300 + i }).await.map(|r| assert_eq!(r["ms"], 300 + i))
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
            Ok(Ok(Err(Error::Disconnected(_)))) => disconnected += 1,
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
    assert!(matches!(err, Error::Disconnected(_)), "{err}");
    assert_eq!(read.await.unwrap()?["ms"], 300);
    assert_eq!(srv.requests("slowRead").len(), 2, "sent once per socket");
    bot.shutdown().await
}

#[tokio::test]
async fn killed_connection_actor_is_restarted() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    bot.start().await?;
    let first = bot.connection_actor().expect("running");
    first.kill();
    wait_state(&bot, |s| !matches!(s, ConnectionState::Ready)).await;
    wait_state(&bot, |s| matches!(s, ConnectionState::Ready)).await;
    assert_eq!(bot.restarts(), 1);
    assert_ne!(bot.connection_actor().unwrap().get_id(), first.get_id());
    assert_eq!(bot.execute(Echo { n: 3 }).await?.n, 3);
    assert_eq!(srv.connections.load(Ordering::SeqCst), 2);
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
        wait_state(&bot, |s| matches!(s, ConnectionState::Ready) || s.is_terminal()).await;
        if let Some(c) = bot.connection_actor() {
            c.kill();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = wait_state(&bot, ConnectionState::is_terminal).await;
    assert!(matches!(s, ConnectionState::Failed(f) if f.kind == FailureKind::RestartLimit));
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err}");
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
    assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
    let (mut ok, mut gone) = (0, 0);
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(1), t).await {
            Ok(Ok(Ok(_))) => ok += 1,
            Ok(Ok(Err(Error::Disconnected(_)))) => gone += 1,
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
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*srv.acks.lock().unwrap(), vec![1]);
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
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*srv.acks.lock().unwrap(), vec![42]);
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Two buffered, one held by the blocked reader; the rest still unread on the socket.
    assert!(srv.acks.lock().unwrap().len() <= 3);
    for id in 1..=5 {
        assert_eq!(events.recv().await.unwrap().id, id, "order kept");
    }
    bot.shutdown().await
}

#[tokio::test]
async fn requests_before_start_fail_and_offline_requests_wait_for_the_reconnect() -> Result<()> {
    let (srv, addr) = serve().await;
    let bot = builder(addr).token(srv.new_token()).build()?;
    let err = bot.execute(Echo { n: 1 }).await.unwrap_err();
    assert!(err.to_string().contains("not started"), "{err}");
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
