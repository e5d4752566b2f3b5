//! The echo bot of `raw_echo`, written on the runtime (`Bot`, `EventStream`, typed calls), to
//! compare throughput with the raw tokio-tungstenite baseline.
//!
//! `cargo run --release --example runtime_echo` starts an in-process emulator, runs a load of
//! 20,000 events over 100 chats with a window of 200 and prints the report.

use serde::Deserialize;
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "chatId")]
    chat_id: Option<String>,
    content: Option<Content>,
    author: Option<Author>,
}

#[derive(Deserialize)]
struct Content {
    text: Option<String>,
}

#[derive(Deserialize)]
struct Author {
    id: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let sim = Sim::start(SimConfig::default()).await?;
    let bot = trueconf_bot::harness::bot_builder(&sim).build()?;
    let mut events = bot.events().ok_or("events taken")?;
    bot.start().await?;
    let me = bot.me().unwrap_or_default();
    let echo = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if ev.method != "sendMessage" {
                continue;
            }
            let Ok(m) = serde_json::from_str::<Incoming>(ev.payload.get()) else {
                continue;
            };
            if let (Some(chat), Some(text), Some(author)) =
                (m.chat_id, m.content.and_then(|c| c.text), m.author)
                && author.id != me
            {
                // `queue` returns once the request is on the socket's queue, without waiting
                // for the response: replies leave in event order, many in flight. (Polling a
                // set of response futures instead would not keep the order: a request is sent
                // when its future is first polled.)
                if let Err(e) = bot.send_message(chat, text).queue().await {
                    eprintln!("runtime_echo: {e}");
                }
            }
        }
    });
    let report = sim.run_load(LoadSpec::default()).await?;
    println!("{}", serde_json::to_string(&report)?);
    echo.abort();
    if report.lost > 0 || report.order_violations > 0 || report.duplicates > 0 {
        return Err(format!(
            "{} lost, {} out of order, {} duplicated",
            report.lost, report.order_violations, report.duplicates
        )
        .into());
    }
    Ok(())
}
