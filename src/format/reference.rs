//! Slow, plainly written reference versions of the scanning functions: the oracle the linear
//! ones are tested against (`tests/format.rs`, on short random texts). Not part of the API.
//!
//! Tokens come from searches that start from scratch every time, one token per construct
//! (`Tokens::forgetful`: no remembered answers, no runs of `[` or `<` taken as one token);
//! `split_text` and the mention search are the versions from before they were made linear
//! (issue 21 item 4), kept as they were. Quadratic on hostile texts: tests only.

use super::scan::{self, Kind, Mark, Mode, Tok, Tokens};
use super::{html, markdown, mention};
use crate::types::ParseMode;

/// [`super::visible_len`], searching from scratch for every token.
pub fn visible_len(text: &str, mode: &ParseMode) -> usize {
    match Mode::from(mode) {
        Mode::Text => text.chars().count(),
        m => Tokens::forgetful(text, m).map(|t| t.vis).sum(),
    }
}

/// [`super::visible_text`], searching from scratch for every token.
pub fn visible_text(text: &str, mode: &ParseMode) -> String {
    let m = Mode::from(mode);
    if m == Mode::Text {
        return text.to_owned();
    }
    let mut out = String::new();
    for t in Tokens::forgetful(text, m) {
        scan::push_visible(&mut out, text, &t, m);
    }
    out
}

/// [`super::mentioned_ids`], searching back for the tag of every `href=`.
pub fn mentioned_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in targets(text) {
        if !ids.iter().any(|x| x == t.id) {
            ids.push(t.id.to_owned());
        }
    }
    ids
}

/// [`super::mentions`], searching back for the tag of every `href=`.
pub fn mentions(text: &str, bot_id: &str) -> bool {
    if mention::is_all_mention(text) {
        return true;
    }
    let bot = bot_id.split_once('/').map_or(bot_id, |(id, _)| id);
    let low = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
    targets(text).any(|t| low(t.id) == low(bot))
}

/// [`super::split_text`] as it was: re-walks a token from its start for every cut in it and
/// re-opens every open tag in every part.
pub fn split_text(text: &str, mode: &ParseMode, limit: usize) -> Vec<String> {
    let mode = Mode::from(mode);
    let limit = limit.max(1);
    if text.is_empty() {
        return Vec::new();
    }
    let toks: Vec<Tok> = Tokens::forgetful(text, mode).collect();
    if toks.iter().map(|t| t.vis).sum::<usize>() <= limit {
        return vec![text.to_owned()];
    }
    let cuts = plan(&toks, limit);
    emit(text, &toks, &cuts, mode)
}

struct Target<'a> {
    id: &'a str,
}

/// A cut position: before visible char `off` of token `tok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    tok: usize,
    off: usize,
}

fn targets(text: &str) -> impl Iterator<Item = Target<'_>> {
    let mut from = 0;
    let html = std::iter::from_fn(move || {
        loop {
            let k = from + text.get(from..)?.find(mention::SCHEME)?;
            from = k + mention::SCHEME.len();
            let Some(b) = text[..k]
                .strip_suffix(['"', '\''])
                .and_then(|b| b.strip_suffix("href="))
            else {
                continue;
            };
            // Escaped text such as `&lt;a href="trueconf:x"&gt;` is not a link.
            let in_a_tag = b.rfind('<').is_some_and(|lt| {
                let tag = &b[lt..];
                !tag.contains('>')
                    && tag.len() > 2
                    && tag.as_bytes()[1].eq_ignore_ascii_case(&b'a')
                    && tag[2..].starts_with(char::is_whitespace)
            });
            if let Some((id, end)) = mention::target_at(text, k, &['"', '\'']).filter(|_| in_a_tag)
            {
                from = end;
                return Some(Target { id });
            }
        }
    });
    let md = Tokens::forgetful(text, Mode::Markdown)
        .filter(|t| t.kind == scan::Kind::Link)
        .filter_map(|t| {
            let (_, inner, _) = scan::md_link_parts(text, t.start, &mut scan::Memo::default())?;
            let at = t.start + inner.len() + 3;
            let (id, end) = mention::target_at(text, at, &[')'])?;
            (end == t.end).then_some(Target { id })
        });
    html.chain(md)
}

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

fn plan(toks: &[Tok], limit: usize) -> Vec<Pos> {
    let mut cuts = Vec::new();
    let mut p = Pos { tok: 0, off: 0 };
    // A break in the second half of a part is good enough; earlier ones make tiny parts.
    let half = limit.div_ceil(2);
    loop {
        let mut used = 0;
        let mut q = p;
        let mut cands: [Option<(Pos, usize)>; 3] = [None; 3];
        let mut breaks = 0;
        let cut = loop {
            let Some(t) = toks.get(q.tok) else {
                break None;
            };
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
                    break Some(q);
                }
                let take = rem.min(limit);
                break Some(if take == rem {
                    next
                } else {
                    Pos {
                        tok: q.tok,
                        off: q.off + take,
                    }
                });
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
            break Some(pick.unwrap_or(if splittable(t) && room > 0 {
                inside
            } else if used > 0 {
                q
            } else {
                next
            }));
        };
        let Some(mut c) = cut else { break };
        if c.off == 0 {
            // Closing tags and line breaks right after the cut belong to the part they end.
            while toks
                .get(c.tok)
                .is_some_and(|t| matches!(t.kind, Kind::Close(_) | Kind::Br | Kind::Other))
            {
                c.tok += 1;
            }
            if toks[c.tok..].iter().all(|t| t.vis == 0) {
                break;
            }
        }
        cuts.push(c);
        p = c;
    }
    cuts
}

fn char_slice(s: &str, from: usize, to: usize) -> &str {
    let at = |n: usize| s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    &s[at(from)..at(to)]
}

fn apply(stack: &mut Vec<(Mark, usize)>, t: &Tok, i: usize, slice: &str) {
    let remove = |stack: &mut Vec<(Mark, usize)>, m: Mark| {
        stack
            .iter()
            .rposition(|(x, _)| *x == m)
            .map(|k| stack.remove(k))
    };
    match t.kind {
        Kind::Open(m) => stack.push((m, i)),
        Kind::Close(m) => {
            remove(stack, m);
        }
        // The guard removes an open marker of the same kind; only when none was open, push.
        Kind::Toggle(m) if remove(stack, m).is_none() => stack.push((m, i)),
        Kind::QuoteStart if !stack.iter().any(|(m, _)| *m == Mark::Quote) => {
            stack.push((Mark::Quote, i));
        }
        Kind::Space {
            ends_quote: true, ..
        } if slice.contains('\n') => {
            remove(stack, Mark::Quote);
        }
        _ => {}
    }
}

fn emit(text: &str, toks: &[Tok], cuts: &[Pos], mode: Mode) -> Vec<String> {
    let n = toks.len();
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(Pos { tok: 0, off: 0 });
    bounds.extend_from_slice(cuts);
    bounds.push(Pos { tok: n, off: 0 });
    let last = bounds.len() - 2;
    let mut stack: Vec<(Mark, usize)> = Vec::new();
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    let mut lit_lt = Vec::new();
    for (k, w) in bounds.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let mut first = a.tok;
        let mut stop = if b.off > 0 { b.tok + 1 } else { b.tok };
        // A part neither starts nor ends with a bare line break.
        if k > 0 && a.off == 0 {
            while first < stop && toks[first].kind == Kind::Br {
                first += 1;
            }
        }
        if k < last && b.off == 0 {
            while stop > first && toks[stop - 1].kind == Kind::Br {
                stop -= 1;
            }
        }
        let raw_len = match (
            toks.get(first),
            stop.checked_sub(1).and_then(|l| toks.get(l)),
        ) {
            (Some(f), Some(l)) if stop > first => l.end - f.start,
            _ => 0,
        };
        let mut out = String::with_capacity(raw_len + 32);
        let lead_quote = a.off == 0 && toks.get(first).is_some_and(|t| t.kind == Kind::QuoteStart);
        // `>` only quotes at the very start of a line, so it goes before the other openers.
        if lead_quote || stack.iter().any(|(m, _)| *m == Mark::Quote) {
            out.push('>');
        }
        for (m, i) in &stack {
            match m {
                Mark::Tag(_) => out.push_str(&text[toks[*i].start..toks[*i].end]),
                Mark::Md(s) => out.push_str(s),
                Mark::Quote => {}
            }
        }
        let body_start = out.len();
        lit_lt.clear();
        for (i, t) in toks.iter().enumerate().take(stop).skip(first) {
            let from = if i == a.tok { a.off } else { 0 };
            let to = if i == b.tok && b.off > 0 {
                b.off
            } else {
                t.vis
            };
            let raw = &text[t.start..t.end];
            let slice = match t.kind {
                Kind::Word | Kind::Space { .. } | Kind::Lit => char_slice(raw, from, to),
                _ => raw,
            };
            if i == first && lead_quote {
                apply(&mut stack, t, i, slice);
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
                    lit_lt.push(out.len());
                    out.push_str(slice);
                }
                Kind::Link if from > 0 || to < t.vis => {
                    let mut shown = String::new();
                    scan::push_visible(&mut shown, text, t, mode);
                    let piece = char_slice(&shown, from, to);
                    match mode {
                        Mode::Html => out.push_str(&html::escape(piece)),
                        _ => out.push_str(&markdown::escape(piece)),
                    }
                }
                _ => out.push_str(slice),
            }
            apply(&mut stack, t, i, slice);
        }
        let suffix_start = out.len();
        for (m, _) in stack.iter().rev() {
            match m {
                Mark::Tag(name) => {
                    out.push_str("</");
                    out.push_str(name);
                    out.push('>');
                }
                Mark::Md(s) => out.push_str(s),
                Mark::Quote => {}
            }
        }
        if suffix_start < out.len() && !lit_lt.is_empty() {
            // A bare `<` with no `>` after it would swallow the closing tags into a new tag.
            let last_gt = out[..suffix_start].rfind('>');
            for &at in lit_lt.iter().rev() {
                if last_gt.is_none_or(|g| g < at) {
                    out.replace_range(at..at + 1, "&lt;");
                }
            }
        }
        parts.push(out);
    }
    parts
}
