//! Port of the official client's buttons example: a message with inline buttons whose presses
//! edit that message in place, keeping the buttons.
//!
//! ```text
//! cargo run --example buttons_bot
//! ```
//!
//! `/start` posts a counter with three buttons. `count:+1` and `count:-1` share one route
//! (`Filter::button_starts_with("count:")`); each press edits the message with
//! `ButtonContext::edit`, which reads the current buttons back with `getMessageById` (a
//! press event does not carry them, and `editMessage` without buttons would drop them).
//! `done` removes the buttons (`edit_message().remove_buttons()`). A press does not say who
//! pressed (a protocol limit): the count is per message, kept in the message's own text.

mod common;

use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect, Person, eventually};
use trueconf_bot::dispatch::{
    ButtonContext, Dispatcher, Filter, HandlerResult, MessageContext, Router,
};
use trueconf_bot::types::{Button, ButtonStyle, InlineKeyboard};

/// A counter message driven by its buttons.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

fn keyboard() -> trueconf_bot::Result<InlineKeyboard> {
    InlineKeyboard::builder()
        .row([
            Button::command("−1", "count:-1"),
            Button::command("+1", "count:+1").style(ButtonStyle::Primary),
        ])
        .row([Button::command("Done", "done")])
        .build()
}

async fn start(msg: MessageContext) -> HandlerResult {
    msg.answer("Counter: 0").buttons(keyboard()?).await?;
    Ok(())
}

/// The current value, read from the message the button is on.
fn current(press: &ButtonContext) -> i64 {
    press
        .message()
        .and_then(|m| m.text())
        .and_then(|t| t.strip_prefix("Counter: "))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn count(press: ButtonContext) -> HandlerResult {
    let step: i64 = press
        .command()
        .strip_prefix("count:")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let value = current(&press) + step;
    tracing::info!(message = ?press.message_id(), value, "counter pressed");
    press.edit(format!("Counter: {value}")).await?;
    Ok(())
}

async fn done(press: ButtonContext) -> HandlerResult {
    let value = current(&press);
    press
        .edit_message()
        .text(format!("Counter: {value} (final)"))
        .remove_buttons()
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let router = Router::new()
        .command("start", start)
        .button_when(Filter::button_starts_with("count:"), count)
        .button_when(Filter::button("done"), done);
    let dispatcher = Dispatcher::builder(session.bot.clone(), router).build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/start").await?;
            let counter = alice.expect("Counter: 0").await?;
            let id = counter["messageId"].as_str().unwrap_or_default().to_owned();
            // An edit is not a new message: watch the message itself.
            let shows = |want: &'static str| {
                let sim = sim.clone();
                let id = id.clone();
                async move {
                    let m = eventually(want, Duration::from_secs(10), || {
                        sim.message(&id).filter(|m| m.text_or_title() == want)
                    })
                    .await?;
                    println!("{:>8} < (edited) {}", "bot", m.summary());
                    Ok::<_, BoxError>(m)
                }
            };
            for (press, want) in [
                ("count:+1", "Counter: 1"),
                ("count:+1", "Counter: 2"),
                ("count:-1", "Counter: 1"),
            ] {
                alice.press(&counter, press).await?;
                let m = shows(want).await?;
                if m["content"]["buttons"].as_array().map(Vec::len) != Some(2) {
                    return Err("the buttons were not kept".into());
                }
            }
            alice.press(&counter, "done").await?;
            let last = shows("Counter: 1 (final)").await?;
            if last["content"].get("buttons").is_some() {
                return Err("the buttons were not removed".into());
            }
            Ok(())
        })
        .await
}
