//! Fault tests: an echo bot (a `Bot` driven by a `Dispatcher`) against the emulator's fault
//! modes. Every scenario counts the events the scripted users sent, the events a handler
//! finished (`handled`), the ones no handler ever finished (`lost`) and the extra handler runs
//! (`duplicated`), prints them (`cargo test --test faults -- --nocapture`) and asserts what
//! [`AckMode`] promises:
//!
//! - both modes, while the bot process lives and `receive_unread` is on: nothing is lost. An
//!   event is acknowledged only once the client has it, so an event pushed into a dying socket
//!   is re-delivered by the server after the reconnect; an event whose acknowledgement died
//!   with the socket comes again too, and the dispatcher's duplicate window makes sure the
//!   handler still runs once;
//! - the bot process dies (here: handlers stop finishing and the bot is shut down, then a new
//!   bot takes over): [`AckMode::AfterHandled`] loses nothing (at-least-once), while
//!   [`AckMode::OnReceive`] loses exactly the events it had received but not handled, and
//!   nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use trueconf_bot::Result;
use trueconf_bot::bot::{Bot, BotBuilder, ReconnectPolicy};
use trueconf_bot::connection::{AckMode, ConnectionState};
use trueconf_bot::dispatch::{Dispatcher, DispatcherHandle, HandlerResult, MessageContext, Router};
use trueconf_bot::error::DisconnectKind;
use trueconf_bot::testkit::{Sim, SimConfig, SimUser};

/// What the handlers did, by message text (every sent text is unique).
#[derive(Default)]
struct Tally {
    calls: Mutex<HashMap<String, u32>>,
    echo_errors: Mutex<Vec<String>>,
    /// Echoes refused because the event's socket was gone: the event comes again and its
    /// handler runs again (the one duplicate a handler may see).
    refused: AtomicU64,
    /// Handlers wait while this is non-zero and the event number is at least this (crash).
    hang_from: AtomicU64,
    started: AtomicU64,
}

impl Tally {
    fn handled(&self, text: &str) -> bool {
        self.calls.lock().unwrap().contains_key(text)
    }
}

#[derive(Clone, Copy)]
struct Handling {
    /// Random handler delay range in milliseconds, before the echo.
    slow_ms: (u64, u64),
}

const FAST: Handling = Handling { slow_ms: (0, 0) };

fn builder(sim: &Sim, ack: AckMode) -> BotBuilder {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(ack)
        .receive_unread(true)
        .request_timeout(Duration::from_secs(3))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(250))
                .max_retries(None),
        )
}

struct EchoBot {
    bot: Bot,
    handle: DispatcherHandle,
    task: JoinHandle<Result<()>>,
    tally: Arc<Tally>,
    /// Every state the connection went through.
    states: Arc<Mutex<Vec<ConnectionState>>>,
}

impl EchoBot {
    async fn start(b: BotBuilder, how: Handling) -> EchoBot {
        let states: Arc<Mutex<Vec<ConnectionState>>> = Default::default();
        let s = states.clone();
        let bot = b
            .on_state_change(move |st| s.lock().unwrap().push(st.clone()))
            .build()
            .unwrap();
        let tally = Arc::new(Tally::default());
        let t = tally.clone();
        let router = Router::new().message(move |msg: MessageContext| {
            let t = t.clone();
            async move {
                let n = t.started.fetch_add(1, Ordering::SeqCst) + 1;
                let hang = t.hang_from.load(Ordering::SeqCst);
                if hang != 0 && n >= hang {
                    // A crashed process: this handler never finishes.
                    std::future::pending::<()>().await;
                }
                let (lo, hi) = how.slow_ms;
                if hi > 0 {
                    let ms = rand::random_range(lo..=hi);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let text = msg.text().unwrap_or_default().to_owned();
                if let Err(e) = msg.answer(text.clone()).await {
                    if e.disconnect_kind() == Some(DisconnectKind::EventRedelivered) {
                        t.refused.fetch_add(1, Ordering::SeqCst);
                    }
                    t.echo_errors.lock().unwrap().push(e.to_string());
                }
                *t.calls.lock().unwrap().entry(text).or_default() += 1;
                HandlerResult::Ok(())
            }
        });
        let d = Dispatcher::builder(bot.clone(), router)
            .shutdown_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let handle = d.handle();
        let task = tokio::spawn(d.run());
        let mut st = bot.state();
        tokio::time::timeout(
            Duration::from_secs(10),
            st.wait_for(|s| matches!(s, ConnectionState::Ready)),
        )
        .await
        .expect("bot ready")
        .expect("state");
        EchoBot {
            bot,
            handle,
            task,
            tally,
            states,
        }
    }

    fn failed(&self) -> Option<ConnectionState> {
        self.states
            .lock()
            .unwrap()
            .iter()
            .find(|s| matches!(s, ConnectionState::Failed(_)))
            .cloned()
    }

    async fn stop(self) {
        self.handle.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Scripted users, one personal chat each with the bot; event `i` goes to chat `i % n`.
struct Users {
    chats: Vec<(SimUser, String)>,
    sent: Vec<String>,
    tag: &'static str,
}

impl Users {
    async fn new(sim: &Sim, tag: &'static str, n: usize) -> Users {
        let mut chats = Vec::new();
        for i in 0..n {
            let u = sim.user(&format!("{tag}-user-{i}"));
            let chat = u.create_p2p_with_bot().await.unwrap();
            chats.push((u, chat));
        }
        Users {
            chats,
            sent: Vec::new(),
            tag,
        }
    }

    async fn send(&mut self) -> String {
        let i = self.sent.len();
        let text = format!("{}-{i}", self.tag);
        let (u, chat) = &self.chats[i % self.chats.len()];
        u.send_text(chat, &text).await.unwrap();
        self.sent.push(text.clone());
        text
    }

    async fn send_n(&mut self, n: usize) {
        for _ in 0..n {
            self.send().await;
        }
    }
}

/// The counts of one scenario.
#[derive(Debug)]
struct Figures {
    sent: usize,
    handled: usize,
    lost: usize,
    duplicated: u64,
}

fn figures(sent: &[String], calls: &[&HashMap<String, u32>]) -> Figures {
    let mut merged: HashMap<&str, u32> = HashMap::new();
    for c in calls {
        for (k, v) in c.iter() {
            *merged.entry(k).or_default() += v;
        }
    }
    let handled = sent
        .iter()
        .filter(|t| merged.contains_key(t.as_str()))
        .count();
    Figures {
        sent: sent.len(),
        handled,
        lost: sent.len() - handled,
        duplicated: merged
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum(),
    }
}

fn report(scenario: &str, mode: AckMode, f: &Figures, sim: &Sim, extra: &str) {
    let s = sim.stats();
    eprintln!(
        "FAULTS {scenario} [{mode:?}]: sent={} handled={} lost={} duplicated={} | \
         connections={} redelivered={} {extra}",
        f.sent, f.handled, f.lost, f.duplicated, s.connections, s.redelivered
    );
}

/// Waits until every sent text was handled (or `within` passes), then a little longer so a
/// late duplicate would be counted.
async fn settle(tally: &Tally, sent: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !sent.iter().all(|t| tally.handled(t)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_nothing_lost(scenario: &str, bot: &EchoBot, f: &Figures) {
    assert_eq!(bot.failed(), None, "{scenario}: the bot gave up");
    assert_eq!(f.lost, 0, "{scenario}: lost events: {f:?}");
    // A handler whose echo was refused (its socket gone) runs again on the redelivery, and
    // only such a handler.
    let refused = bot.tally.refused.load(Ordering::SeqCst);
    assert!(
        f.duplicated <= refused,
        "{scenario}: a redelivery reached a handler twice: {f:?}, refused echoes {refused}"
    );
}

// ---------------------------------------------------------------- scenarios

async fn restart_under_sustained_load(mode: AckMode) {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = EchoBot::start(builder(&sim, mode), FAST).await;
    let mut users = Users::new(&sim, "restart", 40).await;
    let faults = sim.faults();
    let restarting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let r = restarting.clone();
    let restarts = tokio::spawn(async move {
        let mut n = 0u32;
        while r.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(400)).await;
            faults.restart(Duration::from_millis(150));
            n += 1;
        }
        n
    });
    // About 1 200 events over 3 s: a steady stream straight through the restarts.
    for _ in 0..60 {
        users.send_n(20).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restarting.store(false, Ordering::SeqCst);
    let restarts = restarts.await.unwrap();
    settle(&bot.tally, &users.sent, Duration::from_secs(30)).await;
    let f = figures(&users.sent, &[&bot.tally.calls.lock().unwrap()]);
    let m = bot.handle.metrics();
    report(
        "server restart under load",
        mode,
        &f,
        &sim,
        &format!("restarts={restarts} suppressed_duplicates={}", m.duplicates),
    );
    assert!(restarts >= 5, "{restarts}");
    assert!(sim.stats().connections > u64::from(restarts), "reconnected");
    assert_nothing_lost("restart", &bot, &f);
    assert_eq!(bot.bot.in_flight(), 0, "no request left pending");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_sustained_load_after_handled() {
    restart_under_sustained_load(AckMode::AfterHandled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_sustained_load_on_receive() {
    restart_under_sustained_load(AckMode::OnReceive).await;
}

/// How long connections are refused: 3 s by default, `TRUECONF_FAULT_REFUSE_SECS=30` for the
/// full scenario.
fn refuse_for() -> Duration {
    let secs = std::env::var("TRUECONF_FAULT_REFUSE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_for_a_while_then_back() {
    let outage = refuse_for();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = EchoBot::start(builder(&sim, AckMode::OnReceive), FAST).await;
    let mut users = Users::new(&sim, "refused", 10).await;
    users.send_n(20).await;
    settle(&bot.tally, &users.sent, Duration::from_secs(10)).await;

    let began = Instant::now();
    sim.faults().refuse_connections(outage);
    sim.faults().drop_connections();
    let mut st = bot.bot.state();
    st.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .await
        .unwrap();
    // A request made while offline waits for the connection instead of failing.
    let waiting = {
        let b = bot.bot.clone();
        tokio::spawn(async move {
            b.get_chats(10, 1)
                .timeout(outage * 2 + Duration::from_secs(5))
                .await
        })
    };
    // Users keep writing while the bot is away; the server keeps those events for it.
    let mut during = 0;
    while began.elapsed() < outage.mul_f64(0.8) {
        users.send_n(5).await;
        during += 5;
        tokio::time::sleep(outage / 20).await;
    }
    st.wait_for(|s| matches!(s, ConnectionState::Ready))
        .await
        .unwrap();
    let back_after = began.elapsed();
    let chats = waiting
        .await
        .unwrap()
        .expect("the offline request completed");
    assert!(!chats.chats.is_empty());
    settle(&bot.tally, &users.sent, Duration::from_secs(20)).await;
    let f = figures(&users.sent, &[&bot.tally.calls.lock().unwrap()]);
    let reconnects = bot
        .states
        .lock()
        .unwrap()
        .iter()
        .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .count();
    report(
        "connection refused then back",
        AckMode::OnReceive,
        &f,
        &sim,
        &format!(
            "outage={outage:?} back_after={back_after:?} sent_while_down={during} \
             reconnect_attempts={reconnects}"
        ),
    );
    assert!(
        back_after >= outage,
        "connected while refused: {back_after:?}"
    );
    assert!(
        back_after < outage + Duration::from_secs(2),
        "reconnect took too long after the outage: {back_after:?}"
    );
    assert_nothing_lost("refused", &bot, &f);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_delayed_past_the_request_timeout() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let b = builder(&sim, AckMode::AfterHandled).request_timeout(Duration::from_millis(150));
    let bot = EchoBot::start(b, FAST).await;
    let mut users = Users::new(&sim, "delayed", 3).await;
    sim.faults().delay_responses(Duration::from_millis(400));
    users.send_n(3).await;
    settle(&bot.tally, &users.sent, Duration::from_secs(5)).await;
    let timeouts = bot.tally.echo_errors.lock().unwrap().clone();
    assert_eq!(timeouts.len(), 3, "{timeouts:?}");
    assert!(
        timeouts.iter().all(|e| e.contains("timed out")),
        "{timeouts:?}"
    );
    assert_eq!(
        bot.bot.in_flight(),
        0,
        "timed-out calls leave no pending entry"
    );
    // The late answers (their ids are unknown by now) arrive and are ignored.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    sim.faults().clear();
    let mut later = Users::new(&sim, "after-delay", 3).await;
    later.send_n(3).await;
    for (_, chat) in &later.chats {
        let m = sim.expect_message(chat).await.unwrap();
        assert!(
            m["content"]["text"]
                .as_str()
                .unwrap()
                .starts_with("after-delay-")
        );
    }
    settle(&bot.tally, &later.sent, Duration::from_secs(5)).await;
    let all: Vec<String> = users.sent.iter().chain(&later.sent).cloned().collect();
    let f = figures(&all, &[&bot.tally.calls.lock().unwrap()]);
    report(
        "responses delayed past the timeout",
        AckMode::AfterHandled,
        &f,
        &sim,
        &format!("echo_timeouts={}", timeouts.len()),
    );
    assert_eq!(
        sim.stats().connections,
        1,
        "timeouts do not cost the socket"
    );
    assert_nothing_lost("delayed", &bot, &f);
    assert_eq!(bot.bot.in_flight(), 0);
    bot.stop().await;
}

async fn dropped_after_n_frames(mode: AckMode) {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = EchoBot::start(builder(&sim, mode), FAST).await;
    let mut users = Users::new(&sim, "drop-n", 8).await;
    settle(&bot.tally, &users.sent, Duration::from_secs(1)).await;
    let mut drops = 0;
    for n in 2..=24u64 {
        let before = sim.stats().connections;
        sim.faults().drop_after_frames(n);
        // 16 events and their 16 echoes: enough frames for the socket to die mid-round.
        users.send_n(16).await;
        wait_until(
            &format!("the drop after {n} frames"),
            Duration::from_secs(10),
            || sim.stats().connections > before && sim.authed_connections() == 1,
        )
        .await;
        drops += 1;
        settle(&bot.tally, &users.sent, Duration::from_secs(10)).await;
    }
    let f = figures(&users.sent, &[&bot.tally.calls.lock().unwrap()]);
    report(
        "socket dropped after N frames, N = 2..=24",
        mode,
        &f,
        &sim,
        &format!(
            "drops={drops} suppressed_duplicates={}",
            bot.handle.metrics().duplicates
        ),
    );
    assert_nothing_lost("drop after N", &bot, &f);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_dropped_after_n_frames_after_handled() {
    dropped_after_n_frames(AckMode::AfterHandled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_dropped_after_n_frames_on_receive() {
    dropped_after_n_frames(AckMode::OnReceive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_while_the_socket_flaps() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let mode = AckMode::AfterHandled;
    let slow = Handling { slow_ms: (20, 150) };
    let bot = EchoBot::start(builder(&sim, mode), slow).await;
    let mut users = Users::new(&sim, "flap", 30).await;
    let faults = sim.faults();
    let flapping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fl = flapping.clone();
    let flaps = tokio::spawn(async move {
        let mut n = 0u32;
        while fl.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            faults.drop_connections();
            n += 1;
        }
        n
    });
    for _ in 0..30 {
        users.send_n(10).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    flapping.store(false, Ordering::SeqCst);
    let flaps = flaps.await.unwrap();
    settle(&bot.tally, &users.sent, Duration::from_secs(30)).await;
    let f = figures(&users.sent, &[&bot.tally.calls.lock().unwrap()]);
    let echo_errors = bot.tally.echo_errors.lock().unwrap().len();
    report(
        "slow handlers while the socket flaps",
        mode,
        &f,
        &sim,
        &format!(
            "flaps={flaps} suppressed_duplicates={} echo_errors={echo_errors}",
            bot.handle.metrics().duplicates
        ),
    );
    assert!(flaps >= 5, "{flaps}");
    assert_nothing_lost("flapping", &bot, &f);
    assert_eq!(bot.bot.in_flight(), 0, "no request left pending");
    bot.stop().await;
}

/// The bot process "dies" after `K` handled events (later handlers never finish, then the bot
/// is shut down) and a fresh bot takes over. AfterHandled: nothing lost. OnReceive: exactly
/// the events the first bot had received and acknowledged but not handled are lost.
async fn crash_and_take_over(mode: AckMode) -> (Figures, usize) {
    const K: u64 = 40;
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let first = EchoBot::start(builder(&sim, mode), FAST).await;
    first.tally.hang_from.store(K + 1, Ordering::SeqCst);
    let mut users = Users::new(&sim, "crash", 20).await;
    users.send_n(200).await;
    wait_until("the first bot to hang", Duration::from_secs(10), || {
        first.tally.started.load(Ordering::SeqCst) > K
    })
    .await;
    // Let every pushed event reach the first bot before it dies.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked_by_first = sim.stats().acked;
    let handled_by_first = first.tally.calls.lock().unwrap().len();
    let calls_first = first.tally.calls.lock().unwrap().clone();
    first.bot.shutdown().await.unwrap();
    first.handle.shutdown();
    first.task.abort();
    users.send_n(100).await;

    let second = EchoBot::start(builder(&sim, mode), FAST).await;
    settle(&second.tally, &users.sent, Duration::from_secs(5)).await;
    let calls_second = second.tally.calls.lock().unwrap().clone();
    let f = figures(&users.sent, &[&calls_first, &calls_second]);
    // The first bot's acknowledgements of the 20 createP2PChat events are not messages.
    let received_unhandled = (acked_by_first as usize).saturating_sub(20 + handled_by_first);
    report(
        "bot process dies, a new one takes over",
        mode,
        &f,
        &sim,
        &format!(
            "handled_before_crash={handled_by_first} acked_by_first={acked_by_first} \
             received_unhandled={received_unhandled}"
        ),
    );
    assert_eq!(second.failed(), None);
    second.stop().await;
    (f, received_unhandled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_nothing_after_handled() {
    let (f, _) = crash_and_take_over(AckMode::AfterHandled).await;
    assert_eq!(f.lost, 0, "at-least-once across a crash: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_exactly_the_received_unhandled_events_on_receive() {
    let (f, received_unhandled) = crash_and_take_over(AckMode::OnReceive).await;
    assert!(received_unhandled > 0, "the crash interrupted something");
    assert_eq!(
        f.lost, received_unhandled,
        "OnReceive loses what was acknowledged but not handled, and only that: {f:?}"
    );
    assert_eq!(f.duplicated, 0, "{f:?}");
}

/// A consumer that lags behind: the runtime holds events back while the stream is full. In
/// OnReceive mode those were acknowledged already, so a socket drop must not discard them.
async fn lagging_consumer_survives_a_drop(mode: AckMode) -> Figures {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = builder(&sim, mode).event_buffer(4).build().unwrap();
    let mut events = bot.events().unwrap();
    bot.start().await.unwrap();
    let mut users = Users::new(&sim, "lag", 1).await;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Default::default();
    let s = seen.clone();
    let consumer = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Ok(trueconf_bot::types::Event::Message(m)) =
                trueconf_bot::types::Event::decode(&ev.method, &ev.payload)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
                *s.lock()
                    .unwrap()
                    .entry(m.text().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
            ev.ack.ack();
        }
    });
    users.send_n(40).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.faults().drop_connections();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && seen.lock().unwrap().len() < users.sent.len() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let f = figures(&users.sent, &[&seen.lock().unwrap()]);
    report(
        "lagging consumer, socket dropped",
        mode,
        &f,
        &sim,
        "event_buffer=4",
    );
    bot.shutdown().await.unwrap();
    consumer.abort();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_consumer_loses_nothing_on_a_drop_on_receive() {
    let f = lagging_consumer_survives_a_drop(AckMode::OnReceive).await;
    assert_eq!(f.lost, 0, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_consumer_loses_nothing_on_a_drop_after_handled() {
    let f = lagging_consumer_survives_a_drop(AckMode::AfterHandled).await;
    assert_eq!(f.lost, 0, "{f:?}");
}
