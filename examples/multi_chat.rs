//! Many chats at once: a message counter per chat, and what the per-chat ordering guarantee
//! looks like.
//!
//! ```text
//! cargo run --example multi_chat
//! ```
//!
//! Every chat has its own conversation actor: its events are handled one at a time, in the
//! order they arrived, while different chats run in parallel. The handler here sleeps a random
//! 0–40 ms to make that visible: the `[bot]` lines interleave across chats, yet every chat's
//! counter goes 1, 2, 3… and every chat gets its answers in the order it asked. The script
//! checks both.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::dispatch::{Dep, Dispatcher, HandlerResult, MessageContext, Router};

/// Counts messages per chat and answers each with its number.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

/// Message counts by chat id. A conversation actor handles one event of its chat at a time,
/// so two handlers never race for the same chat's entry.
type Counters = Arc<Mutex<HashMap<String, u64>>>;

async fn count(msg: MessageContext, counters: Dep<Counters>) -> HandlerResult {
    let n = {
        let mut map = counters.lock().map_err(|_| "counter lock poisoned")?;
        let n = map.entry(msg.chat().to_owned()).or_default();
        *n += 1;
        *n
    };
    let pause = rand::random_range(0..40u64);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    let text = msg.text().unwrap_or("(not text)");
    let chat: String = msg.chat().chars().take(6).collect();
    println!("          [bot] chat {chat}…  #{n} {text:<9} after {pause:>2} ms");
    msg.answer(format!("#{n} {text}")).await?;
    Ok(())
}

const PER_CHAT: usize = 5;

/// Sends `PER_CHAT` messages back to back, then checks the answers arrived numbered and in
/// order.
async fn burst(person: &Person, tag: &str) -> Result<String, BoxError> {
    let texts: Vec<String> = (1..=PER_CHAT).map(|i| format!("{tag}{i}")).collect();
    for t in &texts {
        person.user.send_text(&person.chat, t).await?;
    }
    let mut got = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let m = person.hear_quietly().await?;
        let answer = m.text_or_title().to_owned();
        let expected = format!("#{} {t}", i + 1);
        if answer != expected {
            return Err(format!("{}: expected {expected:?}, got {answer:?}", person.name).into());
        }
        got.push(answer);
    }
    Ok(got.join(", "))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let counters: Counters = Arc::default();
    let dispatcher = Dispatcher::builder(session.bot.clone(), Router::new().message(count))
        .dependency(counters)
        .build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            let bob = Person::p2p(&sim, "bob").await?;
            let carol = Person::p2p(&sim, "carol").await?;
            let team = sim.create_group(&alice.user, "Team", &["bot", "bob"]).await;
            let in_team = alice.moved_to(&team);
            println!(
                "-- alice, bob, carol (personal chats) and alice in the group Team each send \
                 {PER_CHAT} messages at once"
            );
            let (a, b, c, t) = tokio::try_join!(
                burst(&alice, "a"),
                burst(&bob, "b"),
                burst(&carol, "c"),
                burst(&in_team, "team"),
            )?;
            for (who, answers) in [("alice", a), ("bob", b), ("carol", c), ("Team", t)] {
                println!("{who:>8} < {answers}   (in order)");
            }
            // The counter is per chat: bob writing in the group continues the group's count.
            let bob_in_team = bob.moved_to(&team);
            bob_in_team.say("hi team").await?;
            bob_in_team
                .expect(&format!("#{} hi team", PER_CHAT + 1))
                .await?;
            Ok(())
        })
        .await
}
