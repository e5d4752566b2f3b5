//! Chat administration: create groups and channels, add and remove participants, change
//! roles and titles, list members.
//!
//! ```text
//! cargo run --example admin
//! ```
//!
//! In a personal chat with the bot:
//! * `/newgroup <title>` and `/newchannel <title>`: the bot creates the chat (it is the
//!   owner), adds you and makes you an admin.
//!
//! In a group or channel the bot owns, for its admins:
//! * `/add <login>`, `/kick <login>`, `/promote <login>` (admin), `/demote <login>` (user),
//!   `/writer <login>` (may post in a channel), `/title <new title>`, `/members`.
//!
//! Logins without `@domain` are completed with the server's domain, as the official client
//! does.

mod common;

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{
    BotCommand, CommandArgs, DispatchError, Dispatcher, Filter, HandlerResult, MessageContext,
    Router, Update,
};
use trueconf_bot::testkit::SimMessage;
use trueconf_bot::types::{ChatType, Role};

/// Creates and administers group chats and channels.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
}

async fn create(
    cmd: BotCommand,
    CommandArgs(title): CommandArgs<String>,
    msg: MessageContext,
) -> HandlerResult {
    if title.is_empty() {
        msg.reply(format!("usage: /{} <title>", cmd.name)).await?;
        return Ok(());
    }
    let (kind, created) = if cmd.name == "newchannel" {
        ("channel", msg.bot.create_channel(&title).await?)
    } else {
        ("group", msg.bot.create_group_chat(&title).await?)
    };
    let chat = created.chat_id;
    let requester = msg.author_id().to_owned();
    msg.bot
        .add_participant_to_chat(&chat, &requester)
        .display_history(true)
        .await?;
    msg.bot
        .change_participant_role(&chat, &requester, Role::Admin)
        .await?;
    msg.reply(format!(
        "Created {kind} «{title}»; you are an admin there. chat id: {chat}"
    ))
    .await?;
    Ok(())
}

/// Whether the author may administer the chat (owner or admin).
async fn is_admin(bot: &Bot, chat: &str, user: &str) -> Result<bool, BoxError> {
    match bot.get_chat_participant(chat, user).await {
        Ok(p) => Ok(matches!(p.role, Role::Owner | Role::Admin)),
        Err(e) if e.api_code().is_some() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn manage(cmd: BotCommand, msg: MessageContext) -> HandlerResult {
    let chat = msg.chat().to_owned();
    let bot = &msg.bot;
    if !is_admin(bot, &chat, msg.author_id()).await? {
        msg.reply("Only admins of this chat can do that.").await?;
        return Ok(());
    }
    let arg = cmd.args.trim();
    let needs_arg = !matches!(cmd.name.as_str(), "members");
    if needs_arg && arg.is_empty() {
        msg.reply(format!("usage: /{} <login>", cmd.name)).await?;
        return Ok(());
    }
    let user = bot.complete_user_id(arg);
    let answer = match cmd.name.as_str() {
        "add" => {
            bot.add_participant_to_chat(&chat, &user).await?;
            format!("{user} added")
        }
        "kick" => {
            bot.remove_participant_from_chat(&chat, &user).await?;
            format!("{user} removed")
        }
        "promote" | "demote" | "writer" => {
            let role = match cmd.name.as_str() {
                "promote" => Role::Admin,
                "writer" => Role::Writer,
                _ => Role::User,
            };
            bot.change_participant_role(&chat, &user, role.clone())
                .await?;
            format!("{user} is now {}", role.as_str())
        }
        "title" => {
            bot.edit_chat_title(&chat, arg).await?;
            format!("title changed to «{arg}»")
        }
        _ => {
            let list = bot.get_chat_participants(&chat, 100, 1).await?;
            let lines: Vec<String> = list
                .participants
                .iter()
                .map(|p| format!("{} ({})", p.user_id, p.role.as_str()))
                .collect();
            format!("{} members: {}", lines.len(), lines.join(", "))
        }
    };
    msg.reply(answer).await?;
    Ok(())
}

fn router() -> Router {
    let managed = Filter::chat_type(ChatType::Group).or(Filter::chat_type(ChatType::Channel));
    let admin_commands = [
        "add", "kick", "promote", "demote", "writer", "title", "members",
    ]
    .into_iter()
    .map(Filter::command)
    .reduce(Filter::or)
    .unwrap_or_else(|| Filter::new(|_| false));
    Router::new()
        .command("newgroup", create)
        .command("newchannel", create)
        .message_when(managed.and(admin_commands), manage)
}

fn chat_id_in(reply: &SimMessage) -> Result<String, BoxError> {
    let text = reply.text_or_title();
    Ok(text
        .rsplit("chat id: ")
        .next()
        .filter(|id| !id.is_empty() && *id != text)
        .ok_or("no chat id in the reply")?
        .to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let bot = session.bot.clone();
    let dispatcher = Dispatcher::builder(session.bot.clone(), router())
        // A failed call (no rights, unknown user…) is reported to the chat, not just logged.
        .error_handler(move |update: Update, error: DispatchError| {
            let bot = bot.clone();
            async move {
                let reason = match &error {
                    DispatchError::Handler { error, .. } => error.to_string(),
                    other => other.to_string(),
                };
                if let Some(chat) = update.chat_id() {
                    let _ = bot.send_message(chat, format!("Failed: {reason}")).await;
                }
            }
        })
        .build()?;
    session
        .serve(dispatcher, |sim| async move {
            for login in ["bob", "carol", "dave"] {
                sim.user(login); // known to the server
            }
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/newgroup Release team").await?;
            let group = chat_id_in(&alice.expect("Created group").await?)?;
            let alice = alice.moved_to(&group);
            alice.say("/members").await?;
            alice.expect("alice@sim.example (admin)").await?;
            alice.say("/add bob").await?;
            alice.expect("bob@sim.example added").await?;
            alice.say("/add nobody").await?;
            alice.expect("Failed: addChatParticipant").await?;
            let bob = Person::in_chat(&sim, "bob", &group);
            bob.say("/add carol").await?;
            bob.expect("Only admins").await?;
            alice.say("/promote bob").await?;
            alice.expect("bob@sim.example is now admin").await?;
            bob.say("/add carol").await?;
            bob.expect("carol@sim.example added").await?;
            bob.say("/title Release 1.0 team").await?;
            bob.expect("title changed").await?;
            println!(
                "-- the emulator's title is now {:?}",
                sim.chat_title(&group)
            );
            alice.say("/kick carol").await?;
            alice.expect("carol@sim.example removed").await?;
            alice.say("/members").await?;
            alice.expect("3 members").await?;

            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("/newchannel Announcements").await?;
            let channel = chat_id_in(&alice.expect("Created channel").await?)?;
            let alice = alice.moved_to(&channel);
            alice.say("/add dave").await?;
            alice.expect("dave@sim.example added").await?;
            alice.say("/writer dave").await?;
            alice.expect("dave@sim.example is now writer").await?;
            println!("-- channel participants: {:?}", sim.participants(&channel));
            Ok(())
        })
        .await
}
