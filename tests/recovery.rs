//! Recovery after a lost socket: back-off is for consecutive failures, not for the first
//! reconnect after a working connection went away (issue 16). The policies here use back-off
//! delays far longer than the generous bounds the tests allow, so a first reconnect that
//! waited out the back-off fails them however busy the machine is.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trueconf_bot::bot::{Bot, ReconnectPolicy};
use trueconf_bot::connection::{AckMode, ConnectionState};
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::{Sim, SimConfig};

/// An echo bot on `sim` with `policy`; returns the bot and every state it went through.
async fn echo_bot(sim: &Sim, policy: ReconnectPolicy) -> (Bot, Arc<Mutex<Vec<ConnectionState>>>) {
    let states: Arc<Mutex<Vec<ConnectionState>>> = Default::default();
    let s = states.clone();
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(AckMode::AfterHandled)
        .receive_unread(true)
        .reconnect(policy)
        .on_state_change(move |st| s.lock().unwrap().push(st.clone()))
        .build()
        .unwrap();
    let router = Router::new().message(|msg: MessageContext| async move {
        let text = msg.text().unwrap_or_default().to_owned();
        msg.answer(text).await?;
        HandlerResult::Ok(())
    });
    let d = Dispatcher::builder(bot.clone(), router).build().unwrap();
    tokio::spawn(d.run());
    let mut st = bot.state();
    tokio::time::timeout(
        Duration::from_secs(20),
        st.wait_for(|s| matches!(s, ConnectionState::Ready)),
    )
    .await
    .expect("bot ready")
    .expect("state");
    (bot, states)
}

fn reconnects(states: &Mutex<Vec<ConnectionState>>) -> usize {
    states
        .lock()
        .unwrap()
        .iter()
        .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .count()
}

async fn wait_ready_again(bot: &Bot, states: &Mutex<Vec<ConnectionState>>, within: Duration) {
    let deadline = Instant::now() + within;
    while reconnects(states) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut st = bot.state();
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, st.wait_for(|s| matches!(s, ConnectionState::Ready)))
        .await
        .expect("ready again within the bound")
        .expect("state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reconnect_after_a_server_restart_does_not_wait_for_back_off() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    // A back-off of 30 s or more: waiting it out would blow every bound below.
    let policy = ReconnectPolicy::default()
        .min_delay(Duration::from_secs(30))
        .max_delay(Duration::from_secs(60))
        .max_retries(None);
    let (bot, states) = echo_bot(&sim, policy).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "before").await.unwrap();
    sim.expect_message(&chat).await.unwrap();
    for round in 0..3 {
        let closed = Instant::now();
        sim.faults().restart(Duration::ZERO);
        wait_ready_again(&bot, &states, Duration::from_secs(10)).await;
        let took = closed.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "round {round}: reconnected after {took:?}"
        );
        alice
            .send_text(&chat, &format!("after {round}"))
            .await
            .unwrap();
        let echo = sim.expect_message(&chat).await.unwrap();
        assert!(
            echo.to_string().contains(&format!("after {round}")),
            "{echo}"
        );
        states.lock().unwrap().clear();
    }
    assert_eq!(sim.stats().auths, 4, "one auth per socket, no extra round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_failures_still_back_off() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let policy = ReconnectPolicy::default()
        .min_delay(Duration::from_millis(400))
        .max_delay(Duration::from_secs(60))
        .jitter(false)
        .max_retries(None);
    let (bot, states) = echo_bot(&sim, policy).await;
    // Down for 2 s: the immediate retry is refused, then 0.4 s, 0.8 s, 1.6 s… A tight loop
    // would make hundreds of attempts.
    let outage = Duration::from_secs(2);
    let began = Instant::now();
    sim.faults().restart(outage);
    wait_ready_again(&bot, &states, Duration::from_secs(20)).await;
    let back_after = began.elapsed();
    assert!(back_after >= outage, "connected while refused");
    let attempts = states
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            ConnectionState::Reconnecting { attempt } => Some(*attempt),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} attempts in a {outage:?} outage"
    );
}

/// How the echo handler sends its reply.
#[derive(Clone, Copy)]
enum Reply {
    /// `Call::queue`, a failure returned.
    Queued,
    /// Awaited, a failure returned.
    Awaited,
    /// Awaited, a transient failure retried a few times, then swallowed (the handler returns
    /// `Ok`), as the soak's echo does.
    Retried,
}

/// The echo bot of the e2e bench (acknowledged after handling) under a load run in which the
/// server closes the socket every `every` events.
async fn load_with_drops(every: u64, reply: Reply) -> trueconf_bot::testkit::LoadReport {
    use std::sync::atomic::{AtomicBool, Ordering};
    let sim = Arc::new(Sim::start(SimConfig::default()).await.unwrap());
    let bot = trueconf_bot::harness::bot_builder(&sim)
        .ack_mode(AckMode::AfterHandled)
        .receive_unread(true)
        .build()
        .unwrap();
    let router = Router::new().message(move |msg: MessageContext| async move {
        let text = msg.text().unwrap_or_default().to_owned();
        match reply {
            Reply::Queued => msg.answer(text).queue().await?,
            Reply::Awaited => drop(msg.answer(text).await?),
            Reply::Retried => {
                for _ in 0..5 {
                    match msg.answer(text.clone()).await {
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        _ => break,
                    }
                }
            }
        }
        HandlerResult::Ok(())
    });
    let d = Dispatcher::builder(bot.clone(), router).build().unwrap();
    tokio::spawn(d.run());
    let stop = Arc::new(AtomicBool::new(false));
    let dropper = {
        let (sim, stop) = (sim.clone(), stop.clone());
        tokio::spawn(async move {
            let mut closes = 0;
            let mut next = sim.stats().pushed + every;
            while !stop.load(Ordering::Relaxed) {
                if sim.stats().pushed >= next {
                    sim.faults().restart(Duration::ZERO);
                    closes += 1;
                    next = sim.stats().pushed + every;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            closes
        })
    };
    let report = sim
        .run_load(trueconf_bot::testkit::LoadSpec {
            events: 4_000,
            chats: 20,
            window: 100,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            rate: None,
        })
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let closes = dropper.await.unwrap();
    assert!(closes >= 3, "only {closes} closes: the test did not test");
    report
}

fn assert_nothing_lost(r: &trueconf_bot::testkit::LoadReport) {
    assert_eq!(
        (r.replied, r.lost, r.order_violations),
        (r.sent, 0, 0),
        "every event echoed, in order per chat: {:?}",
        r.chats_with_issues
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_closed_every_few_hundred_events_loses_nothing_with_queued_replies() {
    let r = load_with_drops(500, Reply::Queued).await;
    assert_nothing_lost(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_closed_every_few_hundred_events_loses_nothing_with_awaited_replies() {
    let r = load_with_drops(500, Reply::Awaited).await;
    assert_nothing_lost(&r);
}

/// A handler that retries its answer and then gives up without an error still loses nothing:
/// the retry is refused once the event's socket is gone (`EventRedelivered`), which marks the
/// event not done, and the server's new copy is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_closed_every_few_hundred_events_loses_nothing_when_the_handler_retries_then_gives_up()
 {
    let r = load_with_drops(500, Reply::Retried).await;
    assert_nothing_lost(&r);
}

/// What a handler does with a queued answer refused because its event's socket is gone.
#[derive(Clone, Copy)]
enum Refusal {
    /// Ignores the error and returns `Ok`.
    Ignored,
    /// Returns it to a router's own error handler, which swallows it.
    ToRouter,
}

/// The server restarts while a handler is running; its queued answer is then refused
/// (`EventRedelivered`). The event must count as not done whatever the handler does with the
/// refusal, so the copy the server sends again on the new socket is handled and answered.
async fn refused_answer_is_answered_on_the_redelivered_copy(refusal: Refusal) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = trueconf_bot::harness::bot_builder(&sim)
        .ack_mode(AckMode::AfterHandled)
        .receive_unread(true)
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(tokio::sync::Notify::new());
    let (r, n) = (runs.clone(), restarted.clone());
    let router = Router::new().message(move |msg: MessageContext| {
        let (runs, restarted) = (r.clone(), n.clone());
        async move {
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                // The first run outlives its socket.
                restarted.notified().await;
            }
            let queued = msg.answer("answer").queue().await;
            match refusal {
                Refusal::Ignored => drop(queued),
                Refusal::ToRouter => queued?,
            }
            HandlerResult::Ok(())
        }
    });
    let router = match refusal {
        Refusal::ToRouter => router.error_handler(|_, _| async {}),
        Refusal::Ignored => router,
    };
    let d = Dispatcher::builder(bot, router).build().unwrap();
    let _running = trueconf_bot::harness::SimBot::run(d).await.expect("ready");
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "hi").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.faults().restart(Duration::ZERO);
    // The old socket is retired before the handler goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    restarted.notify_one();
    let answered = || {
        sim.history(&chat)
            .iter()
            .filter(|m| m.text() == Some("answer"))
            .count()
    };
    while answered() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(answered(), 1, "answered once, from the redelivered copy");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the copy was handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_answer_refused_for_redelivery_and_ignored_is_answered_on_the_copy() {
    refused_answer_is_answered_on_the_redelivered_copy(Refusal::Ignored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_answer_refused_for_redelivery_taken_by_a_router_is_answered_on_the_copy() {
    refused_answer_is_answered_on_the_redelivered_copy(Refusal::ToRouter).await;
}
