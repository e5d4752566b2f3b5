//! Sending files (§8.3, §11.1): `uploadFile` → multipart POST → `sendFile`.

use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use tokio::sync::watch;
use tokio::time::Instant;

use super::input::{ByteStream, InputFile, Opened, check_size};
use super::progress::{Direction, Progress, ProgressStream};
use super::state::Transfers;
use crate::error::{Error, Result};
use crate::methods::{Caption, EditChatAvatar, FileSent, Request, SendFile, UploadFile};
use crate::runtime::connection::tls::{MAX_SMALL_BODY, http_error, read_small_body};
use crate::types::ParseMode;
use crate::types::file::UploadResponse;
use crate::types::file::check_sticker;

/// Stickers are read into memory (they are sent twice: as the file and as its preview).
const MAX_STICKER: u64 = 16 * 1024 * 1024;

/// What is being sent; decides the part content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Document,
    Photo,
    Sticker,
    Avatar,
}

/// A file message being prepared: refine it with the setters, then `.await` it.
///
/// ```no_run
/// # async fn demo(bot: trueconf_bot::bot::Bot, chat: String) -> trueconf_bot::Result<()> {
/// use trueconf_bot::transfer::InputFile;
/// use trueconf_bot::types::ParseMode;
/// let sent = bot
///     .send_document(&chat, InputFile::path("report.pdf"))
///     .caption("<b>Q3</b> report")
///     .parse_mode(ParseMode::Html)
///     .await?;
/// println!("file id {}", sent.file_id);
/// # Ok(()) }
/// ```
#[must_use = "nothing is sent until the call is awaited"]
pub struct SendFileCall {
    transfers: Arc<Transfers>,
    chat_id: String,
    file: InputFile,
    kind: Kind,
    preview: Option<InputFile>,
    caption: Option<String>,
    parse_mode: Option<ParseMode>,
    reply_to: Option<String>,
    progress: Option<watch::Sender<Option<Progress>>>,
}

impl std::fmt::Debug for SendFileCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFileCall")
            .field("chat_id", &self.chat_id)
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("preview", &self.preview)
            .field("reply_to", &self.reply_to)
            .finish_non_exhaustive()
    }
}

impl SendFileCall {
    pub(crate) fn new(
        transfers: Arc<Transfers>,
        chat_id: String,
        file: InputFile,
        kind: Kind,
    ) -> Self {
        SendFileCall {
            transfers,
            chat_id,
            file,
            kind,
            preview: None,
            caption: None,
            parse_mode: None,
            reply_to: None,
            progress: None,
        }
    }

    /// A caption (≤ 4096 visible characters, checked before anything is uploaded). Not for
    /// stickers.
    pub fn caption(mut self, text: impl Into<String>) -> Self {
        self.caption = Some(text.into());
        self
    }

    /// How the caption is rendered (default: the bot's default parse mode).
    pub fn parse_mode(mut self, mode: ParseMode) -> Self {
        self.parse_mode = Some(mode);
        self
    }

    /// Replies to a message.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_to = Some(message_id.into());
        self
    }

    /// A preview image sent along (the `preview` part), e.g. a thumbnail of a photo.
    /// Stickers get theirs automatically.
    pub fn preview(mut self, preview: impl Into<InputFile>) -> Self {
        self.preview = Some(preview.into());
        self
    }

    /// Also returns a stream of the upload's progress (bytes handed to the connection).
    pub fn with_progress(mut self) -> (Self, ProgressStream) {
        let (tx, stream) = ProgressStream::channel();
        self.progress = Some(tx);
        (self, stream)
    }

    async fn run(self) -> Result<FileSent> {
        let transfers = self.transfers;
        if self.chat_id.trim().is_empty() {
            return Err(Error::invalid("chat_id", "must not be empty"));
        }
        let mut request = SendFile::new(&self.chat_id, "");
        if let Some(text) = self.caption {
            if self.kind == Kind::Sticker {
                return Err(Error::invalid(
                    "caption",
                    "stickers are sent without a caption",
                ));
            }
            let mode = self
                .parse_mode
                .unwrap_or_else(|| transfers.default_parse_mode());
            request = request.caption(Caption::new(text).parse_mode(mode));
        }
        if let Some(id) = self.reply_to {
            request = request.reply_to(id);
        }
        request.validate()?;
        let temporal = upload(
            &transfers,
            self.file,
            self.kind,
            self.preview,
            self.progress,
        )
        .await?;
        request.content.temporal_file_id = temporal;
        transfers
            .requester
            .execute(request, Some(&self.chat_id), None)
            .await
    }
}

impl IntoFuture for SendFileCall {
    type Output = Result<FileSent>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<FileSent>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::debug_span!("send_file", kind = ?self.kind, chat = %self.chat_id);
        Box::pin(tracing::Instrument::instrument(self.run(), span))
    }
}

/// Uploads `file` as a new chat avatar and sets it.
pub(crate) async fn edit_chat_avatar(
    transfers: &Arc<Transfers>,
    chat_id: String,
    file: InputFile,
) -> Result<()> {
    if chat_id.trim().is_empty() {
        return Err(Error::invalid("chat_id", "must not be empty"));
    }
    let temporal = upload(transfers, file, Kind::Avatar, None, None).await?;
    transfers
        .execute(EditChatAvatar::new(chat_id, temporal))
        .await?;
    Ok(())
}

/// One multipart part ready to stream.
struct PartSource {
    name: String,
    mime: String,
    size: u64,
    body: ByteStream,
}

impl From<Opened> for PartSource {
    fn from(o: Opened) -> Self {
        PartSource {
            name: o.name,
            mime: o.mime,
            size: o.size,
            body: o.body,
        }
    }
}

impl PartSource {
    fn memory(name: &str, mime: &str, data: bytes::Bytes) -> Self {
        PartSource {
            name: name.to_owned(),
            mime: mime.to_owned(),
            size: data.len() as u64,
            body: Box::pin(futures_util::stream::iter([Ok(data)])),
        }
    }
}

/// Steps 1 and 2: checks the limits, creates the upload task, streams the multipart body and
/// returns the `temporalFileId`.
pub(crate) async fn upload(
    transfers: &Arc<Transfers>,
    file: InputFile,
    kind: Kind,
    preview: Option<InputFile>,
    progress: Option<watch::Sender<Option<Progress>>>,
) -> Result<String> {
    let transfers = transfers.clone();
    let opened = file.fetch_url().await?.open().await?;
    let (main, preview) = if kind == Kind::Sticker {
        let name = opened.name.clone();
        let data = opened.into_bytes(MAX_STICKER, "sticker").await?;
        check_sticker(&data)?;
        // As the official client: the WebP itself is also the preview.
        (
            PartSource::memory(&name, "sticker/webp", data.clone()),
            Some(PartSource::memory(&name, "image/webp", data)),
        )
    } else {
        let preview = match preview {
            Some(p) => Some(PartSource::from(p.fetch_url().await?.open().await?)),
            None => None,
        };
        (PartSource::from(opened), preview)
    };
    transfers.limits().await?.check(&main.name, main.size)?;
    let _permit = transfers.permit().await?;
    let config = transfers.config();
    let (name, size) = (main.name.clone(), main.size);
    let activity = Arc::new(Activity::new());
    let failure = Arc::new(Mutex::new(None));
    let reporter = Reporter::new(
        transfers.clone(),
        Direction::Upload,
        None,
        Some(main.size),
        progress,
    );
    // File names go out as UTF-8, as browsers send them, not percent-encoded.
    let mut form = Form::new().percent_encode_noop().part(
        "file",
        part(main, Meter::new(&activity, &failure, Some(reporter)))?,
    );
    if let Some(p) = preview {
        form = form.part("preview", part(p, Meter::new(&activity, &failure, None))?);
    }
    let client = transfers.http()?;
    let url = format!("{}/bridge/api/client/v1/files", transfers.http_base());
    // Everything that can fail locally has; now the server gets an upload task.
    let task = transfers.execute(UploadFile::new(&name, size)).await?;
    tracing::debug!(%name, size, "uploading");
    let sent = client
        .post(&url)
        .header("Upload-Task-Id", task.upload_task_id)
        .multipart(form)
        .send();
    let outcome = stall_guard(sent, &activity, config.stall_timeout, "file upload").await;
    // A source that broke its size promise explains the failed request better than hyper.
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    let resp = outcome?.map_err(|e| http_error("file upload", e))?;
    let status = resp.status();
    let body = stall_guard(
        read_small_body(resp, MAX_SMALL_BODY, "file upload"),
        &activity,
        config.stall_timeout,
        "file upload",
    )
    .await??;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(Error::http(
            Some(status.as_u16()),
            format!("the server refused the file upload: {text}"),
        ));
    }
    let parsed: UploadResponse = serde_json::from_slice(&body).map_err(|e| {
        Error::http(
            Some(status.as_u16()),
            format!("file upload: unexpected response body: {e}"),
        )
    })?;
    Ok(parsed.temporal_file_id)
}

fn part(src: PartSource, meter: Meter) -> Result<Part> {
    let size = src.size;
    let body = reqwest::Body::wrap_stream(metered(src.body, src.name.clone(), size, meter));
    Part::stream_with_length(body, size)
        .file_name(src.name)
        .mime_str(&src.mime)
        .map_err(|e| Error::invalid("mime", format!("{:?} is not a MIME type: {e}", src.mime)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When bytes last moved, to tell a slow transfer from a stalled one.
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Runs `fut`, failing with [`Error::Timeout`] once nothing moved for `limit`.
pub(crate) async fn stall_guard<F: Future>(
    fut: F,
    activity: &Activity,
    limit: Duration,
    what: &str,
) -> Result<F::Output> {
    activity.touch();
    tokio::pin!(fut);
    loop {
        let wait = limit.saturating_sub(activity.idle());
        if wait.is_zero() {
            return Err(Error::Timeout {
                what: format!("{what} (no data moved)"),
                after: limit,
            });
        }
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Publishes a transfer's progress to its own stream and to the file's subscribers.
pub(crate) struct Reporter {
    transfers: Arc<Transfers>,
    own: Option<watch::Sender<Option<Progress>>>,
    direction: Direction,
    file_id: Option<String>,
    total: Option<u64>,
    reported: u64,
}

impl Reporter {
    pub(crate) fn new(
        transfers: Arc<Transfers>,
        direction: Direction,
        file_id: Option<String>,
        total: Option<u64>,
        own: Option<watch::Sender<Option<Progress>>>,
    ) -> Self {
        Reporter {
            transfers,
            own,
            direction,
            file_id,
            total,
            reported: 0,
        }
    }

    /// Coalesced to one report per 256 KiB; the final one always goes out.
    pub(crate) fn report(&mut self, transferred: u64) {
        const STEP: u64 = 256 * 1024;
        let last = self.total.is_some_and(|t| transferred >= t);
        if !last && transferred < self.reported + STEP {
            return;
        }
        self.reported = transferred;
        let p = Progress {
            direction: self.direction,
            file_id: self.file_id.clone(),
            transferred,
            total: self.total,
        };
        if let Some(tx) = &self.own {
            tx.send_replace(Some(p.clone()));
        }
        if let Some(id) = &self.file_id {
            self.transfers.publish(id, |_| p);
        }
    }
}

/// Counts a part's bytes as hyper pulls them: progress, activity, and the size promise.
struct Meter {
    activity: Arc<Activity>,
    failure: Arc<Mutex<Option<Error>>>,
    reporter: Option<Reporter>,
}

impl Meter {
    fn new(
        activity: &Arc<Activity>,
        failure: &Arc<Mutex<Option<Error>>>,
        reporter: Option<Reporter>,
    ) -> Self {
        Meter {
            activity: activity.clone(),
            failure: failure.clone(),
            reporter,
        }
    }

    fn fail(&self, e: Error) -> io::Error {
        let msg = e.to_string();
        *lock(&self.failure) = Some(e);
        io::Error::other(msg)
    }
}

fn metered(
    body: ByteStream,
    name: String,
    declared: u64,
    meter: Meter,
) -> impl futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some((body, 0u64, meter)), move |state| {
        let name = name.clone();
        async move {
            let (mut body, seen, mut meter) = state?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > declared {
                        let e = meter.fail(check_size(&name, declared, seen).err()?);
                        return Some((Err(e), None));
                    }
                    crate::runtime::telemetry::uploaded(chunk.len());
                    meter.activity.touch();
                    if let Some(r) = &mut meter.reporter {
                        r.report(seen);
                    }
                    Some((Ok(chunk), Some((body, seen, meter))))
                }
                Some(Err(e)) => {
                    let e = meter.fail(Error::Io(io::Error::new(
                        e.kind(),
                        format!("reading {name:?} failed: {e}"),
                    )));
                    Some((Err(e), None))
                }
                None if seen != declared => {
                    let e = meter.fail(check_size(&name, declared, seen).err()?);
                    Some((Err(e), None))
                }
                None => None,
            }
        }
    })
}
