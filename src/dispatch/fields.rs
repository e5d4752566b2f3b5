//! [`F`]: a typed field-filter builder for what the official client's magic filter `F` is
//! used for (`F.text == "hi"`, `F.text.startswith("/")`, `F.text.regexp(..)`, `F.photo`,
//! `F.chat.type`, `F.from_user.id.in_(..)`, `F.reply_to_message`). Every method returns a
//! plain [`Filter`], so the results compose with `&`, `|` and `!`.

use std::borrow::Cow;
use std::collections::HashSet;

use super::filter::Filter;
use crate::types::{ChatType, MessageKind};

/// The field-filter builder: pick a field, then a condition.
///
/// | official client | here |
/// |---|---|
/// | `F.text == "hi"` | `F::text().eq("hi")` |
/// | `F.text.startswith("/")` / `.endswith` / `.contains` | `F::text().starts_with("/")` / `ends_with` / `contains` |
/// | `F.text.regexp(r"Hello, .+")` | `F::text().regex(Regex::new(r"Hello, .+")?)` |
/// | `F.text.lower() == "test"` | `F::text().lower().eq("test")` |
/// | `F.text.in_({"a", "b"})` | `F::text().one_of(["a", "b"])` |
/// | `F.text.len() == 5` | `F::text().len(\|n\| n == 5)` |
/// | `F.text` (has text) | `F::text().exists()` |
/// | `F.photo`, `F.document`, … | `F::content().is(MessageKind::Photo)` |
/// | `F.chat.type == ...` | `F::chat_type().is(ChatType::Group)` |
/// | `F.from_user.id.in_({...})` | `F::author().one_of([...])` |
/// | `F.reply_to_message` | `F::reply().exists()` |
/// | `a & b`, `a \| b`, `~a` | `a & b`, `a \| b`, `!a` |
///
/// ```
/// use trueconf_bot::dispatch::{F, Regex, Router};
/// use trueconf_bot::types::{ChatType, MessageKind};
///
/// let admins = F::author().one_of(["root@srv", "ops@srv"]);
/// let ban = (F::text().starts_with("!") | F::text().starts_with("/")) & F::text().contains("ban");
/// let greeting = F::text().lower().one_of(["hi", "hello"]);
/// let photo_in_group = F::content().is(MessageKind::Photo) & F::chat_type().is(ChatType::Group);
/// let ticket = F::text().regex(Regex::new(r"^#(?<n>\d+)$").unwrap());
///
/// let router = Router::new()
///     .message_when(admins & ban, || async {})
///     .message_when(greeting & !F::reply().exists(), || async {})
///     .message_when(photo_in_group, || async {})
///     .message_when(ticket, || async {});
/// # let _ = router;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct F;

impl F {
    /// The text of a message or edited message (no text: no condition matches).
    pub fn text() -> TextField {
        TextField { lower: false }
    }

    /// The message kind (text, photo, document, sticker, …).
    pub fn content() -> ContentField {
        ContentField
    }

    /// The type of the event's chat.
    pub fn chat_type() -> ChatTypeField {
        ChatTypeField
    }

    /// The TrueConf ID of the message's author (the sender).
    pub fn author() -> AuthorField {
        AuthorField
    }

    /// What the message replies to.
    pub fn reply() -> ReplyField {
        ReplyField
    }
}

/// Conditions on the text (see [`F::text`]).
#[derive(Debug, Clone, Copy)]
pub struct TextField {
    lower: bool,
}

impl TextField {
    /// Compare the lower-cased text (Unicode lower case); the given strings are compared
    /// as they are, so write them in lower case.
    pub fn lower(self) -> TextField {
        TextField { lower: true }
    }

    fn when(self, pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Filter {
        if self.lower {
            Filter::text(move |t| {
                let t: Cow<'_, str> = if t.chars().any(char::is_uppercase) {
                    Cow::Owned(t.to_lowercase())
                } else {
                    Cow::Borrowed(t)
                };
                pred(&t)
            })
        } else {
            Filter::text(pred)
        }
    }

    /// The message has a text.
    pub fn exists(self) -> Filter {
        Filter::text(|_| true)
    }

    /// The text equals `s`.
    pub fn eq(self, s: impl Into<String>) -> Filter {
        let s = s.into();
        self.when(move |t| t == s)
    }

    /// The text is one of `values`.
    pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(self, values: I) -> Filter {
        let values: HashSet<String> = values.into_iter().map(Into::into).collect();
        self.when(move |t| values.contains(t))
    }

    /// The text starts with `s`.
    pub fn starts_with(self, s: impl Into<String>) -> Filter {
        let s = s.into();
        self.when(move |t| t.starts_with(s.as_str()))
    }

    /// The text ends with `s`.
    pub fn ends_with(self, s: impl Into<String>) -> Filter {
        let s = s.into();
        self.when(move |t| t.ends_with(s.as_str()))
    }

    /// The text contains `s`.
    pub fn contains(self, s: impl Into<String>) -> Filter {
        let s = s.into();
        self.when(move |t| t.contains(s.as_str()))
    }

    /// The text's length in characters satisfies `pred`.
    pub fn len(self, pred: impl Fn(usize) -> bool + Send + Sync + 'static) -> Filter {
        self.when(move |t| pred(t.chars().count()))
    }

    /// The text satisfies `pred`.
    pub fn func(self, pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Filter {
        self.when(pred)
    }

    /// The text matches `re` (anywhere; anchor with `^…$`). The match is attached as
    /// [`TextMatch`](super::TextMatch) for a `Data<TextMatch>` parameter (see
    /// [`Filter::text_regex`]); with [`TextField::lower`] the pattern sees the lower-cased
    /// text but the match is not attached (write `(?i)` in the pattern instead).
    pub fn regex(self, re: regex::Regex) -> Filter {
        if self.lower {
            self.when(move |t| re.is_match(t))
        } else {
            Filter::text_regex(re)
        }
    }
}

/// Conditions on the message kind (see [`F::content`]).
#[derive(Debug, Clone, Copy)]
pub struct ContentField;

impl ContentField {
    /// The message is of kind `kind`.
    pub fn is(self, kind: MessageKind) -> Filter {
        Filter::content(kind)
    }

    /// The message is of one of `kinds`.
    pub fn one_of(self, kinds: impl IntoIterator<Item = MessageKind>) -> Filter {
        let kinds: Vec<MessageKind> = kinds.into_iter().collect();
        Filter::new(move |c| {
            c.update()
                .message_kind()
                .is_some_and(|k| kinds.contains(&k))
        })
    }
}

/// Conditions on the chat type (see [`F::chat_type`]).
#[derive(Debug, Clone, Copy)]
pub struct ChatTypeField;

impl ChatTypeField {
    /// The chat is of type `t`.
    pub fn is(self, t: ChatType) -> Filter {
        Filter::chat_type(t)
    }

    /// The chat is of one of `types`.
    pub fn one_of(self, types: impl IntoIterator<Item = ChatType>) -> Filter {
        let types: Vec<ChatType> = types.into_iter().collect();
        Filter::new(move |c| c.update().chat_type().is_some_and(|t| types.contains(&t)))
    }
}

/// Conditions on the author (see [`F::author`]).
#[derive(Debug, Clone, Copy)]
pub struct AuthorField;

impl AuthorField {
    /// The message was written by `id`.
    pub fn is(self, id: impl Into<String>) -> Filter {
        Filter::author(id)
    }

    /// The message was written by one of `ids`.
    pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(self, ids: I) -> Filter {
        Filter::author_in(ids)
    }

    /// The author's id satisfies `pred`.
    pub fn func(self, pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Filter {
        Filter::new(move |c| c.update().author_id().is_some_and(&pred))
    }
}

/// Conditions on what a message replies to (see [`F::reply`]).
#[derive(Debug, Clone, Copy)]
pub struct ReplyField;

impl ReplyField {
    /// The message replies to another message.
    pub fn exists(self) -> Filter {
        Filter::is_reply()
    }

    /// The message replies to message `id`.
    pub fn to(self, id: impl Into<String>) -> Filter {
        Filter::reply_to(id)
    }
}
