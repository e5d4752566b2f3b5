//! HTML (`parseMode: "html"`) builders and escaping.
//!
//! Every builder escapes the user text it is given, so a name like `</b><a href=x>` shows
//! literally instead of becoming markup. Concatenate the returned strings to compose a message.
//!
//! ```
//! use trueconf_bot::format::html;
//! let text = format!("{} wrote: {}", html::bold("<Ann>"), html::escape("1 < 2 & 3"));
//! assert_eq!(text, "<b>&lt;Ann&gt;</b> wrote: 1 &lt; 2 &amp; 3");
//! ```

use std::borrow::Cow;

// Decoding lives below this file, next to the tokenizer that shares it.
pub use super::entity::unescape;

fn escape_with(text: &str, attr: bool) -> Cow<'_, str> {
    let special = |b: u8| matches!(b, b'&' | b'<' | b'>') || (attr && matches!(b, b'"' | b'\''));
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| special(b)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 16);
    out.push_str(&text[..first]);
    // Byte by byte over ASCII, each arm pushing a literal or one byte (a store of known
    // length, no call to copy), so a text of nothing but `<` costs about what its output
    // costs to write; runs of non-ASCII bytes, whole chars by construction, are copied
    // whole. (Copying the runs between specials whole instead is slower on hostile texts,
    // whose runs are a byte or two long; `benches/format.rs --ratios` measures both.)
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            match b {
                b'&' => out.push_str("&amp;"),
                b'<' => out.push_str("&lt;"),
                b'>' => out.push_str("&gt;"),
                b'"' if attr => out.push_str("&quot;"),
                b'\'' if attr => out.push_str("&#x27;"),
                _ => out.push(char::from(b)),
            }
            i += 1;
        } else {
            i = copy_non_ascii(&mut out, text, i);
        }
    }
    Cow::Owned(out)
}

/// Copies the run of non-ASCII bytes at `i` (it starts and ends on char boundaries: ASCII
/// bytes are never inside a char) and returns where it ends.
pub(super) fn copy_non_ascii(out: &mut String, text: &str, i: usize) -> usize {
    let end = text.as_bytes()[i..]
        .iter()
        .position(u8::is_ascii)
        .map_or(text.len(), |n| i + n);
    out.push_str(&text[i..end]);
    end
}

/// Escapes `&`, `<` and `>` so `text` shows literally (quotes are left alone, as in the
/// Python client's `html.escape(value, quote=False)`).
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

/// Escapes `text` for a double- or single-quoted attribute value (also `"` and `'`).
pub fn escape_attr(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

fn wrap(tag: &str, text: &str) -> String {
    let body = escape(text);
    let mut out = String::with_capacity(body.len() + 2 * tag.len() + 5);
    out.push('<');
    out.push_str(tag);
    out.push('>');
    out.push_str(&body);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
    out
}

/// `<b>text</b>`.
pub fn bold(text: &str) -> String {
    wrap("b", text)
}

/// `<i>text</i>`.
pub fn italic(text: &str) -> String {
    wrap("i", text)
}

/// `<u>text</u>`.
pub fn underline(text: &str) -> String {
    wrap("u", text)
}

/// `<s>text</s>`.
pub fn strike(text: &str) -> String {
    wrap("s", text)
}

/// `<a href="url">text</a>`; the url is attribute-escaped.
pub fn link(text: &str, url: &str) -> String {
    format!("<a href=\"{}\">{}</a>", escape_attr(url), escape(text))
}

/// A mention of a TrueConf user: `<a href="trueconf:login@domain">Name</a>`.
pub fn mention(user_id: &str, name: &str) -> String {
    format!(
        "<a href=\"trueconf:{}\">{}</a>",
        escape_attr(user_id),
        escape(name)
    )
}

/// A line break; raw newlines collapse to spaces in HTML messages.
pub const LINE_BREAK: &str = "<br>";

/// Reply-with-quote body: `<quote class="reply">QUOTE</quote><br><br>REPLY`.
///
/// `quote` is plain text (escaped here); `reply` is HTML the caller built, kept as is. Send it
/// with `replyMessageId` set and `parseMode: "html"`.
pub fn quote_reply(quote: &str, reply: &str) -> String {
    format!(
        "<quote class=\"reply\">{}</quote><br><br>{reply}",
        escape(quote)
    )
}

/// [`quote_reply`] for a plain-text reply: the reply is escaped too, and the result must be
/// sent as HTML (the Python client switches the parse mode the same way).
pub fn quote_reply_text(quote: &str, reply: &str) -> String {
    quote_reply(quote, &escape(reply))
}
