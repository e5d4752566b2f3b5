//! The official client's `examples/filters.py`, ported: commands with argument conditions
//! (the client's `Command(.., magic=F.args...)`), several names for one handler, commands
//! by regular expression; plus the `F` field filters and a `#[derive(BotCommands)]` enum
//! for the `/help` text.
//!
//! ```text
//! cargo run --example filters
//! cargo run --example filters -- --server video.example.com --username echo_bot --password …
//! ```
//!
//! | python-trueconf-bot | here |
//! |---|---|
//! | `Command("ping")` | `.command("ping", ..)` |
//! | `Command("echo", magic=F.args)` | `CommandFilter::new("echo").with_args()` |
//! | `Command("upper", magic=F.args.len() > 3)` | `.args_when(\|a\| a.chars().count() > 3)` |
//! | `Command("info", "about", "whoami")` | `CommandFilter::new("info").alias("about").alias("whoami")` |
//! | `Command(re.compile(r"echo_\d+"))` | `CommandFilter::regex(Regex::new(r"echo_\d+")?)` |
//! | `command: CommandObject` | `cmd: BotCommand` (`cmd.name`, `cmd.args`) |
//! | `F.text.contains("thanks")` | `F::text().lower().contains("thanks")` |
//!
//! One difference: a regular expression must match the whole command name here
//! (`cap[s]?` takes `/cap` and `/caps`), where the client's `re.match` only anchors at the
//! start (it also takes `/capsule`).

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::dispatch::{
    BotCommand, BotCommands, CommandFilter, Dispatcher, F, HandlerResult, MessageContext, Regex,
    Router,
};
use trueconf_bot::types::MessageKind;

/// The filters example of the official client.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

/// Only for the `/help` text: the derive writes it from the descriptions.
#[derive(BotCommands)]
#[command(description = "Available commands:")]
enum Commands {
    #[command(description = "pong")]
    Ping,
    #[command(description = "a greeting")]
    Hello,
    #[command(description = "the bot's clock")]
    Time,
    #[command(description = "say it back (needs text)")]
    Echo,
    #[command(description = "upper case (more than 3 characters)")]
    Upper,
    #[command(description = "lower case")]
    Lower,
    #[command(description = "backwards")]
    Reverse,
    #[command(description = "one word, twice")]
    Repeat,
    #[command(description = "your arguments")]
    Args,
    #[command(description = "who you are (also /info, /about)")]
    Whoami,
    #[command(description = "capitalised (also /cap)")]
    Caps,
    #[command(description = "length of the arguments")]
    Len,
    #[command(description = "number of words")]
    Words,
    #[command(description = "your TrueConf ID")]
    Id,
    #[command(description = "this text")]
    Help,
}

/// Replies in the chat, as the Python handlers' `bot.send_message(chat_id=..., text=...)`.
async fn say(msg: &MessageContext, text: impl Into<String>) -> HandlerResult {
    msg.answer(text).await?;
    Ok(())
}

fn capitalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn router() -> Result<Router, BoxError> {
    let r =
        Router::new()
            .command("ping", |msg: MessageContext| async move {
                say(&msg, "pong").await
            })
            .command("hello", |msg: MessageContext| async move {
                say(&msg, "Hello there!").await
            })
            .command("time", |msg: MessageContext| async move {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                say(&msg, format!("Current time: {secs} s since 1970")).await
            })
            .command(
                CommandFilter::new("echo").with_args(),
                |msg: MessageContext, cmd: BotCommand| async move { say(&msg, cmd.args).await },
            )
            .command(
                CommandFilter::new("upper").args_when(|a| a.chars().count() > 3),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, cmd.args.to_uppercase()).await
                },
            )
            .command("lower", |msg: MessageContext, cmd: BotCommand| async move {
                say(&msg, cmd.args.to_lowercase()).await
            })
            .command(
                "reverse",
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, cmd.args.chars().rev().collect::<String>()).await
                },
            )
            .command(
                CommandFilter::new("repeat").args_when(|a| a.split_whitespace().count() == 1),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, format!("{0} {0}", cmd.args)).await
                },
            )
            .command(
                CommandFilter::new("args").with_args(),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, format!("Args: {}", cmd.args)).await
                },
            )
            // Several names, one handler: /info, /about, /whoami.
            .command(
                CommandFilter::new("info").alias("about").alias("whoami"),
                |msg: MessageContext, cmd: BotCommand| async move {
                    let who = msg.author_id().to_string();
                    say(&msg, format!("You're {who}, used /{}", cmd.name)).await
                },
            )
            .command(
                CommandFilter::regex(Regex::new(r"cap[s]?")?).with_args(),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, capitalize(&cmd.args)).await
                },
            )
            .command(
                CommandFilter::new("check")
                    .alias("verify")
                    .args_when(|a| a.chars().count() > 2),
                |msg: MessageContext, cmd: BotCommand| async move {
                    let text = format!("Check passed for: /{} with args: {}", cmd.name, cmd.args);
                    say(&msg, text).await
                },
            )
            .command(
                CommandFilter::new("start").args_when(|a| a.starts_with("demo")),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, format!("Demo mode: {}", cmd.args)).await
                },
            )
            .command(
                CommandFilter::regex(Regex::new(r"echo_\d+")?),
                |msg: MessageContext, cmd: BotCommand| async move {
                    say(&msg, format!("Special echo: {} {}", cmd.name, cmd.args)).await
                },
            )
            .command("len", |msg: MessageContext, cmd: BotCommand| async move {
                say(&msg, cmd.args.chars().count().to_string()).await
            })
            .command("words", |msg: MessageContext, cmd: BotCommand| async move {
                let n = cmd.args.split_whitespace().count();
                say(&msg, format!("Words: {n}")).await
            })
            .command("help", |msg: MessageContext| async move {
                say(&msg, Commands::descriptions().to_string()).await
            })
            .command("id", |msg: MessageContext| async move {
                let who = msg.author_id().to_string();
                say(&msg, format!("Your ID: {who}")).await
            })
            // Field filters: not commands.
            .message_when(
                F::content().is(MessageKind::Text) & F::text().lower().contains("thanks"),
                |msg: MessageContext| async move { say(&msg, "You're welcome!").await },
            )
            .message_when(
                F::text().starts_with("/"),
                |msg: MessageContext| async move {
                    say(&msg, "Not a command I take like this; try /help").await
                },
            );
    Ok(r)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let dispatcher = Dispatcher::builder(session.bot.clone(), router()?).build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            for (said, expected) in [
                ("/ping", "pong"),
                ("/hello", "Hello there!"),
                ("/time", "Current time: "),
                ("/echo", "try /help"),
                ("/echo hi there", "hi there"),
                ("/upper abc", "try /help"),
                ("/upper rust", "RUST"),
                ("/lower LOUD", "loud"),
                ("/reverse stressed", "desserts"),
                ("/repeat two words", "try /help"),
                ("/repeat bis", "bis bis"),
                ("/args a b", "Args: a b"),
                ("/about", "You're alice@"),
                ("/whoami", "used /whoami"),
                ("/caps hELLO", "Hello"),
                ("/capsule x", "try /help"),
                ("/check ok", "try /help"),
                ("/verify yes", "Check passed for: /verify with args: yes"),
                ("/start demo-1", "Demo mode: demo-1"),
                ("/echo_42 boo", "Special echo: echo_42 boo"),
                ("/len hello", "5"),
                ("/words one two three", "Words: 3"),
                ("/id", "Your ID: alice@"),
                ("Thanks a lot!", "You're welcome!"),
                ("/help", "/upper — upper case (more than 3 characters)"),
            ] {
                alice.say(said).await?;
                alice.expect(expected).await?;
            }
            Ok(())
        })
        .await
}
