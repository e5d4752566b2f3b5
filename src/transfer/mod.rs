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
//! The user-facing calls are methods of [`Bot`]: [`Bot::send_document`],
//! [`Bot::send_photo`], [`Bot::send_sticker`], [`Bot::edit_chat_avatar`],
//! [`Bot::download_file_by_id`] and [`Bot::file_progress`].
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

mod download;
mod input;
pub(crate) mod upload;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

pub use download::{DownloadCall, DownloadStream};
pub use input::InputFile;
pub use upload::SendFileCall;

use crate::bot::Bot;
use crate::bot::core::Core;
use crate::connection::{ConnectionState, TaskGuard};
use crate::error::{DisconnectKind, Error, Result};
use crate::methods::{
    GetFileInfo, GetFileUploadLimits, SubscribeFileProgress, UnsubscribeFileProgress,
};
use crate::protocol::RawValue;
use crate::types::event::UploadProgress;
use crate::types::{ReadyState, UploadLimits};

/// Which way the bytes of a [`Progress`] report move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// This bot uploading: bytes handed to the connection.
    Upload,
    /// This bot downloading: bytes received.
    Download,
    /// Someone else uploading the file to the server (`uploadFileProgress` events).
    Remote,
}

/// One progress report of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Which transfer this is.
    pub direction: Direction,
    /// The file, when known (an upload learns its id only from `sendFile`).
    pub file_id: Option<String>,
    /// Bytes moved so far.
    pub transferred: u64,
    /// Size of the file, when known.
    pub total: Option<u64>,
}

impl Progress {
    /// `transferred / total` in `0.0..=1.0`, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                (self.transferred as f64 / t as f64).min(1.0)
            }
        })
    }

    /// Whether every byte has moved.
    pub fn is_done(&self) -> bool {
        self.total.is_some_and(|t| self.transferred >= t)
    }
}

/// A stream of [`Progress`] reports. Reports are coalesced: a slow reader sees the latest
/// state, never a backlog. It ends after the report that completes the transfer.
#[must_use = "streams do nothing unless polled"]
pub struct ProgressStream {
    inner: Pin<Box<dyn Stream<Item = Progress> + Send>>,
}

impl std::fmt::Debug for ProgressStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressStream")
    }
}

impl Stream for ProgressStream {
    type Item = Progress;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Progress>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl ProgressStream {
    /// `keep` lives as long as the stream (a subscription guard).
    fn new<K: Send + 'static>(mut rx: watch::Receiver<Option<Progress>>, keep: K) -> Self {
        if rx.borrow().is_some() {
            rx.mark_changed();
        }
        let inner = futures_util::stream::unfold(Some((rx, keep)), |state| async move {
            let (mut rx, keep) = state?;
            loop {
                rx.changed().await.ok()?;
                let latest = rx.borrow_and_update().clone();
                if let Some(p) = latest {
                    let next = (!p.is_done()).then_some((rx, keep));
                    return Some((p, next));
                }
            }
        });
        ProgressStream {
            inner: Box::pin(inner),
        }
    }

    /// A sender for one transfer's own reports and the stream reading them.
    pub(crate) fn channel() -> (watch::Sender<Option<Progress>>, ProgressStream) {
        let (tx, rx) = watch::channel(None);
        (tx, ProgressStream::new(rx, ()))
    }
}

/// A transfer running on its own task. Await it for the result; drop it (or call
/// [`TransferHandle::abort`]) to cancel: the HTTP request is aborted and a half-written file
/// removed.
#[must_use = "dropping the handle cancels the transfer"]
pub struct TransferHandle<T> {
    task: tokio::task::JoinHandle<Result<T>>,
}

impl<T: Send + 'static> TransferHandle<T> {
    /// Runs `transfer` (e.g. `bot.download_file_by_id(id).to_path(p)`) on its own task.
    pub fn spawn(transfer: impl Future<Output = Result<T>> + Send + 'static) -> Self {
        TransferHandle {
            task: tokio::spawn(transfer),
        }
    }
}

impl<T> TransferHandle<T> {
    /// Cancels the transfer.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether it has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> std::fmt::Debug for TransferHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandle")
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

impl<T> Drop for TransferHandle<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> Future for TransferHandle<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.task).poll(cx).map(|r| match r {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(Error::disconnected(
                DisconnectKind::Cancelled,
                "the transfer was cancelled",
            )),
            Err(e) => Err(Error::disconnected(
                DisconnectKind::Internal,
                format!("the transfer task failed: {e}"),
            )),
        })
    }
}

/// Settings of file transfers ([`Bot::configure_transfers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferConfig {
    /// Uploads and downloads running at once; more wait their turn. Default 4.
    pub max_concurrent: usize,
    /// A transfer that moves no byte for this long fails with [`Error::Timeout`]. Default 60 s.
    pub stall_timeout: Duration,
    /// How long a download waits for a file someone is still uploading, counted from the
    /// last progress event. Default 60 s.
    pub ready_timeout: Duration,
    /// Largest file [`DownloadCall::to_bytes`] accepts by default. Default 100 MiB, as the
    /// official client.
    pub max_in_memory: u64,
    /// How often a download is resumed after a transport error. Default 3.
    pub download_retries: usize,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            max_concurrent: 4,
            stall_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(60),
            max_in_memory: 100 * 1024 * 1024,
            download_retries: 3,
        }
    }
}

impl TransferConfig {
    /// Sets [`TransferConfig::max_concurrent`] (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets [`TransferConfig::stall_timeout`].
    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// Sets [`TransferConfig::ready_timeout`].
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }

    /// Sets [`TransferConfig::max_in_memory`].
    pub fn max_in_memory(mut self, bytes: u64) -> Self {
        self.max_in_memory = bytes;
        self
    }

    /// Sets [`TransferConfig::download_retries`].
    pub fn download_retries(mut self, n: usize) -> Self {
        self.download_retries = n;
        self
    }
}

#[derive(Default)]
struct LimitsCache {
    /// The limits and the socket generation they were learned on.
    value: Option<(u64, UploadLimits)>,
    /// Limits events seen so far.
    events: u64,
}

impl LimitsCache {
    fn get(&self, generation: u64) -> Option<UploadLimits> {
        self.value
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, l)| l.clone())
    }
}

struct Watched {
    tx: watch::Sender<Option<Progress>>,
    subscribers: usize,
    total: Option<u64>,
}

/// Transfer state shared by the `Bot` handle, the connection (events) and the actor.
pub(crate) struct Transfers {
    files: Mutex<HashMap<String, Watched>>,
    limits: Mutex<LimitsCache>,
    /// One `getFileUploadLimits` at a time; the others wait for its answer.
    fetching_limits: tokio::sync::Mutex<()>,
    config: RwLock<TransferConfig>,
    permits: RwLock<Arc<Semaphore>>,
    http: OnceLock<reqwest::Client>,
    /// Bumped once progress subscriptions are restored on a new socket.
    online: watch::Sender<u64>,
    actor: RwLock<Option<ActorRef<TransferMsg>>>,
}

impl Default for Transfers {
    fn default() -> Self {
        let config = TransferConfig::default();
        Transfers {
            files: Mutex::default(),
            limits: Mutex::default(),
            fetching_limits: tokio::sync::Mutex::const_new(()),
            permits: RwLock::new(Arc::new(Semaphore::new(config.max_concurrent))),
            config: RwLock::new(config),
            http: OnceLock::new(),
            online: watch::channel(0).0,
            actor: RwLock::default(),
        }
    }
}

use crate::sync::{lock, read, write};

impl Transfers {
    pub(crate) fn config(&self) -> TransferConfig {
        read(&self.config).clone()
    }

    /// New settings apply to transfers started afterwards; running ones keep their permits.
    pub(crate) fn configure(&self, config: TransferConfig) {
        let mut current = write(&self.config);
        if current.max_concurrent != config.max_concurrent {
            *write(&self.permits) = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        }
        *current = config;
    }

    pub(crate) async fn permit(&self) -> Result<OwnedSemaphorePermit> {
        let sem = read(&self.permits).clone();
        sem.acquire_owned().await.map_err(|_| {
            Error::disconnected(DisconnectKind::ShuttingDown, "transfers are shut down")
        })
    }

    /// The HTTP client for file bodies: the bot's TLS settings, but no read timeout (a long
    /// upload waits for its response longer than any request would), stalls being detected
    /// per chunk instead.
    pub(crate) fn http(&self, core: &Core) -> Result<reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*core.tls).clone())
            .user_agent(concat!("trueconf-bot-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(core.config.request_timeout)
            .build()
            .map_err(|e| Error::Http {
                status: None,
                message: "HTTP client setup failed".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// The upload limits, fetched once per connection and updated by the server's event.
    pub(crate) async fn limits(&self, bot: &Bot) -> Result<UploadLimits> {
        let generation = bot.core.generation();
        if let Some(l) = lock(&self.limits).get(generation) {
            return Ok(l);
        }
        let _one = self.fetching_limits.lock().await;
        let events = {
            let cache = lock(&self.limits);
            if let Some(l) = cache.get(generation) {
                return Ok(l);
            }
            cache.events
        };
        let limits = match bot.execute(GetFileUploadLimits {}).await {
            Ok(l) => l,
            // Servers before 5.5.3 do not know the method: they have no limits to tell.
            Err(Error::Api { code, .. }) => {
                tracing::debug!(?code, "no upload limits from the server");
                UploadLimits::default()
            }
            Err(e) => return Err(e),
        };
        let mut cache = lock(&self.limits);
        // An event that came in meanwhile is newer than this answer.
        if cache.events == events {
            cache.value = Some((generation, limits.clone()));
        }
        Ok(cache.get(generation).unwrap_or(limits))
    }

    /// A local subscription to a file's progress; the wire subscription follows through the
    /// actor.
    pub(crate) fn watch(self: &Arc<Self>, file_id: &str) -> Watcher {
        let (rx, first) = {
            let mut files = lock(&self.files);
            let w = files.entry(file_id.to_owned()).or_insert_with(|| Watched {
                tx: watch::channel(None).0,
                subscribers: 0,
                total: None,
            });
            w.subscribers += 1;
            (w.tx.subscribe(), w.subscribers == 1)
        };
        if first {
            self.send(TransferMsg::Sync {
                file_id: file_id.to_owned(),
                reply: None,
            });
        }
        Watcher {
            transfers: self.clone(),
            file_id: file_id.to_owned(),
            rx,
        }
    }

    fn watched(&self, file_id: &str) -> bool {
        lock(&self.files).contains_key(file_id)
    }

    fn watched_ids(&self) -> Vec<String> {
        lock(&self.files).keys().cloned().collect()
    }

    /// Reports progress to the file's local subscribers, if any.
    pub(crate) fn publish(&self, file_id: &str, progress: impl FnOnce(Option<u64>) -> Progress) {
        if let Some(w) = lock(&self.files).get(file_id) {
            w.tx.send_replace(Some(progress(w.total)));
        }
    }

    fn learn(&self, info: &crate::types::FileInfo, file_id: &str) {
        let mut files = lock(&self.files);
        if let Some(w) = files.get_mut(file_id) {
            w.total = Some(info.size);
            if info.ready_state == ReadyState::Ready {
                w.tx.send_replace(Some(Progress {
                    direction: Direction::Remote,
                    file_id: Some(file_id.to_owned()),
                    transferred: info.size,
                    total: Some(info.size),
                }));
            }
        }
    }

    pub(crate) fn online(&self) -> watch::Receiver<u64> {
        self.online.subscribe()
    }

    pub(crate) fn actor_cell(&self) -> Option<ractor::ActorCell> {
        read(&self.actor).as_ref().map(|a| a.get_cell())
    }

    fn send(&self, msg: TransferMsg) -> bool {
        let actor = read(&self.actor).clone();
        actor.is_some_and(|a| a.send_message(msg).is_ok())
    }
}

/// One local subscription to a file's progress. Dropping the last one for a file
/// unsubscribes on the wire.
pub(crate) struct Watcher {
    transfers: Arc<Transfers>,
    file_id: String,
    pub(crate) rx: watch::Receiver<Option<Progress>>,
}

impl Watcher {
    /// Waits until the server sends `uploadFileProgress` for this file. Without a running
    /// actor (bot not started) the subscription is made once it starts.
    pub(crate) async fn subscribed(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.transfers.send(TransferMsg::Sync {
            file_id: self.file_id.clone(),
            reply: Some(tx),
        });
        if !sent {
            return Ok(());
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::disconnected(
                DisconnectKind::Internal,
                "the transfer actor stopped",
            ))
        })
    }

    pub(crate) fn into_stream(self) -> ProgressStream {
        let rx = self.rx.clone();
        ProgressStream::new(rx, self)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let last = {
            let mut files = lock(&self.transfers.files);
            match files.get_mut(&self.file_id) {
                Some(w) if w.subscribers > 1 => {
                    w.subscribers -= 1;
                    false
                }
                Some(_) => {
                    files.remove(&self.file_id);
                    true
                }
                None => false,
            }
        };
        if last {
            self.transfers.send(TransferMsg::Sync {
                file_id: std::mem::take(&mut self.file_id),
                reply: None,
            });
        }
    }
}

/// Takes what the transfer layer needs from a server event (the event still goes on to the
/// user's event stream).
pub(crate) fn observe(core: &Core, method: &str, payload: &RawValue) {
    match method {
        "uploadFileProgress" => match serde_json::from_str::<UploadProgress>(payload.get()) {
            Ok(p) => core.transfers.publish(&p.file_id, |total| Progress {
                direction: Direction::Remote,
                file_id: Some(p.file_id.clone()),
                transferred: p.progress,
                total,
            }),
            Err(e) => tracing::warn!(error = %e, "unreadable uploadFileProgress event"),
        },
        "getFileUploadLimits" => match serde_json::from_str::<UploadLimits>(payload.get()) {
            Ok(l) => {
                tracing::debug!(limits = ?l, "upload limits changed");
                let mut cache = lock(&core.transfers.limits);
                cache.value = Some((core.generation(), l));
                cache.events += 1;
            }
            Err(e) => tracing::warn!(error = %e, "unreadable getFileUploadLimits event"),
        },
        _ => {}
    }
}

/// Messages of the [`TransferActor`].
#[derive(Debug)]
pub(crate) enum TransferMsg {
    /// Bring the wire subscription of a file in line with its local subscribers.
    Sync {
        file_id: String,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
    /// A new socket is authorised: its progress subscriptions start empty.
    Online,
}

/// Owns the wire side of progress subscriptions. Handling them one message at a time keeps
/// subscribe and unsubscribe of one file in order without locks.
pub(crate) struct TransferActor;

pub(crate) struct TransferState {
    core: Arc<Core>,
    /// Files subscribed on the current socket.
    wire: HashSet<String>,
    _watch: TaskGuard,
}

impl Actor for TransferActor {
    type Msg = TransferMsg;
    type State = TransferState;
    type Arguments = Arc<Core>;

    async fn pre_start(
        &self,
        myself: ActorRef<TransferMsg>,
        core: Arc<Core>,
    ) -> Result<TransferState, ActorProcessingErr> {
        *write(&core.transfers.actor) = Some(myself.clone());
        let watch = tokio::spawn(watch_sockets(core.clone(), myself));
        Ok(TransferState {
            core,
            wire: HashSet::new(),
            _watch: TaskGuard(watch),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<TransferMsg>,
        msg: TransferMsg,
        state: &mut TransferState,
    ) -> Result<(), ActorProcessingErr> {
        let bot = Bot::internal(state.core.clone());
        let transfers = &state.core.transfers;
        match msg {
            TransferMsg::Sync { file_id, reply } => {
                let wanted = transfers.watched(&file_id);
                let result = if wanted && !state.wire.contains(&file_id) {
                    let r = subscribe(&bot, &file_id).await;
                    if r.is_ok() {
                        state.wire.insert(file_id);
                    }
                    r
                } else if !wanted && state.wire.remove(&file_id) {
                    if let Err(e) = bot.execute(UnsubscribeFileProgress::new(&file_id)).await {
                        tracing::debug!(%file_id, error = %e, "unsubscribeFileProgress failed");
                    }
                    Ok(())
                } else {
                    Ok(())
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            TransferMsg::Online => {
                state.wire.clear();
                for file_id in transfers.watched_ids() {
                    match subscribe(&bot, &file_id).await {
                        Ok(()) => {
                            state.wire.insert(file_id);
                        }
                        Err(e) => {
                            tracing::warn!(%file_id, error = %e, "restoring a progress subscription failed")
                        }
                    }
                }
                transfers.online.send_modify(|n| *n += 1);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<TransferMsg>,
        state: &mut TransferState,
    ) -> Result<(), ActorProcessingErr> {
        let mut slot = write(&state.core.transfers.actor);
        if slot.as_ref().is_some_and(|a| a.get_id() == myself.get_id()) {
            *slot = None;
        }
        Ok(())
    }
}

/// Subscribes on the wire. The file's size is learned first, so every progress event can
/// carry its total, and again afterwards unless it was complete already: it may have
/// finished before the subscription took effect.
async fn subscribe(bot: &Bot, file_id: &str) -> Result<()> {
    let before = learn_info(bot, file_id).await;
    bot.execute(SubscribeFileProgress::new(file_id)).await?;
    if before != Some(ReadyState::Ready) {
        learn_info(bot, file_id).await;
    }
    Ok(())
}

async fn learn_info(bot: &Bot, file_id: &str) -> Option<ReadyState> {
    match bot.execute(GetFileInfo::new(file_id)).await {
        Ok(info) => {
            bot.core.transfers.learn(&info, file_id);
            Some(info.ready_state)
        }
        Err(e) => {
            tracing::debug!(%file_id, error = %e, "getFileInfo for progress failed");
            None
        }
    }
}

/// Tells the actor about every newly authorised socket (including the first, which restores
/// subscriptions made before the bot started, and after the actor itself restarted).
async fn watch_sockets(core: Arc<Core>, actor: ActorRef<TransferMsg>) {
    let mut states = core.subscribe();
    let mut seen = None;
    loop {
        let ready = matches!(*states.borrow_and_update(), ConnectionState::Ready);
        if ready {
            let generation = core.generation();
            if seen != Some(generation) {
                seen = Some(generation);
                if actor.send_message(TransferMsg::Online).is_err() {
                    return;
                }
            }
        }
        if states.changed().await.is_err() {
            return;
        }
    }
}
