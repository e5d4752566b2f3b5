//! Shared contacts: a vCard file (`text/vcard`) or a TrueConf profile link, read into a
//! [`Contact`] with the official client's fields.
//!
//! The parser covers what phones and desktop clients send (vCard 2.1, 3.0 and 4.0): folded
//! lines, property groups (`item1.TEL`), parameters, backslash escapes, and vCard 2.1's
//! quoted-printable values with soft line breaks. It reads the first card of a file and only
//! the fields a contact needs (`N`, `FN`, `TEL`, `EMAIL`); malformed input is an
//! [`Error::Vcard`](crate::Error::Vcard), never a panic.

use crate::error::VcardError;

/// The largest vCard read: a card with an embedded photo is a few hundred KiB.
pub const MAX_VCARD_SIZE: u64 = 1 << 20;

/// A shared contact (the official client's `Contact`).
///
/// From a vCard: the structured name, the first phone number and the raw text. From a
/// TrueConf profile link: the user id and the display name (in `first_name`, never split:
/// name order differs between installations).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// The first `TEL` of a vCard (a `tel:` prefix removed); `None` for TrueConf contacts.
    pub phone_number: Option<String>,
    /// Given name from `N` (or the whole `FN` when there is no `N`); for TrueConf contacts
    /// the whole display name.
    pub first_name: String,
    /// Family name from `N`.
    pub last_name: Option<String>,
    /// The formatted name (`FN`), when the vCard has one.
    pub full_name: Option<String>,
    /// Every `TEL`, in order.
    pub phones: Vec<String>,
    /// Every `EMAIL`, in order.
    pub emails: Vec<String>,
    /// The TrueConf id of a profile-link contact.
    pub user_id: Option<String>,
    /// The vCard text as received.
    pub vcard: Option<String>,
}

impl Contact {
    /// A TrueConf contact (a profile link) with its display name.
    pub fn trueconf(user_id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Contact {
            user_id: Some(user_id.into()),
            first_name: display_name.into(),
            ..Contact::default()
        }
    }

    /// Reads a vCard file's bytes (UTF-8, at most [`MAX_VCARD_SIZE`]).
    pub fn from_vcard_bytes(bytes: &[u8]) -> Result<Self, VcardError> {
        if bytes.len() as u64 > MAX_VCARD_SIZE {
            return Err(VcardError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_VCARD_SIZE,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| VcardError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        Contact::from_vcard(text)
    }

    /// Reads the first card of a vCard text.
    pub fn from_vcard(text: &str) -> Result<Self, VcardError> {
        let lines = unfold(text.trim_start_matches('\u{feff}'));
        let begin = lines
            .iter()
            .position(|(_, l)| l.trim().eq_ignore_ascii_case("BEGIN:VCARD"))
            .ok_or(VcardError::NotAVcard)?;
        let mut contact = Contact {
            vcard: Some(text.to_owned()),
            ..Contact::default()
        };
        let mut name: Option<(String, Option<String>)> = None;
        for (number, line) in &lines[begin + 1..] {
            if line.trim().is_empty() {
                continue;
            }
            if line.trim().eq_ignore_ascii_case("END:VCARD") {
                if let Some((first, last)) = name {
                    contact.first_name = first;
                    contact.last_name = last;
                } else if let Some(full) = &contact.full_name {
                    contact.first_name = full.clone();
                }
                contact.phone_number = contact.phones.first().cloned();
                return Ok(contact);
            }
            let prop = Property::parse(line).ok_or_else(|| VcardError::BadLine {
                line: *number,
                excerpt: line.chars().take(40).collect(),
            })?;
            match prop.name.as_str() {
                "N" if name.is_none() => {
                    let parts = split_unescaped(prop.raw);
                    let last = prop.decode(parts.first().copied().unwrap_or_default());
                    let first = prop.decode(parts.get(1).copied().unwrap_or_default());
                    name = Some((first, (!last.is_empty()).then_some(last)));
                }
                "FN" if contact.full_name.is_none() => {
                    let full = prop.decode(prop.raw);
                    contact.full_name = (!full.trim().is_empty()).then_some(full);
                }
                "TEL" => {
                    let tel = prop.decode(prop.raw);
                    let tel = tel.trim();
                    let tel = tel
                        .get(..4)
                        .filter(|p| p.eq_ignore_ascii_case("tel:"))
                        .map_or(tel, |_| &tel[4..]);
                    if !tel.is_empty() {
                        contact.phones.push(tel.to_owned());
                    }
                }
                "EMAIL" => {
                    let email = prop.decode(prop.raw).trim().to_owned();
                    if !email.is_empty() {
                        contact.emails.push(email);
                    }
                }
                _ => {}
            }
        }
        Err(VcardError::Unterminated)
    }
}

/// Joins folded lines (a line starting with a space or a tab continues the previous one) and
/// quoted-printable soft breaks (a QP value ending in `=`), keeping each logical line's
/// first physical line number.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut soft_break = false;
    for (k, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match out.last_mut() {
            Some((_, prev)) if soft_break => {
                prev.pop(); // the `=` of the soft break
                prev.push_str(line);
            }
            Some((_, prev)) if line.starts_with([' ', '\t']) => prev.push_str(&line[1..]),
            _ => out.push((k + 1, line.to_owned())),
        }
        soft_break = out
            .last()
            .is_some_and(|(_, l)| l.ends_with('=') && is_quoted_printable_line(l));
    }
    out
}

fn is_quoted_printable_line(line: &str) -> bool {
    line.split_once(':').is_some_and(|(head, _)| {
        head.to_ascii_uppercase()
            .split(';')
            .any(|p| p == "QUOTED-PRINTABLE" || p == "ENCODING=QUOTED-PRINTABLE")
    })
}

/// `[group.]NAME[;PARAM[=VALUE]]*:VALUE`.
struct Property<'a> {
    name: String,
    quoted_printable: bool,
    raw: &'a str,
}

impl<'a> Property<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let (head, raw) = line.split_once(':')?;
        let mut params = head.split(';');
        let name = params.next()?.trim();
        let name = name.rsplit_once('.').map_or(name, |(_, n)| n);
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if name.is_empty() || !name.chars().all(valid) {
            return None;
        }
        let quoted_printable = params.any(|p| {
            let p = p.trim().to_ascii_uppercase();
            p == "QUOTED-PRINTABLE" || p == "ENCODING=QUOTED-PRINTABLE"
        });
        Some(Property {
            name: name.to_ascii_uppercase(),
            quoted_printable,
            raw,
        })
    }

    /// Unescapes a (component of a) value, decoding quoted-printable first.
    fn decode(&self, value: &str) -> String {
        let value = if self.quoted_printable {
            decode_quoted_printable(value)
        } else {
            value.to_owned()
        };
        unescape(&value)
    }
}

/// `\\`, `\;`, `\,`, `\n`/`\N`; any other backslash is kept.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(e @ ('\\' | ';' | ',')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `=XX` bytes; invalid sequences are kept as they are. Decoded as UTF-8 (invalid bytes
/// become U+FFFD: other charsets of vCard 2.1 are not converted).
fn decode_quoted_printable(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        let hex = (bytes[k] == b'=')
            .then(|| value.get(k + 1..k + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                k += 3;
            }
            None => {
                out.push(bytes[k]);
                k += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits on `;` not preceded by a backslash escape.
fn split_unescaped(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (k, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ';' => {
                parts.push(&value[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_iphone_vcard_3() {
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.5//EN\r\n\
                    N:Appleseed;John;;;\r\nFN:John Appleseed\r\n\
                    item1.TEL;type=pref:+1 (555) 010-9999\r\nitem1.X-ABLabel:_$!<Mobile>!$_\r\n\
                    TEL;type=HOME;type=VOICE:+1 555 010 0000\r\n\
                    EMAIL;type=INTERNET;type=HOME:john@example.com\r\nEND:VCARD\r\n";
        let c = Contact::from_vcard(card).unwrap();
        assert_eq!(c.first_name, "John");
        assert_eq!(c.last_name.as_deref(), Some("Appleseed"));
        assert_eq!(c.full_name.as_deref(), Some("John Appleseed"));
        assert_eq!(c.phone_number.as_deref(), Some("+1 (555) 010-9999"));
        assert_eq!(c.phones.len(), 2);
        assert_eq!(c.emails, ["john@example.com"]);
        assert_eq!(c.vcard.as_deref(), Some(card));
    }

    #[test]
    fn reads_a_vcard_4_with_tel_uri_and_folding() {
        let card = "BEGIN:VCARD\nVERSION:4.0\nFN:Dr. Anna-Maria\n  Schmidt\n\
                    N:Schmidt;Anna-Maria;;Dr.;\nTEL;VALUE=uri;TYPE=\"voice,cell\":tel:+49-170-555\n\
                    NOTE:semi\\;colon\\, comma\\nnewline\nEND:VCARD";
        let c = Contact::from_vcard(card).unwrap();
        assert_eq!(c.full_name.as_deref(), Some("Dr. Anna-Maria Schmidt"));
        assert_eq!(c.first_name, "Anna-Maria");
        assert_eq!(c.phone_number.as_deref(), Some("+49-170-555"));
    }

    #[test]
    fn reads_an_android_vcard_2_1_quoted_printable() {
        // "Иван Петров" as an Android phone exports it, with a soft line break.
        let card = "BEGIN:VCARD\r\nVERSION:2.1\r\n\
                    N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=9F=D0=B5=D1=82=D1=80=D0=BE=D0=B2;=D0=98=\r\n\
                    =D0=B2=D0=B0=D0=BD;;;\r\nTEL;CELL:+7 900 000-00-00\r\nEND:VCARD\r\n";
        let c = Contact::from_vcard(card).unwrap();
        assert_eq!(c.last_name.as_deref(), Some("Петров"));
        assert_eq!(c.first_name, "Иван");
        assert_eq!(c.phone_number.as_deref(), Some("+7 900 000-00-00"));
    }

    #[test]
    fn fn_only_and_escaped_semicolons() {
        let c = Contact::from_vcard("BEGIN:VCARD\nFN:Help desk\nEND:VCARD").unwrap();
        assert_eq!(c.first_name, "Help desk");
        assert_eq!(c.last_name, None);
        assert_eq!(c.phone_number, None);
        let c = Contact::from_vcard("BEGIN:VCARD\nN:Smith\\;Jones;Ann\nEND:VCARD").unwrap();
        assert_eq!(c.last_name.as_deref(), Some("Smith;Jones"));
        assert_eq!(c.first_name, "Ann");
    }

    proptest::proptest! {
        /// Any text, inside a card or not, gives a contact or a typed error, never a panic;
        /// a parsed card keeps the text it came from.
        #[test]
        fn arbitrary_cards_never_panic(
            lines in proptest::collection::vec("[A-Za-z0-9;=:.,\\\\ \t\u{e9}\u{416}-]{0,24}", 0..12),
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let text = format!("BEGIN:VCARD\r\n{}\r\nEND:VCARD", lines.join("\r\n"));
            if let Ok(c) = Contact::from_vcard(&text) {
                proptest::prop_assert_eq!(c.vcard.as_deref(), Some(text.as_str()));
            }
            let _ = Contact::from_vcard(&lines.join("\n"));
            let _ = Contact::from_vcard_bytes(&bytes);
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(Contact::from_vcard("hello"), Err(VcardError::NotAVcard));
        assert_eq!(
            Contact::from_vcard("BEGIN:VCARD\nFN:x\n"),
            Err(VcardError::Unterminated)
        );
        assert!(matches!(
            Contact::from_vcard("BEGIN:VCARD\nthis is no property\nEND:VCARD"),
            Err(VcardError::BadLine { line: 2, .. })
        ));
        assert!(matches!(
            Contact::from_vcard_bytes(b"BEGIN:VCARD\nFN:\xff\nEND:VCARD"),
            Err(VcardError::NotUtf8 { valid_up_to: 15 })
        ));
        let huge = vec![b'a'; MAX_VCARD_SIZE as usize + 1];
        assert!(matches!(
            Contact::from_vcard_bytes(&huge),
            Err(VcardError::TooLarge { .. })
        ));
        // Nothing panics on hostile bytes: truncated escapes and QP.
        for s in [
            "BEGIN:VCARD\nN;QUOTED-PRINTABLE:=\nEND:VCARD",
            "BEGIN:VCARD\nN:\\\nEND:VCARD",
            "BEGIN:VCARD\nN;ENCODING=QUOTED-PRINTABLE:=Z\u{e9}\nEND:VCARD",
        ] {
            let _ = Contact::from_vcard(s);
        }
    }
}
