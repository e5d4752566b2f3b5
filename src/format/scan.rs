//! One tokenizer for all three parse modes.
//!
//! `visible_len`, `visible_text` and `split_text` all walk the same token stream, so the length
//! a part is planned with is the length it is later measured with.

use super::entity::{entity, unescape};
use crate::types::ParseMode;

/// A formatting mark that a cut must close and the next part must re-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// An HTML tag among `b i u s quote`; the opener is re-emitted verbatim.
    Tag(&'static str),
    /// A Markdown marker (`*`, `**`, `_`, `__`, `~`, `~~`); the same string opens and closes.
    Md(&'static str),
    /// A Markdown `>` quote started at the beginning of a line.
    Quote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Visible characters without whitespace or markup; may be cut between any two chars.
    Word,
    /// A whitespace run. `ends_quote`: Markdown quote ends here (a newline not followed by `>`).
    Space {
        newlines: usize,
        ends_quote: bool,
    },
    /// One visible character written with several bytes (entity, Markdown escape).
    Atom,
    /// Markdown punctuation that shows literally only thanks to its neighbours (`a_b`, `a\b`,
    /// a `>` inside a line) or HTML `<`s that start no known tag. Must be escaped when a cut
    /// puts it at the edge of a part.
    Lit,
    /// `<a href>…</a>` or `[text](url)`: counted as text, a space and the url.
    Link,
    Open(Mark),
    Close(Mark),
    /// A Markdown marker: whether it opens or closes depends on what is already open.
    Toggle(Mark),
    /// Markdown `>` at the start of a line.
    QuoteStart,
    /// `<br>`.
    Br,
    /// Invisible markup that is neither closed nor re-opened at a cut (`<a>` without `</a>`,
    /// stray `</a>`, `<b/>`, `</br>`).
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    pub start: usize,
    pub end: usize,
    /// Visible characters.
    pub vis: usize,
    pub kind: Kind,
}

/// Characters the Markdown escaper prefixes with a backslash (same set as the Python client).
pub(crate) const MD_SPECIAL: &str = "_*[]()~`>#+-=|{}.!\\";

/// [`MD_SPECIAL`] as a table indexed by byte: a lookup instead of a search of the set for
/// every char of a text.
const MD_SPECIAL_BYTES: [bool; 128] = {
    let mut table = [false; 128];
    let set = MD_SPECIAL.as_bytes();
    let mut i = 0;
    while i < set.len() {
        table[set[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether byte `b` is one of [`MD_SPECIAL`] (all ASCII, so never part of a longer char).
pub(crate) fn is_md_special_byte(b: u8) -> bool {
    b < 128 && MD_SPECIAL_BYTES[b as usize]
}

pub(crate) fn is_md_special(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_md_special_byte)
}

// Python's str.isalnum, close enough for the "marker inside a word" rule.
fn alnum(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

pub(crate) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
    mode: Mode,
    memo: Memo,
}

/// The forward searches of one tokenizer run, each remembering what it already found.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memo {
    gt: Search,
    close_a: Search,
    rbracket: Search,
    rparen: Search,
}

/// One forward search's answers so far. The tokenizer asks from ever later starts; without
/// these answers texts like `<b <b <b …` or `[[[[…]` (every `[` finds the one `]`) cost a
/// scan to the end per token, quadratic in all.
///
/// * A search that came up empty from `miss` comes up empty from any later start.
/// * One that went from `hit.0` to a match at `hit.1` ends there from any start in between.
///
/// Both hold for a plain substring search. The `]` search skips backslash escapes, so where
/// it stands in between matters; it holds there because every start follows a `[`, which is
/// never escaping and never the end (see [`md_link_parts`]).
#[derive(Debug, Clone, Copy)]
struct Search {
    miss: usize,
    hit: (usize, usize),
    /// Off for the test oracle: every search from scratch, as the definition says.
    remember: bool,
}

impl Default for Search {
    fn default() -> Self {
        Search {
            miss: usize::MAX,
            hit: (usize::MAX, 0),
            remember: true,
        }
    }
}

impl Search {
    /// The first match at or after `from`; `find` searches a suffix of `text`.
    fn find(
        &mut self,
        text: &str,
        from: usize,
        find: impl FnOnce(&str) -> Option<usize>,
    ) -> Option<usize> {
        if !self.remember {
            return find(&text[from..]).map(|k| from + k);
        }
        if from >= self.miss {
            return None;
        }
        if self.hit.0 <= from && from <= self.hit.1 {
            return Some(self.hit.1);
        }
        let found = find(&text[from..]).map(|k| from + k);
        match found {
            Some(at) => self.hit = (from, at),
            None => self.miss = from,
        }
        found
    }
}

impl Memo {
    /// Whether runs of tokens that are known to behave as one are made one token; not for
    /// the test oracle, whose tokens are the plain definition.
    fn merges(&self) -> bool {
        self.gt.remember
    }

    /// Where a `[` may start a link again, once the one at `i` did not: no `[` before that
    /// does (0 when nothing is known).
    ///
    /// * When a `]` search or a `)` search came up empty, no later `[` starts a link: its
    ///   `]` search follows the same path (see [`md_link_parts`]), and its `)` search starts
    ///   after the failed one, or at the same place when both share the `]`.
    /// * Every `[` before the `]` that the one at `i` found finds that `]` too; when no
    ///   `(url)` follows it, none of them starts a link.
    fn links_from(&self, text: &str, i: usize) -> usize {
        let tried = |s: &Search| s.remember && s.miss != usize::MAX;
        if tried(&self.rbracket) || tried(&self.rparen) {
            return usize::MAX;
        }
        let (from, close) = self.rbracket.hit;
        if self.rbracket.remember && from <= i + 1 && i < close {
            let after = &text[close + 1..];
            if !after.starts_with('(') || after[1..].starts_with(')') {
                return close;
            }
        }
        0
    }

    /// Searches that remember nothing: the plain definition, for the test oracle.
    #[cfg(feature = "testkit")]
    pub(crate) fn forgetful() -> Self {
        let s = Search {
            remember: false,
            ..Search::default()
        };
        Memo {
            gt: s,
            close_a: s,
            rbracket: s,
            rparen: s,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Text,
    Markdown,
    Html,
}

impl From<&ParseMode> for Mode {
    fn from(m: &ParseMode) -> Self {
        match m {
            ParseMode::Text => Mode::Text,
            ParseMode::Markdown => Mode::Markdown,
            ParseMode::Html => Mode::Html,
        }
    }
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str, mode: Mode) -> Self {
        Tokens {
            text,
            pos: 0,
            mode,
            memo: Memo::default(),
        }
    }

    /// Tokens found with searches from scratch (the test oracle's definition).
    #[cfg(feature = "testkit")]
    pub(crate) fn forgetful(text: &'a str, mode: Mode) -> Self {
        Tokens {
            memo: Memo::forgetful(),
            ..Tokens::new(text, mode)
        }
    }
}

impl Iterator for Tokens<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let i = self.pos;
        let c = self.text[i..].chars().next()?;
        let (len, vis, kind) = if c.is_whitespace() {
            space(self.text, i, self.mode)
        } else {
            match self.mode {
                Mode::Text => word(self.text, i, |_, _| false),
                Mode::Html => html(self.text, i, c, &mut self.memo),
                Mode::Markdown => markdown(self.text, i, c, &mut self.memo),
            }
        };
        self.pos = i + len;
        Some(Tok {
            start: i,
            end: i + len,
            vis,
            kind,
        })
    }
}

fn space(text: &str, i: usize, mode: Mode) -> (usize, usize, Kind) {
    let mut n = 0;
    let mut newlines = 0;
    let mut len = 0;
    for c in text[i..].chars().take_while(|c| c.is_whitespace()) {
        n += 1;
        len += c.len_utf8();
        newlines += usize::from(c == '\n');
    }
    let ends_quote = mode == Mode::Markdown && newlines > 0 && !text[i + len..].starts_with('>');
    (
        len,
        n,
        Kind::Space {
            newlines,
            ends_quote,
        },
    )
}

/// A run of ordinary characters; the first one is always taken. `stop` sees each further
/// char and its byte offset in `text`.
fn word(text: &str, i: usize, stop: impl Fn(usize, char) -> bool) -> (usize, usize, Kind) {
    let mut chars = text[i..].chars();
    let first = chars.next().map_or(0, char::len_utf8);
    let mut len = first;
    let mut n = 1;
    for c in chars {
        if c.is_whitespace() || stop(i + len, c) {
            break;
        }
        len += c.len_utf8();
        n += 1;
    }
    (len, n, Kind::Word)
}

fn html(text: &str, i: usize, c: char, memo: &mut Memo) -> (usize, usize, Kind) {
    match c {
        '<' => {
            // Only `</` and the first letters of the tag names can start markup.
            let b = text.as_bytes();
            let starts_nothing = |j: usize| {
                let next = b.get(j + 1).map(u8::to_ascii_lowercase);
                !matches!(next, Some(b'/' | b'q' | b'b' | b'i' | b'u' | b's' | b'a'))
            };
            if starts_nothing(i) {
                // A run of such `<` is one token, not one per byte (`split` escapes each).
                let mut j = i + 1;
                while memo.merges() && b.get(j) == Some(&b'<') && starts_nothing(j) {
                    j += 1;
                }
                return (j - i, j - i, Kind::Lit);
            }
            if let Some((len, vis)) = html_anchor(text, i, memo) {
                return (len, vis, Kind::Link);
            }
            if let Some((len, kind)) = html_tag(text, i, memo) {
                return (len, 0, kind);
            }
            (1, 1, Kind::Lit)
        }
        '&' => match entity(text, i) {
            Some((len, _)) => (len, 1, Kind::Atom),
            None => word(text, i, |_, c| c == '<' || c == '&'),
        },
        _ => word(text, i, |_, c| c == '<' || c == '&'),
    }
}

const HTML_TAGS: [&str; 7] = ["quote", "br", "b", "i", "u", "s", "a"];

/// `<(/)?(quote|br|[biusa])(\s+[^>]*)?(\s*/)?>`, case-insensitive, as the Python client.
fn html_tag(text: &str, i: usize, memo: &mut Memo) -> Option<(usize, Kind)> {
    let b = text.as_bytes();
    let mut j = i + 1;
    let closing = b.get(j) == Some(&b'/');
    if closing {
        j += 1;
    }
    let name = HTML_TAGS
        .into_iter()
        .find(|n| b.len() >= j + n.len() && b[j..j + n.len()].eq_ignore_ascii_case(n.as_bytes()))?;
    j += name.len();
    let rest = &text[j..];
    let next = rest.chars().next()?;
    let (end, self_close) = if next == '>' {
        (j + 1, false)
    } else if rest.starts_with("/>") {
        (j + 2, true)
    } else if next.is_whitespace() {
        let gt = memo.gt.find(text, j, |s| s.find('>'))?;
        (gt + 1, text[..gt].trim_end().ends_with('/'))
    } else {
        return None;
    };
    let kind = match (name, closing) {
        ("br", false) => Kind::Br,
        ("a", _) | ("br", true) => Kind::Other,
        (_, _) if self_close => Kind::Other,
        (n, false) => Kind::Open(Mark::Tag(n)),
        (n, true) => Kind::Close(Mark::Tag(n)),
    };
    Some((end - i, kind))
}

/// `<a\s+attrs>inner</a>` (first `</a>`, case-insensitive). Returns (byte length, visible).
fn html_anchor(text: &str, i: usize, memo: &mut Memo) -> Option<(usize, usize)> {
    let (len, href, inner) = html_anchor_parts(text, i, memo)?;
    Some((len, link_count(inner, href.unwrap_or(""), Mode::Html)))
}

/// Byte length, href (raw, still escaped) and inner markup of an anchor at `i`.
pub(crate) fn html_anchor_parts<'a>(
    text: &'a str,
    i: usize,
    memo: &mut Memo,
) -> Option<(usize, Option<&'a str>, &'a str)> {
    let b = text.as_bytes();
    if !(b.get(i) == Some(&b'<') && matches!(b.get(i + 1), Some(b'a' | b'A'))) {
        return None;
    }
    if !text[i + 2..].chars().next()?.is_whitespace() {
        return None;
    }
    let gt = memo.gt.find(text, i + 2, |s| s.find('>'))?;
    let attrs = &text[i + 2..gt];
    let inner_start = gt + 1;
    let close = memo
        .close_a
        .find(text, inner_start, |s| find_ci(s, "</a>"))?;
    let inner = &text[inner_start..close];
    let end = close + 4;
    Some((end - i, href(attrs), inner))
}

/// `href\s*=\s*["']([^"']+)["']`, first match, case-insensitive name.
pub(crate) fn href(attrs: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(k) = find_ci(&attrs[from..], "href") {
        let mut rest = attrs[from + k + 4..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix(['"', '\'']) {
                let v = r.find(['"', '\'']).unwrap_or(r.len());
                if v > 0 && v < r.len() {
                    return Some(&r[..v]);
                }
            }
        }
        from += k + 4;
    }
    None
}

pub(crate) fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..=h.len().checked_sub(n.len())?).find(|&k| h[k..k + n.len()].eq_ignore_ascii_case(n))
}

/// What a link shows, as the Python client renders it: `f"{text} {url}".strip()`.
fn link_text(inner: &str, url: &str, mode: Mode) -> String {
    let mut s = visible(inner, mode);
    s.push(' ');
    match mode {
        Mode::Html => s.push_str(&unescape(url)),
        _ => s.push_str(url),
    }
    let trimmed = s.trim();
    if trimmed.len() == s.len() {
        s
    } else {
        trimmed.to_owned()
    }
}

/// `link_text(..).chars().count()`, without allocating in the usual case.
fn link_count(inner: &str, url: &str, mode: Mode) -> usize {
    let edgy = |s: &str| s.contains(|c: char| c.is_whitespace() || c == '&');
    if edgy(inner) || edgy(url) {
        return link_text(inner, url, mode).chars().count();
    }
    let (i, u) = (count(inner, mode), url.chars().count());
    i + u + usize::from(i > 0 && u > 0)
}

fn markdown(text: &str, i: usize, c: char, memo: &mut Memo) -> (usize, usize, Kind) {
    let b = text.as_bytes();
    let prev = text[..i].chars().next_back();
    match c {
        '>' if i == 0 || b[i - 1] == b'\n' => (1, 0, Kind::QuoteStart),
        '>' => (1, 1, Kind::Lit),
        '[' => match md_link_parts(text, i, memo) {
            Some((len, inner, url)) => (len, link_count(inner, url, Mode::Markdown), Kind::Link),
            // The `[`s known to start no link join the word instead of each making a token
            // of its own (a word is a word however it is cut into tokens).
            None => {
                let links_from = memo.links_from(text, i);
                word(text, i, |at, c| {
                    md_stop(c) && !(c == '[' && at < links_from)
                })
            }
        },
        '\\' => match text[i + 1..].chars().next() {
            Some(n) if is_md_special(n) => (1 + n.len_utf8(), 1, Kind::Atom),
            _ => (1, 1, Kind::Lit),
        },
        '_' if text[i..].starts_with("__") => {
            if alnum(prev) && alnum(text[i + 2..].chars().next()) {
                (2, 2, Kind::Lit)
            } else {
                (2, 0, Kind::Toggle(Mark::Md("__")))
            }
        }
        '*' | '_' | '~' => {
            let next = text[i + 1..].chars().next();
            if alnum(prev) && alnum(next) {
                (1, 1, Kind::Lit)
            } else if next == Some(c) {
                let m = match c {
                    '*' => "**",
                    _ => "~~",
                };
                (2, 0, Kind::Toggle(Mark::Md(m)))
            } else {
                let m = match c {
                    '*' => "*",
                    '_' => "_",
                    _ => "~",
                };
                (1, 0, Kind::Toggle(Mark::Md(m)))
            }
        }
        _ => word(text, i, |_, c| md_stop(c)),
    }
}

fn md_stop(c: char) -> bool {
    matches!(c, '*' | '_' | '~' | '[' | '\\' | '>')
}

/// `[inner](url)` at `i`: (byte length, inner, url). Backslash escapes inside `inner` are
/// honoured so an escaped `]` does not end the text.
///
/// The `]` search starts right after a `[`. A search from an earlier start that reached this
/// `[` (as an escaped char or not) stands right after it outside any escape, exactly as a
/// new search would, so they find the same `]`: what lets [`Memo`] reuse the answer.
pub(crate) fn md_link_parts<'a>(
    text: &'a str,
    i: usize,
    memo: &mut Memo,
) -> Option<(usize, &'a str, &'a str)> {
    if text.as_bytes().get(i) != Some(&b'[') {
        return None;
    }
    let close = memo.rbracket.find(text, i + 1, |rest| {
        let mut chars = rest.char_indices();
        loop {
            let (k, ch) = chars.next()?;
            if ch == ']' {
                break Some(k);
            }
            if ch == '\\' && chars.clone().next().is_some_and(|(_, n)| is_md_special(n)) {
                chars.next();
            }
        }
    })?;
    if close == i + 1 || !text[close + 1..].starts_with('(') {
        return None;
    }
    let url_start = close + 2;
    let end = memo.rparen.find(text, url_start, |s| s.find(')'))?;
    if end == url_start {
        return None;
    }
    Some((end + 1 - i, &text[i + 1..close], &text[url_start..end]))
}

/// Visible characters of `text` in `mode`.
pub(crate) fn count(text: &str, mode: Mode) -> usize {
    match mode {
        Mode::Text => text.chars().count(),
        _ => Tokens::new(text, mode).map(|t| t.vis).sum(),
    }
}

/// Appends what a reader sees of token `t`.
pub(crate) fn push_visible(out: &mut String, text: &str, t: &Tok, mode: Mode) {
    let raw = &text[t.start..t.end];
    match t.kind {
        Kind::Word | Kind::Space { .. } | Kind::Lit => out.push_str(raw),
        Kind::Atom => match mode {
            Mode::Html => out.push(entity(text, t.start).map_or('\u{fffd}', |(_, c)| c)),
            _ => out.push_str(&raw[1..]),
        },
        Kind::Link => push_link_visible(out, text, t.start, mode),
        _ => {}
    }
}

fn push_link_visible(out: &mut String, text: &str, i: usize, mode: Mode) {
    let memo = &mut Memo::default();
    let parts = match mode {
        Mode::Html => {
            html_anchor_parts(text, i, memo).map(|(_, h, inner)| (inner, h.unwrap_or("")))
        }
        _ => md_link_parts(text, i, memo).map(|(_, inner, url)| (inner, url)),
    };
    if let Some((inner, url)) = parts {
        out.push_str(&link_text(inner, url, mode));
    }
}

/// What a reader sees of `text`.
pub(crate) fn visible(text: &str, mode: Mode) -> String {
    if mode == Mode::Text {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for t in Tokens::new(text, mode) {
        push_visible(&mut out, text, &t, mode);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str, mode: Mode) -> Vec<(&str, Kind)> {
        Tokens::new(text, mode)
            .map(|t| (&text[t.start..t.end], t.kind))
            .collect()
    }

    #[test]
    fn markdown_markers_inside_words_are_text() {
        let toks = kinds("snake_case *it* a__b", Mode::Markdown);
        assert!(toks.contains(&("_", Kind::Lit)));
        assert!(toks.contains(&("__", Kind::Lit)));
        assert_eq!(
            toks.iter()
                .filter(|(_, k)| *k == Kind::Toggle(Mark::Md("*")))
                .count(),
            2
        );
    }

    #[test]
    fn html_tags_follow_the_python_pattern() {
        let tag = |s: &str| html_tag(s, 0, &mut Memo::default()).map(|(_, k)| k);
        assert_eq!(tag("<b>"), Some(Kind::Open(Mark::Tag("b"))));
        assert_eq!(tag("<B class=x>"), Some(Kind::Open(Mark::Tag("b"))));
        assert_eq!(tag("</quote>"), Some(Kind::Close(Mark::Tag("quote"))));
        assert_eq!(tag("<br/>"), Some(Kind::Br));
        assert_eq!(tag("<b/>"), Some(Kind::Other));
        assert_eq!(tag("<bold>"), None);
        assert_eq!(tag("<b"), None);
    }

    #[test]
    fn markdown_escapes_are_one_char() {
        assert_eq!(count(r"\*\\\q", Mode::Markdown), 4);
    }

    #[test]
    fn memo_gives_the_same_answer_as_a_fresh_search() {
        for text in [
            "<b <i x> y",
            "<a <a href=x>t</a>",
            "[a [b](c) [d](e",
            "[\\](x) [y](z)",
        ] {
            for mode in [Mode::Html, Mode::Markdown] {
                let all: Vec<_> = Tokens::new(text, mode).map(|t| (t.start, t.kind)).collect();
                // Re-tokenising from every token start with a fresh memo agrees.
                for (start, kind) in &all {
                    let again = Tokens::new(&text[*start..], mode).next().map(|t| t.kind);
                    if !matches!(kind, Kind::Lit | Kind::QuoteStart | Kind::Toggle(_)) {
                        assert_eq!(again, Some(*kind), "{text:?} at {start}");
                    }
                }
            }
        }
    }
}
