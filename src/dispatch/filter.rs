//! Filters: synchronous predicates over an event, composable with `and`, `or` and `!`.

use std::fmt;
use std::sync::Arc;

use super::command::CommandFilter;
use super::handler::Ctx;
use crate::types::{ChatType, MessageKind};

/// A predicate deciding whether a route takes an event.
#[derive(Clone)]
pub struct Filter(Arc<dyn Fn(&Ctx) -> bool + Send + Sync>);

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Filter")
    }
}

impl Filter {
    /// A filter from any predicate over the context.
    pub fn new(f: impl Fn(&Ctx) -> bool + Send + Sync + 'static) -> Self {
        Filter(Arc::new(f))
    }

    /// Whether the event passes.
    pub fn matches(&self, ctx: &Ctx) -> bool {
        (self.0)(ctx)
    }

    /// Both filters pass (the second is not evaluated when the first fails).
    pub fn and(self, other: Filter) -> Filter {
        Filter::new(move |c| self.matches(c) && other.matches(c))
    }

    /// Either filter passes.
    pub fn or(self, other: Filter) -> Filter {
        Filter::new(move |c| self.matches(c) || other.matches(c))
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
        Filter::new(|c| match (c.update().text(), c.self_id()) {
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
        Filter::new(move |c| !self.matches(c))
    }
}
