//! Text formatting for the server's parse modes.
//!
//! * [`html`] and [`markdown`]: escaping and builders that escape the user text they wrap.
//! * [`visible_len`] / [`visible_text`]: what a reader sees, the measure of the 4096 limit.
//! * [`split_text`]: cuts a long text into messages that fit, keeping markup balanced.
//! * [`mentions`], [`mentioned_ids`], [`is_all_mention`], [`contact_link`],
//!   [`strip_reply_quote`], [`reply_quote`]: reading received texts.
//!
//! The counting rules follow the Python client (`trueconf.utils.split_text`): HTML tags
//! `b i u s a quote br` and Markdown markers `* _ ~ ** __ ~~` (unless inside a word, like
//! `snake_case`) are invisible, a link counts as its text, a space and its url. Differences,
//! all towards what the reader actually sees: each mode only strips its own markup (the Python
//! client strips both everywhere), an HTML entity such as `&amp;` counts as one character,
//! and a Markdown backslash escape such as `\.` counts as the one character it shows.
//!
//! Received texts come from chat users, so every function here takes time linear in its
//! input, whatever the input: no text makes a scan go back over what it has read.

use crate::types::ParseMode;

mod entity;
pub mod html;
pub mod markdown;
mod mention;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod reference;
mod scan;
mod split;

pub use mention::{
    ALL_MENTION, ContactLink, contact_link, is_all_mention, mentioned_ids, mentions, reply_quote,
    strip_reply_quote,
};

/// Maximum visible length of one message text or caption.
pub const MAX_TEXT_LEN: usize = 4096;

/// The number of characters a reader sees once markup is rendered (Unicode scalar values,
/// like Python's `len`).
///
/// ```
/// use trueconf_bot::format::visible_len;
/// use trueconf_bot::types::ParseMode;
/// assert_eq!(visible_len("<b>hello</b> world", &ParseMode::Html), 11);
/// assert_eq!(visible_len("[docs](https://t.co)", &ParseMode::Markdown), 4 + 1 + 12);
/// assert_eq!(visible_len("**", &ParseMode::Text), 2);
/// ```
pub fn visible_len(text: &str, mode: &ParseMode) -> usize {
    scan::count(text, mode.into())
}

/// What a reader sees of `text`: markup removed, entities and escapes decoded, each link as
/// `text url`. Its length in chars is [`visible_len`].
pub fn visible_text(text: &str, mode: &ParseMode) -> String {
    scan::visible(text, mode.into())
}

/// Splits `text` into parts whose [`visible_len`] is at most `limit` (0 is taken as 1).
///
/// Cuts prefer a paragraph break, then a line break, then a space, in the second half of a
/// part; a word is cut only when it alone is too long. A cut never falls inside a tag, an
/// entity, an escape or a link (a link longer than `limit` is written out as plain text).
/// Formatting open at a cut is closed at the end of the part and re-opened at the start of the
/// next; beyond 16 open tags only once per kind of tag (for `b i u s` that renders the same),
/// and a tag longer than 256 bytes is re-opened as just `<name>`, so re-opening adds at most a
/// few kilobytes to a part. In [`ParseMode::Text`] the parts concatenate to `text` exactly; with
/// markup, their visible texts concatenate to the visible text of `text`. Empty input gives
/// no parts.
///
/// ```
/// use trueconf_bot::format::split_text;
/// use trueconf_bot::types::ParseMode;
/// let parts = split_text("<b>one two three</b>", &ParseMode::Html, 8);
/// assert_eq!(parts, ["<b>one two </b>", "<b>three</b>"]);
/// ```
pub fn split_text(text: &str, mode: &ParseMode, limit: usize) -> Vec<String> {
    split::split(text, mode.into(), limit)
}
