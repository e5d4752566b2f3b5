//! Hostile servers on 127.0.0.1 (security review, issue 21): a server that accepts the TCP
//! connection and then goes silent, and a server that authorises the bot and then stops
//! reading its socket. Both must end in the ordinary reconnect path, never in a bot that
//! waits forever.
//!
//! The servers are raw TCP: `GET /api/v4/server` gets a 404 (the bot then goes on without the
//! server's domain), every other connection is treated as the WebSocket upgrade.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use trueconf_bot::Error;
use trueconf_bot::bot::{Bot, BotBuilder, ReconnectPolicy};
use trueconf_bot::connection::{ConnectionState, FailureKind};
use trueconf_bot::error::DisconnectKind;

/// Generous bound for what should take a few seconds (a busy 2-core machine).
const PATIENCE: Duration = Duration::from_secs(60);

/// A test token: `build()` reads its (absent) expiry; these servers never check it.
fn token() -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        e.encode(br#"{"alg":"HS256"}"#),
        e.encode(b"{}")
    )
}

fn builder(port: u16) -> BotBuilder {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(port)
        .token(token())
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(50)),
        )
}

/// Answers the bot's server-info request with a 404 and hands every other connection (the
/// WebSocket upgrades) to `ws`, with its number (0, 1, …).
async fn serve<F, Fut>(listener: TcpListener, ws: F)
where
    F: Fn(usize, TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut upgrades = 0;
    while let Ok((stream, _)) = listener.accept().await {
        let mut head = [0u8; 32];
        // The request line is all it takes to tell the two apart.
        let mut seen = 0;
        while seen < head.len() {
            match stream.peek(&mut head).await {
                Ok(0) | Err(_) => break,
                Ok(n) if n == seen => tokio::task::yield_now().await,
                Ok(n) => seen = n,
            }
        }
        if head.starts_with(b"GET /api/v4/server") {
            tokio::spawn(not_found(stream));
        } else {
            tokio::spawn(ws(upgrades, stream));
            upgrades += 1;
        }
    }
}

async fn not_found(mut stream: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
    let _ = stream
        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await;
    let _ = stream.shutdown().await;
}

/// Reads the `auth` request and grants it (the shape `src/testkit/state/auth.rs` answers).
async fn authorise(ws: &mut WebSocketStream<TcpStream>) -> Option<()> {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).ok()?;
        if frame["method"] == "auth" {
            let id = frame["id"].as_u64()?;
            let answer =
                format!(r#"{{"type":2,"id":{id},"payload":{{"errorCode":0,"userId":"bot@x"}}}}"#);
            ws.send(Message::text(answer)).await.ok()?;
            return Some(());
        }
    }
    None
}

/// Every state the bot published, in order.
fn record(b: BotBuilder) -> (BotBuilder, Arc<Mutex<Vec<ConnectionState>>>) {
    let states: Arc<Mutex<Vec<ConnectionState>>> = Default::default();
    let seen = states.clone();
    let b = b.on_state_change(move |s| seen.lock().unwrap().push(s.clone()));
    (b, states)
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_the_upgrade_exhausts_the_retry_budget() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = Arc::new(AtomicUsize::new(0));
    let held: Arc<Mutex<Vec<TcpStream>>> = Default::default();
    let (a, h) = (attempts.clone(), held.clone());
    let server = tokio::spawn(serve(listener, move |_, stream| {
        a.fetch_add(1, Ordering::SeqCst);
        // Accepted, never read, never answered, never closed.
        h.lock().unwrap().push(stream);
        async {}
    }));
    let (b, states) = record(
        builder(port)
            .connect_timeout(Duration::from_millis(300))
            .reconnect(
                ReconnectPolicy::default()
                    .min_delay(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(50))
                    .max_retries(Some(2)),
            ),
    );
    let bot = b.build().unwrap();

    let started = tokio::time::timeout(PATIENCE, bot.start())
        .await
        .expect("start() must return: every attempt is time-limited");
    let err = started.expect_err("no attempt can succeed");
    assert_eq!(
        err.disconnect_kind(),
        Some(DisconnectKind::Failed(FailureKind::RetriesExhausted)),
        "{err}"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "the first attempt and two retries"
    );
    let states = states.lock().unwrap().clone();
    for attempt in [1, 2] {
        assert!(
            states.contains(&ConnectionState::Reconnecting { attempt }),
            "retry {attempt} reported: {states:?}"
        );
    }
    assert!(
        matches!(states.last(), Some(ConnectionState::Failed(_))),
        "{states:?}"
    );
    server.abort();
}

/// One `sendMessage` of 4096 four-byte characters: about 16 KiB on the wire.
fn big_text() -> String {
    "\u{1F600}".repeat(4096)
}

#[tokio::test]
async fn a_server_that_stops_reading_is_declared_lost_and_the_bot_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held: Arc<Mutex<Vec<WebSocketStream<TcpStream>>>> = Default::default();
    let answered = Arc::new(AtomicUsize::new(0));
    let (h, n) = (held.clone(), answered.clone());
    let server = tokio::spawn(serve(listener, move |index, stream| {
        let (h, n) = (h.clone(), n.clone());
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            if authorise(&mut ws).await.is_none() {
                return;
            }
            if index == 0 {
                // Authorised, then never read again: the bot's writes pile up in the kernel
                // buffers, then in the bot. Kept open so nothing tells the bot it is gone.
                h.lock().unwrap().push(ws);
                return;
            }
            // Later connections behave: every request gets its answer.
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if frame["type"] != 1 {
                    continue;
                }
                let id = &frame["id"];
                let answer = format!(
                    r#"{{"type":2,"id":{id},"payload":{{"chatId":"c","messageId":"m","timestamp":1}}}}"#
                );
                if ws.send(Message::text(answer)).await.is_err() {
                    return;
                }
                n.fetch_add(1, Ordering::SeqCst);
            }
        }
    }));
    let bot = builder(port)
        .keepalive(Duration::from_secs(1), Duration::from_secs(1))
        .write_queue_limit(1 << 20)
        .request_timeout(PATIENCE)
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(50))
                .max_retries(None),
        )
        .build()
        .unwrap();
    tokio::time::timeout(PATIENCE, bot.start())
        .await
        .expect("connects")
        .expect("authorised");
    let mut state = bot.state();

    // About 16 MiB of writes: far more than the kernel buffers and the writer queue take.
    let text = big_text();
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let call = bot.send_message("c", text.clone());
            tokio::spawn(async move { call.await })
        })
        .collect();

    tokio::time::timeout(
        PATIENCE,
        state.wait_for(|s| !matches!(s, ConnectionState::Ready)),
    )
    .await
    .expect("a socket whose peer stopped reading is declared lost")
    .unwrap();
    tokio::time::timeout(
        PATIENCE,
        state.wait_for(|s| matches!(s, ConnectionState::Ready)),
    )
    .await
    .expect("the bot reconnects")
    .unwrap();

    let (mut ok, mut unknown) = (0, 0);
    for call in calls {
        match tokio::time::timeout(PATIENCE, call)
            .await
            .expect("every call is settled")
            .unwrap()
        {
            Ok(_) => ok += 1,
            Err(e @ Error::Disconnected { .. }) => {
                assert_eq!(
                    e.disconnect_kind(),
                    Some(DisconnectKind::OutcomeUnknown),
                    "{e}"
                );
                unknown += 1;
            }
            Err(e) => panic!("unexpected outcome: {e}"),
        }
    }
    println!("ok {ok}, outcome unknown {unknown}");
    assert!(
        unknown > 0,
        "writes in flight on the stuck socket fail as OutcomeUnknown"
    );
    assert!(
        ok > 0,
        "writes that were still waiting for room were never written, so they went out on the \
         next socket"
    );
    assert_eq!(answered.load(Ordering::SeqCst), ok);
    bot.shutdown().await.unwrap();
    server.abort();
}
