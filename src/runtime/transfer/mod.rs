//! The FileTransfer actor: uploads, downloads and progress.
//!
//! File bytes never pass through an actor mailbox: an upload or a download runs inside the
//! caller's future in chunks, so memory stays flat whatever the file size, and dropping the
//! future aborts the HTTP request (and removes a half-written file). What has to be shared
//! and ordered lives here:
//!
//! * the `TransferActor`, a supervised child, owns the wire `subscribeFileProgress` /
//!   `unsubscribeFileProgress`: sent once per file however many local subscribers there are,
//!   and restored on every new socket, after which waiting downloads re-check the file;
//! * the shared `Transfers` state holds the progress channels (fed by our own transfers and
//!   by the server's `uploadFileProgress` events without an actor hop), the upload limits
//!   cached per connection, and the semaphore that bounds concurrent transfers.
//!
//! The user-facing calls are methods of [`Bot`](crate::bot::Bot): [`Bot::send_document`](crate::bot::Bot::send_document),
//! [`Bot::send_photo`](crate::bot::Bot::send_photo), [`Bot::send_sticker`](crate::bot::Bot::send_sticker), [`Bot::edit_chat_avatar`](crate::bot::Bot::edit_chat_avatar),
//! [`Bot::download_file_by_id`](crate::bot::Bot::download_file_by_id) and [`Bot::file_progress`](crate::bot::Bot::file_progress).
//!
//! ```no_run
//! # async fn demo(bot: trueconf_bot::bot::Bot, chat: String) -> trueconf_bot::Result<()> {
//! use futures_util::StreamExt;
//! use trueconf_bot::transfer::InputFile;
//!
//! // Stream a file of any size from disk, watching the bytes go out.
//! let (call, mut progress) = bot.send_document(&chat, InputFile::path("backup.tar")).with_progress();
//! tokio::spawn(async move {
//!     while let Some(p) = progress.next().await {
//!         println!("{:.0} %", 100.0 * p.fraction().unwrap_or(0.0));
//!     }
//! });
//! let sent = call.caption("nightly backup").await?;
//!
//! // Fetch it back; a failed or cancelled download leaves no file behind.
//! let info = bot.download_file_by_id(&sent.file_id).to_path("restore/backup.tar").await?;
//! assert_eq!(info.size, std::fs::metadata("restore/backup.tar")?.len());
//! # Ok(()) }
//! ```

mod actor;
mod config;
mod download;
mod handle;
mod input;
mod progress;
mod state;
mod upload;
mod url;

pub(crate) use actor::TransferActor;
pub use config::TransferConfig;
pub use download::{DownloadCall, DownloadStream};
pub use handle::TransferHandle;
pub use input::InputFile;
pub use progress::{Direction, Progress, ProgressStream};
pub(crate) use state::{TransferMsg, Transfers};
pub use upload::SendFileCall;
pub(crate) use upload::{Kind, edit_chat_avatar};
