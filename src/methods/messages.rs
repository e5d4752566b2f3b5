//! Message methods (§8.2).

use serde::{Deserialize, Serialize};

use super::{Empty, MessageSent, Request, check_text, request};
use crate::error::{Error, Result};
use crate::types::message::TextContent;
use crate::types::{
    ActivityType, AnswerType, CommandLevel, CommandStatus, CommandVisibility, InlineKeyboard,
    Message, ParseMode,
};

/// `sendMessage`: posts a text message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    /// Target chat.
    pub chat_id: String,
    /// Message replied to; always sent (`null` when not replying), as the official client does.
    #[serde(default)]
    pub reply_message_id: Option<String>,
    /// Text, parse mode and buttons.
    pub content: TextContent,
    /// A fragment of the replied message shown above the reply ([`SendMessage::quote`]);
    /// merged into the text when the request is encoded, so it never goes out as a field.
    #[serde(skip)]
    pub quote: Option<String>,
}

impl Serialize for SendMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            chat_id: &'a str,
            reply_message_id: &'a Option<String>,
            content: &'a TextContent,
        }
        let quoted = self.quote.as_deref().map(|q| quoted(&self.content, q));
        Wire {
            chat_id: &self.chat_id,
            reply_message_id: &self.reply_message_id,
            content: quoted.as_ref().unwrap_or(&self.content),
        }
        .serialize(s)
    }
}

/// The content with `quote` in front, as the official client builds it: Markdown gets a
/// `>` block; HTML and plain text an HTML `<quote class="reply">` (plain text is escaped and
/// the parse mode becomes HTML). The quote is always escaped, so it cannot add markup.
fn quoted(content: &TextContent, quote: &str) -> TextContent {
    let (text, parse_mode) = match content.parse_mode {
        ParseMode::Markdown => (
            crate::format::markdown::quote_reply(quote, &content.text),
            ParseMode::Markdown,
        ),
        ParseMode::Html => (
            crate::format::html::quote_reply(quote, &content.text),
            ParseMode::Html,
        ),
        _ => (
            crate::format::html::quote_reply_text(quote, &content.text),
            ParseMode::Html,
        ),
    };
    TextContent {
        text,
        parse_mode,
        buttons: content.buttons.clone(),
    }
}

impl SendMessage {
    /// A plain-text message to `chat_id`.
    pub fn new(chat_id: impl Into<String>, text: impl Into<String>) -> Self {
        SendMessage {
            chat_id: chat_id.into(),
            reply_message_id: None,
            content: TextContent {
                text: text.into(),
                parse_mode: ParseMode::Text,
                buttons: None,
            },
            quote: None,
        }
    }

    /// Shows `fragment` (a part of the replied message) as a quote above the reply, as the
    /// official client's `quote=` argument. Needs [`SendMessage::reply_to`]; the quote is
    /// built in whatever parse mode the message has when it is sent (see the
    /// [`format::html::quote_reply`](crate::format::html::quote_reply) family), a plain-text
    /// message becoming HTML.
    pub fn quote(mut self, fragment: impl Into<String>) -> Self {
        self.quote = Some(fragment.into());
        self
    }

    /// Replies to message `message_id`.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_message_id = Some(message_id.into());
        self
    }

    /// Sets how the text is rendered.
    pub fn parse_mode(mut self, mode: ParseMode) -> Self {
        self.content.parse_mode = mode;
        self
    }

    /// Attaches an inline keyboard.
    pub fn buttons(mut self, keyboard: InlineKeyboard) -> Self {
        self.content.buttons = Some(keyboard);
        self
    }
}

fn check_content(content: &TextContent) -> Result<()> {
    check_text("text", &content.text, &content.parse_mode)?;
    content
        .buttons
        .as_ref()
        .map_or(Ok(()), InlineKeyboard::validate)
}

/// Button recipients given as bare logins get the server's domain.
fn complete_content(content: &mut TextContent, domain: &str) {
    if let Some(kb) = &mut content.buttons {
        kb.complete_recipients(domain);
    }
}

impl Request for SendMessage {
    const METHOD: &'static str = "sendMessage";
    type Response = MessageSent;

    fn validate(&self) -> Result<()> {
        let Some(quote) = &self.quote else {
            return check_content(&self.content);
        };
        if quote.trim().is_empty() {
            return Err(Error::invalid(
                "quote",
                "must not be empty or whitespace only",
            ));
        }
        if self.reply_message_id.is_none() {
            return Err(Error::invalid(
                "quote",
                "a quote needs the message it quotes: set `reply_to`",
            ));
        }
        check_content(&quoted(&self.content, quote))
    }

    fn complete_user_ids(&mut self, domain: &str) {
        complete_content(&mut self.content, domain);
    }
}

/// `editMessage`: replaces a message's text (and keyboard: leaving buttons out removes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    /// The message to edit.
    pub message_id: String,
    /// The new content.
    pub content: TextContent,
}

impl EditMessage {
    /// Replaces the text of `message_id`.
    pub fn new(message_id: impl Into<String>, text: impl Into<String>) -> Self {
        EditMessage {
            message_id: message_id.into(),
            content: TextContent {
                text: text.into(),
                parse_mode: ParseMode::Text,
                buttons: None,
            },
        }
    }

    /// Sets how the text is rendered.
    pub fn parse_mode(mut self, mode: ParseMode) -> Self {
        self.content.parse_mode = mode;
        self
    }

    /// Sets the inline keyboard (the server drops the old one otherwise).
    pub fn buttons(mut self, keyboard: InlineKeyboard) -> Self {
        self.content.buttons = Some(keyboard);
        self
    }
}

/// `{messageId, timestamp}`: a message was edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEdit {
    /// Message id.
    pub message_id: String,
    /// Edit time, ms.
    pub timestamp: u64,
}

impl Request for EditMessage {
    const METHOD: &'static str = "editMessage";
    type Response = MessageEdit;

    fn validate(&self) -> Result<()> {
        check_content(&self.content)
    }

    fn complete_user_ids(&mut self, domain: &str) {
        complete_content(&mut self.content, domain);
    }
}

/// `removeMessage`: deletes a message (`forAll` is always sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveMessage {
    /// The message.
    pub message_id: String,
    /// Delete for everyone (`true`) or only for the bot (`false`, the default).
    pub for_all: bool,
}

impl RemoveMessage {
    /// Deletes `message_id` for the bot only.
    pub fn new(message_id: impl Into<String>) -> Self {
        RemoveMessage {
            message_id: message_id.into(),
            for_all: false,
        }
    }

    /// Deletes for everyone.
    pub fn for_all(mut self, for_all: bool) -> Self {
        self.for_all = for_all;
        self
    }
}

request!(RemoveMessage, "removeMessage", Empty);

/// `forwardMessage`: forwards a message to another chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardMessage {
    /// The message to forward.
    pub message_id: String,
    /// Destination chat.
    pub chat_id: String,
}

impl ForwardMessage {
    /// Forwards `message_id` to `chat_id`.
    pub fn new(chat_id: impl Into<String>, message_id: impl Into<String>) -> Self {
        ForwardMessage {
            message_id: message_id.into(),
            chat_id: chat_id.into(),
        }
    }
}

request!(ForwardMessage, "forwardMessage", MessageSent);

/// `getMessageById`: fetches one message envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMessageById {
    /// The message.
    pub message_id: String,
}

impl GetMessageById {
    /// Fetches `message_id`.
    pub fn new(message_id: impl Into<String>) -> Self {
        GetMessageById {
            message_id: message_id.into(),
        }
    }
}

request!(GetMessageById, "getMessageById", Message, idempotent);

/// `getChatHistory`: a page of messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetChatHistory {
    /// The chat.
    pub chat_id: String,
    /// How many messages (≥ 1).
    pub count: u32,
    /// Start point; omitted when unset (= newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_message_id: Option<String>,
}

impl GetChatHistory {
    /// The newest `count` messages of `chat_id`.
    pub fn new(chat_id: impl Into<String>, count: u32) -> Self {
        GetChatHistory {
            chat_id: chat_id.into(),
            count,
            from_message_id: None,
        }
    }

    /// Starts at `message_id`.
    pub fn from_message(mut self, message_id: impl Into<String>) -> Self {
        self.from_message_id = Some(message_id.into());
        self
    }
}

/// `getChatHistory` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatHistory {
    /// Chat id.
    pub chat_id: String,
    /// Number of messages returned.
    #[serde(default)]
    pub count: u64,
    /// The messages (user and system envelopes).
    #[serde(default)]
    pub messages: Vec<Message>,
}

impl Request for GetChatHistory {
    const METHOD: &'static str = "getChatHistory";
    const IDEMPOTENT: bool = true;
    type Response = ChatHistory;

    fn validate(&self) -> Result<()> {
        if self.count < 1 {
            return Err(Error::invalid("count", "must be at least 1; got 0"));
        }
        Ok(())
    }
}

/// `sendChatActivity`: shows "typing…" (or another indicator) for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendChatActivity {
    /// The chat.
    pub chat_id: String,
    /// Which indicator.
    pub activity_type: ActivityType,
}

impl SendChatActivity {
    /// Shows `activity` in `chat_id`.
    pub fn new(chat_id: impl Into<String>, activity: ActivityType) -> Self {
        SendChatActivity {
            chat_id: chat_id.into(),
            activity_type: activity,
        }
    }
}

/// `sendChatActivity` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatActivity {
    /// Chat id.
    pub chat_id: String,
    /// The indicator.
    pub activity_type: ActivityType,
    /// Re-send after this many milliseconds to keep the indicator visible.
    #[serde(default)]
    pub retry_after: u64,
}

request!(SendChatActivity, "sendChatActivity", ChatActivity);

/// `answerCommand`: answers a `command` event that carried a `commandId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerCommand {
    /// From the command event.
    pub command_id: String,
    /// How the command ended.
    pub answer_type: AnswerType,
    /// What to show.
    pub message: CommandAnswer,
}

/// `message` of [`AnswerCommand`]; unset keys are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAnswer {
    /// 1–255 ASCII characters.
    pub text: String,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CommandStatus>,
    /// Display style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<CommandVisibility>,
    /// Severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<CommandLevel>,
}

impl AnswerCommand {
    /// Answers `command_id` with `text`.
    pub fn new(
        command_id: impl Into<String>,
        answer_type: AnswerType,
        text: impl Into<String>,
    ) -> Self {
        AnswerCommand {
            command_id: command_id.into(),
            answer_type,
            message: CommandAnswer {
                text: text.into(),
                status: None,
                visibility: None,
                level: None,
            },
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: CommandStatus) -> Self {
        self.message.status = Some(status);
        self
    }

    /// Sets the display style.
    pub fn visibility(mut self, visibility: CommandVisibility) -> Self {
        self.message.visibility = Some(visibility);
        self
    }

    /// Sets the severity.
    pub fn level(mut self, level: CommandLevel) -> Self {
        self.message.level = Some(level);
        self
    }
}

impl Request for AnswerCommand {
    const METHOD: &'static str = "answerCommand";
    type Response = Empty;

    fn validate(&self) -> Result<()> {
        if self.command_id.is_empty() {
            return Err(Error::invalid("commandId", "must not be empty"));
        }
        let text = &self.message.text;
        if !text.is_ascii() {
            return Err(Error::invalid(
                "text",
                format!("must be ASCII only; got {text:?}"),
            ));
        }
        if !(1..=255).contains(&text.len()) {
            return Err(Error::invalid(
                "text",
                format!("must be 1–255 characters; got {}", text.len()),
            ));
        }
        Ok(())
    }
}
