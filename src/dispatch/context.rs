//! Handler parameters that pair an event with the bot, for the official client's shortcuts
//! (`message.answer(...)`, `message.reply(...)`, …).

use std::ops::Deref;

use super::handler::{Ctx, Deps, ExtractError, FromEvent};
use crate::bot::{Bot, Call};
use crate::methods::{AnswerCommand, EditMessage, ForwardMessage, RemoveMessage, SendMessage};
use crate::types::{AnswerType, CommandEvent, Content, Message};

fn missing(ctx: &Ctx, what: &'static str) -> ExtractError {
    ExtractError::Missing {
        method: ctx.update().method().to_string(),
        what,
    }
}

/// A received message with the bot that received it. Derefs to [`Message`].
///
/// ```no_run
/// use trueconf_bot::dispatch::{HandlerResult, MessageContext};
///
/// async fn echo(msg: MessageContext) -> HandlerResult {
///     if let Some(text) = msg.text() {
///         msg.reply(format!("you said: {text}")).await?;
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MessageContext {
    /// The bot.
    pub bot: Bot,
    /// The message.
    pub message: Message,
    chat_id: String,
}

impl Deref for MessageContext {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.message
    }
}

impl FromEvent for MessageContext {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        let bot = Bot::from_event(ctx)?;
        let message = Message::from_event(ctx)?;
        let chat_id = message
            .chat_id()
            .map(str::to_string)
            .ok_or_else(|| missing(ctx, "chat id"))?;
        Ok(MessageContext {
            bot,
            message,
            chat_id,
        })
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        Bot::check(deps)
    }
}

impl MessageContext {
    /// The chat the message is in.
    pub fn chat(&self) -> &str {
        &self.chat_id
    }

    /// Sends `text` to the same chat (refine with `.parse_mode(..)`, `.buttons(..)`).
    pub fn answer(&self, text: impl Into<String>) -> Call<SendMessage> {
        self.bot.send_message(&self.chat_id, text)
    }

    /// Sends `text` to the same chat as a reply to this message.
    pub fn reply(&self, text: impl Into<String>) -> Call<SendMessage> {
        self.bot
            .reply_message(&self.chat_id, &self.message.message_id, text)
    }

    /// Forwards this message to `chat_id`.
    pub fn forward_to(&self, chat_id: impl Into<String>) -> Call<ForwardMessage> {
        self.bot.forward_message(chat_id, &self.message.message_id)
    }

    /// Sends a copy of this text message (text, parse mode and buttons, without the
    /// "forwarded" mark) to `chat_id`. Other kinds of message cannot be copied: forward them.
    pub fn copy_to(&self, chat_id: impl Into<String>) -> crate::Result<Call<SendMessage>> {
        match &self.message.content {
            Content::Text(t) => {
                let call = self
                    .bot
                    .send_message(chat_id, t.text.clone())
                    .parse_mode(t.parse_mode.clone());
                Ok(match &t.buttons {
                    Some(kb) => call.buttons(kb.clone()),
                    None => call,
                })
            }
            _ => Err(crate::Error::invalid(
                "message",
                format!(
                    "message {} is a {:?}, only text messages can be copied; forward it instead",
                    self.message.message_id,
                    self.message.kind()
                ),
            )),
        }
    }

    /// Replaces the text of this message (the bot's own messages only).
    pub fn edit(&self, text: impl Into<String>) -> Call<EditMessage> {
        self.bot.edit_message(&self.message.message_id, text)
    }

    /// Deletes this message, for everyone when `for_all`.
    pub fn delete(&self, for_all: bool) -> Call<RemoveMessage> {
        self.bot
            .remove_message(&self.message.message_id)
            .for_all(for_all)
    }
}

/// A button press with the bot, for answering it or editing the message that carried the
/// button. Derefs to [`CommandEvent`]; [`ButtonPress`](super::ButtonPress) is the same press
/// as plain data, without the bot ([`ButtonContext::to_press`]).
///
/// A press does not say who pressed: the protocol's `command` event names the message and
/// the button, not the user (in a group anyone who sees the message may press). Put what
/// you need into the button's command or custom data, or use a `waitReply` button and
/// [`ButtonContext::answer`].
///
/// Unlike [`MessageContext::answer`] (a chat message), [`ButtonContext::answer`] answers the
/// press itself (`answerCommand`, as the official client's `CallbackQuery.answer`);
/// [`ButtonContext::send`] posts in the chat, [`ButtonContext::edit_message`] edits the
/// message with the button.
///
/// ```no_run
/// use trueconf_bot::dispatch::{ButtonContext, HandlerResult};
///
/// async fn vote(press: ButtonContext) -> HandlerResult {
///     let choice = press.custom_data().unwrap_or("?").to_owned();
///     press.edit(format!("Last vote: {choice}")).await?; // keeps the buttons
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ButtonContext {
    /// The bot.
    pub bot: Bot,
    /// The press.
    pub press: CommandEvent,
}

impl Deref for ButtonContext {
    type Target = CommandEvent;
    fn deref(&self) -> &CommandEvent {
        &self.press
    }
}

impl FromEvent for ButtonContext {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        Ok(ButtonContext {
            bot: Bot::from_event(ctx)?,
            press: CommandEvent::from_event(ctx)?,
        })
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        Bot::check(deps)
    }
}

impl ButtonContext {
    /// Answers a press that waits for a reply (`answerCommand`); an error naming the command
    /// when the press carries no `commandId` (the button did not set `waitReply`).
    pub fn answer(
        &self,
        answer_type: AnswerType,
        text: impl Into<String>,
    ) -> crate::Result<Call<AnswerCommand>> {
        let id = self.press.command_id.clone().ok_or_else(|| {
            crate::Error::invalid(
                "commandId",
                format!(
                    "the press of `{}` carries no commandId (the button has no waitReply), so it cannot be answered",
                    self.press.command()
                ),
            )
        })?;
        Ok(self.bot.answer_command(id, answer_type, text))
    }

    /// Sends `text` to the chat of the message that carried the button.
    pub fn send(&self, text: impl Into<String>) -> crate::Result<Call<SendMessage>> {
        let chat = self
            .press
            .chat_id()
            .ok_or_else(|| crate::Error::invalid("chatId", "the button press names no chat"))?;
        Ok(self.bot.send_message(chat, text))
    }
}
