//! The public test kit as a bot author uses it: waiting for a (re)started bot, typed views of
//! messages, waits for answers, edits, removals and files with typed failures, and the harness
//! that runs a dispatcher against the emulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use trueconf_bot::Error;
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dispatcher, DispatcherHandle, HandlerResult, MessageContext, Router};
use trueconf_bot::harness::{SimBot, bot_builder};
use trueconf_bot::testkit::{
    Action, ButtonAction, ChatKind, MessageKind, Person, ReplayOptions, Side, Sim, SimConfig,
    Transcript, eventually,
};
use trueconf_bot::transfer::InputFile;
use trueconf_bot::types::{Button, InlineKeyboard, ParseMode};

async fn echo(msg: MessageContext) -> HandlerResult {
    msg.reply(msg.text().unwrap_or_default()).await?;
    Ok(())
}

fn quick_sim() -> SimConfig {
    SimConfig {
        expect_timeout: Duration::from_secs(10),
        ..SimConfig::default()
    }
}

/// The lib.rs pattern, restarted: the old bot is told to stop and a new one started at once;
/// after `wait_for_bot` returns, a message sent at once reaches the new bot (the old socket,
/// still open for a moment, must not count as the bot being ready).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_bot_after_a_restart_waits_for_the_new_session() {
    let sim = Sim::start(quick_sim()).await.unwrap();
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let mut old: Option<(DispatcherHandle, JoinHandle<trueconf_bot::Result<()>>)> = None;
    for round in 0..5 {
        let bot = bot_builder(&sim).build().unwrap();
        let dispatcher = Dispatcher::builder(bot, Router::new().message(echo))
            .build()
            .unwrap();
        let handle = dispatcher.handle();
        let stopping = old.take().map(|(old_handle, old_task)| {
            old_handle.shutdown();
            old_task
        });
        let task = tokio::spawn(dispatcher.run());
        sim.wait_for_bot(Duration::from_secs(10)).await.unwrap();
        let text = format!("round {round}");
        alice.send_text(&chat, &text).await.unwrap();
        let answer = sim
            .expect_message(&chat)
            .await
            .unwrap_or_else(|e| panic!("the message sent right after wait_for_bot was lost: {e}"));
        assert_eq!(answer.text(), Some(text.as_str()));
        if let Some(stopping) = stopping {
            stopping.await.unwrap().unwrap();
        }
        old = Some((handle, task));
    }
}

/// The rule behind the restart test, without its race: a session `wait_for_bot` already
/// returned for does not make a later call return, even while it is still open.
#[tokio::test]
async fn wait_for_bot_does_not_count_a_session_it_already_returned_for() {
    let sim = Sim::start(quick_sim()).await.unwrap();
    let first = SimBot::start(&sim, Router::new().message(echo))
        .await
        .unwrap();
    let again = sim.wait_for_bot(Duration::from_millis(200)).await;
    assert!(
        matches!(again, Err(Error::Timeout { .. })),
        "the old session counted as new: {again:?}"
    );
    let second = SimBot::run(
        Dispatcher::builder(
            bot_builder(&sim).build().unwrap(),
            Router::new().message(echo),
        )
        .build()
        .unwrap(),
    )
    .await
    .unwrap();
    sim.wait_for_bot(Duration::from_secs(10)).await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn wait_for_bot_times_out_with_what_it_waited_for() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    match sim.wait_for_bot(Duration::from_millis(50)).await {
        Err(Error::Timeout { what, .. }) => assert!(what.contains("bot session"), "{what}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn sim_bot_restarts_and_keeps_answering() {
    let sim = Sim::start(quick_sim()).await.unwrap();
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    for round in 0..3 {
        let bot = SimBot::start(&sim, Router::new().message(echo))
            .await
            .unwrap();
        alice.send_text(&chat, &format!("r{round}")).await.unwrap();
        sim.expect_text(&chat, &format!("r{round}")).await.unwrap();
        let handle = bot.handle().clone();
        eventually("the handled counter", Duration::from_secs(5), || {
            (handle.metrics().handled > 0).then_some(())
        })
        .await
        .unwrap();
        bot.stop().await.unwrap();
    }
}

#[tokio::test]
async fn sim_bot_reports_a_bot_that_cannot_connect() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.set_user_disabled("bot", true);
    let bot = bot_builder(&sim).build().unwrap();
    let dispatcher = Dispatcher::builder(bot, Router::new()).build().unwrap();
    let err = SimBot::run(dispatcher).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
}

async fn keyboard(bot: Bot, msg: MessageContext) -> HandlerResult {
    match msg.text().unwrap_or_default() {
        "/menu" => {
            let keys = InlineKeyboard::builder()
                .row([
                    Button::command("Yes", "yes"),
                    Button::url("https://example.com/docs").label("Docs"),
                ])
                .build()?;
            msg.answer("**Pick** one")
                .parse_mode(ParseMode::Markdown)
                .buttons(keys)
                .await?;
        }
        "/edit" => {
            let sent = msg.answer("draft").await?;
            bot.edit_message(&sent.message_id, "final").await?;
        }
        "/remove" => {
            let sent = msg.answer("oops").await?;
            bot.remove_message(&sent.message_id).for_all(true).await?;
        }
        "/file" => {
            bot.send_document(msg.chat(), InputFile::bytes("hello.txt", b"hello".to_vec()))
                .await?;
        }
        other => {
            msg.answer(format!("no such command {other}")).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn typed_views_and_waits_for_edits_removals_and_files() {
    let sim = Arc::new(Sim::start(quick_sim()).await.unwrap());
    let bot = SimBot::start(&sim, Router::new().message(keyboard))
        .await
        .unwrap();
    let alice = Person::p2p(&sim, "alice").await.unwrap();

    alice.say("/menu").await.unwrap();
    let menu = alice.expect("Pick").await.unwrap();
    assert_eq!(menu.kind, MessageKind::Text);
    assert_eq!(menu.parse_mode(), Some("markdown"));
    assert_eq!(menu.author, sim.bot_id());
    assert_eq!(menu.chat_id, alice.chat);
    let buttons = menu.buttons();
    assert_eq!(buttons[0][0].label, "Yes");
    assert_eq!(buttons[0][0].command(), Some("yes"));
    assert_eq!(
        buttons[0][1].action,
        ButtonAction::Url("https://example.com/docs".into())
    );
    assert!(menu.button("yes").is_some() && menu.button("no").is_none());

    alice.say("/edit").await.unwrap();
    let draft = alice.expect("draft").await.unwrap();
    let edited = sim.expect_edit(&draft).await.unwrap();
    assert_eq!(edited.text(), Some("final"));
    assert!(edited.edited);

    alice.say("/remove").await.unwrap();
    let oops = alice.expect("oops").await.unwrap();
    sim.expect_removed(&oops.id).await.unwrap();
    assert!(sim.message(&oops.id).is_none());

    alice.say("/file").await.unwrap();
    let (message, file) = sim.expect_file(&alice.chat).await.unwrap();
    assert_eq!(message.kind, MessageKind::File);
    assert_eq!((file.name.as_str(), file.size), ("hello.txt", 5));
    assert_eq!(sim.file_bytes(&file.file_id).unwrap().as_ref(), b"hello");

    let chat = sim.chat(&alice.chat).unwrap();
    assert_eq!(chat.kind, ChatKind::P2p);
    assert_eq!(chat.participants.len(), 2);
    assert!(sim.history(&alice.chat).iter().any(|m| m.id == menu.id));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn failed_expectations_say_what_came_instead() {
    let sim = Arc::new(Sim::start(quick_sim()).await.unwrap());
    let bot = SimBot::start(&sim, Router::new().message(echo))
        .await
        .unwrap();
    let alice = Person::p2p(&sim, "alice").await.unwrap();
    alice.say("apples").await.unwrap();
    match alice.expect("pears").await {
        Err(Error::Unexpected { expected, found }) => {
            assert!(expected.contains("pears"), "{expected}");
            assert!(found.contains("apples"), "{found}");
        }
        other => panic!("expected Unexpected, got {other:?}"),
    }
    alice.say("not a file").await.unwrap();
    assert!(matches!(
        sim.expect_file(&alice.chat).await,
        Err(Error::Unexpected { .. })
    ));
    alice.say("chatty").await.unwrap();
    assert!(matches!(
        sim.expect_no_message(&alice.chat, Duration::from_secs(5))
            .await,
        Err(Error::Unexpected { .. })
    ));
    let missing = sim
        .expect_message_within(&alice.chat, Duration::from_millis(50))
        .await;
    assert!(matches!(missing, Err(Error::Timeout { .. })), "{missing:?}");
    let never = eventually("a miracle", Duration::from_millis(50), || None::<()>).await;
    assert!(matches!(never, Err(Error::Timeout { ref what, .. }) if what == "a miracle"));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn person_writes_both_sides_to_the_transcript() {
    let sim = Arc::new(Sim::start(quick_sim()).await.unwrap());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    sim.set_transcript(move |line| sink.lock().unwrap().push(line.to_owned()));
    let bot = SimBot::start(&sim, Router::new().message(echo))
        .await
        .unwrap();
    let alice = Person::p2p(&sim, "alice").await.unwrap();
    alice.say("hello").await.unwrap();
    alice.expect("hello").await.unwrap();
    bot.stop().await.unwrap();
    let lines = lines.lock().unwrap();
    assert_eq!(*lines, ["   alice > hello", "     bot < hello"]);
}

async fn counter(msg: MessageContext) -> HandlerResult {
    let text = msg.text().unwrap_or_default();
    msg.answer(format!("{} letters", text.chars().count()))
        .await?;
    Ok(())
}

async fn shouter(msg: MessageContext) -> HandlerResult {
    msg.answer(msg.text().unwrap_or_default().to_uppercase())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_recorded_session_replays_clean_and_a_changed_bot_shows_differences() {
    let sim = Arc::new(Sim::start(quick_sim()).await.unwrap());
    sim.start_recording();
    let bot = SimBot::start(&sim, Router::new().message(counter))
        .await
        .unwrap();
    let alice = Person::p2p(&sim, "alice").await.unwrap();
    alice.say("hello").await.unwrap();
    alice.expect("5 letters").await.unwrap();
    let team = sim.create_group(&alice.user, "Team", &["bot", "bob"]).await;
    let bob = Person::in_chat(&sim, "bob", &team);
    bob.say("hi").await.unwrap();
    bob.expect("2 letters").await.unwrap();
    bot.stop().await.unwrap();
    let recorded = sim.transcript();
    let text = recorded.to_jsonl();
    assert!(
        text.contains("{{chat:1}}") && !text.contains(&team),
        "{text}"
    );
    let parsed = Transcript::parse(&text).unwrap();
    assert_eq!(parsed, recorded);

    // The same bot on a fresh emulator: no differences.
    let fresh = Sim::start(quick_sim()).await.unwrap();
    let bot = SimBot::start(&fresh, Router::new().message(counter))
        .await
        .unwrap();
    let report = fresh
        .replay(&parsed, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.entries, parsed.entries.len());
    bot.stop().await.unwrap();

    // A bot that answers differently: each changed reply is reported.
    let other = Sim::start(quick_sim()).await.unwrap();
    let bot = SimBot::start(&other, Router::new().message(shouter))
        .await
        .unwrap();
    let report = other
        .replay(&parsed, &ReplayOptions::default())
        .await
        .unwrap();
    assert_eq!(report.differences.len(), 2, "{:?}", report.differences);
    assert!(report.differences[0].expected.contains("5 letters"));
    assert!(report.differences[0].found.contains("HELLO"));
    bot.stop().await.unwrap();
}

#[test]
fn a_bad_transcript_line_is_named() {
    let err = Transcript::parse("# comment\n{\"transcript\":1}\nnot json\n").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument { rule, .. } if rule.contains("line 3")),
        "{err:?}"
    );
    let err =
        Transcript::parse("{\"side\":\"user\",\"actor\":\"a\",\"action\":\"dance\"}").unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument { rule, .. } if rule.contains("line 1")));
}

/// What the bot does on its own, with no user before it: open a channel, add alice, post.
async fn announce(bot: &Bot, add_alice: bool) {
    let channel = bot.create_channel("News").await.unwrap().chat_id;
    if add_alice {
        bot.add_participant_to_chat(&channel, "alice")
            .await
            .unwrap();
    }
    bot.send_message(&channel, "Welcome to the news")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_bots_own_actions_are_recorded_and_replay_checks_them() {
    let sim = Sim::start(quick_sim()).await.unwrap();
    sim.user("alice");
    sim.start_recording();
    let bot = SimBot::start(&sim, Router::new()).await.unwrap();
    announce(bot.bot(), true).await;
    bot.stop().await.unwrap();
    let text = sim.transcript().to_jsonl();
    let transcript = Transcript::parse(&text).unwrap();
    let sides: Vec<_> = transcript.entries.iter().map(|e| e.side).collect();
    assert_eq!(sides, [Side::Bot; 3], "{text}");
    assert!(
        text.contains(r#""action":"join""#) && text.contains(r#""member":"alice""#),
        "{text}"
    );

    // Replayed while the same bot does the same on its own: clean.
    let fresh = Sim::start(quick_sim()).await.unwrap();
    fresh.user("alice");
    let bot = SimBot::start(&fresh, Router::new()).await.unwrap();
    announce(bot.bot(), true).await;
    let report = fresh
        .replay(&transcript, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    bot.stop().await.unwrap();

    // A bot that forgets to add alice: the missing join is the difference.
    let other = Sim::start(SimConfig {
        expect_timeout: Duration::from_secs(1),
        ..quick_sim()
    })
    .await
    .unwrap();
    other.user("alice");
    let bot = SimBot::start(&other, Router::new()).await.unwrap();
    announce(bot.bot(), false).await;
    let options = ReplayOptions {
        timeout: Duration::from_secs(1),
        ..ReplayOptions::default()
    };
    let report = other.replay(&transcript, &options).await.unwrap();
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    assert_eq!(report.differences[0].entry, 1);
    assert!(
        report.differences[0].expected.contains("add alice"),
        "{:?}",
        report.differences
    );
    bot.stop().await.unwrap();
}

async fn forwarder(msg: MessageContext) -> HandlerResult {
    msg.forward_to(msg.chat()).await?;
    Ok(())
}

#[tokio::test]
async fn a_forward_reads_as_the_forwarded_text_and_replays_by_it() {
    let sim = Arc::new(Sim::start(quick_sim()).await.unwrap());
    sim.start_recording();
    let bot = SimBot::start(&sim, Router::new().message(forwarder))
        .await
        .unwrap();
    let alice = Person::p2p(&sim, "alice").await.unwrap();
    alice.say("pass it on").await.unwrap();
    let forward = alice.hear().await.unwrap();
    assert_eq!(forward.kind, MessageKind::Forward);
    assert_eq!(forward.text(), Some("pass it on"));
    bot.stop().await.unwrap();
    let transcript = sim.transcript();

    // A bot that forwards a different text is caught: forwards are compared by the original.
    let mut changed = transcript.clone();
    let forwarded = changed
        .entries
        .iter_mut()
        .find_map(|entry| match &mut entry.action {
            Action::Post {
                kind: 201, content, ..
            } => Some(content),
            _ => None,
        })
        .expect("the forward is recorded");
    forwarded["content"]["text"] = "something else".into();
    let fresh = Sim::start(quick_sim()).await.unwrap();
    let bot = SimBot::start(&fresh, Router::new().message(forwarder))
        .await
        .unwrap();
    let clean = fresh
        .replay(&transcript, &ReplayOptions::default())
        .await
        .unwrap();
    assert!(clean.is_clean(), "{:?}", clean.differences);
    bot.stop().await.unwrap();
    let other = Sim::start(quick_sim()).await.unwrap();
    let bot = SimBot::start(&other, Router::new().message(forwarder))
        .await
        .unwrap();
    let report = other
        .replay(&changed, &ReplayOptions::default())
        .await
        .unwrap();
    assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
    assert!(report.differences[0].expected.contains("something else"));
    bot.stop().await.unwrap();
}
