//! Port of the official client's `examples/report_bot.py`: a support bot that collects a
//! user's messages into a ticket.
//!
//! ```text
//! cargo run --example report_bot
//! cargo run --example report_bot --features sqlite    # (the dialog storage could be SQLite)
//! ```
//!
//! `/report` opens a ticket (a number) and every following message of that user goes into it;
//! `/cancel` drops it; `/send` assembles it (texts and the names of attached files) and hands
//! it to `deliver`, where the Python original leaves building and mailing the e-mail to the
//! reader: here it is printed. The Python original adds and removes a router per user at run
//! time; here the ticket is the user's dialog state (`Dialogue`), so routes are fixed and a
//! ticket survives a restart with a persistent storage.

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use serde::{Deserialize, Serialize};
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::fsm::{Dialogue, MemoryStorage, StateFilter};
use trueconf_bot::types::Content;

/// Collects support tickets.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Ticket {
    Open { number: u32 },
}

async fn report(msg: MessageContext, ticket: Dialogue<Ticket>) -> HandlerResult {
    if let Some(Ticket::Open { number }) = ticket.get().await? {
        msg.answer(format!(
            "Ticket #{number} is already open: /send or /cancel it."
        ))
        .await?;
        return Ok(());
    }
    let number = rand::random_range(10_000..100_000);
    ticket.clear_data().await?;
    ticket.update(Ticket::Open { number }).await?;
    msg.answer(format!(
        "Your ticket number is #{number}. All your next messages go into it; /send when done."
    ))
    .await?;
    Ok(())
}

async fn cancel(msg: MessageContext, ticket: Dialogue<Ticket>) -> HandlerResult {
    let answer = match ticket.get().await? {
        Some(Ticket::Open { number }) => {
            ticket.exit().await?;
            format!("Ticket #{number} was cancelled.")
        }
        None => "You don't have an open ticket.".to_owned(),
    };
    msg.answer(answer).await?;
    Ok(())
}

/// One line of the ticket for a message.
fn line_of(msg: &MessageContext) -> String {
    match &msg.content {
        Content::Attachment(f) => format!(
            "[attachment {} ({} bytes), file id {}]",
            f.name, f.size, f.file_id
        ),
        _ => msg.text().unwrap_or("[a message without text]").to_owned(),
    }
}

async fn collect(msg: MessageContext, ticket: Dialogue<Ticket>) -> HandlerResult {
    let mut lines: Vec<String> = ticket.get_data("lines").await?.unwrap_or_default();
    lines.push(line_of(&msg));
    let count = lines.len();
    ticket.set_data("lines", lines).await?;
    msg.answer(format!("Added to the ticket ({count} so far)."))
        .await?;
    Ok(())
}

/// Where the e-mail would be built and sent (`lettre`, an SMTP relay, a helpdesk API…).
fn deliver(number: u32, author: &str, lines: &[String]) -> bool {
    println!("   -- e-mail to support: ticket #{number} from {author}");
    for line in lines {
        println!("   |  {line}");
    }
    !lines.is_empty()
}

async fn send(msg: MessageContext, ticket: Dialogue<Ticket>) -> HandlerResult {
    let Some(Ticket::Open { number }) = ticket.get().await? else {
        msg.answer("You don't have an open ticket.").await?;
        return Ok(());
    };
    let lines: Vec<String> = ticket.get_data("lines").await?.unwrap_or_default();
    let answer = if deliver(number, msg.author_id(), &lines) {
        ticket.exit().await?;
        format!("Ticket #{number} was sent to technical support.")
    } else {
        "The ticket is empty: write what happened first.".to_owned()
    };
    msg.answer(answer).await?;
    Ok(())
}

fn router() -> Router {
    let open = StateFilter::<Ticket>::any();
    Router::new()
        .command("report", report)
        .command("cancel", cancel)
        .command("send", send)
        .message_in(open, collect)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let dispatcher = Dispatcher::builder(session.bot.clone(), router())
        .storage(MemoryStorage::new())
        .build()?;
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/send").await?;
            alice.expect("You don't have an open ticket.").await?;
            alice.say("/report").await?;
            alice.expect("Your ticket number is #").await?;
            alice.say("The printer on floor 3 jams.").await?;
            alice.expect("Added to the ticket (1 so far).").await?;
            println!("{:>8} > [file] jam.png", alice.name);
            alice
                .user
                .upload_file(&alice.chat, "jam.png", &b"\x89PNG photo"[..])
                .await?;
            alice.expect("Added to the ticket (2 so far).").await?;
            alice.say("/send").await?;
            alice.expect("was sent to technical support.").await?;
            alice.say("Thanks!").await?;
            // Not collected any more: no open ticket, no route takes it.
            alice.say("/report").await?;
            alice.expect("Your ticket number is #").await?;
            alice.say("/cancel").await?;
            alice.expect("was cancelled.").await?;
            Ok(())
        })
        .await
}
