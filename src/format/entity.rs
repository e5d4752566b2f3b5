//! HTML character references, decoded in one place.
//!
//! Two readers need them: the tokenizer, which counts an entity as the one character a
//! reader sees, and [`html::unescape`](super::html::unescape), which turns received text back
//! into plain text. Both must agree on what an entity is, so the table lives here, below both,
//! instead of in either of them.

use std::borrow::Cow;

const ENTITIES: [(&str, char); 16] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("hellip", '…'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("euro", '€'),
    ("times", '×'),
];

/// An entity at `i` (`&amp;`, `&#39;`, `&#x1F600;`, a few common names): (byte length, char).
pub(crate) fn entity(text: &str, i: usize) -> Option<(usize, char)> {
    let rest = text.get(i + 1..)?;
    let semi = rest.bytes().take(10).position(|b| b == b';')?;
    let body = &rest[..semi];
    let ch = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()?
            }
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => {
                num.parse().ok()?
            }
            _ => return None,
        };
        char::from_u32(code).unwrap_or('\u{fffd}')
    } else {
        ENTITIES.iter().find(|(n, _)| *n == body)?.1
    };
    Some((semi + 2, ch))
}

/// Decodes the entities a TrueConf client produces (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&apos;`, `&nbsp;`, numeric `&#39;`/`&#x27;` and a few common names); anything else is
/// kept verbatim.
pub fn unescape(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find('&') else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let mut i = first;
    while let Some(c) = text[i..].chars().next() {
        match (c == '&').then(|| entity(text, i)).flatten() {
            Some((len, ch)) => {
                out.push(ch);
                i += len;
            }
            None => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_one_char() {
        assert_eq!(entity("&amp;", 0), Some((5, '&')));
        assert_eq!(entity("&#x1F600;", 0), Some((9, '😀')));
        assert_eq!(entity("&#39;", 0), Some((5, '\'')));
        assert_eq!(entity("&amp", 0), None);
        assert_eq!(entity("&#;", 0), None);
    }
}
