//! One async method per protocol method on [`Bot`], named after the official client, and the
//! setters of each request exposed on its [`Call`].

use std::time::Duration;

use super::{Bot, Call};
use crate::methods::*;
use crate::types::{
    ActivityType, AnswerType, CommandLevel, CommandStatus, CommandVisibility, InlineKeyboard,
    ParseMode, Role,
};

/// Exposes a request's consuming setters on `Call<Request>`, so optional arguments chain
/// before `.await`.
macro_rules! call_setters {
    ($req:ty { $( $(#[$m:meta])* fn $name:ident($($arg:ident : $t:ty),*); )* }) => {
        impl Call<$req> {
            $(
                $(#[$m])*
                pub fn $name(self, $($arg: $t),*) -> Self {
                    self.map(|r| r.$name($($arg),*))
                }
            )*
        }
    };
}

call_setters!(SendMessage {
    /// Replies to `message_id`.
    fn reply_to(message_id: impl Into<String>);
    /// How the text is rendered.
    fn parse_mode(mode: ParseMode);
    /// Attaches an inline keyboard.
    fn buttons(keyboard: InlineKeyboard);
    /// Quotes a fragment of the replied message above the reply (needs `reply_to`).
    fn quote(fragment: impl Into<String>);
});

call_setters!(EditMessage {
    /// How the text is rendered.
    fn parse_mode(mode: ParseMode);
    /// Replaces the inline keyboard (an edit without buttons removes it).
    fn buttons(keyboard: InlineKeyboard);
});

call_setters!(RemoveMessage {
    /// `true` deletes for everyone, `false` only for the bot.
    fn for_all(for_all: bool);
});

call_setters!(GetChatHistory {
    /// Starts at `message_id` instead of the newest message.
    fn from_message(message_id: impl Into<String>);
});

call_setters!(ClearHistory {
    /// `true` clears for everyone, `false` only for the bot.
    fn for_all(for_all: bool);
});

call_setters!(AddChatParticipant {
    /// Whether the new participant sees the earlier history.
    fn display_history(display: bool);
});

call_setters!(RemoveChatParticipant {
    /// Whether the removed participant's history is cleared.
    fn clear_history(clear: bool);
});

call_setters!(SendSurvey {
    /// Makes the survey anonymous.
    fn anonymous(anonymous: bool);
    /// Replies to `message_id`.
    fn reply_to(message_id: impl Into<String>);
});

call_setters!(EditSurvey {
    /// Makes the survey anonymous.
    fn anonymous(anonymous: bool);
});

call_setters!(AnswerCommand {
    /// The command's status.
    fn status(status: CommandStatus);
    /// How the answer is shown.
    fn visibility(visibility: CommandVisibility);
    /// The answer's severity.
    fn level(level: CommandLevel);
});

impl Bot {
    /// The domain used for survey links: the server's, or the configured host before
    /// connecting.
    fn survey_server(&self) -> String {
        self.server_name()
            .unwrap_or_else(|| self.runtime().config().host.clone())
    }

    /// `sendMessage`: sends `text` to `chat_id` (parse mode: the bot's default unless set).
    pub fn send_message(
        &self,
        chat_id: impl Into<String>,
        text: impl Into<String>,
    ) -> Call<SendMessage> {
        let chat_id = chat_id.into();
        let req = SendMessage::new(chat_id.clone(), text).parse_mode(self.default_parse_mode());
        self.call_in(&chat_id, req)
    }

    /// `sendMessage` replying to `message_id`.
    pub fn reply_message(
        &self,
        chat_id: impl Into<String>,
        message_id: impl Into<String>,
        text: impl Into<String>,
    ) -> Call<SendMessage> {
        self.send_message(chat_id, text).reply_to(message_id)
    }

    /// `editMessage`: replaces the text of `message_id`.
    pub fn edit_message(
        &self,
        message_id: impl Into<String>,
        text: impl Into<String>,
    ) -> Call<EditMessage> {
        self.execute(EditMessage::new(message_id, text).parse_mode(self.default_parse_mode()))
    }

    /// `removeMessage` (for the bot only unless `.for_all(true)`).
    pub fn remove_message(&self, message_id: impl Into<String>) -> Call<RemoveMessage> {
        self.execute(RemoveMessage::new(message_id))
    }

    /// `forwardMessage`: forwards `message_id` into `chat_id`.
    pub fn forward_message(
        &self,
        chat_id: impl Into<String>,
        message_id: impl Into<String>,
    ) -> Call<ForwardMessage> {
        let chat_id = chat_id.into();
        self.call_in(&chat_id.clone(), ForwardMessage::new(chat_id, message_id))
    }

    /// `getMessageById`.
    pub fn get_message_by_id(&self, message_id: impl Into<String>) -> Call<GetMessageById> {
        self.execute(GetMessageById::new(message_id))
    }

    /// `getChatHistory`: the newest `count` messages (`.from_message(id)` to page).
    pub fn get_chat_history(&self, chat_id: impl Into<String>, count: u32) -> Call<GetChatHistory> {
        self.execute(GetChatHistory::new(chat_id, count))
    }

    /// `getChats`: page `page` (from 1) of `count` chats.
    pub fn get_chats(&self, count: u32, page: u32) -> Call<GetChats> {
        self.execute(GetChats::new(count, page))
    }

    /// `getChatByID`.
    pub fn get_chat_by_id(&self, chat_id: impl Into<String>) -> Call<GetChatById> {
        self.execute(GetChatById::new(chat_id))
    }

    /// `createP2PChat`: the personal chat with `user_id` (existing or new). A bare login
    /// (`"alice"`) is completed with the server's domain (`"alice@video.example.com"`) before
    /// sending, as the official client does; an id with `@` is sent as it is.
    pub fn create_personal_chat(&self, user_id: impl Into<String>) -> Call<CreateP2PChat> {
        self.execute(CreateP2PChat::new(user_id))
    }

    /// `createGroupChat`.
    pub fn create_group_chat(&self, title: impl Into<String>) -> Call<CreateGroupChat> {
        self.execute(CreateGroupChat::new(title))
    }

    /// `createChannel`.
    pub fn create_channel(&self, title: impl Into<String>) -> Call<CreateChannel> {
        self.execute(CreateChannel::new(title))
    }

    /// `createFavoritesChat`: the bot's "Saved messages" chat.
    pub fn create_favorites_chat(&self) -> Call<CreateFavoritesChat> {
        self.execute(CreateFavoritesChat {})
    }

    /// `removeChat`.
    pub fn delete_chat(&self, chat_id: impl Into<String>) -> Call<RemoveChat> {
        self.execute(RemoveChat::new(chat_id))
    }

    /// `editChatTitle`.
    pub fn edit_chat_title(
        &self,
        chat_id: impl Into<String>,
        title: impl Into<String>,
    ) -> Call<EditChatTitle> {
        self.execute(EditChatTitle::new(chat_id, title))
    }

    /// `editChatAvatar` with an image uploaded beforehand (`temporal_file_id`);
    /// [`Bot::edit_chat_avatar`] uploads the image itself.
    pub fn edit_chat_avatar_uploaded(
        &self,
        chat_id: impl Into<String>,
        temporal_file_id: impl Into<String>,
    ) -> Call<EditChatAvatar> {
        self.execute(EditChatAvatar::new(chat_id, temporal_file_id))
    }

    /// `clearHistory` (for the bot only unless `.for_all(true)`).
    pub fn clear_history(&self, chat_id: impl Into<String>) -> Call<ClearHistory> {
        self.execute(ClearHistory::new(chat_id))
    }

    /// `addChatParticipant`.
    pub fn add_participant_to_chat(
        &self,
        chat_id: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Call<AddChatParticipant> {
        self.execute(AddChatParticipant::new(chat_id, user_id))
    }

    /// `removeChatParticipant`.
    pub fn remove_participant_from_chat(
        &self,
        chat_id: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Call<RemoveChatParticipant> {
        self.execute(RemoveChatParticipant::new(chat_id, user_id))
    }

    /// `getChatParticipants`: page `page_number` (from 1) of `page_size` participants.
    pub fn get_chat_participants(
        &self,
        chat_id: impl Into<String>,
        page_size: u32,
        page_number: u32,
    ) -> Call<GetChatParticipants> {
        self.execute(GetChatParticipants::new(chat_id, page_size, page_number))
    }

    /// `getChatParticipant` (error 305 when `user_id` is not in the chat).
    pub fn get_chat_participant(
        &self,
        chat_id: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Call<GetChatParticipant> {
        self.execute(GetChatParticipant::new(chat_id, user_id))
    }

    /// `hasChatParticipant`.
    pub fn has_chat_participant(
        &self,
        chat_id: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Call<HasChatParticipant> {
        self.execute(HasChatParticipant::new(chat_id, user_id))
    }

    /// `changeParticipantRole`.
    pub fn change_participant_role(
        &self,
        chat_id: impl Into<String>,
        user_id: impl Into<String>,
        role: Role,
    ) -> Call<ChangeParticipantRole> {
        self.execute(ChangeParticipantRole::new(chat_id, user_id, role))
    }

    /// `getUserDisplayName`.
    pub fn get_user_display_name(&self, user_id: impl Into<String>) -> Call<GetUserDisplayName> {
        self.execute(GetUserDisplayName::new(user_id))
    }

    /// `sendSurvey`: posts survey campaign `survey_campaign_id` titled `title`.
    pub fn send_survey(
        &self,
        chat_id: impl Into<String>,
        title: impl Into<String>,
        survey_campaign_id: impl Into<String>,
    ) -> Call<SendSurvey> {
        let chat_id = chat_id.into();
        let req = SendSurvey::new(
            chat_id.clone(),
            &self.survey_server(),
            survey_campaign_id,
            title,
        );
        self.call_in(&chat_id, req)
    }

    /// `editSurvey`: replaces the survey in `message_id`.
    pub fn edit_survey(
        &self,
        message_id: impl Into<String>,
        title: impl Into<String>,
        survey_campaign_id: impl Into<String>,
    ) -> Call<EditSurvey> {
        self.execute(EditSurvey::new(
            message_id,
            &self.survey_server(),
            survey_campaign_id,
            title,
        ))
    }

    /// `getFileInfo`.
    pub fn get_file_info(&self, file_id: impl Into<String>) -> Call<GetFileInfo> {
        self.execute(GetFileInfo::new(file_id))
    }

    /// `subscribeFileProgress`: `uploadFileProgress` events follow for that file.
    pub fn subscribe_file_progress(
        &self,
        file_id: impl Into<String>,
    ) -> Call<SubscribeFileProgress> {
        self.execute(SubscribeFileProgress::new(file_id))
    }

    /// `unsubscribeFileProgress`.
    pub fn unsubscribe_file_progress(
        &self,
        file_id: impl Into<String>,
    ) -> Call<UnsubscribeFileProgress> {
        self.execute(UnsubscribeFileProgress::new(file_id))
    }

    /// `getFileUploadLimits`.
    pub fn get_file_upload_limits(&self) -> Call<GetFileUploadLimits> {
        self.execute(GetFileUploadLimits {})
    }

    /// `sendChatActivity`: shows "typing…" and the like for `retryAfter` ms. See
    /// [`Bot::typing`] to keep it up.
    pub fn send_chat_activity(
        &self,
        chat_id: impl Into<String>,
        activity: ActivityType,
    ) -> Call<SendChatActivity> {
        let chat_id = chat_id.into();
        self.call_in(&chat_id.clone(), SendChatActivity::new(chat_id, activity))
    }

    /// `answerCommand`: answers a `command` event that carried a `commandId`.
    pub fn answer_command(
        &self,
        command_id: impl Into<String>,
        answer_type: AnswerType,
        text: impl Into<String>,
    ) -> Call<AnswerCommand> {
        self.execute(AnswerCommand::new(command_id, answer_type, text))
    }

    /// Shows "typing…" in `chat_id` for as long as the guard lives, re-sending the activity
    /// whenever the server's `retryAfter` runs out.
    ///
    /// ```no_run
    /// # async fn demo(bot: trueconf_bot::bot::Bot) {
    /// let _typing = bot.typing("chat-1");
    /// // … slow work …
    /// # }
    /// ```
    pub fn typing(&self, chat_id: impl Into<String>) -> ActivityGuard {
        self.activity(chat_id, ActivityType::Typing)
    }

    /// Like [`Bot::typing`] for any activity.
    pub fn activity(&self, chat_id: impl Into<String>, activity: ActivityType) -> ActivityGuard {
        let bot = self.clone();
        let chat_id = chat_id.into();
        let task = tokio::spawn(async move {
            loop {
                let wait = match bot
                    .send_chat_activity(chat_id.clone(), activity.clone())
                    .await
                {
                    Ok(r) if r.retry_after > 0 => Duration::from_millis(r.retry_after),
                    Ok(_) => Duration::from_secs(4),
                    Err(e) if e.is_transient() => {
                        tracing::debug!(error = %e, "chat activity not sent; retrying");
                        Duration::from_secs(1)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "chat activity stopped");
                        return;
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        ActivityGuard(task)
    }
}

/// Keeps a chat activity indicator visible; dropping it stops re-sending (the indicator then
/// fades on its own).
#[derive(Debug)]
#[must_use = "the activity stops when the guard is dropped"]
pub struct ActivityGuard(tokio::task::JoinHandle<()>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
