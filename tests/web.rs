//! The web chat client's endpoints, driven over HTTP the way the page drives them: a user
//! opens a chat with the bot, talks, presses a button, uploads and downloads a file; the
//! inspector's event stream carries the frames; the guard keeps foreign pages out.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{HandlerResult, MessageContext, Router};
use trueconf_bot::harness::SimBot;
use trueconf_bot::testkit::{Sim, SimConfig};
use trueconf_bot::types::{ActivityType, Button, Content, InlineKeyboard};

async fn bot_logic(bot: Bot, msg: MessageContext) -> HandlerResult {
    if let Content::Attachment(file) = &msg.content {
        msg.answer(format!("got {}", file.name)).await?;
        return Ok(());
    }
    let keys = InlineKeyboard::builder()
        .row([Button::command("Again", "again")])
        .build()?;
    msg.answer(format!("you said {}", msg.text().unwrap_or_default()))
        .buttons(keys)
        .await?;
    bot.send_chat_activity(msg.chat(), ActivityType::Typing)
        .await?;
    Ok(())
}

/// An HTTP client (plain HTTP; the crate's TLS backend wants a crypto provider chosen once).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn web_sim() -> Arc<Sim> {
    Arc::new(
        Sim::start(SimConfig {
            web: true,
            expect_timeout: Duration::from_secs(10),
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    )
}

async fn act(http: &reqwest::Client, sim: &Sim, body: Value) -> Value {
    let response = http
        .post(format!("{}/sim/api/act", sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn state(http: &reqwest::Client, sim: &Sim) -> Value {
    http.get(format!("{}/sim/api/state", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_page_user_talks_to_the_bot_presses_a_button_and_sends_a_file() {
    let sim = web_sim().await;
    let bot = SimBot::start(&sim, Router::new().message(bot_logic))
        .await
        .unwrap();
    let http = client();

    let page = http.get(format!("{}/", sim.url())).send().await.unwrap();
    assert!(page.status().is_success());
    assert!(page.text().await.unwrap().contains("/sim/app.js"));
    for asset in ["/sim/app.js", "/sim/app.css"] {
        let r = http
            .get(format!("{}{asset}", sim.url()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{asset}");
    }

    let chat = act(&http, &sim, json!({ "op": "p2p", "as": "zoe" })).await["chatId"]
        .as_str()
        .unwrap()
        .to_owned();
    act(
        &http,
        &sim,
        json!({ "op": "send", "as": "zoe", "chat": chat, "text": "hello", "parseMode": "text" }),
    )
    .await;
    let answer = sim.expect_text(&chat, "you said hello").await.unwrap();
    assert_eq!(answer.button("again").unwrap().label, "Again");

    act(
        &http,
        &sim,
        json!({ "op": "press", "as": "zoe", "chat": chat, "message": answer.id, "command": "again" }),
    )
    .await;
    let upload = http
        .post(format!(
            "{}/sim/api/upload?as=zoe&chat={chat}&name=notes.txt",
            sim.url()
        ))
        .body("some notes")
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success());
    let file_id = upload.json::<Value>().await.unwrap()["fileId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.expect_text(&chat, "got notes.txt").await.unwrap();
    let download = http
        .get(format!("{}/sim/api/file/{file_id}", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.text().await.unwrap(), "some notes");

    // The page's view: zoe's chat with her messages, the bot's answers, the typing notice.
    let snapshot = state(&http, &sim).await;
    let chats = snapshot["chats"].as_array().unwrap();
    let mine = chats.iter().find(|c| c["id"] == chat.as_str()).unwrap();
    let texts: Vec<&str> = mine["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"]["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"hello") && texts.contains(&"you said hello"),
        "{texts:?}"
    );
    assert!(
        snapshot["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["login"] == "zoe")
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn bad_actions_are_refused_with_a_reason() {
    let sim = web_sim().await;
    let http = client();
    for (body, needle) in [
        (json!({ "op": "user", "as": "<script>" }), "login"),
        (json!({ "op": "fly", "as": "zoe" }), "unknown action"),
        (
            json!({ "op": "send", "as": "zoe", "chat": "nope", "text": "x" }),
            "sendMessage",
        ),
        (
            json!({ "op": "send", "as": "zoe", "chat": "c", "text": "x", "parseMode": "bbcode" }),
            "parse mode",
        ),
    ] {
        let r = http
            .post(format!("{}/sim/api/act", sim.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}");
        let error: Value = r.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(needle), "{error}");
    }
}

#[tokio::test]
async fn the_event_stream_carries_the_bots_frames() {
    let sim = web_sim().await;
    let http = client();
    let mut events = http
        .get(format!("{}/sim/api/events", sim.url()))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let bot = SimBot::start(&sim, Router::new().message(bot_logic))
        .await
        .unwrap();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("event: frame") && seen.contains(r#""method":"auth""#) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{seen}");
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn foreign_pages_cannot_use_the_page_endpoints() {
    let sim = web_sim().await;
    let http = client();
    let r = http
        .post(format!("{}/sim/api/act", sim.url()))
        .header("Origin", "http://attacker.example")
        .json(&json!({ "op": "user", "as": "eve" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{}/sim/api/state", sim.url()))
        .header("Host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn without_web_there_is_no_page() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let r = client()
        .get(format!("{}/", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
