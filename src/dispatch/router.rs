//! The routing tree.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::command::{BotCommands, CommandFilter};
use super::filter::Filter;
use super::handler::{
    BoxedHandler, Ctx, Deps, ExtractError, FromEvent, Handler, HandlerError, HandlerResult,
    call_with_bad_args_hook,
};
use super::middleware::{Middleware, Next, Terminal};
use super::update::{EventKind, Update};
use crate::conversation::BoxFuture;
use crate::fsm::{Dialogue, StateFilter};

/// A router's own error handler (see [`Router::error_handler`]).
type ErrorHook = Arc<dyn Fn(Update, HandlerError) -> BoxFuture<()> + Send + Sync>;

type StateCheck = Arc<dyn Fn(&Ctx) -> BoxFuture<crate::Result<bool>> + Send + Sync>;

/// An asynchronous guard: the dialog-state check of a state route.
#[derive(Clone)]
struct StateGuard {
    check: StateCheck,
    deps: fn(&Deps) -> Result<(), ExtractError>,
}

impl StateGuard {
    fn new<S>(filter: StateFilter<S>) -> Self
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        StateGuard {
            check: Arc::new(move |ctx: &Ctx| {
                let filter = filter.clone();
                let dialogue = Dialogue::<S>::from_event(ctx);
                Box::pin(async move {
                    match dialogue {
                        Ok(d) => filter.check(&d).await,
                        // No dialog for this event (no chat or no author): only a filter
                        // accepting "no state" matches.
                        Err(ExtractError::Missing { .. }) => Ok(filter.matches(None)),
                        Err(e) => Err(crate::Error::invalid("dialogue", e.to_string())),
                    }
                })
            }),
            deps: <Dialogue<S> as FromEvent>::check,
        }
    }
}

#[derive(Clone)]
struct Route {
    kind: Option<EventKind>,
    filter: Option<Filter>,
    state: Option<StateGuard>,
    handler: BoxedHandler,
}

/// One route of the flattened tree, with the filters of the routers it sits in; its handler
/// already wrapped in the middleware and error handler of those routers.
#[derive(Clone)]
pub(crate) struct FlatRoute {
    guards: Vec<Filter>,
    route: Route,
    /// The `Data` types the guards, the route's filter and the routers' declarations provide.
    provided: Vec<TypeId>,
}

/// What a router hands down to the routes of its subtree while flattening.
#[derive(Default, Clone)]
struct Scope {
    guards: Vec<Filter>,
    middleware: Vec<Arc<dyn Middleware>>,
    on_error: Option<ErrorHook>,
    provided: Vec<TypeId>,
}

enum Node {
    Route(Route),
    Router(Router),
}

/// A tree of routes. An event goes to the **first** route, in registration order, whose event
/// kind and filter match; a nested router (see [`Router::include_router`]) takes part at the
/// position where it was included: its routes are tried right there, before any route
/// registered on the parent after it. A router-level [`Router::filter`] guards the whole
/// subtree. An event no route takes is acknowledged and counted as unhandled.
///
/// ```
/// use trueconf_bot::dispatch::{Filter, HandlerResult, MessageContext, Router, Text};
///
/// async fn ban(Text(t): Text) { let _ = t; }
/// async fn help(msg: MessageContext) -> HandlerResult {
///     msg.answer("/help, /ban <user>").await?;
///     Ok(())
/// }
///
/// let admins = Router::new()
///     .filter(Filter::author_in(["root@video.example.com"]))
///     .command("ban", ban);
/// let router = Router::new()
///     .include_router(admins) // tried first, for admins only
///     .command("help", help)
///     .message_when(Filter::text_contains("?"), help);
/// # let _ = router;
/// ```
#[derive(Default)]
pub struct Router {
    filter: Option<Filter>,
    nodes: Vec<Node>,
    middleware: Vec<Arc<dyn Middleware>>,
    on_error: Option<ErrorHook>,
    provides: Vec<TypeId>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Router({} nodes)", self.nodes.len())
    }
}

macro_rules! kind_routes {
    ($($(#[$doc:meta])* $name:ident, $when:ident => $kind:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name<H: Handler<A>, A>(self, handler: H) -> Self {
                self.push(Some($kind), None, handler)
            }

            $(#[$doc])*
            /// Only events passing `filter`.
            pub fn $when<H: Handler<A>, A>(self, filter: Filter, handler: H) -> Self {
                self.push(Some($kind), Some(filter), handler)
            }
        )*
    };
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events passing `filter` enter this router.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(f) => f.and(filter),
            None => filter,
        });
        self
    }

    /// Middleware around the handlers of this router and of the routers nested in it: it
    /// runs once one of their routes matched (after the filters, like the dispatcher's
    /// inner middleware), outer routers' middleware first, and can stop the event by not
    /// calling [`Next::run`]. The dispatcher's inner middleware runs around it.
    ///
    /// A middleware that attaches a value with [`Ctx::insert`] for a
    /// [`Data<T>`](super::Data) parameter declares it with [`Router::provides`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use trueconf_bot::dispatch::{Ctx, Data, Dispatcher, HandlerResult, Next, Router};
    ///
    /// #[derive(Clone)]
    /// struct Role(&'static str);
    ///
    /// async fn role(ctx: Arc<Ctx>, next: Next) -> HandlerResult {
    ///     let admin = ctx.update().author_id() == Some("root@srv");
    ///     ctx.insert(Role(if admin { "admin" } else { "user" }));
    ///     next.run(ctx).await
    /// }
    ///
    /// let admin = Router::new()
    ///     .middleware(role)
    ///     .provides::<Role>()
    ///     .command("whoami", |Data(Role(r)): Data<Role>| async move { let _ = r; });
    /// let router = Router::new().include_router(admin);
    /// Dispatcher::detached(router).build().expect("`Role` is declared");
    /// ```
    pub fn middleware(mut self, mw: impl Middleware) -> Self {
        self.middleware.push(Arc::new(mw));
        self
    }

    /// Declares that this router's middleware (or the dispatcher's) attaches a `T` to every
    /// event it passes on, so that handlers in this subtree may take a
    /// [`Data<T>`](super::Data): the dispatcher's `build()` refuses a `Data<T>` nothing
    /// provides. A declared value that is missing at run time is an
    /// [`ExtractError::MissingData`] for the error handler.
    pub fn provides<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.provides.push(TypeId::of::<T>());
        self
    }

    /// Receives the errors of the handlers in this subtree (and of this subtree's
    /// middleware) instead of the dispatcher's error handler; the innermost router with an
    /// error handler takes an error. An error handled here is not counted as an error in
    /// the dispatcher's metrics. Panics still go to the dispatcher's error handler.
    ///
    /// ```
    /// use trueconf_bot::dispatch::{HandlerError, Router, Update};
    ///
    /// let payments = Router::new()
    ///     .error_handler(|update: Update, error: HandlerError| async move {
    ///         eprintln!("payment in {:?} failed: {error}", update.chat_id());
    ///     })
    ///     .command("pay", || async { Err::<(), _>("card declined") });
    /// # let _ = payments;
    /// ```
    pub fn error_handler<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Update, HandlerError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_error = Some(Arc::new(move |u, e| Box::pin(f(u, e))));
        self
    }

    fn push<H: Handler<A>, A>(
        mut self,
        kind: Option<EventKind>,
        filter: Option<Filter>,
        handler: H,
    ) -> Self {
        self.nodes.push(Node::Route(Route {
            kind,
            filter,
            state: None,
            handler: BoxedHandler::new(handler),
        }));
        self
    }

    /// Events of `kind` (any kind when `None`) passing `filter` whose dialog (see the
    /// [`Dialogue`] parameter: the `Arc<dyn Storage>` dependency and the key strategy) is in a
    /// state `state` accepts. A storage failure while checking goes to the error handler and
    /// the route does not match.
    pub fn on_state<S, H, A>(
        mut self,
        kind: Option<EventKind>,
        filter: Option<Filter>,
        state: StateFilter<S>,
        handler: H,
    ) -> Self
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        H: Handler<A>,
    {
        self.nodes.push(Node::Route(Route {
            kind,
            filter,
            state: Some(StateGuard::new(state)),
            handler: BoxedHandler::new(handler),
        }));
        self
    }

    /// Messages whose dialog is in a state `state` accepts (see [`Router::on_state`]).
    pub fn message_in<S, H, A>(self, state: StateFilter<S>, handler: H) -> Self
    where
        S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        H: Handler<A>,
    {
        self.on_state(Some(EventKind::Message), None, state, handler)
    }

    /// Events of `kind`.
    pub fn on<H: Handler<A>, A>(self, kind: EventKind, handler: H) -> Self {
        self.push(Some(kind), None, handler)
    }

    /// Events of `kind` passing `filter`.
    pub fn on_when<H: Handler<A>, A>(self, kind: EventKind, filter: Filter, handler: H) -> Self {
        self.push(Some(kind), Some(filter), handler)
    }

    /// Every event, of any kind (including unknown ones), untouched: the "raw update" route.
    pub fn any<H: Handler<A>, A>(self, handler: H) -> Self {
        self.push(None, None, handler)
    }

    /// Messages that are the text command `cmd` (a name, or a [`CommandFilter`] with
    /// prefixes, aliases, a usage line and a bad-arguments hook).
    pub fn command<H: Handler<A>, A>(self, cmd: impl Into<CommandFilter>, handler: H) -> Self {
        self.push(
            Some(EventKind::Message),
            Some(Filter::command(cmd)),
            handler,
        )
    }

    /// Messages that are one of the commands of the enum `C` (see [`BotCommands`]); the
    /// handler takes the parsed `C`. For aliases of a prefix, a usage line or a
    /// bad-arguments hook use [`Router::command`] with [`CommandFilter::of`].
    pub fn commands<C: BotCommands, H: Handler<A>, A>(self, handler: H) -> Self {
        self.command(CommandFilter::of::<C>(), handler)
    }

    kind_routes! {
        /// New messages (`sendMessage`).
        message, message_when => EventKind::Message;
        /// Button presses (`command` events).
        button, button_when => EventKind::Command;
        /// Edited messages.
        edited, edited_when => EventKind::MessageEdited;
        /// Removed messages.
        removed, removed_when => EventKind::MessageRemoved;
        /// Chats the bot was put into (personal, group, channel, Favorites).
        chat_created, chat_created_when => EventKind::ChatCreated;
        /// Removed chats.
        chat_removed, chat_removed_when => EventKind::ChatRemoved;
        /// Renamed chats.
        title_edited, title_edited_when => EventKind::TitleEdited;
        /// Chat avatar changes.
        avatar_edited, avatar_edited_when => EventKind::AvatarEdited;
        /// Cleared chat histories.
        history_cleared, history_cleared_when => EventKind::HistoryCleared;
        /// Added participants.
        participant_added, participant_added_when => EventKind::ParticipantAdded;
        /// Removed participants.
        participant_removed, participant_removed_when => EventKind::ParticipantRemoved;
        /// Participant role changes.
        role_changed, role_changed_when => EventKind::RoleChanged;
        /// Upload limit changes (global lane).
        limits_changed, limits_changed_when => EventKind::LimitsChanged;
        /// Upload progress reports (global lane).
        upload_progress, upload_progress_when => EventKind::UploadProgress;
        /// Events with a method this library does not know.
        unknown, unknown_when => EventKind::Unknown;
    }

    /// Nests `router` here: its routes are tried at this position in registration order.
    pub fn include_router(mut self, router: Router) -> Self {
        self.nodes.push(Node::Router(router));
        self
    }

    /// The routes in matching order, each with the filters of the routers around it and its
    /// handler wrapped in their middleware and error handler.
    pub(crate) fn flatten(self) -> Vec<FlatRoute> {
        let mut out = Vec::new();
        self.flatten_into(&Scope::default(), &mut out);
        out
    }

    fn flatten_into(self, outer: &Scope, out: &mut Vec<FlatRoute>) {
        let mut scope = outer.clone();
        if let Some(f) = self.filter {
            scope.provided.extend_from_slice(f.provided());
            scope.guards.push(f);
        }
        scope.middleware.extend(self.middleware);
        scope.provided.extend(self.provides);
        if self.on_error.is_some() {
            scope.on_error = self.on_error;
        }
        for node in self.nodes {
            match node {
                Node::Route(mut route) => {
                    let mut provided = scope.provided.clone();
                    if let Some(f) = &route.filter {
                        provided.extend_from_slice(f.provided());
                    }
                    route.handler = wrap(route.handler, &scope);
                    out.push(FlatRoute {
                        guards: scope.guards.clone(),
                        route,
                        provided,
                    });
                }
                Node::Router(nested) => nested.flatten_into(&scope, out),
            }
        }
    }
}

/// `handler` inside the scope's middleware and error handler; unchanged (no extra boxing per
/// event) when the scope has neither.
fn wrap(handler: BoxedHandler, scope: &Scope) -> BoxedHandler {
    if scope.middleware.is_empty() && scope.on_error.is_none() {
        return handler;
    }
    let chain: Arc<[Arc<dyn Middleware>]> = scope.middleware.clone().into();
    let on_error = scope.on_error.clone();
    let inner = handler.clone();
    handler.wrapped(move |ctx: Arc<Ctx>| {
        let (chain, on_error, inner) = (chain.clone(), on_error.clone(), inner.clone());
        Box::pin(async move {
            let result: HandlerResult = if chain.is_empty() {
                call_with_bad_args_hook(inner, ctx.clone()).await
            } else {
                let terminal: Terminal = Arc::new(move |ctx: Arc<Ctx>| {
                    Box::pin(call_with_bad_args_hook(inner.clone(), ctx))
                });
                Next::new(chain, terminal).run(ctx.clone()).await
            };
            match (result, on_error) {
                (Err(error), Some(hook)) => {
                    ctx.router_took(&error);
                    hook(ctx.update().clone(), error).await;
                    Ok(())
                }
                (result, _) => result,
            }
        })
    })
}

/// The first route taking the event, in registration order.
pub(crate) async fn route(
    routes: &[FlatRoute],
    ctx: &Arc<Ctx>,
) -> Result<Option<BoxedHandler>, crate::Error> {
    let kind = ctx.update().kind();
    for FlatRoute { guards, route, .. } in routes {
        if route.kind.is_some_and(|k| k != kind) {
            continue;
        }
        let had_command = ctx.matched_command().is_some();
        let mark = ctx.data_mark();
        let mut passes = true;
        for guard in guards {
            if !guard.check(ctx).await {
                passes = false;
                break;
            }
        }
        if passes && let Some(filter) = &route.filter {
            passes = filter.check(ctx).await;
        }
        let passes = match (&route.state, passes) {
            (Some(state), true) => (state.check)(ctx).await?,
            (_, p) => p,
        };
        if passes {
            return Ok(Some(route.handler.clone()));
        }
        // What the filters of a route that did not match found out (a command parse and its
        // bad-arguments hook, attached data) must not leak to a later route.
        if !had_command {
            ctx.clear_command();
        }
        ctx.forget_data_after(mark);
    }
    Ok(None)
}

/// Checks every handler's dependencies and `Data` parameters; names the first handler that
/// lacks one.
pub(crate) fn check(routes: &[FlatRoute], deps: &Deps) -> Result<(), (&'static str, ExtractError)> {
    for FlatRoute {
        route, provided, ..
    } in routes
    {
        let name = route.handler.name;
        let deps = deps.with_provided(provided);
        route.handler.check(&deps).map_err(|e| (name, e))?;
        if let Some(state) = &route.state {
            (state.deps)(&deps).map_err(|e| (name, e))?;
        }
    }
    Ok(())
}
