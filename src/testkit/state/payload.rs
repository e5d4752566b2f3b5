//! Reading a client's request payload the way a server would: a missing or mistyped field is
//! error 399, an unknown role 312, and text content is held to the protocol's limits.
//!
//! The emulator's value is that it is stricter than the client, so these checks are written
//! from the protocol description, not from what the client happens to send.

use serde_json::{Value, json};

use crate::testkit::wire::{ApiResult, E_BAD_PAYLOAD, E_NO_ROLE, ROLES};

/// One client→server request, as a method handler sees it.
pub(super) struct Request<'a> {
    /// The connection it came in on; events it causes are not echoed back to it.
    pub(super) conn: u64,
    /// The account that connection authenticated as.
    pub(super) login: &'a str,
    pub(super) payload: &'a Value,
}

impl<'a> Request<'a> {
    /// The connection that must not get the events this request causes.
    pub(super) fn except(&self) -> Option<u64> {
        Some(self.conn)
    }

    /// A field that must be present (any type).
    pub(super) fn field(&self, key: &str) -> ApiResult<&'a Value> {
        self.payload.get(key).ok_or(E_BAD_PAYLOAD)
    }

    /// See [`str_field`].
    pub(super) fn str_field(&self, key: &str) -> ApiResult<&'a str> {
        str_field(self.payload, key)
    }

    /// See [`opt_str_field`].
    pub(super) fn opt_str_field(&self, key: &str) -> ApiResult<Option<&'a str>> {
        opt_str_field(self.payload, key)
    }

    /// See [`bool_field`].
    pub(super) fn bool_field(&self, key: &str) -> ApiResult<bool> {
        bool_field(self.payload, key)
    }

    /// See [`u64_field`].
    pub(super) fn u64_field(&self, key: &str) -> ApiResult<u64> {
        u64_field(self.payload, key)
    }
}

/// A string field that must be present.
pub(super) fn str_field<'a>(value: &'a Value, key: &str) -> ApiResult<&'a str> {
    value.get(key).and_then(Value::as_str).ok_or(E_BAD_PAYLOAD)
}

/// A string field that may be absent or `null`.
pub(super) fn opt_str_field<'a>(value: &'a Value, key: &str) -> ApiResult<Option<&'a str>> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(E_BAD_PAYLOAD),
    }
}

/// A boolean field; absent or `null` is `false`.
pub(super) fn bool_field(value: &Value, key: &str) -> ApiResult<bool> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(E_BAD_PAYLOAD),
    }
}

/// A non-negative integer field that must be present.
pub(super) fn u64_field(value: &Value, key: &str) -> ApiResult<u64> {
    value.get(key).and_then(Value::as_u64).ok_or(E_BAD_PAYLOAD)
}

/// A role given by name or by its number.
pub(super) fn parse_role(value: &Value) -> ApiResult<&'static str> {
    match value {
        Value::String(name) => ROLES
            .iter()
            .find(|role| **role == name.as_str())
            .copied()
            .ok_or(E_NO_ROLE),
        Value::Number(number) => number
            .as_u64()
            .and_then(|index| ROLES.get(index as usize))
            .copied()
            .ok_or(E_NO_ROLE),
        _ => Err(E_BAD_PAYLOAD),
    }
}

/// A chat title: 1 to 256 characters.
pub(super) fn check_title(title: &str) -> ApiResult<()> {
    if title.is_empty() || title.chars().count() > 256 {
        return Err(E_BAD_PAYLOAD);
    }
    Ok(())
}

/// `{text, parseMode, buttons?}` checked the way a server would.
pub(super) fn text_content(content: &Value) -> ApiResult<Value> {
    let text = str_field(content, "text")?;
    let mode = str_field(content, "parseMode")?;
    if !matches!(mode, "text" | "markdown" | "html") || text.is_empty() {
        return Err(E_BAD_PAYLOAD);
    }
    if mode == "text" && text.chars().count() > 4096 {
        return Err(E_BAD_PAYLOAD);
    }
    let mut checked = json!({ "text": text, "parseMode": mode });
    if let Some(buttons) = content.get("buttons") {
        check_buttons(buttons)?;
        checked["buttons"] = buttons.clone();
    }
    Ok(checked)
}

/// At most 8 rows of at most 8 buttons, 64 in all, each with the field its type needs.
fn check_buttons(buttons: &Value) -> ApiResult<()> {
    let rows = buttons.as_array().ok_or(E_BAD_PAYLOAD)?;
    let mut total = 0;
    for row in rows {
        let row = row.as_array().ok_or(E_BAD_PAYLOAD)?;
        if row.len() > 8 {
            return Err(E_BAD_PAYLOAD);
        }
        for button in row {
            total += 1;
            let key = match str_field(button, "type")? {
                "command" => "command",
                "url" => "url",
                "message" => "message",
                "copy" => "data",
                _ => return Err(E_BAD_PAYLOAD),
            };
            str_field(button, key)?;
        }
    }
    if rows.len() > 8 || total > 64 {
        return Err(E_BAD_PAYLOAD);
    }
    Ok(())
}
