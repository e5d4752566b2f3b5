//! Splitting a long text into messages that each fit the visible-length limit.
//!
//! One pass over the token stream, part by part: `next_cut` picks where the part ends from
//! visible lengths alone (markup is invisible, so the stack of open tags does not matter
//! there), `Writer::part` writes it, closing what is open at its end and re-opening it at the
//! start of the next. Only the tokens of the part at hand are held ([`Window`]).

use std::collections::VecDeque;

use super::scan::{self, Kind, Mark, Mode, Tok, Tokens};
use super::{html, markdown};

/// A cut position: before visible char `off` of token `tok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    tok: usize,
    off: usize,
}

pub(crate) fn split(text: &str, mode: Mode, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    if text.is_empty() {
        return Vec::new();
    }
    let mut w = Window::new(text, mode);
    let mut a = Pos { tok: 0, off: 0 };
    // No first cut exactly when the whole text fits: it is its own one part, as written.
    let Some(first_cut) = next_cut(&mut w, a, limit) else {
        return vec![text.to_owned()];
    };
    let mut writer = Writer::new(text, mode);
    let mut parts = Vec::new();
    let mut cut = Some(first_cut);
    loop {
        let b = match cut {
            Some(c) => c,
            None => Pos {
                tok: w.len(),
                off: 0,
            },
        };
        parts.push(writer.part(&mut w, parts.len(), a, b, cut.is_none()));
        let Some(c) = cut else { break };
        w.forget_before(c.tok);
        a = c;
        cut = next_cut(&mut w, a, limit);
    }
    parts
}

/// The tokens of the text from the current part on, read as they are asked for. Holding
/// every token of a text at once costs up to some 50 bytes per byte of it (`**…` is a token
/// per two bytes), enough to make splitting a long text slow on memory alone.
struct Window<'a> {
    tokens: Tokens<'a>,
    held: VecDeque<Tok>,
    /// The number of `held[0]` in the whole stream.
    base: usize,
    /// The number of tokens, once the stream has ended.
    total: Option<usize>,
}

impl<'a> Window<'a> {
    fn new(text: &'a str, mode: Mode) -> Self {
        Window {
            tokens: Tokens::new(text, mode),
            held: VecDeque::new(),
            base: 0,
            total: None,
        }
    }

    /// Token number `k` (not before the last `forget_before`), or `None` past the end.
    fn get(&mut self, k: usize) -> Option<&Tok> {
        let i = k.checked_sub(self.base)?;
        if i < self.held.len() {
            return self.held.get(i);
        }
        // In batches: a tight loop of the tokenizer alone runs faster than one interleaved
        // with planning and writing.
        while self.held.len() <= i && self.total.is_none() {
            let before = self.held.len();
            self.held.extend(self.tokens.by_ref().take(BATCH));
            if self.held.len() < before + BATCH {
                self.total = Some(self.base + self.held.len());
            }
        }
        self.held.get(i)
    }

    /// The number of tokens (reads to the end).
    fn len(&mut self) -> usize {
        loop {
            if let Some(n) = self.total {
                return n;
            }
            self.get(self.base + self.held.len());
        }
    }

    /// Whether a visible token comes at or after token `k`.
    fn visible_from(&mut self, mut k: usize) -> bool {
        while let Some(t) = self.get(k) {
            if t.vis > 0 {
                return true;
            }
            k += 1;
        }
        false
    }

    /// Drops the tokens before number `k`.
    fn forget_before(&mut self, k: usize) {
        let n = k.saturating_sub(self.base).min(self.held.len());
        self.held.drain(..n);
        self.base += n;
    }
}

/// Tokens read ahead at a time.
const BATCH: usize = 512;

fn splittable(t: &Tok) -> bool {
    matches!(t.kind, Kind::Word | Kind::Space { .. } | Kind::Lit)
}

/// Index into the candidate table: paragraph break, line break, word break.
fn strength(line_breaks: usize) -> usize {
    match line_breaks {
        0 => 2,
        1 => 1,
        _ => 0,
    }
}

/// Where the part starting at `p` ends, or `None` when the rest of the text fits in it.
fn next_cut(w: &mut Window, p: Pos, limit: usize) -> Option<Pos> {
    // A break in the second half of a part is good enough; earlier ones make tiny parts.
    let half = limit.div_ceil(2);
    let mut used = 0;
    let mut q = p;
    let mut cands: [Option<(Pos, usize)>; 3] = [None; 3];
    let mut breaks = 0;
    let mut c = loop {
        let t = w.get(q.tok)?;
        let rem = t.vis - q.off;
        let next = Pos {
            tok: q.tok + 1,
            off: 0,
        };
        if rem == 0 {
            if t.kind == Kind::Br {
                breaks += 1;
                if used > 0 {
                    cands[strength(breaks)] = Some((next, used));
                }
            }
            q = next;
            continue;
        }
        if t.kind == Kind::Link && t.vis > limit {
            // Written out as text, which may show differently next to Markdown markers, so
            // its pieces get parts of their own.
            if used > 0 {
                break q;
            }
            let take = rem.min(limit);
            break if take == rem {
                next
            } else {
                Pos {
                    tok: q.tok,
                    off: q.off + take,
                }
            };
        }
        if used + rem <= limit {
            used += rem;
            q = next;
            match t.kind {
                Kind::Space { newlines, .. } => {
                    breaks += newlines;
                    cands[strength(breaks)] = Some((next, used));
                }
                _ => breaks = 0,
            }
            continue;
        }
        let room = limit - used;
        let inside = Pos {
            tok: q.tok,
            off: q.off + room,
        };
        if matches!(t.kind, Kind::Space { .. }) && room > 0 {
            cands[2] = Some((inside, limit));
        }
        let pick = cands
            .iter()
            .flatten()
            .find(|(_, u)| *u >= half)
            .or_else(|| cands.iter().flatten().max_by_key(|(_, u)| *u))
            .map(|(pos, _)| *pos);
        break pick.unwrap_or(if splittable(t) && room > 0 {
            inside
        } else if used > 0 {
            q
        } else {
            next
        });
    };
    if c.off == 0 {
        // Closing tags and line breaks right after the cut belong to the part they end.
        while w
            .get(c.tok)
            .is_some_and(|t| matches!(t.kind, Kind::Close(_) | Kind::Br | Kind::Other))
        {
            c.tok += 1;
        }
        if !w.visible_from(c.tok) {
            return None;
        }
    }
    Some(c)
}

/// Byte offsets of char counts inside the token a cut falls in, found by walking on from the
/// previous cut in the same token: a word cut into many parts is walked once, not from its
/// start for every part.
#[derive(Default)]
struct Cursor {
    tok: usize,
    chars: usize,
    bytes: usize,
}

impl Cursor {
    /// The byte offset of char `n` of `s`, the text of token `tok`.
    fn byte(&mut self, tok: usize, s: &str, n: usize) -> usize {
        if self.tok != tok || self.chars > n {
            *self = Cursor {
                tok,
                ..Cursor::default()
            };
        }
        let rest = &s[self.bytes..];
        self.bytes += rest
            .char_indices()
            .nth(n - self.chars)
            .map_or(rest.len(), |(b, _)| b);
        self.chars = n;
        self.bytes
    }

    /// Chars `from..to` of `s`, the text of token `tok`.
    fn slice<'a>(&mut self, tok: usize, s: &'a str, from: usize, to: usize) -> &'a str {
        let start = self.byte(tok, s, from);
        &s[start..self.byte(tok, s, to)]
    }
}

/// Open formatting beyond this many marks is re-opened once per kind (see [`Open::carry`]).
const DEEP: usize = 16;
/// A re-opened tag longer than this is written as `<name>` instead of verbatim.
const OPENER_MAX: usize = 256;

#[derive(Clone, Copy)]
struct Entry {
    mark: Mark,
    /// The opening token's bytes in the text.
    opener: (usize, usize),
    alive: bool,
    /// The part this entry was re-opened in at its start (if any).
    reopened_in: usize,
}

/// The formatting open where [`Writer`] has got to: a stack whose innermost entry of a
/// given mark is removed in O(1) (removed entries stay as dead until the next part starts).
///
/// Each part re-opens what is open at its cut. Up to [`DEEP`] marks that is everything, as
/// written; beyond, only the outermost entry of each mark, and closing tags of the others
/// are dropped in that part. For `b i u s` that renders the same (bold inside bold adds
/// nothing), and a text of thousands of `<b>` no longer makes every part thousands of tags
/// long, which made the parts' total length quadratic in the text's.
struct Open {
    entries: Vec<Entry>,
    /// Per mark, the indices of its live entries, outermost first.
    by_mark: Vec<(Mark, Vec<usize>)>,
    live: usize,
    /// The part being written and where its own entries start.
    part: usize,
    part_start: usize,
    /// Entries re-opened at the start of the part, outermost first.
    reopened: Vec<usize>,
}

impl Open {
    fn new() -> Self {
        Open {
            entries: Vec::new(),
            by_mark: Vec::new(),
            live: 0,
            part: 0,
            part_start: 0,
            reopened: Vec::new(),
        }
    }

    fn of(&mut self, m: Mark) -> &mut Vec<usize> {
        let k = match self.by_mark.iter().position(|(x, _)| *x == m) {
            Some(k) => k,
            None => {
                self.by_mark.push((m, Vec::new()));
                self.by_mark.len() - 1
            }
        };
        &mut self.by_mark[k].1
    }

    fn has(&self, m: Mark) -> bool {
        self.by_mark.iter().any(|(x, v)| *x == m && !v.is_empty())
    }

    fn push(&mut self, mark: Mark, opener: (usize, usize)) {
        let k = self.entries.len();
        self.entries.push(Entry {
            mark,
            opener,
            alive: true,
            reopened_in: usize::MAX,
        });
        self.of(mark).push(k);
        self.live += 1;
    }

    /// Removes the innermost entry of `m`: whether there was one, and if so whether this part
    /// wrote its opener (so its closer must be written too).
    fn pop(&mut self, m: Mark) -> Option<bool> {
        let k = self.of(m).pop()?;
        self.entries[k].alive = false;
        self.live -= 1;
        Some(k >= self.part_start || self.entries[k].reopened_in == self.part)
    }

    /// Starts part `part`: picks what it re-opens.
    fn carry(&mut self, part: usize) {
        if self.entries.len() > 2 * self.live {
            // More dead than live: drop them, paid for by the pops that made them.
            self.entries.retain(|e| e.alive);
            for (_, v) in &mut self.by_mark {
                v.clear();
            }
            for k in 0..self.entries.len() {
                let m = self.entries[k].mark;
                self.of(m).push(k);
            }
        }
        self.part = part;
        self.part_start = self.entries.len();
        self.reopened.clear();
        if self.live <= DEEP {
            // At most 2 * DEEP entries here.
            let live = self.entries.iter().enumerate().filter(|(_, e)| e.alive);
            self.reopened.extend(live.map(|(k, _)| k));
        } else {
            self.reopened
                .extend(self.by_mark.iter().filter_map(|(_, v)| v.first().copied()));
            self.reopened.sort_unstable();
        }
        for &k in &self.reopened {
            self.entries[k].reopened_in = part;
        }
    }

    /// Writes the openers of what the part re-opens (Markdown quotes are written apart).
    fn write_openers(&self, out: &mut String, text: &str) {
        for e in self.reopened.iter().map(|&k| &self.entries[k]) {
            match e.mark {
                Mark::Tag(name) => {
                    let raw = &text[e.opener.0..e.opener.1];
                    if raw.len() <= OPENER_MAX {
                        out.push_str(raw);
                    } else {
                        out.push('<');
                        out.push_str(name);
                        out.push('>');
                    }
                }
                Mark::Md(s) => out.push_str(s),
                Mark::Quote => {}
            }
        }
    }

    /// Writes closers for what is open and was opened or re-opened in this part, innermost
    /// first.
    fn write_closers(&self, out: &mut String) {
        let own = self.entries[self.part_start..].iter().rev();
        let reopened = self.reopened.iter().rev().map(|&k| &self.entries[k]);
        for e in own.chain(reopened).filter(|e| e.alive) {
            match e.mark {
                Mark::Tag(name) => {
                    out.push_str("</");
                    out.push_str(name);
                    out.push('>');
                }
                Mark::Md(s) => out.push_str(s),
                Mark::Quote => {}
            }
        }
    }

    /// Applies token `t` (`slice` of it in this part); false when its text must be left out
    /// because it closes an entry this part did not re-open.
    fn apply(&mut self, t: &Tok, slice: &str) -> bool {
        let opener = (t.start, t.end);
        match t.kind {
            Kind::Open(m) => self.push(m, opener),
            Kind::Close(m) => return self.pop(m).unwrap_or(true),
            // The guard removes an open marker of the same kind; only when none was open, push.
            Kind::Toggle(m) => match self.pop(m) {
                Some(written) => return written,
                None => self.push(m, opener),
            },
            Kind::QuoteStart if !self.has(Mark::Quote) => self.push(Mark::Quote, opener),
            Kind::Space {
                ends_quote: true, ..
            } if slice.contains('\n') => {
                self.pop(Mark::Quote);
            }
            _ => {}
        }
        true
    }
}

/// Replaces the `<` at each of `at` (ascending byte offsets into `out`) with `&lt;`, in one
/// pass.
fn escape_lts(out: &mut String, at: &[usize]) {
    if at.is_empty() {
        return;
    }
    let mut fixed = String::with_capacity(out.len() + 3 * at.len());
    let mut from = 0;
    for &k in at {
        fixed.push_str(&out[from..k]);
        fixed.push_str("&lt;");
        from = k + 1;
    }
    fixed.push_str(&out[from..]);
    *out = fixed;
}

/// Writes the parts one after the other, carrying what is open from each to the next.
struct Writer<'a> {
    text: &'a str,
    mode: Mode,
    open: Open,
    lit_lt: Vec<usize>,
    cursor: Cursor,
    /// A link longer than a part is written out as text, piece by piece: rendered once.
    link: Option<(usize, String, Cursor)>,
}

impl<'a> Writer<'a> {
    fn new(text: &'a str, mode: Mode) -> Self {
        Writer {
            text,
            mode,
            open: Open::new(),
            lit_lt: Vec::new(),
            cursor: Cursor::default(),
            link: None,
        }
    }

    /// Part number `k`, from `a` to `b` (the end of the text when `last`).
    fn part(&mut self, w: &mut Window, k: usize, a: Pos, b: Pos, last: bool) -> String {
        let (text, mode) = (self.text, self.mode);
        let kind = |w: &mut Window, i: usize| w.get(i).map(|t| t.kind);
        let mut first = a.tok;
        let mut stop = if b.off > 0 { b.tok + 1 } else { b.tok };
        // A part neither starts nor ends with a bare line break.
        if k > 0 && a.off == 0 {
            while first < stop && kind(w, first) == Some(Kind::Br) {
                first += 1;
            }
        }
        if !last && b.off == 0 {
            while stop > first && kind(w, stop - 1) == Some(Kind::Br) {
                stop -= 1;
            }
        }
        let start = w.get(first).map(|t| t.start);
        let end = stop.checked_sub(1).and_then(|l| w.get(l)).map(|t| t.end);
        let raw_len = match (start, end) {
            (Some(s), Some(e)) if stop > first => e - s,
            _ => 0,
        };
        let mut out = String::with_capacity(raw_len + 32);
        self.open.carry(k);
        let lead_quote = a.off == 0 && kind(w, first) == Some(Kind::QuoteStart);
        // `>` only quotes at the very start of a line, so it goes before the other openers.
        if lead_quote || self.open.has(Mark::Quote) {
            out.push('>');
        }
        self.open.write_openers(&mut out, text);
        let body_start = out.len();
        self.lit_lt.clear();
        for i in first..stop {
            let Some(t) = w.get(i) else { break };
            let from = if i == a.tok { a.off } else { 0 };
            let to = if i == b.tok && b.off > 0 {
                b.off
            } else {
                t.vis
            };
            let raw = &text[t.start..t.end];
            let whole = from == 0 && to == t.vis;
            let slice = match t.kind {
                Kind::Word | Kind::Space { .. } | Kind::Lit if !whole => {
                    self.cursor.slice(i, raw, from, to)
                }
                _ => raw,
            };
            if i == first && lead_quote {
                self.open.apply(t, slice);
                continue;
            }
            if !self.open.apply(t, slice) {
                continue;
            }
            match t.kind {
                Kind::Lit if mode == Mode::Markdown => {
                    // Its neighbour across the cut made it literal; without it, escape.
                    if out.len() == body_start || i + 1 == stop {
                        for c in slice.chars() {
                            out.push('\\');
                            out.push(c);
                        }
                    } else {
                        out.push_str(slice);
                    }
                }
                Kind::Lit => {
                    // `<`s only, one byte each.
                    self.lit_lt.extend((0..slice.len()).map(|j| out.len() + j));
                    out.push_str(slice);
                }
                Kind::Link if !whole => {
                    if self.link.as_ref().is_none_or(|(n, _, _)| *n != i) {
                        let mut shown = String::new();
                        scan::push_visible(&mut shown, text, t, mode);
                        self.link = Some((i, shown, Cursor::default()));
                    }
                    if let Some((_, shown, at)) = &mut self.link {
                        let piece = at.slice(i, shown, from, to);
                        match mode {
                            Mode::Html => out.push_str(&html::escape(piece)),
                            _ => out.push_str(&markdown::escape(piece)),
                        }
                    }
                }
                _ => out.push_str(slice),
            }
        }
        let suffix_start = out.len();
        self.open.write_closers(&mut out);
        if suffix_start < out.len() && !self.lit_lt.is_empty() {
            // A bare `<` with no `>` after it would swallow the closing tags into a new tag.
            let last_gt = out[..suffix_start].rfind('>');
            let keep = self
                .lit_lt
                .partition_point(|&at| last_gt.is_some_and(|g| at < g));
            escape_lts(&mut out, &self.lit_lt[keep..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_markdown_marks_at_a_cut_are_escaped() {
        let parts = split("ab_cd", Mode::Markdown, 3);
        assert_eq!(parts, ["ab\\_", "cd"]);
        assert_eq!(split("a>b", Mode::Markdown, 1), ["a", "\\>", "b"]);
    }

    #[test]
    fn bare_lt_before_closing_tags_is_escaped() {
        // No `>` follows, so `<i` is text; `</b>` appended at the cut must not complete it.
        let parts = split("<b>x <i y z", Mode::Html, 5);
        assert_eq!(parts, ["<b>x &lt;i </b>", "<b>y z</b>"]);
        assert_eq!(scan::visible(&parts[0], Mode::Html), "x <i ");
    }

    #[test]
    fn markdown_quote_is_reopened_first() {
        let parts = split("**a\n>quote text long**", Mode::Markdown, 8);
        assert!(parts[1].starts_with(">**"), "{parts:?}");
    }

    #[test]
    fn deep_formatting_is_reopened_once_per_kind() {
        let text = format!("{}aaaa bbbb{}", "<b>".repeat(20), "</b>".repeat(20));
        let parts = split(&text, Mode::Html, 5);
        // The first part wrote all twenty openers, so it closes all of them.
        assert_eq!(
            parts[0],
            format!("{}aaaa {}", "<b>".repeat(20), "</b>".repeat(20))
        );
        // The second re-opens one, and writes only the closer that matches it.
        assert_eq!(parts[1], "<b>bbbb</b>");
        // Up to DEEP, everything is re-opened as written.
        let text = format!("{}aaaa bbbb{}", "<b>".repeat(DEEP), "</b>".repeat(DEEP));
        let parts = split(&text, Mode::Html, 5);
        assert_eq!(
            parts[1],
            format!("{0}bbbb{1}", "<b>".repeat(DEEP), "</b>".repeat(DEEP))
        );
    }

    #[test]
    fn a_long_opener_is_reopened_by_name() {
        let opener = format!("<i title=\"{}\">", "t".repeat(OPENER_MAX));
        let parts = split(&format!("{opener}aaaa bbbb</i>"), Mode::Html, 5);
        assert_eq!(
            parts,
            [format!("{opener}aaaa </i>"), "<i>bbbb</i>".to_owned()]
        );
        let short = "<i title=\"t\">";
        let parts = split(&format!("{short}aaaa bbbb</i>"), Mode::Html, 5);
        assert_eq!(parts[1], format!("{short}bbbb</i>"));
    }

    #[test]
    fn a_word_cut_into_many_parts_keeps_every_char() {
        let word = "é😀x".repeat(1000);
        let parts = split(&word, Mode::Text, 7);
        assert_eq!(parts.concat(), word);
        assert!(parts.iter().all(|p| p.chars().count() <= 7));
    }

    #[test]
    fn line_breaks_do_not_start_or_end_a_part() {
        let parts = split("one two<br><br>three four", Mode::Html, 8);
        assert_eq!(parts, ["one two", "three ", "four"]);
    }
}
