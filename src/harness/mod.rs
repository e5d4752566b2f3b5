//! Running a bot against the emulator in a test (feature `testkit`): build a bot pointed at a
//! [`Sim`], run a [`Dispatcher`] in the background until the bot's session is authorised, and
//! stop it again.
//!
//! [`testkit`](crate::testkit) is the emulator and knows nothing of bots or dispatchers (it is
//! an independent reading of the protocol); this module is the small bridge between the two.
//!
//! For tests that need no socket at all, [`event`] builds a synthetic server event and
//! [`run_events`] runs a dispatcher over a list of them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> trueconf_bot::Result<()> {
//! use trueconf_bot::dispatch::{HandlerResult, MessageContext, Router};
//! use trueconf_bot::harness::SimBot;
//! use trueconf_bot::testkit::{Sim, SimConfig};
//!
//! async fn echo(msg: MessageContext) -> HandlerResult {
//!     msg.reply(msg.text().unwrap_or_default()).await?;
//!     Ok(())
//! }
//!
//! let sim = Sim::start(SimConfig::default()).await?;
//! let bot = SimBot::start(&sim, Router::new().message(echo)).await?; // connected and authorised
//! let alice = sim.user("alice");
//! let chat = alice.create_p2p_with_bot().await?;
//! alice.send_text(&chat, "ping").await?;
//! assert_eq!(sim.expect_message(&chat).await?.text(), Some("ping"));
//! bot.stop().await?;
//! # Ok(()) }
//! ```

use tokio::task::JoinHandle;

mod events;
pub use events::{event, run_events};

use crate::bot::{Bot, BotBuilder, ConnectionState};
use crate::dispatch::{Dispatcher, DispatcherHandle, Router};
use crate::error::{Error, Result};
use crate::testkit::Sim;

/// A bot builder pointed at `sim`: its address (plain HTTP/WS unless the emulator serves TLS,
/// then its certificate is trusted) and the bot account's token. Add your own settings before
/// `build()`.
pub fn bot_builder(sim: &Sim) -> BotBuilder {
    let builder = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .token(sim.bot_token());
    match sim.cert_pem() {
        Some(pem) => builder
            .https(true)
            .ca_certificate_pem(pem.as_bytes().to_vec()),
        None => builder.https(false),
    }
}

/// A dispatcher running in the background, its bot connected.
#[derive(Debug)]
pub struct SimBot {
    bot: Bot,
    handle: DispatcherHandle,
    task: JoinHandle<Result<()>>,
}

impl SimBot {
    /// Builds a bot for `sim` ([`bot_builder`]) with a dispatcher for `router` and starts it
    /// ([`run`](Self::run)); then tells `sim` this is the session to talk to, so a later
    /// [`Sim::wait_for_bot`] waits for the next one.
    pub async fn start(sim: &Sim, router: Router) -> Result<SimBot> {
        let bot = bot_builder(sim).build()?;
        let running = SimBot::run(Dispatcher::builder(bot, router).build()?).await?;
        sim.wait_for_bot(sim.expect_timeout()).await?;
        Ok(running)
    }

    /// Runs `dispatcher` in the background and waits until its bot's session is authorised
    /// ([`ConnectionState::Ready`]). If the bot fails instead (a refused token, an unreachable
    /// server), returns the dispatcher's error.
    pub async fn run(dispatcher: Dispatcher) -> Result<SimBot> {
        let bot = dispatcher
            .bot()
            .cloned()
            .ok_or_else(|| Error::invalid("dispatcher", "it has no bot to run"))?;
        let handle = dispatcher.handle();
        let mut state = bot.state();
        let task = tokio::spawn(dispatcher.run());
        let reached = state
            .wait_for(|s| matches!(s, ConnectionState::Ready) || s.is_terminal())
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped);
        if reached != ConnectionState::Ready {
            let outcome = task.await.map_err(join_error)?;
            outcome?;
            return Err(Error::Unexpected {
                expected: "the bot to connect".into(),
                found: format!("{reached:?}"),
            });
        }
        Ok(SimBot { bot, handle, task })
    }

    /// The running bot (to make calls from the test side).
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The dispatcher's counters and shutdown switch.
    pub fn handle(&self) -> &DispatcherHandle {
        &self.handle
    }

    /// Whether the dispatcher has stopped on its own (a fatal error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the dispatcher (in-flight handlers finish) and the bot; returns the dispatcher's
    /// outcome.
    pub async fn stop(self) -> Result<()> {
        self.handle.shutdown();
        self.task.await.map_err(join_error)?
    }

    /// Waits until the dispatcher stops on its own or `signal` resolves, then stops it.
    pub async fn stop_when(mut self, signal: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::select! {
            outcome = &mut self.task => outcome.map_err(join_error)?,
            () = signal => self.stop().await,
        }
    }
}

/// A dispatcher task that panicked or was cancelled.
fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Unexpected {
        expected: "the dispatcher task to finish".into(),
        found: e.to_string(),
    }
}
