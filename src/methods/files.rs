//! File methods (§8.3). The HTTP upload itself lives in the runtime.

use serde::{Deserialize, Serialize};

use super::{BoolResult, Request, check_visible_len, request};
use crate::error::Result;
use crate::types::{FileInfo, ParseMode, UploadLimits};

/// `uploadFile`: creates an upload task (step 1 of sending a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadFile {
    /// Size of the file in bytes.
    pub file_size: u64,
    /// File name.
    pub file_name: String,
}

impl UploadFile {
    /// An upload task for `file_name` of `file_size` bytes.
    pub fn new(file_name: impl Into<String>, file_size: u64) -> Self {
        UploadFile {
            file_size,
            file_name: file_name.into(),
        }
    }
}

/// `uploadFile` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadTask {
    /// Send as the `Upload-Task-Id` header of the HTTP upload.
    pub upload_task_id: String,
}

request!(UploadFile, "uploadFile", UploadTask);

/// A file caption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caption {
    /// Caption text (≤ 4096 visible characters).
    pub text: String,
    /// How it is rendered.
    #[serde(default)]
    pub parse_mode: ParseMode,
}

impl Caption {
    /// A plain-text caption.
    pub fn new(text: impl Into<String>) -> Self {
        Caption {
            text: text.into(),
            parse_mode: ParseMode::Text,
        }
    }

    /// Sets how the caption is rendered.
    pub fn parse_mode(mut self, mode: ParseMode) -> Self {
        self.parse_mode = mode;
        self
    }
}

impl From<&str> for Caption {
    fn from(text: &str) -> Self {
        Caption::new(text)
    }
}

impl From<String> for Caption {
    fn from(text: String) -> Self {
        Caption::new(text)
    }
}

/// `content` of [`SendFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendFileContent {
    /// From the HTTP upload.
    pub temporal_file_id: String,
    /// Omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<Caption>,
}

/// `sendFile`: posts a message carrying an uploaded file (photos, documents, stickers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendFile {
    /// Target chat.
    pub chat_id: String,
    /// Message replied to; omitted when not replying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_message_id: Option<String>,
    /// The file and caption.
    pub content: SendFileContent,
}

impl SendFile {
    /// Posts the uploaded `temporal_file_id` to `chat_id`.
    pub fn new(chat_id: impl Into<String>, temporal_file_id: impl Into<String>) -> Self {
        SendFile {
            chat_id: chat_id.into(),
            reply_message_id: None,
            content: SendFileContent {
                temporal_file_id: temporal_file_id.into(),
                caption: None,
            },
        }
    }

    /// Adds a caption (`"text"` or `Caption::new(text).parse_mode(..)`).
    pub fn caption(mut self, caption: impl Into<Caption>) -> Self {
        self.content.caption = Some(caption.into());
        self
    }

    /// Replies to `message_id`.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_message_id = Some(message_id.into());
        self
    }
}

/// `sendFile` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSent {
    /// Chat id.
    pub chat_id: String,
    /// New message id.
    pub message_id: String,
    /// Server time, ms.
    pub timestamp: u64,
    /// Permanent file id.
    pub file_id: String,
    /// Id of the caption, when the server posted it as a separate message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption_message_id: Option<String>,
}

impl Request for SendFile {
    const METHOD: &'static str = "sendFile";
    type Response = FileSent;

    fn validate(&self) -> Result<()> {
        match &self.content.caption {
            Some(c) => check_visible_len("caption", &c.text, &c.parse_mode),
            None => Ok(()),
        }
    }
}

/// `getFileInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetFileInfo {
    /// File id.
    pub file_id: String,
}

impl GetFileInfo {
    /// Info on `file_id`.
    pub fn new(file_id: impl Into<String>) -> Self {
        GetFileInfo {
            file_id: file_id.into(),
        }
    }
}

request!(GetFileInfo, "getFileInfo", FileInfo, idempotent);

/// `subscribeFileProgress`: receive `uploadFileProgress` events for a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeFileProgress {
    /// File id.
    pub file_id: String,
}

impl SubscribeFileProgress {
    /// Subscribes to `file_id`.
    pub fn new(file_id: impl Into<String>) -> Self {
        SubscribeFileProgress {
            file_id: file_id.into(),
        }
    }
}

request!(SubscribeFileProgress, "subscribeFileProgress", BoolResult);

/// `unsubscribeFileProgress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeFileProgress {
    /// File id.
    pub file_id: String,
}

impl UnsubscribeFileProgress {
    /// Unsubscribes from `file_id`.
    pub fn new(file_id: impl Into<String>) -> Self {
        UnsubscribeFileProgress {
            file_id: file_id.into(),
        }
    }
}

request!(
    UnsubscribeFileProgress,
    "unsubscribeFileProgress",
    BoolResult
);

/// `getFileUploadLimits` (payload `{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetFileUploadLimits {}

request!(
    GetFileUploadLimits,
    "getFileUploadLimits",
    UploadLimits,
    idempotent
);
