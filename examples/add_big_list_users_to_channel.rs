//! Port of the official client's `examples/add_big_list_users_to_channel.py`: create a
//! channel and add a long list of users to it, handling the errors a bulk run meets.
//!
//! ```text
//! cargo run --example add_big_list_users_to_channel
//! cargo run --example add_big_list_users_to_channel -- --server video.example.com --token … \
//!     --users users.txt --channel "All staff"
//! ```
//!
//! One login (or `login@domain`) per line; blank lines and `#` comments are skipped. As in
//! the original, "already in the chat" (error 309) is not a failure. Unlike it, the adds run
//! eight at a time, a transient failure (timeout, lost connection, a server error 300/301) is
//! retried twice with a pause, and the run ends with a summary instead of stopping at the
//! first unexpected error. Without `--users` (emulator mode) a list of 150 generated users
//! with duplicates and two unknown logins is used, and the emulator fails a few adds on
//! purpose.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect};
use futures_util::StreamExt;
use trueconf_bot::Error;
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dispatcher, Router};
use trueconf_bot::testkit::Sim;

/// Creates a channel and adds every user of a list to it.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// The list of users, one per line.
    #[arg(long)]
    users: Option<PathBuf>,
    /// The channel's title.
    #[arg(long, default_value = "All staff")]
    channel: String,
}

#[derive(Debug)]
enum Outcome {
    Added,
    AlreadyIn,
    Failed(Error),
}

/// Adds one user, retrying transient failures.
async fn add(bot: &Bot, chat: &str, user: &str) -> Outcome {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match bot
            .add_participant_to_chat(chat, user)
            .display_history(true)
            .await
        {
            Ok(_) => return Outcome::Added,
            Err(e) if e.api_code().is_some_and(|c| c.0 == 309) => return Outcome::AlreadyIn,
            Err(e)
                if attempt < 3
                    && (e.is_transient()
                        || e.api_code().is_some_and(|c| c.0 == 300 || c.0 == 301)) =>
            {
                tracing::info!(user, error = %e, "retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Outcome::Failed(e),
        }
    }
}

fn read_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let list = match &args.users {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --users {}: {e}", path.display()))?,
        None => {
            let mut lines = vec!["# generated for the emulator".to_owned()];
            lines.extend((1..=150).map(|n| format!("user{n:03}")));
            lines.extend(["user007".into(), String::new(), "user042".into()]);
            lines.extend(["left.company".into(), "no.such.user".into()]);
            lines.join("\n")
        }
    };
    let users = read_list(&list);
    let channel = args.channel;
    let session = args.connect.connect(|bot| bot).await?;
    let bot = session.bot.clone();
    // No handlers: the dispatcher only keeps the bot connected while the script runs.
    let dispatcher = Dispatcher::builder(bot.clone(), Router::new()).build()?;
    // The whole run is the bot acting on its own, so it is the driver: it runs in replay mode
    // too, and the transcript (the channel, then one `join` per added user) is checked
    // against what it does. No user acts: the script is empty.
    let driver = |sim: Arc<Sim>| async move {
        // The emulator knows every listed user except the last two, and two adds answer
        // "operation timeout" (301) once each: retried.
        for user in users.iter().filter(|u| u.starts_with("user")) {
            sim.user(user);
        }
        sim.faults().fail_method("addChatParticipant", 301, Some(2));
        let chat = bot.create_channel(&channel).await?.chat_id;
        println!(
            "-- channel {channel:?} created; adding {} users",
            users.len()
        );
        let outcomes: Vec<(String, Outcome)> = futures_util::stream::iter(users)
            .map(|user| {
                let (bot, chat) = (bot.clone(), chat.clone());
                async move {
                    let outcome = add(&bot, &chat, &user).await;
                    (user, outcome)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
        let added = count(|o| matches!(o, Outcome::Added));
        let already = count(|o| matches!(o, Outcome::AlreadyIn));
        for (user, o) in &outcomes {
            if let Outcome::Failed(e) = o {
                println!("   failed: {user}: {e}");
            }
        }
        let failed = outcomes.len() - added - already;
        println!("-- added {added}, already members {already}, failed {failed}");
        let members = bot.get_chat_participants(&chat, 500, 1).await?;
        println!(
            "-- the channel has {} participants",
            members.participants.len()
        );
        if added != 150 || already != 2 || failed != 2 {
            return Err("unexpected outcome".into());
        }
        Ok(())
    };
    session
        .serve_driven(dispatcher, driver, |_| async { Ok(()) })
        .await
}
