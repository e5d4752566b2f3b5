//! A registration dialog as a finite-state machine: name → age (validated) → confirm, with
//! `/cancel` at any step and `/me` to show the result.
//!
//! ```text
//! cargo run --example fsm_form                                       # in memory
//! cargo run --example fsm_form --features sqlite -- --sqlite form.db # survives restarts
//! ```
//!
//! The dialog state is a plain enum kept in a [`Storage`]: [`MemoryStorage`] by default, or a
//! SQLite file with `--sqlite PATH`, so a half-finished form carries on after the bot
//! restarts. In emulator mode with `--sqlite` the script restarts the bot in the middle of
//! the form to show it. Each user has their own dialog per chat (`KeyStrategy::UserInChat`).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use common::{BoxError, Connect, Person};
use serde::{Deserialize, Serialize};
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router, Text};
use trueconf_bot::fsm::{Dialogue, MemoryStorage, StateFilter, Storage};

/// A sign-up form kept in dialog state.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// Keep dialog state in this SQLite file (needs the `sqlite` feature).
    #[arg(long, value_name = "PATH", env = "TRUECONF_FSM_SQLITE")]
    sqlite: Option<PathBuf>,
}

/// Where each user is in the form. Stored as JSON, so keep old variants decodable (or
/// reset dialogs) when you change it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Form {
    Name,
    Age { name: String },
    Confirm { name: String, age: u8 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Profile {
    name: String,
    age: u8,
}

async fn register(msg: MessageContext, form: Dialogue<Form>) -> HandlerResult {
    form.update(Form::Name).await?;
    msg.answer("Let's sign you up. What's your name? (/cancel to stop)")
        .await?;
    Ok(())
}

async fn cancel(msg: MessageContext, form: Dialogue<Form>) -> HandlerResult {
    // Clear the form state only; the data (a finished profile) stays.
    let answer = match form.update_with(|_| None).await {
        Ok(_) => "Cancelled. Send /register to start again.",
        Err(e) => return Err(e.into()),
    };
    msg.answer(answer).await?;
    Ok(())
}

async fn got_name(msg: MessageContext, form: Dialogue<Form>, Text(name): Text) -> HandlerResult {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.starts_with('/') {
        msg.answer("Please send a name of 1 to 64 characters.")
            .await?;
        return Ok(());
    }
    msg.answer(format!("Nice to meet you, {name}. How old are you?"))
        .await?;
    form.update(Form::Age { name }).await?;
    Ok(())
}

async fn got_age(msg: MessageContext, form: Dialogue<Form>, Text(age): Text) -> HandlerResult {
    let Some(Form::Age { name }) = form.get().await? else {
        return Ok(());
    };
    match age.trim().parse::<u8>() {
        Ok(age @ 1..=130) => {
            msg.answer(format!("Register {name}, {age}? Answer yes or no."))
                .await?;
            form.update(Form::Confirm { name, age }).await?;
        }
        _ => {
            msg.answer(format!(
                "{age:?} is not an age. Please send a number from 1 to 130."
            ))
            .await?;
        }
    }
    Ok(())
}

async fn got_confirmation(
    msg: MessageContext,
    form: Dialogue<Form>,
    Text(answer): Text,
) -> HandlerResult {
    let Some(Form::Confirm { name, age }) = form.get().await? else {
        return Ok(());
    };
    match answer.trim().to_lowercase().as_str() {
        "yes" | "y" => {
            // The profile stays in the dialog's data after the form state is cleared.
            form.set_data(
                "profile",
                Profile {
                    name: name.clone(),
                    age,
                },
            )
            .await?;
            form.update_with(|_| None).await?;
            msg.answer(format!("Registered {name}, {age}. Welcome! (/me shows it)"))
                .await?;
        }
        "no" | "n" => {
            form.update(Form::Name).await?;
            msg.answer("Let's start over. What's your name?").await?;
        }
        _ => {
            msg.answer("Please answer yes or no.").await?;
        }
    }
    Ok(())
}

async fn me(msg: MessageContext, form: Dialogue<Form>) -> HandlerResult {
    let answer = match form.get_data::<Profile>("profile").await? {
        Some(p) => format!("You are {}, {}.", p.name, p.age),
        None => "You are not registered yet: send /register.".to_owned(),
    };
    msg.answer(answer).await?;
    Ok(())
}

async fn idle(msg: MessageContext) -> HandlerResult {
    msg.answer("Send /register to sign up, /me to see your profile.")
        .await?;
    Ok(())
}

fn router() -> Router {
    let asking_age = StateFilter::new(|s: &Form| matches!(s, Form::Age { .. }));
    let confirming = StateFilter::new(|s: &Form| matches!(s, Form::Confirm { .. }));
    // Commands first, so /cancel works in every state.
    Router::new()
        .command("cancel", cancel)
        .command("register", register)
        .command("me", me)
        .message_in(StateFilter::equals(Form::Name), got_name)
        .message_in(asking_age, got_age)
        .message_in(confirming, got_confirmation)
        .message(idle)
}

async fn open_storage(path: Option<&PathBuf>) -> Result<Arc<dyn Storage>, BoxError> {
    let Some(path) = path else {
        return Ok(Arc::new(MemoryStorage::new()));
    };
    #[cfg(feature = "sqlite")]
    {
        let storage = trueconf_bot::fsm::SqliteStorage::open(path).await?;
        Ok(Arc::new(storage))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        Err(format!(
            "--sqlite {} needs the `sqlite` feature: \
             cargo run --example fsm_form --features sqlite -- --sqlite PATH",
            path.display()
        )
        .into())
    }
}

fn dispatcher(bot: Bot, storage: Arc<dyn Storage>) -> Result<Dispatcher, BoxError> {
    Ok(Dispatcher::builder(bot, router())
        .dependency(storage)
        .build()?)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let sqlite = args.sqlite;
    let session = args.connect.connect(|bot| bot).await?;
    let storage = open_storage(sqlite.as_ref()).await?;
    let first = dispatcher(session.bot.clone(), storage.clone())?;
    let restarter = session.restarter();
    session
        .serve(first, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("hello").await?;
            alice.expect("/register").await?;
            alice.say("/register").await?;
            alice.expect("What's your name?").await?;
            alice.say("Ann").await?;
            alice.expect("How old are you?").await?;
            alice.say("old enough").await?;
            alice.expect("number from 1 to 130").await?;
            if let (Some(path), Some(restarter)) = (&sqlite, &restarter) {
                println!(
                    "-- restarting the bot; the dialog state is kept in {}",
                    path.display()
                );
                restarter.stop().await?;
                drop(storage);
                let storage = open_storage(sqlite.as_ref()).await?;
                restarter
                    .start(dispatcher(restarter.new_bot()?, storage)?)
                    .await?;
            }
            alice.say("33").await?;
            alice.expect("Register Ann, 33?").await?;
            alice.say("no").await?;
            alice.expect("start over").await?;
            alice.say("Anna").await?;
            alice.expect("Nice to meet you, Anna").await?;
            alice.say("34").await?;
            alice.expect("Register Anna, 34?").await?;
            alice.say("yes").await?;
            alice.expect("Registered Anna, 34").await?;
            alice.say("/me").await?;
            alice.expect("You are Anna, 34.").await?;

            let bob = Person::p2p(&sim, "bob").await?;
            bob.say("/register").await?;
            bob.expect("What's your name?").await?;
            bob.say("/cancel").await?;
            bob.expect("Cancelled.").await?;
            bob.say("/me").await?;
            bob.expect("not registered").await?;
            Ok(())
        })
        .await
}
