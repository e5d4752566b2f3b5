//! Port of the official multi-bot setup (TrueConf/trueconf-chatbot-example): several bots in
//! one process, each with its own account, dispatcher and handlers.
//!
//! ```text
//! cargo run --example multi_bot
//! cargo run --example multi_bot -- --server video.example.com --token "$ECHO_TOKEN" --hr-token "$HR_TOKEN"
//! ```
//!
//! * the echo bot answers every message with its text;
//! * the HR bot forwards every message it gets in a personal chat to an "HR inbox" group
//!   (created at start, with the HR manager in it) and tells the sender.
//!
//! Each `Bot` is its own connection with its own supervised actors; the two dispatchers run
//! as two tasks on one Tokio runtime and stop together. In the Python project each bot is a
//! `Bot` + `Dispatcher` pair gathered with `asyncio.gather`; here it is `tokio::try_join!`.

mod common;

use std::sync::{Arc, OnceLock};

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dep, Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::harness::{SimBot, bot_builder};
use trueconf_bot::testkit::{MessageKind, Sim};

/// Two bots in one process.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// The HR bot's token (with --server).
    #[arg(long, env = "TRUECONF_HR_TOKEN", hide_env_values = true)]
    hr_token: Option<String>,
    /// Who reads the HR inbox.
    #[arg(long, default_value = "hr_manager")]
    hr_manager: String,
}

async fn echo(msg: MessageContext) -> HandlerResult {
    msg.reply(msg.text().unwrap_or("(not a text)")).await?;
    Ok(())
}

/// The HR inbox chat id, a dependency of the HR bot's handlers (set once the bot is
/// connected and the chat exists).
#[derive(Clone, Default)]
struct Inbox(Arc<OnceLock<String>>);

async fn to_hr(msg: MessageContext, Dep(Inbox(inbox)): Dep<Inbox>) -> HandlerResult {
    let Some(inbox) = inbox.get() else {
        msg.reply("HR is not reachable yet, please try again in a minute.")
            .await?;
        return Ok(());
    };
    if msg.chat() == inbox {
        return Ok(()); // the HR manager talking in the inbox
    }
    msg.forward_to(inbox).await?;
    msg.reply("Forwarded to HR; they will contact you.").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let hr_token = args.hr_token;
    let manager = args.hr_manager;
    let session = args.connect.connect(|bot| bot).await?;
    // The second account: on the emulator a second login; on a server its own token.
    let hr_bot = match (&session.sim, hr_token) {
        (Some(sim), _) => {
            sim.user("hr_bot");
            bot_builder(sim).token(sim.token_for("hr_bot")).build()?
        }
        (None, Some(token)) => {
            let server = session.bot.health_check().server;
            Bot::builder(server).token(token).build()?
        }
        (None, None) => return Err("the HR bot needs --hr-token (or TRUECONF_HR_TOKEN)".into()),
    };
    let inbox = Inbox::default();
    let hr = Dispatcher::builder(hr_bot.clone(), Router::new().message(to_hr))
        .dependency(inbox.clone())
        .build()?;
    // Runs in the background once connected (the kit's runner works with any server).
    let hr_running = SimBot::run(hr).await?;
    if let Some(sim) = &session.sim {
        sim.user(&manager);
    }
    let inbox_chat = hr_bot.create_group_chat("HR inbox").await?.chat_id;
    hr_bot
        .add_participant_to_chat(&inbox_chat, &manager)
        .await?;
    let _ = inbox.0.set(inbox_chat.clone());

    let echo_dispatcher =
        Dispatcher::builder(session.bot.clone(), Router::new().message(echo)).build()?;
    // The HR bot opening a chat with bob is the bot acting on its own: the driver, run in
    // replay mode too. The script (the users' side) talks in that chat.
    let bob_chat = Arc::new(OnceLock::new());
    let driver = {
        let (hr_bot, bob_chat) = (hr_bot.clone(), bob_chat.clone());
        |sim: Arc<Sim>| async move {
            sim.user("bob");
            let chat = hr_bot.create_personal_chat("bob").await?.chat_id;
            let _ = bob_chat.set(chat);
            Ok(())
        }
    };
    let outcome = session
        .serve_driven(echo_dispatcher, driver, |sim| {
            let inbox = inbox_chat.clone();
            async move {
                let alice = Person::p2p(&sim, "alice").await?;
                alice.say("ping").await?;
                alice.expect("ping").await?;
                let chat = bob_chat.get().ok_or("the HR bot opened no chat with bob")?;
                let bob = Person::in_chat(&sim, "bob", chat);
                bob.say("I need a vacation certificate").await?;
                bob.expect("Forwarded to HR").await?;
                let forwarded = sim.expect_message(&inbox).await?;
                println!(
                    "   HR inbox < [forwarded] {}",
                    forwarded.text().unwrap_or_default()
                );
                if forwarded.kind != MessageKind::Forward {
                    return Err("the HR inbox got no forward".into());
                }
                Ok(())
            }
        })
        .await;
    hr_running.stop().await?;
    outcome
}
