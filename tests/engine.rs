//! Where `Dispatcher::run` runs the bot and its handlers (issue 16, CPU per event): from a
//! multi-thread runtime, on one thread of its own by default; on the caller's workers when
//! asked; and giving up on `run` still stops the bot.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trueconf_bot::dispatch::{Dispatcher, Engine, HandlerResult, MessageContext, Router};
use trueconf_bot::harness::{SimBot, bot_builder};
use trueconf_bot::testkit::{Sim, SimConfig};

/// Runs a dispatcher with `engine` and returns the names of the threads its handler ran on,
/// for 40 messages over 4 chats.
async fn handler_threads(engine: Engine) -> BTreeSet<String> {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let s = seen.clone();
    let router = Router::new().message(move |msg: MessageContext| {
        let s = s.clone();
        async move {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            s.lock().unwrap().push(name);
            // Awaits a call, so the chats interleave on whatever threads they have.
            msg.answer("ok").await?;
            HandlerResult::Ok(())
        }
    });
    let bot = bot_builder(&sim).build().unwrap();
    let d = Dispatcher::builder(bot, router)
        .engine(engine)
        .build()
        .unwrap();
    let running = SimBot::run(d).await.expect("ready");
    let mut chats = Vec::new();
    for i in 0..4 {
        let user = sim.user(&format!("user{i}"));
        let chat = user.create_p2p_with_bot().await.unwrap();
        chats.push((user, chat));
    }
    for n in 0..10 {
        for (user, chat) in &chats {
            user.send_text(chat, &format!("m{n}")).await.unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 40, "every message handled");
    seen.iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_multi_thread_runtime_handlers_run_on_one_thread_of_their_own() {
    let threads = handler_threads(Engine::Auto).await;
    assert_eq!(
        threads,
        BTreeSet::from(["trueconf-bot".to_owned()]),
        "one dedicated thread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_runtime_is_kept_when_asked() {
    let threads = handler_threads(Engine::CallerRuntime).await;
    assert!(
        !threads.contains("trueconf-bot") && !threads.is_empty(),
        "the caller's workers: {threads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_on_run_stops_the_bot_on_its_thread() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_builder(&sim).build().unwrap();
    let d = Dispatcher::builder(bot.clone(), Router::new().message(|| async {}))
        .build()
        .unwrap();
    let mut st = bot.state();
    let gave_up = tokio::time::timeout(Duration::from_secs(3), d.run()).await;
    assert!(gave_up.is_err(), "run goes on until stopped");
    tokio::time::timeout(Duration::from_secs(20), st.wait_for(|s| s.is_terminal()))
        .await
        .expect("the bot stops once run is dropped")
        .expect("state");
}
