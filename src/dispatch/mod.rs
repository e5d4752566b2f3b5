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
//! # Filters, handler data, middleware, commands
//!
//! - A route's [`Filter`] is synchronous ([`Filter::new`] and every built-in one) or
//!   asynchronous ([`Filter::new_async`]); filters compose with `&`, `|` and `!`. [`F`] builds
//!   the usual field conditions: text equals / starts with / contains / matches a [`Regex`],
//!   content type, chat type, sender, reply.
//! - A filter can hand the handler a typed value: [`Filter::map`] / [`Filter::map_async`]
//!   attach it, the handler takes [`Data<T>`]. Middleware attaches values with
//!   [`Ctx::insert`] and declares them with [`Router::provides`]. Like a missing [`Dep<T>`], a
//!   `Data<T>` that nothing on the handler's route provides fails [`DispatcherBuilder::build`]
//!   with an error naming `T`.
//! - Middleware is dispatcher-wide ([`DispatcherBuilder::outer_middleware`] around routing,
//!   [`DispatcherBuilder::inner_middleware`] around the chosen handler) or per router
//!   ([`Router::middleware`]: around the handlers of that subtree); a router can also have
//!   its own error handler ([`Router::error_handler`]).
//! - Commands: [`Router::command`] with a name or a [`CommandFilter`] (aliases, prefixes, a
//!   [`Regex`] over the name, conditions on the arguments, typed [`CommandArgs`], a usage reply
//!   for bad arguments); or an enum with `#[derive(BotCommands)]` (feature `macros`) taken
//!   whole as a parameter, whose [`BotCommands::descriptions`] is the `/help` text.
//! - A function the router refuses as a handler: see [`Handler`] for the usual causes, and
//!   put `#[debug_handler]` (feature `macros`) on it for an error that points at the cause.
//!
//! ```
//! use std::sync::Arc;
//! use trueconf_bot::dispatch::{
//!     BotCommand, CommandFilter, Ctx, Data, Dispatcher, F, Filter, HandlerResult, Next, Regex,
//!     Router,
//! };
//!
//! #[derive(Clone)]
//! struct Account(String);
//! #[derive(Clone)]
//! struct Audit;
//!
//! // Async lookup; its result becomes the handler's `Data<Account>`.
//! let known = Filter::map_async(|ctx: Arc<Ctx>| async move {
//!     let id = ctx.update().author_id()?.to_string();
//!     Some(Account(id))
//! });
//! async fn audit(ctx: Arc<Ctx>, next: Next) -> HandlerResult {
//!     ctx.insert(Audit);
//!     next.run(ctx).await
//! }
//! async fn ticket(cmd: BotCommand, Data(who): Data<Account>, _: Data<Audit>) {
//!     let _ = (cmd.name, who.0);
//! }
//!
//! let staff = Router::new()
//!     .filter(known & F::author().func(|id| id.ends_with("@staff.example")))
//!     .middleware(audit)
//!     .provides::<Audit>()
//!     .error_handler(|update, error| async move {
//!         eprintln!("staff handler failed on {}: {error}", update.method());
//!     })
//!     .command(CommandFilter::regex(Regex::new(r"ticket_\d+").unwrap()).with_args(), ticket);
//! let router = Router::new()
//!     .include_router(staff)
//!     .message_when(F::text().lower().contains("help") & !F::reply().exists(), || async {});
//! Dispatcher::detached(router).build().expect("every Data<T> has a provider");
//! ```
//!
//! Ordering and isolation: each chat's events are handled one at a time in arrival order by
//! that chat's conversation actor; chats run in parallel; a slow or panicking handler only
//! delays or affects its own chat. See [`Overflow`] for what a flooded chat does, and
//! [`Distribution`] for other keys (per user in a chat, any function of the event).

mod args;
mod command;
mod context;
mod dedup;
mod dispatcher;
mod distribution;
mod engine;
mod fields;
mod filter;
mod gate;
mod handler;
mod metrics;
mod middleware;
mod overflow;
mod pipeline;
mod redelivery;
mod register;
#[cfg(feature = "redis")]
mod replica_gate;
mod router;
mod shortcuts;
mod signal;
mod trace;
mod typed;
mod update;
mod worker;

pub use crate::conversation::{BoxFuture, LaneConfig, Overflow};
pub use args::{ArgsError, BadArgs, FromCommandArgs};
pub use command::{
    BotCommand, BotCommands, CommandArgs, CommandDescription, CommandDescriptions, CommandFilter,
    ParseError,
};
pub use context::{ButtonContext, MessageContext};
#[cfg(feature = "redis")]
pub use dedup::RedisMarks;
#[cfg(feature = "sqlite")]
pub use dedup::SqliteMarks;
pub use dedup::{HandledMarks, MemoryMarks};
pub use dispatcher::{Dispatcher, DispatcherBuilder, DispatcherHandle};
pub use distribution::Distribution;
pub use engine::Engine;
pub use fields::{AuthorField, ChatTypeField, ContentField, F, ReplyField, TextField};
pub use filter::{Filter, TextMatch};
pub use handler::{
    ButtonPress, ChatId, Ctx, Data, Dep, Deps, ExtractError, FromEvent, Handler, HandlerError,
    HandlerResult, IntoHandlerResult, Text,
};
pub use metrics::MetricsSnapshot;
pub use middleware::{Middleware, Next};
pub use overflow::OverflowReason;
pub use regex::Regex;
pub use register::IntoStorage;
pub use router::Router;
pub use shortcuts::PressEdit;
#[cfg(feature = "macros")]
pub use trueconf_bot_macros::{BotCommands, debug_handler};
pub use update::{EventKind, Update};
pub use worker::DispatchError;
