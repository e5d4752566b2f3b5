//! The README demo: a bot that greets on `/start` and echoes everything else.
//!
//! ```text
//! cargo run --example quickstart                       # embedded emulator + scripted user
//! cargo run --example quickstart -- --server video.example.com --token "$TOKEN"
//! ```
//!
//! Without `--server` it starts the embedded TrueConf emulator, connects the bot to it, lets a
//! scripted user (alice) talk to the bot, prints the conversation and exits.

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};

/// Greets on /start and echoes every other message.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

async fn start(msg: MessageContext) -> HandlerResult {
    let who = msg.author_id().split('@').next().unwrap_or("there");
    msg.answer(format!("Hi {who}! Send me anything and I will echo it."))
        .await?;
    Ok(())
}

async fn echo(msg: MessageContext) -> HandlerResult {
    match msg.text() {
        Some(text) => msg.reply(text).await?,
        None => msg.reply("I can only echo text.").await?,
    };
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let router = Router::new().command("start", start).message(echo);
    let dispatcher = Dispatcher::builder(session.bot.clone(), router).build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/start").await?;
            alice.expect("Hi alice!").await?;
            alice.say("Hello, bot!").await?;
            alice.expect("Hello, bot!").await?;
            alice.say("Do you keep the order of my messages?").await?;
            alice.expect("order").await?;
            Ok(())
        })
        .await
}
