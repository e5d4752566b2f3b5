//! [`Person`]: a scripted user in one chat, for conversations written the way they read
//! ("alice says /start, expects Hi"), with an optional running transcript of both sides.

use std::sync::Arc;

use bytes::Bytes;

use super::records::SentFile;
use super::sim::Sim;
use super::user::SimUser;
use super::view::SimMessage;
use crate::error::{Error, Result};

/// A scripted user in one chat: says things, waits for the bot's answers and checks them.
/// When the emulator has a transcript sink ([`Sim::set_transcript`]) both sides are written to
/// it, one line each (`   alice > /start`, `     bot < Hi alice!`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> trueconf_bot::Result<()> {
/// use std::sync::Arc;
/// use trueconf_bot::dispatch::{HandlerResult, MessageContext, Router};
/// use trueconf_bot::harness::SimBot;
/// use trueconf_bot::testkit::{Person, Sim, SimConfig};
///
/// async fn hi(msg: MessageContext) -> HandlerResult {
///     msg.answer("Hi!").await?;
///     Ok(())
/// }
/// let sim = Arc::new(Sim::start(SimConfig::default()).await?);
/// let bot = SimBot::start(&sim, Router::new().command("start", hi)).await?;
/// let alice = Person::p2p(&sim, "alice").await?;
/// alice.say("/start").await?;
/// alice.expect("Hi").await?;
/// bot.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Person {
    /// Name used in the transcript (the login).
    pub name: String,
    /// The emulator user.
    pub user: SimUser,
    /// The chat this person talks in.
    pub chat: String,
    sim: Arc<Sim>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("name", &self.name)
            .field("chat", &self.chat)
            .finish()
    }
}

impl Person {
    /// `login` in a personal chat with the bot (opened now if needed).
    pub async fn p2p(sim: &Arc<Sim>, login: &str) -> Result<Person> {
        let user = sim.user(login);
        let chat = user.create_p2p_with_bot().await?;
        Ok(Person {
            name: login.to_owned(),
            user,
            chat,
            sim: sim.clone(),
        })
    }

    /// `login` in the chat `chat` (a group or channel they belong to).
    pub fn in_chat(sim: &Arc<Sim>, login: &str, chat: &str) -> Person {
        Person {
            name: login.to_owned(),
            user: sim.user(login),
            chat: chat.to_owned(),
            sim: sim.clone(),
        }
    }

    /// The same user in another chat.
    pub fn moved_to(&self, chat: &str) -> Person {
        Person {
            chat: chat.to_owned(),
            ..self.clone()
        }
    }

    fn note(&self, line: String) {
        self.sim.transcript_line(&line);
    }

    /// Sends `text`; returns the message id.
    pub async fn say(&self, text: &str) -> Result<String> {
        self.note(format!("{:>8} > {text}", self.name));
        self.user.send_text(&self.chat, text).await
    }

    /// Posts a file; returns the message and file ids.
    pub async fn send_file(&self, name: &str, data: impl Into<Bytes>) -> Result<SentFile> {
        self.note(format!("{:>8} > [file] {name}", self.name));
        self.user.upload_file(&self.chat, name, data).await
    }

    /// Waits for the bot's next message in this chat (the emulator's
    /// [`expect_timeout`](Sim::expect_timeout)) and writes it to the transcript.
    pub async fn hear(&self) -> Result<SimMessage> {
        let message = self.hear_quietly().await?;
        let summary = message.summary().replace('\n', "\n           ");
        self.note(format!("{:>8} < {summary}", "bot"));
        Ok(message)
    }

    /// Waits for the bot's next message in this chat without writing it to the transcript.
    pub async fn hear_quietly(&self) -> Result<SimMessage> {
        self.sim.expect_message(&self.chat).await
    }

    /// Waits for the bot's next message and checks that its text contains `needle`
    /// ([`Error::Unexpected`] says what the bot said instead).
    pub async fn expect(&self, needle: &str) -> Result<SimMessage> {
        let message = self.hear().await?;
        if message.text_or_title().contains(needle) {
            return Ok(message);
        }
        Err(Error::Unexpected {
            expected: format!("the bot to tell {} {needle:?}", self.name),
            found: format!("{:?}", message.summary()),
        })
    }

    /// Presses the command button `command` of the bot message `message`.
    pub async fn press(&self, message: &SimMessage, command: &str) -> Result<()> {
        let label = message
            .button(command)
            .map(|button| button.label)
            .unwrap_or_else(|| command.to_owned());
        self.note(format!("{:>8} * presses [{label}]", self.name));
        self.user
            .press_button(&self.chat, &message.id, command)
            .await
            .map(drop)
    }
}

impl Sim {
    /// Writes every line of the [`Person`] conversations on this emulator to `sink` (an
    /// example prints them; a test may collect them).
    pub fn set_transcript(&self, sink: impl Fn(&str) + Send + Sync + 'static) {
        *crate::sync::lock(&self.transcript) = Some(Arc::new(sink));
    }

    fn transcript_line(&self, line: &str) {
        let sink = crate::sync::lock(&self.transcript).clone();
        if let Some(sink) = sink {
            sink(line);
        }
    }
}
