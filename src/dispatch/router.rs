//! The routing tree.

use super::command::CommandFilter;
use super::filter::Filter;
use super::handler::{BoxedHandler, Ctx, Deps, ExtractError, Handler};
use super::update::EventKind;

struct Route {
    kind: Option<EventKind>,
    filter: Option<Filter>,
    handler: BoxedHandler,
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
            handler: BoxedHandler::new(handler),
        }));
        self
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

    /// The first matching handler.
    pub(crate) fn route(&self, ctx: &Ctx) -> Option<&BoxedHandler> {
        if self.filter.as_ref().is_some_and(|f| !f.matches(ctx)) {
            return None;
        }
        let kind = ctx.update().kind();
        for node in &self.nodes {
            match node {
                Node::Route(r) => {
                    if r.kind.is_some_and(|k| k != kind) {
                        continue;
                    }
                    let Some(filter) = &r.filter else {
                        return Some(&r.handler);
                    };
                    let had_command = ctx.matched_command().is_some();
                    if filter.matches(ctx) {
                        return Some(&r.handler);
                    }
                    // A command filter that matched inside a failed `and` must not leak its
                    // parse (and bad-arguments hook) to a later route.
                    if !had_command {
                        ctx.clear_command();
                    }
                }
                Node::Router(nested) => {
                    if let Some(h) = nested.route(ctx) {
                        return Some(h);
                    }
                }
            }
        }
        None
    }

    /// Checks every handler's dependencies; names the first handler that lacks one.
    pub(crate) fn check(&self, deps: &Deps) -> Result<(), (&'static str, ExtractError)> {
        for node in &self.nodes {
            match node {
                Node::Route(r) => r.handler.check(deps).map_err(|e| (r.handler.name, e))?,
                Node::Router(nested) => nested.check(deps)?,
            }
        }
        Ok(())
    }
}
