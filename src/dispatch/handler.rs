//! Handlers are plain async functions; their parameters are *extracted* from the event and
//! from dependencies registered on the dispatcher, axum style.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::args::BadArgs;
use super::update::Update;
use crate::conversation::BoxFuture;

/// The error a handler returns: any error type.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler returns.
pub type HandlerResult = Result<(), HandlerError>;

/// Everything a handler can draw its parameters from: the event, the dependencies and what
/// filters found out while matching (a parsed command).
pub struct Ctx {
    update: Update,
    deps: Arc<Deps>,
    self_id: Option<Arc<str>>,
    pub(crate) command: Mutex<Option<Arc<MatchedCommand>>>,
    pub(crate) bad_args: OnceLock<BadArgs>,
    /// The handler the router picked, for error reports.
    pub(crate) handler: OnceLock<&'static str>,
    /// Values filters and middleware attached for this event (see [`Data`]). An empty `Vec`
    /// does not allocate, so events that attach nothing cost nothing here.
    data: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
    /// `data.len()`, readable without the lock: routing reads it for every route it tries.
    data_len: AtomicUsize,
    /// A router's own error handler took an error of this handling (see
    /// [`Ctx::router_took`]).
    pub(crate) router_error: AtomicBool,
    /// That error said a call was cut off by a lost connection.
    pub(crate) router_cut_off: AtomicBool,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("update", &self.update)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn new(update: Update, deps: Arc<Deps>, self_id: Option<Arc<str>>) -> Self {
        Self {
            update,
            deps,
            self_id,
            command: Mutex::new(None),
            bad_args: OnceLock::new(),
            handler: OnceLock::new(),
            data: Mutex::new(Vec::new()),
            data_len: AtomicUsize::new(0),
            router_error: AtomicBool::new(false),
            router_cut_off: AtomicBool::new(false),
        }
    }

    /// A router's error handler took `error`: the dispatcher still counts the handling as
    /// failed (metrics), and as cut off when a lost connection caused it, so the copy of the
    /// event the server sends again is handled, as when the error reaches its own handler.
    pub(crate) fn router_took(&self, error: &HandlerError) {
        self.router_error.store(true, Ordering::Relaxed);
        if error
            .downcast_ref::<crate::Error>()
            .is_some_and(|e| e.disconnect_kind().is_some())
        {
            self.router_cut_off.store(true, Ordering::Relaxed);
        }
    }

    /// The event.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The bot's own TrueConf ID, when known.
    pub fn self_id(&self) -> Option<&str> {
        self.self_id.as_deref()
    }

    /// A registered dependency of type `T`.
    pub fn dependency<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.deps.get::<T>()
    }

    /// Attaches `value` to this event: handlers take it as a [`Data<T>`] parameter, later
    /// filters and middleware read it with [`Ctx::data`]. A later value of the same type
    /// shadows an earlier one.
    ///
    /// A filter attaching a value should be built with [`Filter::map`](super::Filter::map)
    /// (or `map_async`), and a middleware should be declared with
    /// [`Router::provides`](super::Router::provides), so that the dispatcher's `build()` can
    /// check that every `Data<T>` parameter has a provider.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) {
        let mut data = crate::sync::lock(&self.data);
        data.push((TypeId::of::<T>(), Arc::new(value)));
        self.data_len.store(data.len(), Ordering::Release);
    }

    /// The value of type `T` a filter or middleware attached to this event, if any.
    pub fn data<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        if self.data_mark() == 0 {
            return None;
        }
        let data = crate::sync::lock(&self.data);
        data.iter()
            .rev()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .cloned()
    }

    /// How many values are attached; with [`Ctx::forget_data_after`] this undoes what the
    /// filters of a route that did not match attached.
    pub(crate) fn data_mark(&self) -> usize {
        self.data_len.load(Ordering::Acquire)
    }

    pub(crate) fn forget_data_after(&self, mark: usize) {
        if self.data_len.load(Ordering::Acquire) > mark {
            let mut data = crate::sync::lock(&self.data);
            data.truncate(mark);
            self.data_len.store(data.len(), Ordering::Release);
        }
    }

    pub(crate) fn clear_command(&self) {
        *crate::sync::lock(&self.command) = None;
    }

    pub(crate) fn matched_command(&self) -> Option<Arc<MatchedCommand>> {
        crate::sync::lock(&self.command).clone()
    }
}

/// The command a filter matched, kept on the context for the handler's extractors.
///
/// Defined here rather than next to the command matcher because it carries the command's
/// bad-arguments hook, a [`BoxedHandler`], which itself takes a [`Ctx`]: the three types refer
/// to each other, so they share a file.
#[derive(Clone)]
pub(crate) struct MatchedCommand {
    pub(crate) name: String,
    pub(crate) args: String,
    pub(crate) usage: Option<Arc<str>>,
    pub(crate) on_bad_args: Option<BoxedHandler>,
}

/// Typed dependencies, looked up by type.
///
/// While the dispatcher is built it also records, per route, which [`Data<T>`] values the
/// route's filters and middleware provide, so that [`FromEvent::check`] can refuse a
/// parameter nothing provides.
#[derive(Default, Clone)]
pub struct Deps {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    provided: Vec<TypeId>,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Deps({} registered)", self.map.len())
    }
}

impl Deps {
    /// Registers `value`, replacing an earlier value of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// A clone of the registered `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Whether a `T` is registered.
    pub fn contains<T: 'static>(&self) -> bool {
        self.map.contains_key(&TypeId::of::<T>())
    }

    /// Whether a filter or middleware on the route being checked provides a [`Data<T>`].
    /// Only meaningful inside [`FromEvent::check`].
    pub fn provides<T: 'static>(&self) -> bool {
        self.provided.contains(&TypeId::of::<T>())
    }

    /// These dependencies plus the per-event values a route's filters and middleware provide.
    pub(crate) fn with_provided(&self, provided: &[TypeId]) -> Deps {
        let mut deps = self.clone();
        deps.provided.extend_from_slice(provided);
        deps
    }
}

/// Why a handler parameter could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// A `Dep<T>` (or the `Bot`) was asked for but never registered on the dispatcher.
    #[error(
        "missing dependency `{0}`: register it with `Dispatcher::builder(..).dependency(value)`"
    )]
    MissingDependency(&'static str),
    /// A handler takes the `Bot` (or a context holding it) but the dispatcher has none: the
    /// bot is not a dependency, it is what `Dispatcher::builder(bot, router)` takes.
    #[error(
        "a handler takes the `Bot`, but this dispatcher has none: build it with `Dispatcher::builder(bot, router)`, not `Dispatcher::detached`"
    )]
    MissingBot,
    /// The event does not carry what the parameter needs (e.g. `ChatId` on an upload-limits
    /// event).
    #[error("a `{method}` event has no {what}")]
    Missing {
        /// The event method.
        method: String,
        /// What was missing.
        what: &'static str,
    },
    /// A `Data<T>` was asked for but no filter or middleware on the route provides a `T`
    /// (at build time), or none attached one to this event (at run time).
    #[error(
        "no filter or middleware provides `{0}`: attach it with `Filter::map` / \
         `Filter::map_async`, or declare a middleware's value with `Router::provides::<T>()`"
    )]
    MissingData(&'static str),
    /// Command arguments did not parse.
    #[error("{0}")]
    BadArgs(BadArgs),
    /// The payload did not decode into the requested type.
    #[error(transparent)]
    Decode(crate::Error),
}

/// A handler parameter: something extracted from the event or the dependencies.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter",
    label = "not extractable from an event",
    note = "handler parameters must implement `FromEvent`: `Update`, `ChatId`, `Text`, `Message`, `MessageContext`, `ButtonContext`, `Dep<T>`, `Data<T>`, `CommandArgs<T>`, `BotCommand`, a `#[derive(BotCommands)]` enum, `ButtonPress`, `BadArgs`, `Bot`, `Dialogue<S>`, or `Option<_>` of one",
    note = "parameters are owned values: take `Text` (or `Text(t): Text`), not `&str`; `Dep<Arc<T>>`, not `&T`"
)]
pub trait FromEvent: Sized + Send + 'static {
    /// Extracts the value.
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError>;

    /// Checks, when the dispatcher is built, that the dependencies this parameter needs are
    /// registered.
    fn check(deps: &Deps) -> Result<(), ExtractError> {
        let _ = deps;
        Ok(())
    }
}

impl FromEvent for Update {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        Ok(ctx.update.clone())
    }
}

impl<T: FromEvent> FromEvent for Option<T> {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        Ok(T::from_event(ctx).ok())
    }
}

impl FromEvent for crate::bot::Bot {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.deps.get::<Self>().ok_or(ExtractError::MissingBot)
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        if deps.contains::<Self>() {
            Ok(())
        } else {
            Err(ExtractError::MissingBot)
        }
    }
}

/// The chat the event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatId(pub Arc<str>);

impl Deref for ChatId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl FromEvent for ChatId {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.update
            .chat_id()
            .map(|id| ChatId(Arc::from(id)))
            .ok_or_else(|| ExtractError::Missing {
                method: ctx.update.method().to_string(),
                what: "chat id",
            })
    }
}

/// The text of a message (or of an edited message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl FromEvent for Text {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.update
            .text()
            .map(|t| Text(t.to_string()))
            .ok_or_else(|| ExtractError::Missing {
                method: ctx.update.method().to_string(),
                what: "text",
            })
    }
}

/// A dependency registered with `DispatcherBuilder::dependency`.
#[derive(Debug, Clone)]
pub struct Dep<T>(pub T);

impl<T> Deref for Dep<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone + Send + Sync + 'static> FromEvent for Dep<T> {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.deps
            .get::<T>()
            .map(Dep)
            .ok_or(ExtractError::MissingDependency(std::any::type_name::<T>()))
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        if deps.contains::<T>() {
            Ok(())
        } else {
            Err(ExtractError::MissingDependency(std::any::type_name::<T>()))
        }
    }
}

/// A value a filter or middleware attached to the event (with [`Ctx::insert`]): the typed
/// counterpart of the official client's filter results injected into handlers, and of
/// teloxide's `filter_map`.
///
/// The dispatcher's `build()` refuses a handler taking a `Data<T>` when nothing on its route
/// provides a `T` (a [`Filter::map`](super::Filter::map) / `map_async` among its filters, the
/// filters of the routers around it, or a [`Router::provides`](super::Router::provides)
/// declaration for middleware), naming the type; as with a missing [`Dep`].
///
/// ```
/// use trueconf_bot::dispatch::{Data, Dispatcher, Filter, Router};
///
/// #[derive(Clone)]
/// struct Ticket(u32);
///
/// async fn show(Data(Ticket(n)): Data<Ticket>) {
///     let _ = n;
/// }
///
/// let ticket = Filter::map(|ctx| {
///     let n = ctx.update().text()?.strip_prefix("#")?.parse().ok()?;
///     Some(Ticket(n))
/// });
/// let ok = Router::new().message_when(ticket, show);
/// assert!(Dispatcher::detached(ok).build().is_ok());
///
/// // Nothing provides a `Ticket` here: refused when built, naming the type.
/// let missing = Router::new().message(show);
/// let err = Dispatcher::detached(missing).build().unwrap_err();
/// assert!(err.to_string().contains("Ticket"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T> Deref for Data<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone + Send + Sync + 'static> FromEvent for Data<T> {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.data::<T>()
            .map(Data)
            .ok_or(ExtractError::MissingData(std::any::type_name::<T>()))
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        if deps.provides::<T>() {
            Ok(())
        } else {
            Err(ExtractError::MissingData(std::any::type_name::<T>()))
        }
    }
}

/// A button press (`command` event) as plain data; [`ButtonContext`](super::ButtonContext)
/// is the same press with the bot, to answer it or edit the message that carried the
/// button (`ButtonContext::to_press` gives this view of it).
///
/// A press does not say who pressed: the protocol's `command` event names the message and
/// the button, not the user (in a group, anyone who sees the message may press).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonPress {
    /// The button's command string.
    pub command: String,
    /// The button's custom data.
    pub custom_data: Option<String>,
    /// Present when the button waits for an answer (`answerCommand`).
    pub command_id: Option<String>,
    /// The pressed button's id.
    pub button_id: Option<String>,
    /// The chat of the message that carried the button.
    pub chat_id: Option<String>,
    /// The id of the message that carried the button.
    pub message_id: Option<String>,
}

impl FromEvent for ButtonPress {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        let u = &ctx.update;
        let command = u.button_command().ok_or_else(|| ExtractError::Missing {
            method: u.method().to_string(),
            what: "button command",
        })?;
        Ok(ButtonPress {
            command: command.to_string(),
            custom_data: u.custom_data().map(str::to_string),
            command_id: u.command_id().map(str::to_string),
            button_id: u.button_id().map(str::to_string),
            chat_id: u.chat_id().map(str::to_string),
            message_id: u.source_message_id().map(str::to_string),
        })
    }
}

/// Turns a handler's return value into a [`HandlerResult`].
pub trait IntoHandlerResult {
    /// Converts.
    fn into_handler_result(self) -> HandlerResult;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> HandlerResult {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map_err(Into::into)
    }
}

/// An async function usable as a handler: up to six [`FromEvent`] parameters, returning
/// [`HandlerResult`] (any `Result<(), E>` with `E: Into<HandlerError>`) or `()`.
///
/// # When a function is refused
///
/// The compiler then says "`fn(..) {name}` is not a valid event handler" at the route that
/// registers it, without saying why. The usual causes:
///
/// - **its future is not `Send`**: a `std::sync::MutexGuard`, a `RefCell` borrow, an `Rc` or
///   another non-`Send` value is still alive at an `.await` (drop it before, or use
///   `tokio::sync::Mutex`); handlers run on a multi-threaded runtime;
/// - a parameter is not [`FromEvent`]: a reference (`&str` instead of [`Text`]), a dependency
///   taken as `T` instead of [`Dep<T>`], a filter's value taken as `T` instead of
///   [`Data<T>`];
/// - more than six parameters;
/// - it returns something other than `()` or `Result<(), E>` (`Result<String, E>`, or an
///   error type that is not `Into<HandlerError>`, such as `anyhow::Error` without `.into()`);
/// - it is not `async` (a plain `fn`), or a closure that borrows from its surroundings
///   (add `move`, clone what it needs).
///
/// Put [`#[debug_handler]`](super::debug_handler) (feature `macros`) on the function to get
/// the error where the cause is: it checks each parameter and the future's `Send`-ness
/// without changing the function.
///
/// ```compile_fail
/// use trueconf_bot::dispatch::{Router, Text};
///
/// // Refused: the guard lives across `.await`, so the future is not `Send`.
/// async fn count(Text(t): Text) {
///     let seen = std::sync::Mutex::new(Vec::<String>::new());
///     let mut guard = seen.lock().unwrap();
///     std::future::ready(()).await;
///     guard.push(t);
/// }
/// let _ = Router::new().message(count);
/// ```
///
/// ```compile_fail
/// # #[cfg(feature = "macros")] {
/// use trueconf_bot::dispatch::{debug_handler, Text};
///
/// // "future cannot be sent between threads safely", pointing at the guard and the await.
/// #[debug_handler]
/// async fn count(Text(t): Text) {
///     let seen = std::sync::Mutex::new(Vec::<String>::new());
///     let mut guard = seen.lock().unwrap();
///     std::future::ready(()).await;
///     guard.push(t);
/// }
/// # }
/// # #[cfg(not(feature = "macros"))] compile_error!("needs the macros feature");
/// ```
///
/// ```compile_fail
/// use trueconf_bot::dispatch::Router;
///
/// // Refused: `&str` is not a parameter (take `Text`).
/// async fn echo(text: &str) { let _ = text; }
/// let _ = Router::new().message(echo);
/// ```
///
/// ```
/// use trueconf_bot::dispatch::{Router, Text};
///
/// // Accepted: the guard is gone before the `.await`.
/// async fn count(Text(t): Text) {
///     let seen = std::sync::Mutex::new(Vec::<String>::new());
///     seen.lock().unwrap().push(t);
///     std::future::ready(()).await;
/// }
/// let _ = Router::new().message(count);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid event handler",
    label = "not a handler",
    note = "a handler is an `async fn` (or closure returning a `Send` future) with at most 6 parameters, each implementing `FromEvent`, returning `HandlerResult` or `()`",
    note = "common causes: a `std::sync::MutexGuard`, `RefCell` borrow or `Rc` held across an `.await` (the future is not `Send`); a parameter that is not `FromEvent` (`&str` instead of `Text`, `T` instead of `Dep<T>` / `Data<T>`); more than 6 parameters; a return type other than `()` / `Result<(), E>`",
    note = "put `#[trueconf_bot::dispatch::debug_handler]` on the function to see which"
)]
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Extracts the parameters and runs the handler.
    fn call(&self, ctx: Arc<Ctx>) -> BoxFuture<HandlerResult>;

    /// Checks that every dependency the parameters need is registered.
    fn check(deps: &Deps) -> Result<(), ExtractError>;
}

macro_rules! impl_handler {
    ($($t:ident),*) => {
        impl<F, Fut, R, $($t,)*> Handler<($($t,)*)> for F
        where
            F: Fn($($t),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($t: FromEvent,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, ctx: Arc<Ctx>) -> BoxFuture<HandlerResult> {
                $(
                    let $t = match $t::from_event(&ctx) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(async move { Err(HandlerError::from(e)) }),
                    };
                )*
                let fut = (self)($($t),*);
                Box::pin(async move { fut.await.into_handler_result() })
            }

            #[allow(unused_variables)]
            fn check(deps: &Deps) -> Result<(), ExtractError> {
                $($t::check(deps)?;)*
                Ok(())
            }
        }
    };
}

impl_handler!();
impl_handler!(A);
impl_handler!(A, B);
impl_handler!(A, B, C);
impl_handler!(A, B, C, D);
impl_handler!(A, B, C, D, E);
impl_handler!(A, B, C, D, E, G);

/// A type-erased handler.
#[derive(Clone)]
pub(crate) struct BoxedHandler {
    call: Arc<dyn Fn(Arc<Ctx>) -> BoxFuture<HandlerResult> + Send + Sync>,
    check: fn(&Deps) -> Result<(), ExtractError>,
    pub(crate) name: &'static str,
}

impl BoxedHandler {
    pub(crate) fn new<H: Handler<A>, A>(h: H) -> Self {
        Self {
            call: Arc::new(move |ctx| h.call(ctx)),
            check: H::check,
            name: std::any::type_name::<H>(),
        }
    }

    pub(crate) fn call(&self, ctx: Arc<Ctx>) -> BoxFuture<HandlerResult> {
        (self.call)(ctx)
    }

    pub(crate) fn check(&self, deps: &Deps) -> Result<(), ExtractError> {
        (self.check)(deps)
    }

    /// This handler with the same name and checks, but run by `call` instead.
    pub(crate) fn wrapped(
        &self,
        call: impl Fn(Arc<Ctx>) -> BoxFuture<HandlerResult> + Send + Sync + 'static,
    ) -> Self {
        Self {
            call: Arc::new(call),
            check: self.check,
            name: self.name,
        }
    }
}

/// Runs `handler`; when its command arguments do not parse and the matched command has a
/// bad-arguments hook, runs the hook instead (with the [`BadArgs`] report on the context).
pub(crate) async fn call_with_bad_args_hook(handler: BoxedHandler, ctx: Arc<Ctx>) -> HandlerResult {
    let result = handler.call(ctx.clone()).await;
    if let Err(e) = &result
        && let Some(ExtractError::BadArgs(bad)) = e.downcast_ref::<ExtractError>()
        && let Some(hook) = ctx.matched_command().and_then(|m| m.on_bad_args.clone())
    {
        let _ = ctx.bad_args.set(bad.clone());
        return hook.call(ctx).await;
    }
    result
}
