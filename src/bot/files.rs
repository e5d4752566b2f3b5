//! Sending and downloading files, and their progress (the FileTransfer side of [`Bot`]).

use super::Bot;
use crate::error::Result;
use crate::runtime::transfer::{
    DownloadCall, InputFile, Kind, ProgressStream, SendFileCall, TransferConfig, edit_chat_avatar,
};
use crate::types::UploadLimits;

impl Bot {
    /// Sends a file as a document. Add `.caption(..)`, `.parse_mode(..)`, `.reply_to(..)`,
    /// then `.await` it for the [`FileSent`](crate::methods::FileSent) response.
    ///
    /// The file is checked against the server's upload limits before anything is sent, then
    /// streamed from its source.
    pub fn send_document(
        &self,
        chat_id: impl Into<String>,
        file: impl Into<InputFile>,
    ) -> SendFileCall {
        SendFileCall::new(
            self.transfers(),
            chat_id.into(),
            file.into(),
            Kind::Document,
        )
    }

    /// Sends an image as a photo; `.preview(..)` adds a thumbnail.
    pub fn send_photo(
        &self,
        chat_id: impl Into<String>,
        file: impl Into<InputFile>,
    ) -> SendFileCall {
        SendFileCall::new(self.transfers(), chat_id.into(), file.into(), Kind::Photo)
    }

    /// Sends a sticker. It must be a WebP image (checked by content, not by name:
    /// anything else fails with [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// before any upload); it is uploaded with its own copy as the preview, as the official
    /// client does.
    pub fn send_sticker(
        &self,
        chat_id: impl Into<String>,
        file: impl Into<InputFile>,
    ) -> SendFileCall {
        SendFileCall::new(self.transfers(), chat_id.into(), file.into(), Kind::Sticker)
    }

    /// Uploads an image and makes it the chat's avatar (`uploadFile`, the HTTP upload, then
    /// `editChatAvatar`), as the official client's `edit_chat_avatar`;
    /// [`Bot::edit_chat_avatar_uploaded`] takes an already uploaded image.
    pub async fn edit_chat_avatar(
        &self,
        chat_id: impl Into<String>,
        file: impl Into<InputFile>,
    ) -> Result<()> {
        edit_chat_avatar(self.runtime().transfers(), chat_id.into(), file.into()).await
    }

    /// Downloads a file: choose the target with `.to_path(..)`, `.to_bytes()`,
    /// `.to_writer(..)` or `.stream()`. Waits for files that are still being uploaded.
    pub fn download_file_by_id(&self, file_id: impl Into<String>) -> DownloadCall {
        DownloadCall::new(self.transfers(), file_id.into())
    }

    /// Progress of a file: the server's `uploadFileProgress` events while someone uploads it
    /// (the wire subscription is shared by all local subscribers and restored after a
    /// reconnect) and this bot's own downloads of it. The stream ends once the file is
    /// complete on the server (at once with one report if it already is) or a download of
    /// it finishes. Own uploads report through
    /// [`SendFileCall::with_progress`](crate::transfer::SendFileCall::with_progress).
    pub fn file_progress(&self, file_id: impl Into<String>) -> ProgressStream {
        self.runtime()
            .transfers()
            .watch(&file_id.into())
            .into_stream()
    }

    /// The server's upload limits (cached per connection, updated by the server's event).
    pub async fn upload_limits(&self) -> Result<UploadLimits> {
        self.runtime().transfers().limits().await
    }

    /// Changes the transfer settings; transfers started afterwards use them.
    pub fn configure_transfers(&self, config: TransferConfig) {
        self.runtime().transfers().configure(config);
    }

    /// The transfer settings.
    pub fn transfer_config(&self) -> TransferConfig {
        self.runtime().transfers().config()
    }

    fn transfers(&self) -> std::sync::Arc<crate::runtime::transfer::Transfers> {
        self.runtime().transfers().clone()
    }
}
