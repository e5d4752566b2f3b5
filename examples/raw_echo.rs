//! A minimal echo bot on raw tokio-tungstenite: the baseline for throughput measurements.
//!
//! `cargo run --release --example raw_echo -- WS_URL TOKEN` connects to a running server
//! (e.g. `trueconf-sim --load 20000`), acks every event and echoes every `sendMessage` from
//! someone else back into its chat, pipelining requests without waiting for responses.
//! Without arguments it starts an in-process emulator, runs a load of 20,000 events over 100
//! chats with a window of 200 and prints the report.

use std::borrow::Cow;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: u8,
    id: u64,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<Payload<'a>>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, rename = "chatId")]
    chat_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<Content<'a>>,
    #[serde(borrow)]
    author: Option<Author<'a>>,
    #[serde(borrow, rename = "userId")]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Author<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn echo_bot(url: String, token: String) -> Result<(), BoxError> {
    echo_bot_with(url, token, false).await
}

/// [`echo_bot`], choosing when events are acknowledged: with `after_reply` each ack follows
/// its echo in the same write and the bot asks for unread events at `auth`, so a socket the
/// server closes mid-batch loses nothing (the un-acked events come again on the next one).
pub async fn echo_bot_with(url: String, token: String, after_reply: bool) -> Result<(), BoxError> {
    // TCP_NODELAY, as the crate's own connection does.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
    let (mut sink, mut stream) = ws.split();
    let auth = serde_json::json!({
        "type": 1, "id": 1, "method": "auth",
        "payload": { "token": token, "tokenType": "JWT", "receiveUnread": after_reply,
                     "receiveSystemMessageEnvelopes": false }
    });
    sink.send(Message::text(auth.to_string())).await?;
    let mut next_id = 2u64;
    let mut me = String::new();
    while let Some(msg) = stream.next().await {
        let mut msg = Some(msg?);
        // Handle everything already received, then flush the answers in one write.
        while let Some(m) = msg.take() {
            if let Message::Text(text) = m {
                let frame: Frame<'_> = serde_json::from_str(text.as_str())?;
                match (frame.kind, frame.payload) {
                    (2, Some(p)) if frame.id == 1 => {
                        me = p
                            .user_id
                            .unwrap_or_default()
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                    }
                    (1, payload) => {
                        let ack = Message::text(format!(r#"{{"type":2,"id":{}}}"#, frame.id));
                        if !after_reply {
                            sink.feed(ack.clone()).await?;
                        }
                        if frame.method.as_deref() == Some("sendMessage")
                            && let Some(p) = payload
                            && p.author.as_ref().is_some_and(|a| a.id != me)
                            && let (Some(chat), Some(text)) =
                                (p.chat_id, p.content.and_then(|c| c.text))
                        {
                            let reply = serde_json::json!({
                                "type": 1, "id": next_id, "method": "sendMessage",
                                "payload": { "chatId": chat, "replyMessageId": null,
                                             "content": { "text": text, "parseMode": "text" } }
                            });
                            next_id += 1;
                            sink.feed(Message::text(reply.to_string())).await?;
                        }
                        if after_reply {
                            sink.feed(ack).await?;
                        }
                    }
                    _ => {}
                }
            }
            msg = match stream.next().now_or_never() {
                Some(Some(m)) => Some(m?),
                _ => None,
            };
        }
        sink.flush().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [url, token] = args.as_slice() {
        // The server ending the connection (e.g. the load run finished) ends the bot.
        if let Err(e) = echo_bot(url.clone(), token.clone()).await {
            eprintln!("raw_echo: connection ended: {e}");
        }
        return Ok(());
    }
    let sim = Sim::start(SimConfig::default()).await?;
    tokio::spawn(echo_bot(sim.ws_url(), sim.bot_token()));
    let report = sim.run_load(LoadSpec::default()).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
