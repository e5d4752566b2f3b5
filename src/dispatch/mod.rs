//! Routing events to handlers: routers, handlers with extracted parameters, filters,
//! middleware and the [`Dispatcher`] that runs it all on per-chat
//! [`conversation`](crate::conversation) actors.
//!
//! ```
//! use trueconf_bot::dispatch::{
//!     BadArgs, ChatId, CommandArgs, CommandFilter, Dep, Dispatcher, Filter, HandlerResult,
//!     Router, Text,
//! };
//! use std::sync::Arc;
//!
//! struct Db;
//!
//! async fn add(CommandArgs((a, b)): CommandArgs<(i64, i64)>, chat: ChatId) -> HandlerResult {
//!     let _ = (a + b, chat);
//!     Ok(())
//! }
//! async fn usage(bad: BadArgs) -> HandlerResult {
//!     let _reply = format!("{bad}");
//!     Ok(())
//! }
//! async fn echo(Text(text): Text, _db: Dep<Arc<Db>>) {
//!     let _ = text;
//! }
//!
//! let router = Router::new()
//!     .command(CommandFilter::new("add").usage("/add <a> <b>").on_bad_args(usage), add)
//!     .message_when(!Filter::text_starts_with("/"), echo);
//! let dispatcher = Dispatcher::detached(router)
//!     .dependency(Arc::new(Db))
//!     .build()
//!     .expect("every dependency is registered");
//! # let _ = dispatcher;
//! ```
//!
//! A whole bot: the dispatcher takes the bot's event stream, starts the bot, and runs until
//! the bot stops or [`DispatcherHandle::shutdown`] is called.
//!
//! ```no_run
//! use trueconf_bot::bot::Bot;
//! use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
//!
//! async fn echo(msg: MessageContext) -> HandlerResult {
//!     msg.reply(msg.text().unwrap_or("(not a text)")).await?;
//!     Ok(())
//! }
//!
//! # async fn demo() -> trueconf_bot::Result<()> {
//! let bot = Bot::builder("video.example.com").token("…").build()?;
//! let router = Router::new().command("start", echo).message(echo);
//! Dispatcher::builder(bot, router).build()?.run().await
//! # }
//! ```
//!
//! Ordering and isolation: each chat's events are handled one at a time in arrival order by
//! that chat's conversation actor; chats run in parallel; a slow or panicking handler only
//! delays or affects its own chat. See [`Overflow`] for what a flooded chat does.

mod args;
mod command;
mod context;
mod dedup;
mod dispatcher;
mod filter;
mod gate;
mod handler;
mod metrics;
mod middleware;
mod overflow;
mod pipeline;
#[cfg(feature = "redis")]
mod replica_gate;
mod router;
mod typed;
mod update;
mod worker;

pub use crate::conversation::{BoxFuture, LaneConfig, Overflow};
pub use args::{ArgsError, BadArgs, FromCommandArgs};
pub use command::{BotCommand, CommandArgs, CommandFilter};
pub use context::{ButtonContext, MessageContext};
#[cfg(feature = "redis")]
pub use dedup::RedisMarks;
#[cfg(feature = "sqlite")]
pub use dedup::SqliteMarks;
pub use dedup::{HandledMarks, MemoryMarks};
pub use dispatcher::{Dispatcher, DispatcherBuilder, DispatcherHandle};
pub use filter::Filter;
pub use handler::{
    ButtonPress, ChatId, Ctx, Dep, Deps, ExtractError, FromEvent, Handler, HandlerError,
    HandlerResult, IntoHandlerResult, Text,
};
pub use metrics::MetricsSnapshot;
pub use middleware::{Middleware, Next};
pub use overflow::OverflowReason;
pub use router::Router;
pub use update::{EventKind, Update};
pub use worker::DispatchError;
