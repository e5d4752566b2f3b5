//! Operations: the `/metrics` and health endpoints against the emulator, and a graceful stop
//! on SIGTERM.
//!
//! Run: `cargo test --features testkit,prometheus --test ops`. The metric series are per
//! process, so the tests that read them take turns ([`serial`]).

#![cfg(feature = "prometheus")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use trueconf_bot::bot::{Bot, ReconnectPolicy, ServerEvent};
use trueconf_bot::connection::AckMode;
use trueconf_bot::dispatch::{
    Dispatcher, EventKind, Filter, HandlerResult, MessageContext, Router, Text,
};
use trueconf_bot::harness::event;
use trueconf_bot::ops::OpsServer;
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

/// The metric series are process-wide: tests reading them run one at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

fn bot_for(sim: &Sim) -> Bot {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(AckMode::OnReceive)
        .request_timeout(Duration::from_secs(10))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200))
                .max_retries(None),
        )
        .build()
        .unwrap()
}

fn echo_router() -> Router {
    Router::new().message(|msg: MessageContext| async move {
        msg.answer(msg.text().unwrap_or_default()).await?;
        HandlerResult::Ok(())
    })
}

/// `GET path` over HTTP/1.0, as a scraper or a probe would: the status and the body.
async fn get(ops: &OpsServer, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(ops.local_addr())
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of series `name{labels}` in a Prometheus text page, whatever the label order.
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeSet<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let got: BTreeSet<String> = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            (n == name && got == want).then(|| value.parse().ok())?
        })
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_counters_match_the_emulator_load_run() {
    let _serial = serial().await;
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    let dispatcher = Dispatcher::builder(bot.clone(), echo_router())
        .build()
        .unwrap();
    let handle = dispatcher.handle();
    let ops = OpsServer::builder(&bot)
        .dispatcher(handle.clone())
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (_, before) = get(&ops, "/metrics").await;
    let base = |name, labels: &[(&str, &str)]| value(&before, name, labels).unwrap_or(0.0);
    let received0 = base("trueconf_events_received_total", &[("kind", "message")]);
    let handled0 = base(
        "trueconf_events_handled_total",
        &[("kind", "message"), ("outcome", "handled")],
    );
    let ok0 = base(
        "trueconf_requests_total",
        &[("method", "sendMessage"), ("outcome", "ok")],
    );
    let run = tokio::spawn(dispatcher.run());
    let report = sim
        .run_load(LoadSpec {
            events: 3000,
            chats: 50,
            window: 200,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            rate: None,
        })
        .await
        .unwrap();
    assert_eq!(report.replied, report.sent, "{report:?}");
    // An echo reaches the emulator before the handler has its response and is counted.
    eventually("every handler counted", async || {
        handle.metrics().handled == report.sent
    })
    .await;
    let (status, page) = get(&ops, "/metrics").await;
    assert_eq!(status, 200);
    let read = |name, labels: &[(&str, &str)]| {
        value(&page, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{page}"))
    };
    let sent = report.sent as f64;
    assert_eq!(
        read("trueconf_events_received_total", &[("kind", "message")]) - received0,
        sent,
        "events received = events the emulator pushed"
    );
    assert_eq!(
        read(
            "trueconf_events_handled_total",
            &[("kind", "message"), ("outcome", "handled")]
        ) - handled0,
        report.replied as f64,
        "events handled = echoes the emulator received"
    );
    assert_eq!(
        read(
            "trueconf_requests_total",
            &[("method", "sendMessage"), ("outcome", "ok")]
        ) - ok0,
        report.replied as f64,
        "sendMessage requests = echoes"
    );
    assert!(read("trueconf_handler_duration_seconds_count", &[]) >= sent);
    assert!(
        read(
            "trueconf_request_duration_seconds_count",
            &[("method", "sendMessage")]
        ) >= sent
    );
    assert!(page.contains("trueconf_handler_duration_seconds_bucket{le=\"0.001\"}"));
    assert_eq!(
        read("trueconf_connection_state", &[("state", "ready")]),
        1.0
    );
    // Every chat of the load run has a conversation, awake or hibernating.
    let conversations = read("trueconf_conversations", &[("state", "live")])
        + read("trueconf_conversations", &[("state", "hibernating")]);
    assert!(conversations >= 50.0, "{conversations}");
    assert_eq!(read("trueconf_queued_events", &[]), 0.0);
    assert!(!page.contains(&sim.bot_token()));
    handle.shutdown();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_503_while_the_server_refuses_and_200_after() {
    let _serial = serial().await;
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    let ops = OpsServer::builder(&bot)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, body) = get(&ops, "/health/ready").await;
    assert_eq!(status, 503, "not started yet: {body}");
    assert!(body.contains("idle"), "{body}");
    bot.start().await.unwrap();
    assert_eq!(get(&ops, "/health/ready").await, (200, "ready\n".into()));
    let (_, page) = get(&ops, "/metrics").await;
    let reconnects0 = value(&page, "trueconf_reconnects_total", &[]).unwrap_or(0.0);

    // Every socket closed, and handshakes refused for a while.
    sim.faults().restart(Duration::from_secs(3));
    let mut body = String::new();
    eventually("readiness 503", async || {
        let (status, b) = get(&ops, "/health/ready").await;
        body = b;
        status == 503
    })
    .await;
    assert!(body.contains("not ready: reconnecting"), "{body}");
    let (status, _) = get(&ops, "/health/live").await;
    assert_eq!(status, 200, "alive while not ready");
    let (_, page) = get(&ops, "/metrics").await;
    assert_eq!(
        value(&page, "trueconf_connection_state", &[("state", "ready")]),
        Some(0.0)
    );
    assert_eq!(
        value(&page, "trueconf_reconnects_total", &[]),
        Some(reconnects0 + 1.0)
    );

    eventually("readiness 200 again", async || {
        get(&ops, "/health/ready").await.0 == 200
    })
    .await;
    let (_, page) = get(&ops, "/metrics").await;
    assert_eq!(
        value(&page, "trueconf_connection_state", &[("state", "ready")]),
        Some(1.0)
    );
    assert_eq!(get(&ops, "/nope").await.0, 404);
    bot.shutdown().await.unwrap();
    let (status, body) = get(&ops, "/health/ready").await;
    assert_eq!(
        (status, body.lines().next()),
        (503, Some("not ready: stopped"))
    );
}

fn message(id: u64, chat: &str, message_id: &str, author: &str, text: &str) -> ServerEvent {
    let payload = serde_json::json!({
        "messageId": message_id,
        "chat": {"chatId": chat, "chatTitle": "t", "chatType": 2},
        "timestamp": 1735314170572u64 + id,
        "type": 200,
        "author": {"id": author, "type": 1},
        "content": {"text": text, "parseMode": "text"},
    });
    event(id, "sendMessage", payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_counted_under_exactly_one_outcome() {
    let _serial = serial().await;
    let prometheus = trueconf_bot::ops::install_recorder().unwrap();
    let handled = |page: &str, outcome| {
        value(
            page,
            "trueconf_events_handled_total",
            &[("kind", "message"), ("outcome", outcome)],
        )
        .unwrap_or(0.0)
    };
    let before = prometheus.render();
    let router = Router::new().on_when(
        EventKind::Message,
        Filter::author("ann@srv"),
        |Text(text): Text| async move {
            match text.as_str() {
                "fail" => Err("refused".into()),
                "panic" => panic!("handler panic (expected by the test)"),
                _ => HandlerResult::Ok(()),
            }
        },
    );
    let dispatcher = Dispatcher::detached(router)
        .self_id("bot@srv")
        .error_handler(|_, _| async {})
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let run = tokio::spawn(dispatcher.run_on(rx));
    let events = [
        message(1, "c1", "m1", "ann@srv", "hello"),  // handled
        message(2, "c1", "m2", "ann@srv", "fail"),   // error
        message(3, "c2", "m3", "ann@srv", "panic"),  // panic
        message(4, "c2", "m1", "ann@srv", "hello"),  // duplicate of m1
        message(5, "c3", "m5", "bot@srv", "mine"),   // own
        message(6, "c3", "m6", "mallory@srv", "hi"), // unhandled: no route takes it
    ];
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    run.await.unwrap().unwrap();
    let after = prometheus.render();
    let delta = |outcome| handled(&after, outcome) - handled(&before, outcome);
    let received = |page: &str| {
        value(
            page,
            "trueconf_events_received_total",
            &[("kind", "message")],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(received(&after) - received(&before), 6.0);
    for outcome in ["handled", "error", "panic", "duplicate", "own", "unhandled"] {
        assert_eq!(delta(outcome), 1.0, "outcome {outcome}\n{after}");
    }
    assert_eq!(delta("overflow"), 0.0);
}

/// The child process of [`sigterm_lets_in_flight_handlers_finish`]: a bot on the parent's
/// emulator whose handler takes a while, run with `Dispatcher::run_until_signal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by sigterm_lets_in_flight_handlers_finish in a child process"]
async fn sigterm_child() {
    let (Ok(port), Ok(token)) = (
        std::env::var("TRUECONF_OPS_CHILD_PORT"),
        std::env::var("TRUECONF_OPS_CHILD_TOKEN"),
    ) else {
        return;
    };
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(port.parse().unwrap())
        .token(token)
        .build()
        .unwrap();
    let router = Router::new().message(|msg: MessageContext| async move {
        let text = msg.text().unwrap_or_default().to_owned();
        println!("handling {text}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        msg.answer(format!("done {text}")).await?;
        HandlerResult::Ok(())
    });
    let result = Dispatcher::builder(bot, router)
        .build()
        .unwrap()
        .run_until_signal()
        .await;
    println!("stopped: {result:?}");
    result.unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_handlers_finish() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let sim = Arc::new(Sim::start(SimConfig::default()).await.unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigterm_child", "--ignored", "--nocapture"])
        .env("TRUECONF_OPS_CHILD_PORT", sim.addr().port().to_string())
        .env("TRUECONF_OPS_CHILD_TOKEN", sim.bot_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });

    let mut chats = Vec::new();
    for i in 0..3 {
        let user = sim.user(&format!("user{i}"));
        let chat = user.create_p2p_with_bot().await.unwrap();
        chats.push((user, chat));
    }
    sim.wait_for_bot(Duration::from_secs(30)).await.unwrap();
    for (i, (user, chat)) in chats.iter().enumerate() {
        user.send_text(chat, &format!("m{i}")).await.unwrap();
    }
    let mut handling = 0;
    while handling < 3 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.recv())
            .await
            .expect("the child's handlers should start")
            .expect("the child exited early");
        handling += usize::from(line.starts_with("handling m"));
    }
    // Three handlers are sleeping mid-event: stop the process the way a container stop does.
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    for (i, (_, chat)) in chats.iter().enumerate() {
        let answer = sim
            .expect_message_within(chat, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(answer["content"]["text"], format!("done m{i}"), "{answer}");
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the child exits cleanly after SIGTERM: {status}"
    );
    let mut rest = Vec::new();
    while let Ok(line) = lines.try_recv() {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l == "stopped: Ok(())"), "{rest:?}");
}
