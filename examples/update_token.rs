//! Port of the official client's `examples/update_token.py`: keep a bot running when its token
//! expires.
//!
//! ```text
//! cargo run --example update_token
//! cargo run --example update_token -- --server video.example.com --username john_doe --password …
//! ```
//!
//! The Python original catches `ApiErrorException` code 203 ("token expired") around
//! `bot.run()`, shuts the bot down and builds a new one from the credentials, up to five
//! times. Here nothing of that is needed: a bot built with credentials (`.credentials(..)` or
//! `Bot::from_credentials`) fetches a new token by itself whenever the server says the old one
//! expired, and reconnects. Only a bot given a fixed `.token(..)` cannot renew it; it fails
//! with `Error::Auth`, and its state says so.
//!
//! With the emulator, tokens live 2 seconds: the script waits until the first one expired,
//! drops the connection, and the bot comes back with a new token and keeps answering.

mod common;

use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::connection::ConnectionState;
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::SimConfig;
use trueconf_bot::types::ParseMode;

/// Echoes in Markdown and renews its token by itself.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

async fn echo(msg: MessageContext) -> HandlerResult {
    let text = msg.text().unwrap_or_default();
    msg.answer(format!("You said: **{text}**"))
        .parse_mode(ParseMode::Markdown)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    // A real server: the shared options (use --username/--password for renewal). The
    // emulator: tokens that live 2 s, and a bot that logs in with the emulator's bot account
    // so it can fetch new ones.
    let emulated = args.connect.server.is_none();
    let session = args
        .connect
        .connect_with(
            |sim| SimConfig {
                token_ttl: Duration::from_secs(2),
                ..sim
            },
            move |bot| {
                if emulated {
                    bot.credentials("bot", "bot-password")
                } else {
                    bot
                }
            },
        )
        .await?;
    let bot = session.bot.clone();
    let dispatcher = Dispatcher::builder(bot.clone(), Router::new().message(echo)).build()?;
    session
        .serve(dispatcher, |sim| async move {
            println!("-- tokens live 2 s");
            let mut state = bot.state();
            let first = bot.token().ok_or("no token after connecting")?;
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("hello").await?;
            alice.expect("You said: **hello**").await?;
            tokio::time::sleep(Duration::from_millis(2200)).await;
            println!("-- the token expired; the server drops the connection");
            sim.faults().drop_connections();
            state.wait_for(|s| *s != ConnectionState::Ready).await?;
            state.wait_for(|s| *s == ConnectionState::Ready).await?;
            let renewed = bot.token().ok_or("no token after reconnecting")?;
            if renewed == first {
                return Err("the token was not renewed".into());
            }
            println!("-- reconnected with a new token (renewed by the bot itself)");
            alice.say("still there?").await?;
            alice.expect("You said: **still there?**").await?;
            Ok(())
        })
        .await
}
