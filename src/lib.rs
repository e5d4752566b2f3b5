//! # trueconf-bot
//!
//! An actor-based, supervised framework for writing chat bots for TrueConf Server over the
//! Chatbot Connector WebSocket API. It covers the whole surface of the official Python client
//! (`python-trueconf-bot`) and adds per-chat ordering, at-least-once delivery, typed handler
//! parameters, dialog storages and an in-process server emulator to test bots against.
//!
//! ## Guide
//!
//! ### A bot in twenty lines
//!
//! A [`Bot`](bot::Bot) is the connection and every protocol method; a
//! [`Router`](dispatch::Router) maps events to handlers; the
//! [`Dispatcher`](dispatch::Dispatcher) runs them, one conversation actor per chat.
//!
//! ```no_run
//! use trueconf_bot::bot::Bot;
//! use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
//!
//! async fn start(msg: MessageContext) -> HandlerResult {
//!     msg.answer("Hi! Send me anything and I will echo it.").await?;
//!     Ok(())
//! }
//!
//! async fn echo(msg: MessageContext) -> HandlerResult {
//!     msg.reply(msg.text().unwrap_or("I can only echo text.")).await?;
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> trueconf_bot::Result<()> {
//!     let password = std::env::var("BOT_PASSWORD").unwrap_or_default();
//!     let bot = Bot::builder("video.example.com")
//!         .credentials("echo_bot", password)
//!         .build()?;
//!     let router = Router::new().command("start", start).message(echo);
//!     let dispatcher = Dispatcher::builder(bot, router).build()?;
//!     // Ctrl-C or SIGTERM (a container stop): in-flight handlers finish, then the bot
//!     // disconnects.
//!     dispatcher.run_until_signal().await
//! }
//! ```
//!
//! ### The same bot against the emulator, as a test
//!
//! The `testkit` feature ships an emulator of the server side of the protocol
//! (`testkit::Sim`) with scripted users. This example runs as a
//! doctest; `cargo run --example quickstart` does the same with a printed conversation.
//!
//! ```
//! # #[cfg(feature = "testkit")]
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use trueconf_bot::bot::Bot;
//! use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
//! use trueconf_bot::testkit::{Sim, SimConfig};
//!
//! async fn echo(msg: MessageContext) -> HandlerResult {
//!     msg.reply(msg.text().unwrap_or_default()).await?;
//!     Ok(())
//! }
//!
//! let sim = Sim::start(SimConfig::default()).await?;
//! let bot = Bot::builder("127.0.0.1")
//!     .https(false)
//!     .port(sim.addr().port())
//!     .token(sim.bot_token())
//!     .build()?;
//! let dispatcher = Dispatcher::builder(bot, Router::new().message(echo)).build()?;
//! let handle = dispatcher.handle();
//! let running = tokio::spawn(dispatcher.run());
//! sim.wait_for_bot(std::time::Duration::from_secs(5)).await?;
//!
//! let alice = sim.user("alice");
//! let chat = alice.create_p2p_with_bot().await?;
//! alice.send_text(&chat, "ping").await?;
//! let answer = sim.expect_message(&chat).await?;
//! assert_eq!(answer.text(), Some("ping"));
//!
//! handle.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "testkit"))]
//! # fn main() {}
//! ```
//!
//! ### Handlers take what they need
//!
//! A handler is an `async fn` whose parameters are extracted from the event and from the
//! dependencies registered with
//! [`DispatcherBuilder::dependency`](dispatch::DispatcherBuilder::dependency), checked when
//! the dispatcher is built (a missing dependency fails `build()`, not the first event):
//!
//! | parameter | what it is |
//! |---|---|
//! | [`MessageContext`](dispatch::MessageContext) | the message plus `answer` / `reply` / `edit` / `forward_to` shortcuts |
//! | [`ButtonContext`](dispatch::ButtonContext) | a button press plus `answer` (`answerCommand`) / `send` |
//! | [`Text`](dispatch::Text), [`ChatId`](dispatch::ChatId) | the text, the chat |
//! | [`CommandArgs<T>`](dispatch::CommandArgs) | typed command arguments: tuples of `FromStr`, `Vec<T>`, `String` |
//! | [`BotCommand`](dispatch::BotCommand), [`BadArgs`](dispatch::BadArgs) | the matched command; why its arguments did not parse |
//! | [`Dep<T>`](dispatch::Dep) | a registered dependency (database pool, config…) |
//! | [`Dialogue<S>`](fsm::Dialogue) | the dialog state of this user in this chat |
//! | [`Message`](types::Message), [`Event`](types::Event), [`Update`](dispatch::Update) | the typed event, or the raw one |
//! | [`Bot`](bot::Bot) | the bot, to call any method |
//! | `Option<T>` of any of these | `None` instead of an error when absent |
//!
//! ### Routing
//!
//! An event goes to the first route, in registration order, whose kind and
//! [`Filter`](dispatch::Filter) match. Filters compose with `and`, `or` and `!`; nested
//! routers ([`Router::include_router`](dispatch::Router::include_router)) can carry a filter
//! for the whole subtree (an admin-only router, say);
//! [`Router::message_in`](dispatch::Router::message_in) routes by dialog state. Middleware
//! ([`Middleware`](dispatch::Middleware)) runs around routing (outer) or around the chosen
//! handler (inner) and may stop an event.
//!
//! ### Calling methods
//!
//! Every protocol method is a method of [`Bot`](bot::Bot) named as in the official client.
//! It returns a [`Call`](bot::Call): chain optional arguments, then `.await` it.
//!
//! ```no_run
//! # async fn demo(bot: trueconf_bot::bot::Bot) -> trueconf_bot::Result<()> {
//! use trueconf_bot::types::{Button, InlineKeyboard, ParseMode};
//!
//! let keyboard = InlineKeyboard::builder()
//!     .row([Button::command("Yes", "/yes"), Button::command("No", "/no")])
//!     .build()?;
//! let sent = bot
//!     .send_message("chat-id", "<b>Deploy</b> to production?")
//!     .parse_mode(ParseMode::Html)
//!     .buttons(keyboard)
//!     .await?;
//! bot.edit_message(&sent.message_id, "Deploying…").await?;
//! # Ok(()) }
//! ```
//!
//! Failures are [`Error`] values: `Api` (the server's error code, see
//! [`ApiErrorCode::meaning`](error::ApiErrorCode::meaning)), `Timeout`, `Disconnected` (a
//! write whose outcome is unknown is never re-sent), `InvalidArgument` (checked before
//! sending), `Auth`, `Storage`… [`Error::is_transient`] says whether retrying can help.
//!
//! ### Guarantees
//!
//! * Each chat's events are handled one at a time, in arrival order; chats run in parallel;
//!   a slow or panicking handler only affects its own chat.
//! * With [`AckMode::AfterHandled`](connection::AckMode::AfterHandled) an event is
//!   acknowledged only after its handler finished, so events interrupted by a crash or a
//!   dropped socket come again (at-least-once) and a duplicate window suppresses repeats.
//! * Every queue is bounded; what a flooded chat does is the
//!   [`Overflow`](dispatch::Overflow) policy, reported, never silent.
//! * The connection reconnects with jittered exponential back-off; reads interrupted by a
//!   reconnect are re-sent, writes fail with `Disconnected`.
//!
//! `ARCHITECTURE.md` in the repository has the actor tree, the life of an event and of a
//! request, and these rules in detail.
//!
//! ### Feature flags
//!
//! | feature | adds |
//! |---|---|
//! | `testkit` | `testkit`: the server emulator, scripted users, fault injection, load runs; the `trueconf-sim` binary |
//! | `sqlite` | `fsm::SqliteStorage`: dialog state in one SQLite file |
//! | `redis` | `fsm::RedisStorage`: dialog state shared by several processes |
//!
//! ### Examples
//!
//! `examples/` holds runnable bots: `quickstart`, `echo`, `commands`, `fsm_form`,
//! `multi_chat`, `survey`, `admin`, `middleware`, `file_bot`. Each starts the emulator and a scripted user
//! when run without `--server`: `cargo run --example fsm_form`.
//!
//! ## Layout
//!
//! The crate is split into a pure **model** (no sockets, no actors), the **runtime** actors,
//! the [`Bot`](bot::Bot) **facade** over them, and the **dispatch** layer that turns events
//! into handler calls. Dependencies point one way: dispatch → facade → runtime → model
//! (`tests/layers.rs` enforces it, and the absence of import circles).
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`protocol`] | model | WebSocket frames (request / response / ack), encode and decode |
//! | [`types`] | model | every protocol object: envelopes, chats, files, events, buttons, enums |
//! | [`methods`] | model | one typed request per client→server method, tied to its response |
//! | [`error`] | model | the public [`Error`] type and its [`DisconnectKind`](error::DisconnectKind) |
//! | [`format`](mod@format) | model | HTML / Markdown builders, escaping, visible length, text splitting |
//! | [`connection`] | runtime | the Connection actor's vocabulary: states, failures, events, acknowledgements, TLS |
//! | [`transfer`] | runtime | the FileTransfer actor's calls: uploads, downloads, progress |
//! | [`bot`] | facade | the [`Bot`](bot::Bot) handle users call, its builder and lifecycle |
//! | [`dispatch`] | dispatch | routers, handlers, extractors, filters, middleware |
//! | [`conversation`] | dispatch | per-chat Conversation actors: ordering, bounded mailboxes |
//! | [`fsm`] | dispatch | finite-state dialogs and state storage backends |
//! | `testkit` | tests | a TrueConf server emulator (feature `testkit`) |
//! | `harness` | test harness | runs a dispatcher against the emulator (feature `testkit`) |
//!
//! The runtime's Supervisor, RequestRouter and the actors' internals are private; the
//! connection state, the restart count and, with feature `testkit`, fault injection
//! ([`Bot::kill_actor`](bot::Bot)) are reached through the `Bot`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod format;
pub mod methods;
pub mod protocol;
pub mod types;

mod sync;

mod runtime;

pub mod bot;
pub use runtime::{connection, transfer};

pub mod conversation;
pub mod dispatch;
pub mod fsm;
pub mod ops;
#[cfg(feature = "redis")]
pub mod replicas;

#[cfg(feature = "testkit")]
pub mod testkit;

#[cfg(feature = "testkit")]
pub mod harness;

pub use error::{Error, Result};
