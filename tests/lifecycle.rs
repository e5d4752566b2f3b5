//! How a bot's life ends: SIGTERM under `Bot::run_until_signal` (what a service manager
//! sends), and dropping its last handle. A test binary of their own, because a signal goes to
//! the whole process.

#![cfg(unix)]

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use trueconf_bot::bot::Bot;
use trueconf_bot::connection::ConnectionState;
use trueconf_bot::testkit::{Sim, SimConfig};

fn bot_for(sim: &Sim) -> Bot {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_the_bot_down_gracefully() {
    // Taking over SIGTERM here first means that, whatever the timing, the signal below can
    // never fall through to its default action and kill the test process.
    let mut ours = signal(SignalKind::terminate()).unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    let mut state = bot.state();
    let run = tokio::spawn({
        let bot = bot.clone();
        async move { bot.run_until_signal().await }
    });
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == ConnectionState::Ready),
    )
    .await
    .expect("connected in time")
    .unwrap();
    // The bot works until the signal...
    let chat = sim.user("alice").create_p2p_with_bot().await.unwrap();
    bot.send_message(&chat, "before").await.unwrap();
    assert!(!run.is_finished());

    // SAFETY: raise only delivers a signal to this process; SIGTERM is handled (above).
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run_until_signal returned in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(*bot.state().borrow(), ConnectionState::Stopped);
    // ...and refuses calls once it stopped.
    assert!(bot.send_message(&chat, "after").await.is_err());
    ours.recv().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_shuts_the_bot_down() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    bot.start().await.unwrap();
    let mut state = bot.state();
    let chat = sim.user("bob").create_p2p_with_bot().await.unwrap();
    let clone = bot.clone();
    drop(bot);
    // A clone still serves.
    clone.send_message(&chat, "still here").await.unwrap();
    assert_eq!(*state.borrow(), ConnectionState::Ready);
    drop(clone);
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == ConnectionState::Stopped),
    )
    .await
    .expect("stopped after the last handle went")
    .unwrap();
}

#[tokio::test]
async fn dropping_a_bot_that_never_started_is_quiet() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    let state = bot.state();
    drop(bot);
    tokio::task::yield_now().await;
    assert_eq!(*state.borrow(), ConnectionState::Idle);
}
