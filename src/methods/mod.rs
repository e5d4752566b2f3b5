//! One typed request per client → server method.
//!
//! Every request type implements [`Request`], which ties it to its wire method name and its
//! typed response, so the request router stays generic: it sends any `R: Request` and hands
//! back an `R::Response`.
//!
//! ```
//! use trueconf_bot::methods::{Request, SendMessage};
//! use trueconf_bot::types::ParseMode;
//!
//! let req = SendMessage::new("chat-1", "Hello, <b>world</b>").parse_mode(ParseMode::Html);
//! req.validate()?;
//! assert_eq!(SendMessage::METHOD, "sendMessage");
//! # Ok::<(), trueconf_bot::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ApiErrorCode, Error, Result};
use crate::protocol::{Frame, RequestId};
use crate::types::ParseMode;

mod auth;
mod chats;
mod contacts;
mod files;
mod messages;
mod participants;
mod surveys;

pub use auth::{Auth, AuthResponse};
pub use chats::{
    ChatList, ClearHistory, CreateChannel, CreateFavoritesChat, CreateGroupChat, CreateP2PChat,
    CreatedChat, EditChatAvatar, EditChatTitle, GetChatById, GetChats, MAX_TITLE_LEN, RemoveChat,
    TitleEdited,
};
pub use contacts::{DisplayName, GetUserDisplayName};
pub use files::{
    Caption, FileSent, GetFileInfo, GetFileUploadLimits, SendFile, SendFileContent,
    SubscribeFileProgress, UnsubscribeFileProgress, UploadFile, UploadTask,
};
pub use messages::{
    AnswerCommand, ChatActivity, ChatHistory, CommandAnswer, EditMessage, ForwardMessage,
    GetChatHistory, GetMessageById, MessageEdit, RemoveMessage, SendChatActivity, SendMessage,
};
pub use participants::{
    AddChatParticipant, ChangeParticipantRole, GetChatParticipant, GetChatParticipants,
    HasChatParticipant, ParticipantList, RemoveChatParticipant,
};
pub use surveys::{EditSurvey, EditSurveyContent, SendSurvey};

/// A client → server method call.
pub trait Request: Serialize + Send + Sync + 'static {
    /// The wire method name, e.g. `"sendMessage"`.
    const METHOD: &'static str;

    /// Whether the call only reads server state, so that it is safe to send again when the
    /// connection dropped before its response arrived.
    const IDEMPOTENT: bool = false;

    /// The typed success payload.
    type Response: DeserializeOwned + Send + 'static;

    /// Client-side validation, run before anything is sent. Mirrors the official client's
    /// checks; the default accepts everything.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Completes bare logins (no `@`) in user-id fields with `@domain`, as the official
    /// client does before sending. The default has no user ids to complete.
    fn complete_user_ids(&mut self, domain: &str) {
        let _ = domain;
    }
}

/// Serialises `request` as the payload of a request frame with id `id`.
pub fn encode_request<R: Request>(id: RequestId, request: &R) -> Result<Frame> {
    let payload = serde_json::value::to_raw_value(request)
        .map_err(|e| Error::protocol(format!("encoding `{}` request: {e}", R::METHOD)))?;
    Ok(Frame::request(id, R::METHOD, payload))
}

/// Decodes the response payload of request `R`.
///
/// A payload with a non-zero `errorCode` becomes [`Error::Api`] (for `auth`, codes 200–204
/// become [`Error::Auth`]); a missing or `null` payload decodes as `{}`.
pub fn decode_response<R: Request>(payload: Option<&RawValue>) -> Result<R::Response> {
    let text = match payload.map(RawValue::get) {
        None => "{}",
        Some(t) if t.trim() == "null" => "{}",
        Some(t) => t,
    };
    if text.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "errorCode", default)]
            error_code: Option<u32>,
        }
        if let Ok(Probe {
            error_code: Some(code),
        }) = serde_json::from_str::<Probe>(text)
            && code != 0
        {
            {
                let code = ApiErrorCode(code);
                if R::METHOD == Auth::METHOD && code.is_auth() {
                    return Err(Error::Auth {
                        reason: code.meaning().to_owned(),
                        code: Some(code),
                    });
                }
                return Err(Error::Api {
                    method: R::METHOD,
                    code,
                    payload: Some(text.to_owned()),
                });
            }
        }
    }
    serde_json::from_str(text)
        .map_err(|e| Error::protocol(format!("malformed `{}` response: {e}", R::METHOD)))
}

/// An empty success payload (`{}` or absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// `{result: bool}` responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoolResult {
    /// The answer.
    pub result: bool,
}

/// `{chatId, messageId, timestamp}`: a message was posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSent {
    /// Chat id.
    pub chat_id: String,
    /// New message id.
    pub message_id: String,
    /// Server time, ms.
    pub timestamp: u64,
}

/// The error payload of a failed request (`{"errorCode": N, …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    /// The error code.
    pub error_code: u32,
    /// Any other keys, kept for diagnostics.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ErrorPayload {
    /// The code as an [`ApiErrorCode`].
    pub fn code(&self) -> ApiErrorCode {
        ApiErrorCode(self.error_code)
    }
}

/// Completes a bare login with `@domain`.
pub fn complete_user_id(user_id: &mut String, domain: &str) {
    if !user_id.contains('@') && !user_id.is_empty() && !domain.is_empty() {
        user_id.push('@');
        user_id.push_str(domain);
    }
}

/// Checks a message text: not blank, at most [`crate::format::MAX_TEXT_LEN`] visible
/// characters.
pub(crate) fn check_text(argument: &'static str, text: &str, mode: &ParseMode) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid(
            argument,
            "must not be empty or whitespace only",
        ));
    }
    check_visible_len(argument, text, mode)
}

/// Checks that a text has at most [`crate::format::MAX_TEXT_LEN`] visible characters.
pub(crate) fn check_visible_len(
    argument: &'static str,
    text: &str,
    mode: &ParseMode,
) -> Result<()> {
    let len = crate::format::visible_len(text, mode);
    if len > crate::format::MAX_TEXT_LEN {
        return Err(Error::invalid(
            argument,
            format!(
                "at most {} visible characters; got {len}",
                crate::format::MAX_TEXT_LEN
            ),
        ));
    }
    Ok(())
}

/// Implements [`Request`] for requests without extra validation.
macro_rules! request {
    ($ty:ty, $method:literal, $resp:ty) => {
        request!(@impl $ty, $method, $resp, false);
    };
    ($ty:ty, $method:literal, $resp:ty, idempotent) => {
        request!(@impl $ty, $method, $resp, true);
    };
    ($ty:ty, $method:literal, $resp:ty, users($($field:ident),+)) => {
        impl $crate::methods::Request for $ty {
            const METHOD: &'static str = $method;
            type Response = $resp;
            fn complete_user_ids(&mut self, domain: &str) {
                $( $crate::methods::complete_user_id(&mut self.$field, domain); )+
            }
        }
    };
    ($ty:ty, $method:literal, $resp:ty, idempotent, users($($field:ident),+)) => {
        impl $crate::methods::Request for $ty {
            const METHOD: &'static str = $method;
            const IDEMPOTENT: bool = true;
            type Response = $resp;
            fn complete_user_ids(&mut self, domain: &str) {
                $( $crate::methods::complete_user_id(&mut self.$field, domain); )+
            }
        }
    };
    (@impl $ty:ty, $method:literal, $resp:ty, $idem:literal) => {
        impl $crate::methods::Request for $ty {
            const METHOD: &'static str = $method;
            const IDEMPOTENT: bool = $idem;
            type Response = $resp;
        }
    };
}
pub(crate) use request;
