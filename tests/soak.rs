//! Soak: an echo bot under continuous load with chats coming and going and the socket flapping,
//! for `TRUECONF_SOAK_SECS` seconds (default 120). At the end: every event answered, resident
//! memory within 10 % of what it was after the warm-up, no conversation actor and no pending
//! request left behind.
//!
//! Ignored by a plain `cargo test` because of its length; `.ci/run` runs it with
//! `cargo test --all-features --test soak -- --ignored --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use trueconf_bot::bot::{Bot, ReconnectPolicy};
use trueconf_bot::connection::AckMode;
use trueconf_bot::dispatch::{Dispatcher, DispatcherHandle, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

const IDLE: Duration = Duration::from_millis(300);

/// Resident set size of this process in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits until the dispatcher is idle and every idle conversation has stopped.
async fn quiesce(bot: &Bot, handle: &DispatcherHandle) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(IDLE * 2).await;
        let m = handle.metrics();
        if m.in_flight == 0 && m.live_conversations <= 1 && bot.in_flight() == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never quiet: {m:?}, pending {}",
            bot.in_flight()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by .ci/run with --ignored"]
async fn soak_with_churning_chats_and_a_flapping_socket() {
    let total = Duration::from_secs(
        std::env::var("TRUECONF_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    let warmup = (total / 5).max(Duration::from_secs(5));
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(AckMode::AfterHandled)
        .receive_unread(true)
        .request_timeout(Duration::from_secs(2))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200))
                .max_retries(None),
        )
        .build()
        .unwrap();
    let echo_retries = Arc::new(AtomicU64::new(0));
    let r = echo_retries.clone();
    let router = Router::new().message(move |msg: MessageContext| {
        let r = r.clone();
        async move {
            let text = msg.text().unwrap_or_default().to_owned();
            // A write cut by a flap has an unknown outcome: send again (the load counts each
            // echo once), a few times at most.
            for _ in 0..5 {
                match msg.answer(text.clone()).await {
                    Ok(_) => break,
                    Err(e) if e.is_transient() => {
                        r.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => break,
                }
            }
            HandlerResult::Ok(())
        }
    });
    let d = Dispatcher::builder(bot.clone(), router)
        .idle_timeout(IDLE)
        .build()
        .unwrap();
    let handle = d.handle();
    let task = tokio::spawn(d.run());

    let faults = sim.faults();
    let flapping = Arc::new(AtomicBool::new(true));
    let fl = flapping.clone();
    let flapper = tokio::spawn(async move {
        let mut n = 0u64;
        while fl.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            n += 1;
            if n.is_multiple_of(4) {
                faults.restart(Duration::from_millis(100));
            } else {
                faults.drop_connections();
            }
        }
        n
    });

    let began = Instant::now();
    let (mut rounds, mut sent, mut replied, mut chats) = (0u64, 0u64, 0u64, 0u64);
    let mut warm: Option<u64> = None;
    let mut peak_conversations = 0;
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while began.elapsed() < total {
        // Every round brings fresh chats; the last round's conversations go idle and stop.
        let spec = LoadSpec {
            events: 1500,
            chats: rand::random_range(20..200),
            window: 200,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            rate: None,
        };
        chats += u64::from(spec.chats);
        let report = sim.run_load(spec).await.unwrap();
        rounds += 1;
        sent += report.sent;
        replied += report.replied;
        assert_eq!(report.replied, report.sent, "round {rounds}: {report:?}");
        peak_conversations = peak_conversations.max(handle.metrics().live_conversations);
        let secs = began.elapsed().as_secs();
        if samples
            .last()
            .is_none_or(|(t, _)| secs >= t + total.as_secs().div_ceil(10))
        {
            samples.push((secs, rss_kib()));
        }
        if warm.is_none() && began.elapsed() >= warmup {
            quiesce(&bot, &handle).await;
            warm = Some(rss_kib());
        }
    }
    flapping.store(false, Ordering::Relaxed);
    let flaps = flapper.await.unwrap();
    quiesce(&bot, &handle).await;
    let end = rss_kib();
    let warm = warm.expect("the run outlasted the warm-up");
    let m = handle.metrics();
    eprintln!(
        "SOAK {:?}: rounds={rounds} chats={chats} events_sent={sent} answered={replied} \
         flaps={flaps} connections={} echo_retries={} duplicates_suppressed={} \
         peak_conversations={peak_conversations} live_conversations={} pending_requests={} \
         rss_after_warmup={} KiB rss_end={} KiB ({:+.1} %)",
        began.elapsed(),
        sim.stats().connections,
        echo_retries.load(Ordering::Relaxed),
        m.duplicates,
        m.live_conversations,
        bot.in_flight(),
        warm,
        end,
        (end as f64 / warm as f64 - 1.0) * 100.0
    );
    eprintln!("SOAK RSS trend (s, KiB): {samples:?}");
    assert_eq!(replied, sent, "every event answered");
    assert!(flaps >= 3, "the socket flapped: {flaps}");
    assert!(
        m.live_conversations <= 1,
        "conversation actors leaked: {m:?}"
    );
    assert_eq!(m.in_flight, 0);
    assert_eq!(bot.in_flight(), 0, "pending requests left behind");
    assert!(
        end <= warm + warm / 10,
        "RSS grew from {warm} KiB after warm-up to {end} KiB"
    );
    handle.shutdown();
    task.await.unwrap().unwrap();
}
