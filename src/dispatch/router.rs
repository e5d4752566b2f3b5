//! The routing tree.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::command::CommandFilter;
use super::filter::Filter;
use super::handler::{BoxedHandler, Ctx, Deps, ExtractError, FromEvent, Handler};
use super::update::EventKind;
use crate::conversation::BoxFuture;
use crate::fsm::{Dialogue, StateFilter};

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

/// One route of the flattened tree, with the filters of the routers it sits in.
#[derive(Clone)]
pub(crate) struct FlatRoute {
    guards: Vec<Filter>,
    route: Route,
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

    /// The routes in matching order, each with the filters of the routers around it.
    pub(crate) fn flatten(self) -> Vec<FlatRoute> {
        let mut out = Vec::new();
        self.flatten_into(&mut Vec::new(), &mut out);
        out
    }

    fn flatten_into(self, guards: &mut Vec<Filter>, out: &mut Vec<FlatRoute>) {
        let pushed = self.filter.is_some();
        if let Some(f) = self.filter {
            guards.push(f);
        }
        for node in self.nodes {
            match node {
                Node::Route(route) => out.push(FlatRoute {
                    guards: guards.clone(),
                    route,
                }),
                Node::Router(nested) => nested.flatten_into(guards, out),
            }
        }
        if pushed {
            guards.pop();
        }
    }
}

/// The first route taking the event, in registration order.
pub(crate) async fn route(
    routes: &[FlatRoute],
    ctx: &Ctx,
) -> Result<Option<BoxedHandler>, crate::Error> {
    let kind = ctx.update().kind();
    for FlatRoute { guards, route } in routes {
        if route.kind.is_some_and(|k| k != kind) {
            continue;
        }
        let had_command = ctx.matched_command().is_some();
        let passes = guards.iter().all(|g| g.matches(ctx))
            && route.filter.as_ref().is_none_or(|f| f.matches(ctx));
        let passes = match (&route.state, passes) {
            (Some(state), true) => (state.check)(ctx).await?,
            (_, p) => p,
        };
        if passes {
            return Ok(Some(route.handler.clone()));
        }
        // A command filter that matched inside a failed `and` must not leak its parse (and
        // bad-arguments hook) to a later route.
        if !had_command {
            ctx.clear_command();
        }
    }
    Ok(None)
}

/// Checks every handler's dependencies; names the first handler that lacks one.
pub(crate) fn check(routes: &[FlatRoute], deps: &Deps) -> Result<(), (&'static str, ExtractError)> {
    for FlatRoute { route, .. } in routes {
        let name = route.handler.name;
        route.handler.check(deps).map_err(|e| (name, e))?;
        if let Some(state) = &route.state {
            (state.deps)(deps).map_err(|e| (name, e))?;
        }
    }
    Ok(())
}
