//! Reading mentions, shared contacts and reply quotes out of received texts.

use super::{html, scan};

/// The text that addresses every participant of a chat.
pub const ALL_MENTION: &str = "@all";

/// True when the trimmed text is exactly `@all`.
pub fn is_all_mention(text: &str) -> bool {
    text.trim() == ALL_MENTION
}

/// One `trueconf:` link target found in a text.
struct Target<'a> {
    /// Byte range of the whole `href="…"` / `(…)` including delimiters.
    start: usize,
    end: usize,
    id: &'a str,
}

pub(crate) const SCHEME: &str = "trueconf:";
const PROFILE: [&str; 2] = ["&do=profile", "&amp;do=profile"];

/// `trueconf:ID` then an optional `&do=profile`, then one of `closers`.
pub(crate) fn target_at<'a>(
    text: &'a str,
    at: usize,
    closers: &[char],
) -> Option<(&'a str, usize)> {
    let rest = text.get(at..)?.strip_prefix(SCHEME)?;
    let id_len = rest.find(|c: char| c == '&' || closers.contains(&c))?;
    if id_len == 0 {
        return None;
    }
    let mut tail = &rest[id_len..];
    if let Some(p) = PROFILE.iter().find(|p| tail.starts_with(*p)) {
        tail = &tail[p.len()..];
    }
    let close = tail.chars().next().filter(|c| closers.contains(c))?;
    let end = text.len() - tail.len() + close.len_utf8();
    Some((&rest[..id_len], end))
}

/// Where the last `<` before a point is and whether a `>` follows it, kept up to date as the
/// point moves forward through the text. Asking "is this `href=` inside an `<a` tag" by
/// searching back for the tag's start would read a text of many `href="trueconf:` again
/// and again (quadratic); this reads each byte once.
#[derive(Default)]
struct TagState {
    scanned: usize,
    lt: Option<usize>,
    closed: bool,
}

impl TagState {
    /// Moves the point to `to` (never back).
    fn advance(&mut self, text: &str, to: usize) {
        if to <= self.scanned {
            return;
        }
        let seg = &text.as_bytes()[self.scanned..to];
        match seg.iter().rposition(|&b| b == b'<') {
            Some(p) => {
                self.lt = Some(self.scanned + p);
                self.closed = seg[p..].contains(&b'>');
            }
            None => self.closed |= seg.contains(&b'>'),
        }
        self.scanned = to;
    }

    /// The point (where `advance` left it) is inside an unclosed `<a ` tag.
    fn in_a_tag(&self, text: &str) -> bool {
        self.lt.is_some_and(|lt| {
            !self.closed
                && self.scanned > lt + 2
                && text.as_bytes()[lt + 1].eq_ignore_ascii_case(&b'a')
                && text[lt + 2..self.scanned].starts_with(char::is_whitespace)
        })
    }
}

/// Every `href="trueconf:ID"` (quotes `"` or `'`, optional `&do=profile`) inside an `<a …>`
/// tag, then every Markdown link `[text](trueconf:ID)`.
fn targets(text: &str) -> impl Iterator<Item = Target<'_>> {
    let mut from = 0;
    let mut tag = TagState::default();
    let html = std::iter::from_fn(move || {
        loop {
            let k = from + text.get(from..)?.find(SCHEME)?;
            from = k + SCHEME.len();
            let Some(b) = text[..k]
                .strip_suffix(['"', '\''])
                .and_then(|b| b.strip_suffix("href="))
            else {
                continue;
            };
            // Escaped text such as `&lt;a href="trueconf:x"&gt;` is not a link.
            tag.advance(text, b.len());
            if !tag.in_a_tag(text) {
                continue;
            }
            if let Some((id, end)) = target_at(text, k, &['"', '\'']) {
                from = end;
                return Some(Target {
                    start: b.len(),
                    end,
                    id,
                });
            }
        }
    });
    let md = scan::Tokens::new(text, scan::Mode::Markdown)
        .filter(|t| t.kind == scan::Kind::Link)
        .filter_map(|t| {
            let (_, inner, _) = scan::md_link_parts(text, t.start, &mut scan::Memo::default())?;
            let at = t.start + inner.len() + 3;
            let (id, end) = target_at(text, at, &[')'])?;
            (end == t.end).then_some(Target { start: at, end, id })
        });
    html.chain(md)
}

/// The TrueConf ids mentioned in `text` (HTML `href="trueconf:ID"` or Markdown
/// `(trueconf:ID)`), in order of appearance, without repeats.
pub fn mentioned_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in targets(text) {
        if !ids.iter().any(|x| x == t.id) {
            ids.push(t.id.to_owned());
        }
    }
    ids
}

fn same_id(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// True when `text` addresses the bot: the trimmed text is exactly `@all`, or a mention's id
/// equals `bot_id` (case-insensitively; a `/resource` suffix of `bot_id` is ignored).
pub fn mentions(text: &str, bot_id: &str) -> bool {
    if is_all_mention(text) {
        return true;
    }
    let bot = bot_id.split_once('/').map_or(bot_id, |(id, _)| id);
    targets(text).any(|t| same_id(t.id, bot))
}

/// A TrueConf contact shared as a message whose whole text is one profile link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLink {
    /// The contact's TrueConf id (`login@domain`).
    pub user_id: String,
    /// The link text, unescaped (the display name at the time it was shared).
    pub name: String,
}

/// Recognises a shared contact: the trimmed text is exactly one
/// `<a href="trueconf:ID&do=profile">Name</a>` (`&do=profile` optional, as in the Python client).
pub fn contact_link(text: &str) -> Option<ContactLink> {
    let text = text.trim();
    let rest = text.strip_prefix("<a")?;
    let attrs = rest.trim_start();
    if attrs.len() == rest.len() {
        return None;
    }
    let target = targets(text).next()?;
    let open_end = target.end;
    if target.start != text.len() - attrs.len() || !text[open_end..].starts_with('>') {
        return None;
    }
    let inner = text[open_end + 1..].strip_suffix("</a>")?;
    if inner.contains("</a>") || inner.contains("<a ") {
        return None;
    }
    Some(ContactLink {
        user_id: target.id.to_owned(),
        name: html::unescape(inner).into_owned(),
    })
}

const QUOTE_OPEN: &str = "<quote";
const QUOTE_CLASS: &str = "class=\"reply\">";
const QUOTE_CLOSE: &str = "</quote>";

/// `<quote\s+class="reply">` at the start of `text`: the byte length of the opener.
fn quote_open(text: &str) -> Option<usize> {
    let rest = text.strip_prefix(QUOTE_OPEN)?;
    let trimmed = rest.trim_start();
    if trimmed.len() == rest.len() {
        return None;
    }
    trimmed.strip_prefix(QUOTE_CLASS)?;
    Some(text.len() - trimmed.len() + QUOTE_CLASS.len())
}

/// Splits an incoming reply into its quote and its own text.
///
/// A text starting with `<quote class="reply">QUOTE</quote>` followed by one or more `<br>`
/// (what TrueConf clients send for a reply with quote) yields `(Some(QUOTE unescaped), rest)`;
/// any other text comes back whole with `None`, as the Python client's `Message.text` does.
pub fn strip_reply_quote(text: &str) -> (Option<String>, String) {
    let split = quote_open(text).and_then(|open| {
        let close = open + text[open..].find(QUOTE_CLOSE)?;
        let mut rest = &text[close + QUOTE_CLOSE.len()..];
        let mut brs = 0;
        while let Some(r) = ["<br>", "<br/>", "<br />"]
            .iter()
            .find_map(|b| rest.strip_prefix(b))
        {
            rest = r;
            brs += 1;
        }
        (brs > 0).then_some((&text[open..close], rest))
    });
    match split {
        Some((quote, rest)) => (Some(html::unescape(quote).into_owned()), rest.to_owned()),
        None => (None, text.to_owned()),
    }
}

/// The unescaped content of the first `<quote class="reply">…</quote>` anywhere in `text`
/// (the Python client's `Message.quote`).
pub fn reply_quote(text: &str) -> Option<String> {
    let mut from = 0;
    while let Some(k) = text[from..].find(QUOTE_OPEN) {
        let at = from + k;
        if let Some(open) = quote_open(&text[at..]) {
            let body = &text[at + open..];
            let close = body.find(QUOTE_CLOSE)?;
            return Some(html::unescape(&body[..close]).into_owned());
        }
        from = at + QUOTE_OPEN.len();
    }
    None
}
