//! One busy chat (issue 16): calls a handler queues without waiting for the answer keep the
//! chat's order, report late failures to the error handler and, in `AfterHandled`, hold the
//! event's acknowledgement until their answer; and the distribution key decides which events
//! may overlap.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use trueconf_bot::bot::{Acknowledger, Bot, ServerEvent};
use trueconf_bot::connection::{AckMode, ConnectionState};
use trueconf_bot::dispatch::{
    DispatchError, Dispatcher, DispatcherBuilder, Distribution, HandlerResult, MessageContext,
    Router, Update,
};
use trueconf_bot::protocol::RawValue;
use trueconf_bot::testkit::{Sim, SimConfig};

fn ready_bot(sim: &Sim, ack: AckMode) -> Bot {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .ack_mode(ack)
        .build()
        .unwrap()
}

async fn run(d: DispatcherBuilder, bot: &Bot) {
    tokio::spawn(d.build().unwrap().run());
    let mut st = bot.state();
    tokio::time::timeout(
        Duration::from_secs(20),
        st.wait_for(|s| matches!(s, ConnectionState::Ready)),
    )
    .await
    .expect("ready")
    .expect("state");
}

fn texts(sim: &Sim, chat: &str) -> Vec<String> {
    sim.history(chat)
        .iter()
        .filter_map(|m| m.text())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_answers_keep_the_chat_order() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = ready_bot(&sim, AckMode::OnReceive);
    let router = Router::new().message(|msg: MessageContext| async move {
        let text = format!("echo {}", msg.text().unwrap_or_default());
        msg.answer(text).queue().await?;
        HandlerResult::Ok(())
    });
    // The whole burst fits the chat's queue.
    run(
        Dispatcher::builder(bot.clone(), router).queue_capacity(1_000),
        &bot,
    )
    .await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    const N: usize = 200;
    for i in 0..N {
        alice.send_text(&chat, &format!("m{i}")).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected: Vec<String> = (0..N).map(|i| format!("echo m{i}")).collect();
    loop {
        let echoes: Vec<String> = texts(&sim, &chat)
            .into_iter()
            .filter(|t| t.starts_with("echo "))
            .collect();
        if echoes.len() >= N || Instant::now() > deadline {
            assert_eq!(echoes, expected, "every echo, in the chat's order");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_that_fails_later_reaches_the_error_handler() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = ready_bot(&sim, AckMode::OnReceive);
    let errors: Arc<Mutex<Vec<String>>> = Default::default();
    let returned = Arc::new(AtomicUsize::new(0));
    let r = returned.clone();
    let router = Router::new().message(move |msg: MessageContext| {
        let r = r.clone();
        async move {
            msg.answer("x").queue().await?;
            r.fetch_add(1, Ordering::SeqCst);
            HandlerResult::Ok(())
        }
    });
    let e = errors.clone();
    let d = Dispatcher::builder(bot.clone(), router).error_handler(move |_u: Update, err| {
        let e = e.clone();
        async move {
            if let DispatchError::Queued { method, error } = &err {
                e.lock().unwrap().push(format!("{method}: {error:?}"));
            }
        }
    });
    run(d, &bot).await;
    sim.faults().fail_method("sendMessage", 304, Some(1));
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "hi").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while errors.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("sendMessage: "), "{errors:?}");
    assert_eq!(
        returned.load(Ordering::SeqCst),
        1,
        "the handler itself succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_without_an_answer_times_out_to_the_error_handler() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = ready_bot(&sim, AckMode::OnReceive);
    let timeouts = Arc::new(AtomicUsize::new(0));
    let router = Router::new().message(|msg: MessageContext| async move {
        msg.answer("x")
            .timeout(Duration::from_millis(300))
            .queue()
            .await?;
        HandlerResult::Ok(())
    });
    let t = timeouts.clone();
    let d = Dispatcher::builder(bot.clone(), router).error_handler(move |_u: Update, err| {
        let t = t.clone();
        async move {
            if let DispatchError::Queued {
                error: trueconf_bot::Error::Timeout { .. },
                ..
            } = &err
            {
                t.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    run(d, &bot).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    // Nobody awaits the call: only the request router's sweep can time it out.
    sim.faults().delay_responses(Duration::from_secs(30));
    alice.send_text(&chat, "hi").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while timeouts.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_handled_acknowledges_once_the_queued_answer_is_answered() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = ready_bot(&sim, AckMode::AfterHandled);
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let router = Router::new().message(move |msg: MessageContext| {
        let done = d2.clone();
        async move {
            msg.answer("x").queue().await?;
            done.store(true, Ordering::SeqCst);
            HandlerResult::Ok(())
        }
    });
    run(Dispatcher::builder(bot.clone(), router), &bot).await;
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    // Everything before this test's message is acknowledged first.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.stats().acked < sim.stats().pushed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked = sim.stats().acked;
    sim.faults().delay_responses(Duration::from_secs(2));
    alice.send_text(&chat, "hi").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(done.load(Ordering::SeqCst), "the handler returned");
    assert_eq!(
        sim.stats().acked,
        acked,
        "not acknowledged while the answer is outstanding"
    );
    while sim.stats().acked == acked && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sim.stats().acked,
        acked + 1,
        "acknowledged after the answer"
    );
}

fn message(id: u64, chat: &str, author: &str) -> ServerEvent {
    let payload = format!(
        r#"{{"messageId":"m{id}","chat":{{"chatId":"{chat}","chatTitle":"t","chatType":2}},"timestamp":1735314170572,"type":200,"author":{{"id":"{author}","type":1}},"box":{{"id":{id},"position":"{id}"}},"content":{{"text":"{author} {id}","parseMode":"text"}},"isEdited":false}}"#
    );
    ServerEvent {
        id,
        method: "sendMessage".into(),
        payload: RawValue::from_string(payload).unwrap(),
        ack: Acknowledger::noop(id),
    }
}

/// Alice's first message blocks until Bob's is handled: only a key that separates the two
/// users lets that happen. Returns whether Bob got through while Alice was blocked.
async fn bob_overtakes_a_blocked_alice(key: Distribution) -> bool {
    let gate = Arc::new(Notify::new());
    let order: Arc<Mutex<Vec<String>>> = Default::default();
    let (g, o) = (gate.clone(), order.clone());
    let router = Router::new().message(move |u: Update| {
        let (gate, order) = (g.clone(), o.clone());
        async move {
            let text = u.text().unwrap_or_default().to_owned();
            if text == "alice@srv 1" {
                let _ = tokio::time::timeout(Duration::from_secs(2), gate.notified()).await;
            }
            let bob = text.starts_with("bob");
            order.lock().unwrap().push(text);
            if bob {
                gate.notify_one();
            }
        }
    });
    let d = Dispatcher::detached(router)
        .distribution(key)
        .build()
        .unwrap();
    let handle = d.handle();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(d.run_on(rx));
    tx.send(message(1, "group", "alice@srv")).await.unwrap();
    tx.send(message(2, "group", "bob@srv")).await.unwrap();
    tx.send(message(3, "group", "alice@srv")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.lock().unwrap().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown();
    drop(tx);
    let _ = task.await;
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 3, "{order:?}");
    let alice: Vec<&String> = order.iter().filter(|t| t.starts_with("alice")).collect();
    assert_eq!(
        alice,
        ["alice@srv 1", "alice@srv 3"],
        "a user's order is kept"
    );
    order[0].starts_with("bob")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_chat_key_serialises_a_group_per_user_key_does_not() {
    assert!(!bob_overtakes_a_blocked_alice(Distribution::Chat).await);
    assert!(bob_overtakes_a_blocked_alice(Distribution::UserInChat).await);
    let by_author = Distribution::custom(|u: &Update| u.author_id().map(str::to_owned));
    assert!(bob_overtakes_a_blocked_alice(by_author).await);
}
