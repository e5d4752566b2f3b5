//! Polls with inline buttons, and TrueConf survey cards.
//!
//! ```text
//! cargo run --example survey
//! ```
//!
//! * `/poll Question | option | option…` posts the question with one button per option.
//!   Every press is a `command` event; the bot counts it and edits the poll message to show
//!   the running tally (the keyboard stays).
//! * `/close` ends the latest poll of the chat: the buttons are removed and the result posted.
//! * `/survey <campaign-id> <title>` posts a survey card for a survey campaign created on the
//!   server (answers are collected by the server, not by the bot).
//!
//! The protocol does not say who pressed a button, so a poll counts presses, not voters.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect, Person, eventually};
use trueconf_bot::dispatch::{
    BadArgs, ButtonContext, ChatId, CommandArgs, CommandFilter, Dep, Dispatcher, Filter,
    HandlerResult, MessageContext, Router,
};
use trueconf_bot::types::{Button, InlineKeyboard};

/// Button polls and survey cards.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

struct Poll {
    chat: String,
    question: String,
    options: Vec<String>,
    votes: Vec<u32>,
    keyboard: InlineKeyboard,
    open: bool,
}

impl Poll {
    fn render(&self) -> String {
        let tally: Vec<String> = self
            .options
            .iter()
            .zip(&self.votes)
            .map(|(o, v)| format!("{o}: {v}"))
            .collect();
        format!("📊 {}\n{}", self.question, tally.join(" · "))
    }
}

#[derive(Default)]
struct Polls {
    /// Poll message id → poll.
    by_message: HashMap<String, Poll>,
    /// Chat id → its latest poll's message id.
    latest: HashMap<String, String>,
    next: u64,
}

type Shared = Arc<Mutex<Polls>>;

fn lock(polls: &Shared) -> Result<std::sync::MutexGuard<'_, Polls>, BoxError> {
    polls.lock().map_err(|_| "poll table lock poisoned".into())
}

async fn new_poll(
    CommandArgs(spec): CommandArgs<String>,
    msg: MessageContext,
    polls: Dep<Shared>,
) -> HandlerResult {
    let parts: Vec<String> = spec
        .split('|')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let Some((question, options)) = parts
        .split_first()
        .filter(|(_, o)| (2..=8).contains(&o.len()))
    else {
        msg.reply("usage: /poll Question | option | option… (2 to 8 options)")
            .await?;
        return Ok(());
    };
    let id = {
        let mut p = lock(&polls)?;
        p.next += 1;
        p.next
    };
    // One command per option: the command string is what identifies the pressed button.
    let keyboard = InlineKeyboard::builder()
        .row(options.iter().enumerate().map(|(i, o)| {
            Button::command(
                o.chars().take(32).collect::<String>(),
                format!("vote:{id}:{i}"),
            )
        }))
        .build()?;
    let poll = Poll {
        chat: msg.chat().to_owned(),
        question: question.clone(),
        options: options.to_vec(),
        votes: vec![0; options.len()],
        keyboard: keyboard.clone(),
        open: true,
    };
    let sent = msg.answer(poll.render()).buttons(keyboard).await?;
    let mut p = lock(&polls)?;
    p.latest.insert(poll.chat.clone(), sent.message_id.clone());
    p.by_message.insert(sent.message_id, poll);
    Ok(())
}

async fn vote(press: ButtonContext, polls: Dep<Shared>) -> HandlerResult {
    let Some(message_id) = press
        .command_source
        .message
        .as_ref()
        .map(|m| m.message_id.clone())
    else {
        return Ok(());
    };
    let option = press
        .command()
        .rsplit(':')
        .next()
        .and_then(|i| i.parse::<usize>().ok());
    let edit = {
        let mut p = lock(&polls)?;
        match (p.by_message.get_mut(&message_id), option) {
            (Some(poll), Some(i)) if poll.open && i < poll.votes.len() => {
                poll.votes[i] += 1;
                Some((poll.render(), poll.keyboard.clone()))
            }
            _ => None,
        }
    };
    if let Some((text, keyboard)) = edit {
        press
            .bot
            .edit_message(&message_id, text)
            .buttons(keyboard)
            .await?;
    }
    Ok(())
}

async fn close(chat: ChatId, msg: MessageContext, polls: Dep<Shared>) -> HandlerResult {
    let closed = {
        let mut p = lock(&polls)?;
        let latest = p.latest.get(&*chat).cloned();
        latest.and_then(|id| {
            let poll = p.by_message.get_mut(&id)?;
            poll.open = false;
            Some((id, poll.render(), poll.options.clone(), poll.votes.clone()))
        })
    };
    let Some((id, text, options, votes)) = closed else {
        msg.reply("There is no poll in this chat.").await?;
        return Ok(());
    };
    // An edit without buttons removes the keyboard.
    msg.bot
        .edit_message(&id, format!("{text}\n(closed)"))
        .await?;
    let total: u32 = votes.iter().sum();
    let best = votes.iter().copied().max().unwrap_or(0);
    let winners: Vec<&str> = options
        .iter()
        .zip(&votes)
        .filter(|(_, v)| **v == best && best > 0)
        .map(|(o, _)| o.as_str())
        .collect();
    let result = match winners.as_slice() {
        [] => "Poll closed without votes.".to_owned(),
        [one] => format!("Poll closed: {one} wins with {best} of {total} votes."),
        many => format!("Poll closed: a tie between {}.", many.join(" and ")),
    };
    msg.answer(result).await?;
    Ok(())
}

async fn survey(CommandArgs(args): CommandArgs<String>, msg: MessageContext) -> HandlerResult {
    let Some((campaign, title)) = args.split_once(' ').filter(|(_, t)| !t.trim().is_empty()) else {
        msg.reply("usage: /survey <campaign-id> <title>").await?;
        return Ok(());
    };
    msg.bot
        .send_survey(msg.chat(), title.trim(), campaign)
        .await?;
    Ok(())
}

async fn usage(bad: BadArgs, msg: MessageContext) -> HandlerResult {
    msg.reply(bad.to_string()).await?;
    Ok(())
}

fn router() -> Router {
    Router::new()
        .command(CommandFilter::new("poll").on_bad_args(usage), new_poll)
        .command("close", close)
        .command(CommandFilter::new("survey").on_bad_args(usage), survey)
        .button_when(
            Filter::new(|c| {
                c.update()
                    .button_command()
                    .is_some_and(|cmd| cmd.starts_with("vote:"))
            }),
            vote,
        )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let polls: Shared = Arc::default();
    let dispatcher = Dispatcher::builder(session.bot.clone(), router())
        .dependency(polls)
        .build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = sim.user("alice");
            let lunch = sim
                .create_group(&alice, "Lunch", &["bot", "bob", "carol"])
                .await;
            let alice = Person::in_chat(&sim, "alice", &lunch);
            let bob = Person::in_chat(&sim, "bob", &lunch);
            let carol = Person::in_chat(&sim, "carol", &lunch);
            alice
                .say("/poll Where do we eat? | Pizza | Sushi | Salad")
                .await?;
            let poll = alice.expect("Where do we eat?").await?;
            let poll_id = poll.id.clone();
            alice.press(&poll, "vote:1:0").await?;
            bob.press(&poll, "vote:1:1").await?;
            carol.press(&poll, "vote:1:0").await?;
            let edited = eventually("the tally edit", Duration::from_secs(10), || {
                let m = sim.message(&poll_id)?;
                let text = m.text_or_title().to_owned();
                text.contains("Pizza: 2 · Sushi: 1").then_some(text)
            })
            .await?;
            println!(
                "{:>8} ~ (poll edited) {}",
                "bot",
                edited.replace('\n', " / ")
            );
            alice.say("/close").await?;
            alice.expect("Pizza wins with 2 of 3 votes").await?;
            alice.say("/poll Just one | option").await?;
            alice.expect("usage: /poll").await?;
            alice.say("/survey 17 Team satisfaction 2026").await?;
            alice.expect("Team satisfaction 2026").await?;
            Ok(())
        })
        .await
}
