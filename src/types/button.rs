//! Inline buttons (§10.11): the wire shape and a validating builder.
//!
//! ```
//! use trueconf_bot::types::button::{Button, InlineKeyboard};
//! use trueconf_bot::types::ButtonStyle;
//!
//! let kb = InlineKeyboard::builder()
//!     .row([
//!         Button::command("Yes", "/confirm").custom_data("ticket=4711").style(ButtonStyle::Success),
//!         Button::command("No", "/cancel").style(ButtonStyle::Danger),
//!     ])
//!     .row([Button::url("https://helpdesk.example.com/t/4711").label("Open ticket")])
//!     .build()?;
//! assert_eq!(kb.len(), 3);
//! # Ok::<(), trueconf_bot::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use super::enums::{ButtonStyle, ButtonType};
use crate::error::{Error, Result};

/// At most this many rows.
pub const MAX_ROWS: usize = 8;
/// At most this many buttons per row.
pub const MAX_ROW_WIDTH: usize = 8;
/// At most this many buttons in total.
pub const MAX_BUTTONS: usize = 64;
/// URL schemes a `url` button may use.
pub const URL_SCHEMES: [&str; 4] = ["http", "https", "mailto", "trueconf"];

/// One inline button, exactly as on the wire. Unset keys are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Button {
    /// What the button does; follows from which action field is set.
    #[serde(rename = "type")]
    pub kind: ButtonType,
    /// Caption, 1–32 characters; optional only for `url` buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `command`: the command sent back to the bot (1–255 ASCII characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `command`: opaque data echoed in the command event (1–4096 ASCII characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    /// `command`: ask the server for a `commandId` so the bot can `answerCommand`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_reply: Option<bool>,
    /// `command`: the TrueConf ID the command is addressed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `url`: the link (8–8095 ASCII characters, http/https/mailto/trueconf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `message`: the text the user's client sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `message`: put the text in the input box instead of sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<bool>,
    /// `copy`: the text copied to the clipboard (1–4095 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Button id, echoed as `commandSource.buttonId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ButtonStyle>,
}

impl Button {
    fn new(kind: ButtonType, label: Option<String>) -> Self {
        Button {
            kind,
            label,
            command: None,
            custom_data: None,
            wait_reply: None,
            to: None,
            url: None,
            message: None,
            draft: None,
            data: None,
            id: None,
            style: None,
        }
    }

    /// A button that sends `command` back to the bot as a `command` event.
    pub fn command(label: impl Into<String>, command: impl Into<String>) -> Self {
        Button {
            command: Some(command.into()),
            ..Self::new(ButtonType::Command, Some(label.into()))
        }
    }

    /// A button that opens `url`; its label defaults to the URL (set one with
    /// [`Button::label`]).
    pub fn url(url: impl Into<String>) -> Self {
        Button {
            url: Some(url.into()),
            ..Self::new(ButtonType::Url, None)
        }
    }

    /// A button whose press makes the user's client send `text` to the chat.
    pub fn message(label: impl Into<String>, text: impl Into<String>) -> Self {
        Button {
            message: Some(text.into()),
            ..Self::new(ButtonType::Message, Some(label.into()))
        }
    }

    /// A button that copies `data` to the user's clipboard.
    pub fn copy(label: impl Into<String>, data: impl Into<String>) -> Self {
        Button {
            data: Some(data.into()),
            ..Self::new(ButtonType::Copy, Some(label.into()))
        }
    }

    /// A button that shares the message (declared by the protocol; not produced by the
    /// official client).
    pub fn share(label: impl Into<String>) -> Self {
        Self::new(ButtonType::Share, Some(label.into()))
    }

    /// Sets the caption.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the button id (echoed as `commandSource.buttonId`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the style.
    pub fn style(mut self, style: ButtonStyle) -> Self {
        self.style = Some(style);
        self
    }

    /// `command` buttons: opaque data echoed in the command event.
    pub fn custom_data(mut self, data: impl Into<String>) -> Self {
        self.custom_data = Some(data.into());
        self
    }

    /// `command` buttons: ask for a `commandId` to answer with `answerCommand`.
    pub fn wait_reply(mut self, wait: bool) -> Self {
        self.wait_reply = wait.then_some(true);
        self
    }

    /// `command` buttons: address the command to another TrueConf ID.
    pub fn to(mut self, user_id: impl Into<String>) -> Self {
        self.to = Some(user_id.into());
        self
    }

    /// `message` buttons: draft the text instead of sending it.
    pub fn draft(mut self, draft: bool) -> Self {
        self.draft = draft.then_some(true);
        self
    }

    /// Completes a bare login in `to` with `@domain`, as the official client does.
    pub fn complete_recipient(&mut self, domain: &str) {
        if let Some(to) = &mut self.to
            && !to.contains('@')
            && !to.is_empty()
        {
            to.push('@');
            to.push_str(domain);
        }
    }

    /// Checks the button against the official client's rules.
    pub fn validate(&self) -> Result<()> {
        let actions = [
            (ButtonType::Command, self.command.is_some()),
            (ButtonType::Url, self.url.is_some()),
            (ButtonType::Message, self.message.is_some()),
            (ButtonType::Copy, self.data.is_some()),
        ];
        let set: Vec<&str> = actions
            .iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k.as_str())
            .collect();
        let share = self.kind == ButtonType::Share && set.is_empty();
        if !share {
            if set.len() != 1 {
                return Err(Error::invalid(
                    "button",
                    format!(
                        "exactly one action (command, url, message, data) must be set; got: {}",
                        if set.is_empty() {
                            "none".to_owned()
                        } else {
                            set.join(", ")
                        }
                    ),
                ));
            }
            if set[0] != self.kind.as_str() {
                return Err(Error::invalid(
                    "button.type",
                    format!(
                        "type {:?} does not match the action {:?}",
                        self.kind.as_str(),
                        set[0]
                    ),
                ));
            }
        }
        match &self.label {
            None if self.kind != ButtonType::Url => {
                return Err(Error::invalid(
                    "button.label",
                    format!("required for a {:?} button", self.kind.as_str()),
                ));
            }
            Some(l) if !(1..=32).contains(&l.chars().count()) => {
                return Err(Error::invalid(
                    "button.label",
                    format!(
                        "must be 1–32 characters; got {} in {l:?}",
                        l.chars().count()
                    ),
                ));
            }
            _ => {}
        }
        if self.kind != ButtonType::Command {
            for (field, present) in [
                ("button.customData", self.custom_data.is_some()),
                ("button.waitReply", self.wait_reply == Some(true)),
                ("button.to", self.to.is_some()),
            ] {
                if present {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "only valid on a command button, not {:?}",
                            self.kind.as_str()
                        ),
                    ));
                }
            }
        }
        if self.draft == Some(true) && self.kind != ButtonType::Message {
            return Err(Error::invalid(
                "button.draft",
                format!(
                    "only valid on a message button, not {:?}",
                    self.kind.as_str()
                ),
            ));
        }
        if let Some(c) = &self.command {
            ascii_len("button.command", c, 1, 255)?;
        }
        if self.to.as_deref() == Some("") {
            return Err(Error::invalid("button.to", "must not be empty"));
        }
        if let Some(d) = &self.custom_data {
            ascii_len("button.customData", d, 1, 4096)?;
        }
        if let Some(u) = &self.url {
            ascii_len("button.url", u, 8, 8095)?;
            let scheme = u.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
            if !scheme.as_deref().is_some_and(|s| URL_SCHEMES.contains(&s)) {
                return Err(Error::invalid(
                    "button.url",
                    format!(
                        "scheme must be one of {}; got {u:?}",
                        URL_SCHEMES.join(", ")
                    ),
                ));
            }
        }
        if let Some(d) = &self.data {
            let n = d.chars().count();
            if !(1..=4095).contains(&n) {
                return Err(Error::invalid(
                    "button.data",
                    format!("must be 1–4095 characters; got {n}"),
                ));
            }
        }
        Ok(())
    }
}

fn ascii_len(field: &'static str, value: &str, min: usize, max: usize) -> Result<()> {
    if !value.is_ascii() {
        return Err(Error::invalid(
            field,
            format!("must be ASCII only; got {value:?}"),
        ));
    }
    if !(min..=max).contains(&value.len()) {
        let shown: String = value.chars().take(40).collect();
        return Err(Error::invalid(
            field,
            format!(
                "must be {min}–{max} characters; got {} ({shown:?}…)",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// An inline keyboard: rows of buttons (`content.buttons`).
///
/// ```
/// use trueconf_bot::types::{Button, InlineKeyboard};
///
/// let keyboard = InlineKeyboard::builder()
///     .row([
///         Button::command("Approve", "/approve").custom_data("ticket=42"),
///         Button::command("Reject", "/reject").wait_reply(true),
///     ])
///     .button(Button::url("https://example.com/ticket/42").label("Open ticket"))
///     .build()?; // checks the limits and every button
/// assert_eq!(keyboard.len(), 3);
/// // send it with `bot.send_message(chat, text).buttons(keyboard)`
/// # Ok::<(), trueconf_bot::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InlineKeyboard(pub Vec<Vec<Button>>);

impl InlineKeyboard {
    /// Starts a keyboard.
    pub fn builder() -> KeyboardBuilder {
        KeyboardBuilder::default()
    }

    /// The rows.
    pub fn rows(&self) -> &[Vec<Button>] {
        &self.0
    }

    /// Total number of buttons.
    pub fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    /// Whether there are no buttons.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All buttons, row by row.
    pub fn iter(&self) -> impl Iterator<Item = &Button> {
        self.0.iter().flatten()
    }

    /// Finds a button by its `id`.
    pub fn find(&self, id: &str) -> Option<&Button> {
        self.iter().find(|b| b.id.as_deref() == Some(id))
    }

    /// Completes bare logins in every button's `to` with `@domain`.
    pub fn complete_recipients(&mut self, domain: &str) {
        self.0
            .iter_mut()
            .flatten()
            .for_each(|b| b.complete_recipient(domain));
    }

    /// Checks the size limits and every button.
    pub fn validate(&self) -> Result<()> {
        if self.0.len() > MAX_ROWS {
            return Err(Error::invalid(
                "buttons",
                format!("at most {MAX_ROWS} rows; got {}", self.0.len()),
            ));
        }
        if let Some((i, row)) = self
            .0
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() > MAX_ROW_WIDTH)
        {
            return Err(Error::invalid(
                "buttons",
                format!(
                    "row {i} has {} buttons; at most {MAX_ROW_WIDTH} per row",
                    row.len()
                ),
            ));
        }
        if self.len() > MAX_BUTTONS {
            return Err(Error::invalid(
                "buttons",
                format!("at most {MAX_BUTTONS} buttons; got {}", self.len()),
            ));
        }
        self.iter().try_for_each(Button::validate)
    }
}

/// Builds an [`InlineKeyboard`], checking every rule in [`KeyboardBuilder::build`].
#[derive(Debug, Clone, Default)]
pub struct KeyboardBuilder {
    rows: Vec<Vec<Button>>,
}

impl KeyboardBuilder {
    /// Appends a row.
    pub fn row(mut self, buttons: impl IntoIterator<Item = Button>) -> Self {
        self.rows.push(buttons.into_iter().collect());
        self
    }

    /// Appends a row holding one button.
    pub fn button(self, button: Button) -> Self {
        self.row([button])
    }

    /// Checks the limits and every button, then returns the keyboard.
    pub fn build(self) -> Result<InlineKeyboard> {
        let kb = InlineKeyboard(self.rows);
        kb.validate()?;
        Ok(kb)
    }
}
