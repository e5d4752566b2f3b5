//! Every kind of event the emulator pushes to a bot, produced by one scenario, checked by our
//! own decoder, and (with `TRUECONF_EVENT_DUMP=FILE`) written out as JSON lines for the
//! conformance run, where the official client's own parser must accept each one
//! (`tests/conformance/parse_events.py`).

use std::collections::BTreeSet;
use std::time::Duration;

use trueconf_bot::bot::{Bot, EventStream};
use trueconf_bot::testkit::{Sim, SimConfig, UploadLimits};
use trueconf_bot::types::{Button, Event, InlineKeyboard};

async fn next(events: &mut EventStream, method: &str, log: &mut Vec<(String, String)>) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap_or_else(|_| panic!("no `{method}` event within 5 s; got {log:?}"))
            .expect("stream open");
        let done = ev.method == method;
        log.push((ev.method.clone(), ev.payload.get().to_owned()));
        if done {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pushed_event_decodes() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .receive_system_messages(true)
        .build()
        .unwrap();
    let mut events = bot.events().unwrap();
    bot.start().await.unwrap();
    let mut log = Vec::new();
    let ev = &mut events;
    let alice = sim.user("alice");
    let _carol = sim.user("carol");

    let chat = alice.create_p2p_with_bot().await.unwrap();
    next(ev, "createP2PChat", &mut log).await;
    let hello = alice.send_text(&chat, "hello").await.unwrap();
    next(ev, "sendMessage", &mut log).await;
    alice
        .send_html(
            &chat,
            r#"<quote class="reply">hello</quote><br><br><b>hi</b>"#,
        )
        .await
        .unwrap();
    next(ev, "sendMessage", &mut log).await;
    alice.reply(&chat, &hello, "a reply").await.unwrap();
    next(ev, "sendMessage", &mut log).await;
    alice.edit(&hello, "hello (edited)").await.unwrap();
    next(ev, "editMessage", &mut log).await;
    alice.remove(&hello).await.unwrap();
    next(ev, "removeMessage", &mut log).await;
    alice
        .upload_file(&chat, "note.txt", "file body")
        .await
        .unwrap();
    next(ev, "sendMessage", &mut log).await;
    alice
        .upload_file(&chat, "pic.png", &b"\x89PNG"[..])
        .await
        .unwrap();
    next(ev, "sendMessage", &mut log).await;

    // A button press, then the bot's own message with buttons edited.
    let kb = InlineKeyboard::builder()
        .row([Button::command("Go", "go").custom_data("42")])
        .build()
        .unwrap();
    let poll = bot.send_message(&chat, "press").buttons(kb).await.unwrap();
    alice
        .press_button(&chat, &poll.message_id, "go")
        .await
        .unwrap();
    next(ev, "command", &mut log).await;

    // A survey, sent and edited: the edit is announced to nobody (no `editMessage` with
    // survey fields, which the official client's model rejects).
    // Sent from a second connection of the bot's account, so that this one sees both.
    let twin = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap();
    twin.start().await.unwrap();
    let survey = twin
        .send_survey(&chat, "Lunch?", "campaign-1")
        .await
        .unwrap();
    next(ev, "sendMessage", &mut log).await;
    twin.edit_survey(&survey.message_id, "Dinner?", "campaign-1")
        .await
        .unwrap();
    // A text edit from the twin is announced (and is the next event here): nothing came
    // for the survey edit before it.
    let note = twin.send_message(&chat, "note").await.unwrap();
    next(ev, "sendMessage", &mut log).await;
    twin.edit_message(&note.message_id, "note (edited)")
        .await
        .unwrap();
    next(ev, "editMessage", &mut log).await;
    let last = &log.last().unwrap().1;
    assert!(
        last.contains(&note.message_id),
        "only the text edit: {last}"
    );
    twin.shutdown().await.unwrap();

    // A file still uploading, watched through progress events.
    let upload = alice
        .start_upload(&chat, "big.bin", vec![1u8; 1000])
        .await
        .unwrap();
    next(ev, "sendMessage", &mut log).await;
    let file_id = upload_file_id(&log);
    bot.subscribe_file_progress(&file_id).await.unwrap();
    upload.progress(500);
    next(ev, "uploadFileProgress", &mut log).await;
    upload.finish();
    next(ev, "uploadFileProgress", &mut log).await;

    // Groups and channels: every membership and chat event, with system messages.
    let group = sim.create_group(&alice, "Team", &["bot"]).await;
    next(ev, "createGroupChat", &mut log).await;
    alice.add_participant(&group, "carol").await.unwrap();
    next(ev, "addChatParticipant", &mut log).await;
    alice.set_role(&group, "carol", "admin").await.unwrap();
    next(ev, "changeParticipantRole", &mut log).await;
    alice.remove_participant(&group, "carol").await.unwrap();
    next(ev, "removeChatParticipant", &mut log).await;
    alice.rename_chat(&group, "Team 2").await.unwrap();
    next(ev, "editChatTitle", &mut log).await;
    alice
        .set_chat_avatar(&group, "a.png", &b"\x89PNG"[..])
        .await
        .unwrap();
    next(ev, "editChatAvatar", &mut log).await;
    alice.clear_history(&group).await.unwrap();
    next(ev, "clearHistory", &mut log).await;
    alice.remove_chat(&group).await.unwrap();
    next(ev, "removeChat", &mut log).await;
    sim.create_channel(&alice, "News", &["bot"]).await;
    next(ev, "createChannel", &mut log).await;
    sim.set_upload_limits(UploadLimits {
        max_size: Some(1 << 20),
        extensions: None,
    });
    next(ev, "getFileUploadLimits", &mut log).await;
    bot.create_favorites_chat().await.unwrap();
    // Whatever else is still on its way (the bot's own messages, favorites).
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), ev.recv()).await {
        log.push((e.method.clone(), e.payload.get().to_owned()));
    }

    for (method, payload) in &log {
        let raw = serde_json::value::RawValue::from_string(payload.clone()).unwrap();
        let decoded = Event::decode(method, &raw)
            .unwrap_or_else(|e| panic!("`{method}` did not decode: {e}\n{payload}"));
        assert!(
            !matches!(decoded, Event::Unknown { .. }),
            "`{method}` is not a known event"
        );
        if method == "editMessage" {
            let v: serde_json::Value = serde_json::from_str(payload).unwrap();
            assert!(
                v["content"]["text"].is_string(),
                "an editMessage event carries text: {payload}"
            );
        }
    }
    let methods: BTreeSet<&str> = log.iter().map(|(m, _)| m.as_str()).collect();
    eprintln!(
        "{} events of {} kinds: {methods:?}",
        log.len(),
        methods.len()
    );
    if let Ok(path) = std::env::var("TRUECONF_EVENT_DUMP") {
        let mut out = String::new();
        for (id, (method, payload)) in log.iter().enumerate() {
            let frame = format!(
                r#"{{"type":1,"id":{},"method":{:?},"payload":{payload}}}"#,
                id + 1,
                method
            );
            out.push_str(&frame);
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
    }
    bot.shutdown().await.unwrap();
}

/// The file id of the newest attachment in the log.
fn upload_file_id(log: &[(String, String)]) -> String {
    log.iter()
        .rev()
        .filter(|(m, _)| m == "sendMessage")
        .find_map(|(_, p)| {
            let v: serde_json::Value = serde_json::from_str(p).ok()?;
            v["content"]["fileId"].as_str().map(str::to_owned)
        })
        .expect("an attachment event")
}
