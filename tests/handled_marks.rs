//! The persisted duplicate window and the misconfiguration warning.
//!
//! Run: `cargo test --all-features --test handled_marks`. The Redis test uses
//! `TRUECONF_TEST_REDIS_URL` when set, otherwise it starts its own `redis-server`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use trueconf_bot::bot::ServerEvent;
use trueconf_bot::dispatch::{Dispatcher, HandledMarks, MemoryMarks, Router};
use trueconf_bot::harness::event;

#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;

fn message(frame_id: u64, message_id: &str, author: &str) -> ServerEvent {
    let payload = serde_json::json!({
        "messageId": message_id,
        "chat": {"chatId": "chat-1", "chatType": 1},
        "timestamp": 1u64, "type": 200,
        "author": {"id": author, "type": 1},
        "content": {"text": "hi", "parseMode": "text"}
    });
    event(frame_id, "sendMessage", payload)
}

/// One run of a bot process: a fresh dispatcher (fresh memory) over `marks`, fed `events`;
/// returns the message ids its handler saw.
async fn one_run(marks: impl HandledMarks, events: Vec<ServerEvent>) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let router = Router::new().message(move |update: trueconf_bot::dispatch::Update| {
        let s = s.clone();
        async move {
            s.lock()
                .unwrap()
                .push(update.message_id().unwrap_or_default().to_owned());
        }
    });
    let dispatcher = Dispatcher::detached(router)
        .handled_marks(marks)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let run = tokio::spawn(dispatcher.run_on(rx));
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the dispatcher stops when its events end")
        .unwrap()
        .unwrap();
    seen.lock().unwrap().clone()
}

/// A restarted process gets its un-acknowledged events again (`receive_unread`); the marks
/// left by the one before keep it from handling what that one handled.
async fn restart_handles_nothing_twice(open: impl Fn() -> Box<dyn HandledMarksBox>) {
    let first = one_run(
        open().into_marks(),
        vec![
            message(1, "m-1", "alice@srv"),
            message(2, "m-2", "alice@srv"),
        ],
    )
    .await;
    assert_eq!(first, ["m-1", "m-2"]);
    // The restart: m-1 and m-2 come back (their acks were lost with the old socket), m-3 is new.
    let second = one_run(
        open().into_marks(),
        vec![
            message(1, "m-1", "alice@srv"),
            message(2, "m-2", "alice@srv"),
            message(3, "m-3", "alice@srv"),
        ],
    )
    .await;
    assert_eq!(second, ["m-3"], "handled again after a restart");
}

/// Lets one test body open any store by value.
trait HandledMarksBox {
    fn into_marks(self: Box<Self>) -> Arc<dyn HandledMarks>;
}
impl<T: HandledMarks> HandledMarksBox for T {
    fn into_marks(self: Box<Self>) -> Arc<dyn HandledMarks> {
        Arc::new(*self)
    }
}

#[tokio::test]
async fn memory_marks_shared_across_dispatchers_skip_what_was_handled() {
    let marks = Arc::new(MemoryMarks::new(100));
    restart_handles_nothing_twice(|| Box::new(marks.clone())).await;
}

#[tokio::test]
async fn without_persisted_marks_a_restart_handles_again() {
    // The failure the stores exist for: each run's window starts empty.
    let first = one_run(MemoryMarks::new(100), vec![message(1, "m-1", "alice@srv")]).await;
    let second = one_run(MemoryMarks::new(100), vec![message(1, "m-1", "alice@srv")]).await;
    assert_eq!((first.len(), second.len()), (1, 1));
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_marks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.db");
    let mut opened = Vec::new();
    for _ in 0..2 {
        opened.push(
            trueconf_bot::dispatch::SqliteMarks::open(&path)
                .await
                .unwrap(),
        );
    }
    let stores = Mutex::new(opened);
    restart_handles_nothing_twice(|| Box::new(stores.lock().unwrap().remove(0))).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_marks_survive_a_restart() {
    let server = redis_server::RedisServer::shared_or_own();
    let prefix = redis_server::unique_prefix();
    let mut opened = Vec::new();
    for _ in 0..2 {
        opened.push(
            trueconf_bot::dispatch::RedisMarks::connect_with(
                server.url(),
                prefix.clone(),
                Duration::from_secs(60),
            )
            .await
            .unwrap(),
        );
    }
    let stores = Mutex::new(opened);
    restart_handles_nothing_twice(|| Box::new(stores.lock().unwrap().remove(0))).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_marks_fail_fast_and_keep_marks_while_redis_is_down() {
    let mut server = redis_server::RedisServer::own();
    let marks = trueconf_bot::dispatch::RedisMarks::connect_with(
        server.url(),
        redis_server::unique_prefix(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    marks.mark_handled(1).await.unwrap();
    assert!(marks.is_handled(1).await.unwrap());
    server.stop();
    assert!(marks.mark_handled(2).await.is_err());
    // Down: no waiting for a timeout per event, and the mark is kept for later.
    let started = std::time::Instant::now();
    assert!(marks.is_handled(2).await.is_err());
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(marks.pending_marks() >= 1);
}

/// Collects what the test's tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn another_session_answering_as_the_bot_is_warned_about_once() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let router = Router::new().message(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dispatcher = Dispatcher::detached(router)
        .self_id("bot@srv")
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let run = tokio::spawn(dispatcher.run_on(rx));
    // The server sends a session the bot's messages from other sessions only: these were
    // sent by another process logged in as the bot.
    tx.send(message(1, "m-1", "alice@srv")).await.unwrap();
    tx.send(message(2, "m-2", "bot@srv")).await.unwrap();
    tx.send(message(3, "m-3", "bot@srv")).await.unwrap();
    drop(tx);
    run.await.unwrap().unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("another session of this bot account").count(),
        1,
        "one warning, not one per message: {text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("DispatcherBuilder::replicas"),
        "names the fix: {text}"
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "own messages still skipped"
    );
}

#[tokio::test]
async fn a_bot_alone_is_not_warned_about() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dispatcher = Dispatcher::detached(Router::new().message(|| async {}))
        .self_id("bot@srv")
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let run = tokio::spawn(dispatcher.run_on(rx));
    tx.send(message(1, "m-1", "alice@srv")).await.unwrap();
    drop(tx);
    run.await.unwrap().unwrap();
    assert!(logs.0.lock().unwrap().is_empty());
}

/// Records, at each mark, whether the bot's answer had reached the server by then.
struct AnsweredAtMark {
    sim: Arc<trueconf_bot::testkit::Sim>,
    chat: Arc<Mutex<String>>,
    answered: Arc<Mutex<Vec<bool>>>,
    inner: MemoryMarks,
}

impl HandledMarks for AnsweredAtMark {
    fn is_handled(
        &self,
        key: u64,
    ) -> trueconf_bot::conversation::BoxFuture<trueconf_bot::Result<bool>> {
        self.inner.is_handled(key)
    }
    fn mark_handled(
        &self,
        key: u64,
    ) -> trueconf_bot::conversation::BoxFuture<trueconf_bot::Result<()>> {
        let chat = self.chat.lock().unwrap().clone();
        let answered = self
            .sim
            .history(&chat)
            .iter()
            .any(|m| m.text() == Some("echo"));
        self.answered.lock().unwrap().push(answered);
        self.inner.mark_handled(key)
    }
}

/// A handler that queues its answer (`Call::queue`) returns before the answer is sent; the
/// mark must wait for the answer, or a crash in between loses it for good (the event counts
/// as handled everywhere) instead of costing a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_marked_handled_only_after_its_queued_answer_was_sent() {
    use trueconf_bot::bot::Bot;
    use trueconf_bot::connection::{AckMode, ConnectionState};
    use trueconf_bot::dispatch::{HandlerResult, MessageContext};
    use trueconf_bot::testkit::{Sim, SimConfig};

    let sim = Arc::new(Sim::start(SimConfig::default()).await.unwrap());
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(AckMode::AfterHandled)
        .build()
        .unwrap();
    let router = Router::new().message(|msg: MessageContext| async move {
        msg.answer("echo").queue().await?;
        HandlerResult::Ok(())
    });
    let chat = Arc::new(Mutex::new(String::new()));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let marks = AnsweredAtMark {
        sim: sim.clone(),
        chat: chat.clone(),
        answered: answered.clone(),
        inner: MemoryMarks::new(100),
    };
    let dispatcher = Dispatcher::builder(bot.clone(), router)
        .handled_marks(marks)
        .build()
        .unwrap();
    tokio::spawn(dispatcher.run());
    let mut state = bot.state();
    tokio::time::timeout(
        Duration::from_secs(20),
        state.wait_for(|s| matches!(s, ConnectionState::Ready)),
    )
    .await
    .expect("ready")
    .expect("state");
    let alice = sim.user("alice");
    *chat.lock().unwrap() = alice.create_p2p_with_bot().await.unwrap();
    // The server takes its time with the answer: the handler returns long before it is sent.
    sim.faults().delay_responses(Duration::from_millis(300));
    let id = chat.lock().unwrap().clone();
    alice.send_text(&id, "hi").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *answered.lock().unwrap(),
        [true],
        "marked before the answer was sent"
    );
}
