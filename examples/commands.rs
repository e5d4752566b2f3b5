//! Text commands with typed arguments, aliases, a usage reply on bad arguments, and a
//! fallback for unknown commands.
//!
//! ```text
//! cargo run --example commands
//! cargo run --example commands -- --server video.example.com --username calc --password …
//! ```
//!
//! | command | arguments | parsed as |
//! |---|---|---|
//! | `/add a b` (alias `/plus`) | two integers | `CommandArgs<(i64, i64)>` |
//! | `/sum x…` | any number of decimals | `CommandArgs<Vec<f64>>` |
//! | `/repeat n text` | a count and a word | `CommandArgs<(u8, String)>` |
//! | `/greet name…` | the rest of the line | `CommandArgs<String>` |
//!
//! When arguments do not parse, the handler does not run: the command's `on_bad_args` hook
//! replies with what was wrong and the usage line.

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::dispatch::{
    BadArgs, BotCommand, CommandArgs, CommandFilter, Dispatcher, Filter, HandlerResult,
    MessageContext, Router,
};

/// A calculator bot showing typed command arguments.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

const HELP: &str = "Commands:\n\
/add <a> <b> (or /plus): integer sum\n\
/sum <x>...: sum of any numbers\n\
/repeat <n> <word>: the word n times (n ≤ 10)\n\
/greet <name>: a greeting";

async fn help(msg: MessageContext) -> HandlerResult {
    msg.answer(HELP).await?;
    Ok(())
}

async fn add(CommandArgs((a, b)): CommandArgs<(i64, i64)>, msg: MessageContext) -> HandlerResult {
    let answer = match a.checked_add(b) {
        Some(sum) => format!("{a} + {b} = {sum}"),
        None => format!("{a} + {b} does not fit in 64 bits"),
    };
    msg.reply(answer).await?;
    Ok(())
}

async fn sum(CommandArgs(xs): CommandArgs<Vec<f64>>, msg: MessageContext) -> HandlerResult {
    let total: f64 = xs.iter().sum();
    msg.reply(format!("sum of {} numbers = {total}", xs.len()))
        .await?;
    Ok(())
}

async fn repeat(
    CommandArgs((n, word)): CommandArgs<(u8, String)>,
    msg: MessageContext,
) -> HandlerResult {
    if n > 10 {
        msg.reply("at most 10 times, please").await?;
        return Ok(());
    }
    msg.reply(vec![word.as_str(); n as usize].join(" ")).await?;
    Ok(())
}

async fn greet(CommandArgs(name): CommandArgs<String>, msg: MessageContext) -> HandlerResult {
    let name = if name.is_empty() { "stranger" } else { &name };
    msg.reply(format!("Hello, {name}!")).await?;
    Ok(())
}

/// Runs instead of a handler whose arguments did not parse.
async fn usage(bad: BadArgs, msg: MessageContext) -> HandlerResult {
    msg.reply(format!(
        "{}\nusage: {}",
        bad.error,
        bad.usage.as_deref().unwrap_or("see /help")
    ))
    .await?;
    Ok(())
}

async fn unknown(cmd: BotCommand, msg: MessageContext) -> HandlerResult {
    msg.reply(format!("unknown command /{}; try /help", cmd.name))
        .await?;
    Ok(())
}

fn router() -> Router {
    Router::new()
        .command(CommandFilter::new("help").alias("start"), help)
        .command(
            CommandFilter::new("add")
                .alias("plus")
                .ignore_case()
                .usage("/add <a> <b>, two integers")
                .on_bad_args(usage),
            add,
        )
        .command(
            CommandFilter::new("sum")
                .usage("/sum <x>..., numbers such as 2 or 0.5")
                .on_bad_args(usage),
            sum,
        )
        .command(
            CommandFilter::new("repeat")
                .usage("/repeat <n> <word>, n from 0 to 10")
                .on_bad_args(usage),
            repeat,
        )
        .command("greet", greet)
        .message_when(Filter::text_starts_with("/"), unknown)
        .message(help)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let dispatcher = Dispatcher::builder(session.bot.clone(), router()).build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/help").await?;
            alice.expect("/add <a> <b>").await?;
            alice.say("/add 2 40").await?;
            alice.expect("2 + 40 = 42").await?;
            alice.say("/PLUS -7 7").await?;
            alice.expect("-7 + 7 = 0").await?;
            alice.say("/add two 3").await?;
            alice.expect("usage: /add <a> <b>").await?;
            alice.say("/add 1").await?;
            alice.expect("expected 2 arguments, got 1").await?;
            alice.say("/sum 1 2 3.5").await?;
            alice.expect("= 6.5").await?;
            alice.say("/repeat 3 la").await?;
            alice.expect("la la la").await?;
            alice.say("/repeat 300 la").await?;
            alice.expect("usage: /repeat").await?;
            alice.say("/greet Ada Lovelace").await?;
            alice.expect("Hello, Ada Lovelace!").await?;
            alice.say("/frobnicate").await?;
            alice.expect("unknown command /frobnicate").await?;
            Ok(())
        })
        .await
}
