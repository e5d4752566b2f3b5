//! The official client's message and button shortcuts beyond `answer`/`reply`: files,
//! quotes, Favorites, contacts, and editing the message a button press came from.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use super::context::{ButtonContext, MessageContext};
use super::handler::ButtonPress;
use crate::bot::{Call, InputFile, SendFileCall};
use crate::error::{Error, Result};
use crate::methods::{AnswerCommand, EditMessage, MessageEdit, MessageSent, SendMessage};
use crate::types::{AnswerType, Contact, Content, InlineKeyboard, Message, ParseMode};

/// MIME types of a vCard attachment (`text/vcard`; `text/x-vcard` from older phones).
fn is_vcard(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case("text/vcard") || base.eq_ignore_ascii_case("text/x-vcard")
}

impl MessageContext {
    /// [`MessageContext::answer`] with HTML markup: what the official client's
    /// `message.answer(text)` does by default. Ours defaults to the bot's parse mode (plain
    /// text unless [`BotBuilder::default_parse_mode`](crate::bot::BotBuilder::default_parse_mode)
    /// says otherwise), so that echoing user input can never inject markup.
    pub fn answer_html(&self, html: impl Into<String>) -> Call<SendMessage> {
        self.answer(html).parse_mode(ParseMode::Html)
    }

    /// [`MessageContext::reply`] with HTML markup (the official client's default for
    /// `message.reply`; see [`MessageContext::answer_html`]).
    pub fn reply_html(&self, html: impl Into<String>) -> Call<SendMessage> {
        self.reply(html).parse_mode(ParseMode::Html)
    }

    /// Sends a photo to the same chat (`.preview(..)`, `.caption(..)` before `.await`).
    pub fn answer_photo(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.bot.send_photo(self.chat(), file)
    }

    /// Sends a document to the same chat (`.caption(..)` before `.await`).
    pub fn answer_document(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.bot.send_document(self.chat(), file)
    }

    /// Sends a sticker (a WebP image) to the same chat.
    pub fn answer_sticker(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.bot.send_sticker(self.chat(), file)
    }

    /// Sends a photo as a reply to this message.
    pub fn reply_photo(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.answer_photo(file).reply_to(&self.message.message_id)
    }

    /// Sends a document as a reply to this message.
    pub fn reply_document(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.answer_document(file)
            .reply_to(&self.message.message_id)
    }

    /// Sends a sticker as a reply to this message.
    pub fn reply_sticker(&self, file: impl Into<InputFile>) -> SendFileCall {
        self.answer_sticker(file).reply_to(&self.message.message_id)
    }

    /// Replies with `fragment` of this message quoted above `text` (the official client's
    /// `message.reply(text, quote=fragment)`). As in the client, the fragment must occur in
    /// this message's text ([`Message::text`]): otherwise an
    /// [`Error::InvalidArgument`] naming it, and nothing is sent.
    pub fn reply_quoting(
        &self,
        fragment: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Call<SendMessage>> {
        let fragment = fragment.into();
        if let Some(own) = self.message.text()
            && !own.contains(fragment.as_str())
        {
            return Err(Error::invalid(
                "quote",
                format!(
                    "{fragment:?} does not occur in message {}",
                    self.message.message_id
                ),
            ));
        }
        Ok(self.reply(text).quote(fragment))
    }

    /// The fragment this message quotes from the message it replies to, unescaped (the
    /// official client's `Message.quote`); [`Message::text`] is the text without it.
    pub fn quote(&self) -> Option<String> {
        crate::format::reply_quote(self.message.full_text()?)
    }

    /// Saves this message in the bot's Favorites chat (the official client's
    /// `save_to_favorites`): forwarded, or with `copy` a copy of a text message (other
    /// kinds cannot be copied: an [`Error::InvalidArgument`]). Two requests: the Favorites
    /// chat's id ([`Bot::me_chat`](crate::bot::Bot::me_chat)), then the forward or copy.
    pub async fn save_to_favorites(&self, copy: bool) -> Result<MessageSent> {
        let favorites = self.bot.me_chat().await?;
        if copy {
            self.copy_to(favorites)?.await
        } else {
            self.forward_to(favorites).await
        }
    }

    /// The contact this message shares, if it does (the official client's
    /// `message.contact`): a vCard attachment (`text/vcard`) is downloaded (at most
    /// [`MAX_VCARD_SIZE`](crate::types::vcard::MAX_VCARD_SIZE) bytes) and read; a text that
    /// is exactly one TrueConf profile link gives the user id and the display name (asked
    /// from the server, the link text if that fails). `Ok(None)` for other messages; an
    /// unreadable vCard is [`Error::Vcard`].
    pub async fn contact(&self) -> Result<Option<Contact>> {
        match &self.message.content {
            Content::Attachment(f) if is_vcard(&f.mime_type) => {
                let max = crate::types::vcard::MAX_VCARD_SIZE;
                let bytes = self
                    .bot
                    .download_file_by_id(&f.file_id)
                    .max_size(max)
                    .to_bytes()
                    .await?;
                Ok(Some(Contact::from_vcard_bytes(&bytes)?))
            }
            Content::Text(t) => {
                let Some(link) = crate::format::contact_link(&t.text) else {
                    return Ok(None);
                };
                let name = match self.bot.get_user_display_name(&link.user_id).await {
                    Ok(n) => n.display_name,
                    Err(Error::Api { .. }) => link.name,
                    Err(e) => return Err(e),
                };
                Ok(Some(Contact::trueconf(link.user_id, name)))
            }
            _ => Ok(None),
        }
    }
}

impl ButtonContext {
    /// The message that carried the pressed button, as the press event shows it (text and
    /// parse mode; the server leaves its buttons out).
    pub fn message(&self) -> Option<&Message> {
        self.press.command_source.message.as_deref()
    }

    /// The id of the message that carried the pressed button.
    pub fn message_id(&self) -> Option<&str> {
        self.message().map(|m| m.message_id.as_str())
    }

    /// This press as plain data (what a [`ButtonPress`] parameter gets).
    pub fn to_press(&self) -> ButtonPress {
        ButtonPress {
            command: self.press.command().to_owned(),
            custom_data: self.press.custom_data().map(str::to_owned),
            command_id: self.press.command_id.clone(),
            button_id: self.press.command_source.button_id.clone(),
            chat_id: self.press.chat_id().map(str::to_owned),
            message_id: self.message_id().map(str::to_owned),
        }
    }

    /// The official client's name for [`ButtonContext::answer`]: answers the press itself
    /// (`answerCommand`). To post in the chat use [`ButtonContext::send`].
    pub fn answer_command(
        &self,
        answer_type: AnswerType,
        text: impl Into<String>,
    ) -> Result<Call<AnswerCommand>> {
        self.answer(answer_type, text)
    }

    /// Edits the message that carried the button (the official client's
    /// `callback.edit_message`). What is not set is kept: the text and parse mode from the
    /// press event, the buttons read back with `getMessageById` (the event does not carry
    /// them; the server's `editMessage` replaces the whole content, so leaving them out
    /// would delete them).
    ///
    /// ```no_run
    /// # async fn demo(press: trueconf_bot::dispatch::ButtonContext) -> trueconf_bot::Result<()> {
    /// press.edit_message().text("Voted: 3").await?; // buttons stay
    /// press.edit_message().remove_buttons().await?; // text stays
    /// # Ok(()) }
    /// ```
    pub fn edit_message(&self) -> PressEdit {
        PressEdit {
            ctx: self.clone(),
            text: None,
            parse_mode: None,
            buttons: Keep::Current,
        }
    }

    /// Replaces the text of the message that carried the button, keeping its buttons:
    /// `edit_message().text(text)`.
    pub fn edit(&self, text: impl Into<String>) -> PressEdit {
        self.edit_message().text(text)
    }
}

/// What happens to the buttons in a [`PressEdit`].
#[derive(Debug, Clone)]
enum Keep {
    Current,
    Set(InlineKeyboard),
    Remove,
}

/// An edit of the message a button press came from: [`ButtonContext::edit_message`].
#[derive(Debug)]
#[must_use = "nothing is sent until the edit is awaited"]
pub struct PressEdit {
    ctx: ButtonContext,
    text: Option<String>,
    parse_mode: Option<ParseMode>,
    buttons: Keep,
}

impl PressEdit {
    /// The new text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The new parse mode.
    pub fn parse_mode(mut self, mode: ParseMode) -> Self {
        self.parse_mode = Some(mode);
        self
    }

    /// New buttons (no `getMessageById` needed).
    pub fn buttons(mut self, keyboard: InlineKeyboard) -> Self {
        self.buttons = Keep::Set(keyboard);
        self
    }

    /// Removes the buttons.
    pub fn remove_buttons(mut self) -> Self {
        self.buttons = Keep::Remove;
        self
    }

    async fn run(self) -> Result<MessageEdit> {
        let message = self.ctx.message().ok_or_else(|| {
            Error::invalid(
                "message",
                "the button press names no message, so there is nothing to edit",
            )
        })?;
        let shown = match &message.content {
            Content::Text(t) => Some(t),
            _ => None,
        };
        let no_text = || {
            Error::invalid(
                "message",
                format!(
                    "message {} has no text, and an edit must carry one",
                    message.message_id
                ),
            )
        };
        let text = match (self.text, shown) {
            (Some(t), _) => t,
            (None, Some(t)) => t.text.clone(),
            (None, None) => return Err(no_text()),
        };
        let parse_mode = self
            .parse_mode
            .or_else(|| shown.map(|t| t.parse_mode.clone()))
            .unwrap_or_else(|| self.ctx.bot.default_parse_mode());
        let buttons = match self.buttons {
            Keep::Set(kb) => Some(kb),
            Keep::Remove => None,
            Keep::Current => self
                .ctx
                .bot
                .get_message_by_id(&message.message_id)
                .await?
                .buttons()
                .cloned(),
        };
        let mut edit: Call<EditMessage> = self
            .ctx
            .bot
            .edit_message(&message.message_id, text)
            .parse_mode(parse_mode);
        if let Some(kb) = buttons {
            edit = edit.buttons(kb);
        }
        edit.await
    }
}

impl IntoFuture for PressEdit {
    type Output = Result<MessageEdit>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<MessageEdit>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl super::Filter {
    /// A button press whose command string satisfies `pred`.
    pub fn button_command(pred: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        super::Filter::new(move |c| c.update().button_command().is_some_and(&pred))
    }

    /// A button press whose command string starts with `prefix`: one route for a family of
    /// buttons (`vote:yes`, `vote:no` → `Filter::button_starts_with("vote:")`).
    pub fn button_starts_with(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        super::Filter::button_command(move |cmd| cmd.starts_with(prefix.as_str()))
    }
}
