//! Filters: predicates over an event, synchronous or asynchronous, composable with `and` /
//! `&`, `or` / `|` and `!`; a filter can also attach a typed value for the handler
//! ([`Filter::map`]).
//!
//! Synchronous filters (every built-in one) are evaluated inline: no allocation and no boxed
//! future per event. Only a filter tree that contains an asynchronous filter is evaluated
//! through boxed futures.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::command::CommandFilter;
use super::handler::Ctx;
use crate::conversation::BoxFuture;
use crate::types::{ChatType, MessageKind};

type SyncPred = Arc<dyn Fn(&Ctx) -> bool + Send + Sync>;
type AsyncPred = Arc<dyn Fn(Arc<Ctx>) -> BoxFuture<bool> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Sync(SyncPred),
    Async(AsyncPred),
    And(Arc<(Filter, Filter)>),
    Or(Arc<(Filter, Filter)>),
    Not(Arc<Filter>),
}

/// A predicate deciding whether a route takes an event.
///
/// ```
/// use std::sync::Arc;
/// use trueconf_bot::dispatch::{Ctx, Filter, Router};
/// use trueconf_bot::types::ChatType;
///
/// // Sync filters compose with `&`, `|` and `!` (or `and` / `or`).
/// let greeting = Filter::text_eq("hi") | Filter::text_eq("hello");
/// let in_groups = Filter::chat_type(ChatType::Group);
///
/// // An async filter: any `async` check, e.g. a database lookup.
/// let registered = Filter::new_async(|ctx: Arc<Ctx>| async move {
///     ctx.update().author_id().is_some_and(|id| id.starts_with("alice"))
/// });
///
/// let router = Router::new().message_when(greeting & !in_groups & registered, || async {});
/// # let _ = router;
/// ```
#[derive(Clone)]
pub struct Filter {
    kind: Kind,
    /// Whether the tree has no async filter (evaluated inline).
    sync: bool,
    /// The [`Data`](super::Data) types this filter attaches whenever it passes.
    provides: Vec<TypeId>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("sync", &self.sync)
            .field("provides", &self.provides.len())
            .finish()
    }
}

impl Filter {
    /// A filter from any predicate over the context.
    pub fn new(f: impl Fn(&Ctx) -> bool + Send + Sync + 'static) -> Self {
        Filter {
            kind: Kind::Sync(Arc::new(f)),
            sync: true,
            provides: Vec::new(),
        }
    }

    /// An asynchronous filter: `f` gets the context and returns a future of the answer
    /// (a database or API lookup, a rate limiter). Routes are tried one at a time, so an
    /// async filter delays the routes after it for this chat only.
    pub fn new_async<F, Fut>(f: F) -> Self
    where
        F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Filter {
            kind: Kind::Async(Arc::new(move |ctx| Box::pin(f(ctx)))),
            sync: false,
            provides: Vec::new(),
        }
    }

    /// A filter that passes when `f` returns `Some(value)`, attaching `value` to the event:
    /// the handler takes it as a [`Data<T>`](super::Data) parameter (teloxide's
    /// `filter_map`; the official client's filters returning a dict).
    pub fn map<T, F>(f: F) -> Self
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(&Ctx) -> Option<T> + Send + Sync + 'static,
    {
        let mut filter = Filter::new(move |ctx| match f(ctx) {
            Some(v) => {
                ctx.insert(v);
                true
            }
            None => false,
        });
        filter.provides.push(TypeId::of::<T>());
        filter
    }

    /// The asynchronous [`Filter::map`]: passes when the future yields `Some(value)`,
    /// attaching `value` for the handler's [`Data<T>`](super::Data) parameter.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use trueconf_bot::dispatch::{Ctx, Data, Dispatcher, Filter, Router};
    ///
    /// #[derive(Clone)]
    /// struct Account { name: String }
    ///
    /// async fn lookup(id: &str) -> Option<Account> {
    ///     id.starts_with("alice").then(|| Account { name: "Alice".into() })
    /// }
    ///
    /// let known = Filter::map_async(|ctx: Arc<Ctx>| async move {
    ///     lookup(ctx.update().author_id()?).await
    /// });
    /// let router = Router::new().message_when(known, |Data(a): Data<Account>| async move {
    ///     let _ = a.name;
    /// });
    /// Dispatcher::detached(router).build().expect("`Account` is provided by the filter");
    /// ```
    pub fn map_async<T, F, Fut>(f: F) -> Self
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let f = Arc::new(f);
        let mut filter = Filter::new_async(move |ctx: Arc<Ctx>| {
            let fut = f(ctx.clone());
            async move {
                match fut.await {
                    Some(v) => {
                        ctx.insert(v);
                        true
                    }
                    None => false,
                }
            }
        });
        filter.provides.push(TypeId::of::<T>());
        filter
    }

    /// Whether the event passes. Evaluated inline (no allocation) when the filter has no
    /// asynchronous part.
    pub async fn check(&self, ctx: &Arc<Ctx>) -> bool {
        if self.sync {
            self.check_sync(ctx)
        } else {
            self.check_boxed(ctx).await
        }
    }

    fn check_sync(&self, ctx: &Ctx) -> bool {
        match &self.kind {
            Kind::Sync(f) => f(ctx),
            // Not reached: `sync` is false for any tree with an async part.
            Kind::Async(_) => false,
            Kind::And(pair) => pair.0.check_sync(ctx) && pair.1.check_sync(ctx),
            Kind::Or(pair) => pair.0.check_sync(ctx) || pair.1.check_sync(ctx),
            Kind::Not(inner) => !inner.check_sync(ctx),
        }
    }

    fn check_boxed<'a>(
        &'a self,
        ctx: &'a Arc<Ctx>,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            match &self.kind {
                Kind::Sync(f) => f(ctx),
                Kind::Async(f) => f(ctx.clone()).await,
                Kind::And(pair) => pair.0.check(ctx).await && pair.1.check(ctx).await,
                Kind::Or(pair) => pair.0.check(ctx).await || pair.1.check(ctx).await,
                Kind::Not(inner) => !inner.check(ctx).await,
            }
        })
    }

    /// The [`Data`](super::Data) types this filter attaches whenever it passes: for `and`
    /// those of both sides, for `or` those both sides attach, for `!` none.
    pub(crate) fn provided(&self) -> &[TypeId] {
        &self.provides
    }

    /// Both filters pass (the second is not evaluated when the first fails). Also `a & b`.
    pub fn and(self, other: Filter) -> Filter {
        let sync = self.sync && other.sync;
        let mut provides = self.provides.clone();
        provides.extend(other.provides.iter().copied());
        Filter {
            kind: Kind::And(Arc::new((self, other))),
            sync,
            provides,
        }
    }

    /// Either filter passes (the second is not evaluated when the first passes). Also
    /// `a | b`.
    pub fn or(self, other: Filter) -> Filter {
        let sync = self.sync && other.sync;
        let provides = self
            .provides
            .iter()
            .copied()
            .filter(|t| other.provides.contains(t))
            .collect();
        Filter {
            kind: Kind::Or(Arc::new((self, other))),
            sync,
            provides,
        }
    }

    /// A predicate over the text (messages and edited messages; no text = no match).
    pub fn text(pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Filter {
        Filter::new(move |c| c.update().text().is_some_and(&pred))
    }

    /// The text equals `s`.
    pub fn text_eq(s: impl Into<String>) -> Filter {
        let s = s.into();
        Filter::text(move |t| t == s)
    }

    /// The text starts with `s`.
    pub fn text_starts_with(s: impl Into<String>) -> Filter {
        let s = s.into();
        Filter::text(move |t| t.starts_with(s.as_str()))
    }

    /// The text contains `s`.
    pub fn text_contains(s: impl Into<String>) -> Filter {
        let s = s.into();
        Filter::text(move |t| t.contains(s.as_str()))
    }

    /// The text matches `re` (anywhere, as [`Regex::is_match`](regex::Regex::is_match); anchor
    /// with `^…$` for a whole-text match). The match and its groups are attached as
    /// [`TextMatch`] for a `Data<TextMatch>` parameter.
    pub fn text_regex(re: regex::Regex) -> Filter {
        Filter::map(move |c| {
            let caps = re.captures(c.update().text()?)?;
            Some(TextMatch::from_captures(&re, &caps))
        })
    }

    /// The message is of this kind (text, photo, document, …).
    pub fn content(kind: MessageKind) -> Filter {
        Filter::new(move |c| c.update().message_kind() == Some(kind))
    }

    /// The chat is of this type.
    pub fn chat_type(chat_type: ChatType) -> Filter {
        Filter::new(move |c| c.update().chat_type() == Some(chat_type))
    }

    /// The message was written by `id` (a TrueConf ID).
    pub fn author(id: impl Into<String>) -> Filter {
        let id = id.into();
        Filter::new(move |c| c.update().author_id() == Some(id.as_str()))
    }

    /// The message was written by one of `ids`.
    pub fn author_in<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Filter {
        let ids: std::collections::HashSet<String> = ids.into_iter().map(Into::into).collect();
        Filter::new(move |c| c.update().author_id().is_some_and(|a| ids.contains(a)))
    }

    /// The message replies to another message.
    pub fn is_reply() -> Filter {
        Filter::new(|c| c.update().reply_message_id().is_some())
    }

    /// The message replies to message `id`.
    pub fn reply_to(id: impl Into<String>) -> Filter {
        let id = id.into();
        Filter::new(move |c| c.update().reply_message_id() == Some(id.as_str()))
    }

    /// The message mentions the bot: its trimmed text is exactly `@all`, or it links the
    /// bot's profile (`trueconf:<bot id>`). Never matches while the bot id is unknown.
    pub fn mentioned() -> Filter {
        // The whole text, reply quote included, as the official client's `Message.mention`
        // reads `content.text`.
        Filter::new(|c| match (c.update().full_text(), c.self_id()) {
            (Some(text), Some(me)) => crate::format::mentions(text, me),
            (Some(text), None) => text.trim() == "@all",
            _ => false,
        })
    }

    /// The text is the command `cmd` (a name or a [`CommandFilter`]). On a match the parsed
    /// command is kept for the handler's `CommandArgs` / `BotCommand` parameters.
    pub fn command(cmd: impl Into<CommandFilter>) -> Filter {
        let cmd = cmd.into();
        Filter::new(move |c| {
            let Some(text) = c.update().text() else {
                return false;
            };
            match cmd.parse(text, c.self_id()) {
                Some(m) => {
                    *crate::sync::lock(&c.command) = Some(Arc::new(m));
                    true
                }
                None => false,
            }
        })
    }

    /// A button press whose command string equals `command`.
    pub fn button(command: impl Into<String>) -> Filter {
        let command = command.into();
        Filter::new(move |c| c.update().button_command() == Some(command.as_str()))
    }

    /// A button press whose custom data satisfies `pred`.
    pub fn custom_data(pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Filter {
        Filter::new(move |c| c.update().custom_data().is_some_and(&pred))
    }

    /// A button press whose custom data starts with `prefix`.
    pub fn custom_data_starts_with(prefix: impl Into<String>) -> Filter {
        let prefix = prefix.into();
        Filter::custom_data(move |d| d.starts_with(prefix.as_str()))
    }

    /// A button press that waits for an answer (carries a `commandId`).
    pub fn waits_reply() -> Filter {
        Filter::new(|c| c.update().waits_reply())
    }

    /// The event belongs to chat `id`.
    pub fn chat(id: impl Into<String>) -> Filter {
        let id = id.into();
        Filter::new(move |c| c.update().chat_id() == Some(id.as_str()))
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        let sync = self.sync;
        Filter {
            kind: Kind::Not(Arc::new(self)),
            sync,
            provides: Vec::new(),
        }
    }
}

impl std::ops::BitAnd for Filter {
    type Output = Filter;
    fn bitand(self, rhs: Filter) -> Filter {
        self.and(rhs)
    }
}

impl std::ops::BitOr for Filter {
    type Output = Filter;
    fn bitor(self, rhs: Filter) -> Filter {
        self.or(rhs)
    }
}

/// What a regular-expression text filter ([`Filter::text_regex`],
/// [`TextField::regex`](super::TextField::regex)) matched: the whole match and its groups,
/// for a `Data<TextMatch>` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    groups: Vec<Option<String>>,
    names: Vec<(String, usize)>,
}

impl TextMatch {
    fn from_captures(re: &regex::Regex, caps: &regex::Captures<'_>) -> Self {
        TextMatch {
            groups: caps
                .iter()
                .map(|m| m.map(|m| m.as_str().to_string()))
                .collect(),
            names: re
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
                .collect(),
        }
    }

    /// The text the whole pattern matched.
    pub fn matched(&self) -> &str {
        self.get(0).unwrap_or("")
    }

    /// Group `i` (0 is the whole match), if it took part in the match.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.groups.get(i)?.as_deref()
    }

    /// The named group `name`, if it took part in the match.
    pub fn name(&self, name: &str) -> Option<&str> {
        let (_, i) = self.names.iter().find(|(n, _)| n == name)?;
        self.get(*i)
    }
}
