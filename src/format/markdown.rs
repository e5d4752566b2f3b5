//! Markdown (`parseMode: "markdown"`) builders and escaping.
//!
//! Every builder escapes the user text it is given (a backslash before each of
//! `` _*[]()~`>#+-=|{}.!\ ``, as the Python client does), so `**`, `](` and friends show
//! literally.
//!
//! ```
//! use trueconf_bot::format::markdown;
//! assert_eq!(markdown::bold("2*3"), r"**2\*3**");
//! ```

use std::borrow::Cow;

use super::scan::{is_md_special, is_md_special_byte};

/// Prefixes every Markdown special character with a backslash.
pub fn escape(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| is_md_special_byte(b)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 8);
    out.push_str(&text[..first]);
    // As `html::escape`: byte by byte over ASCII, non-ASCII runs copied whole.
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if is_md_special_byte(b) {
                out.push('\\');
            }
            out.push(char::from(b));
            i += 1;
        } else {
            i = super::html::copy_non_ascii(&mut out, text, i);
        }
    }
    Cow::Owned(out)
}

/// Removes the backslashes [`escape`] added.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&n) if c == '\\' && is_md_special(n) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn wrap(marker: &str, text: &str) -> String {
    let body = escape(text);
    let mut out = String::with_capacity(body.len() + 2 * marker.len());
    out.push_str(marker);
    out.push_str(&body);
    out.push_str(marker);
    out
}

/// `**text**`.
pub fn bold(text: &str) -> String {
    wrap("**", text)
}

/// `*text*`.
pub fn italic(text: &str) -> String {
    wrap("*", text)
}

/// `~~text~~`.
pub fn strike(text: &str) -> String {
    wrap("~~", text)
}

/// Percent-encodes what would end the `(url)` part early or break it up.
fn escape_url(url: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '<' | '>' | '\\');
    if !url.contains(bad) {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        if bad(c) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `[text](url)`; brackets in the text are escaped, parentheses and spaces in the url are
/// percent-encoded.
pub fn link(text: &str, url: &str) -> String {
    format!("[{}]({})", escape(text), escape_url(url))
}

/// A mention of a TrueConf user: `[Name](trueconf:login@domain)`.
pub fn mention(user_id: &str, name: &str) -> String {
    format!("[{}](trueconf:{})", escape(name), escape_url(user_id))
}

/// Reply-with-quote body: `>QUOTE`, a blank line, then `reply` (Markdown the caller built).
///
/// Unlike the Python client, which inserts the quote verbatim, the quote is escaped and every
/// line of it is prefixed with `>`, so a quoted fragment can neither add markup nor leave the
/// quote block.
pub fn quote_reply(quote: &str, reply: &str) -> String {
    let mut out = String::with_capacity(quote.len() + reply.len() + 8);
    for (k, line) in quote.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push('>');
        out.push_str(&escape(line));
    }
    out.push_str("\n\n");
    out.push_str(reply);
    out
}
