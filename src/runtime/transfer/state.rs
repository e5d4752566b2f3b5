//! The shared side of the FileTransfer actor: what callers and the socket reader use
//! without an actor hop (progress channels, limits, settings, permits), and the messages
//! that reach the actor for what must be ordered (the wire subscriptions).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ractor::ActorRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use super::config::TransferConfig;
use super::progress::{Direction, Progress, ProgressStream};
use crate::error::{DisconnectKind, Error, Result};
use crate::methods::{GetFileUploadLimits, Request};
use crate::protocol::RawValue;
use crate::runtime::config::Config;
use crate::runtime::connection::EventTap;
use crate::runtime::connection::tls::http_client;
use crate::runtime::requests::Requester;
use crate::sync::{lock, read, write};
use crate::types::event::UploadProgress;
use crate::types::{ParseMode, ReadyState, UploadLimits};

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

/// The FileTransfer side every caller shares: progress channels, the upload limits, the
/// transfer settings and permits, and the way to the actor.
pub(crate) struct Transfers {
    /// How transfers send their requests.
    pub(crate) requester: Requester,
    bot_config: Arc<Config>,
    tls: Arc<rustls::ClientConfig>,
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

impl Transfers {
    pub(crate) fn new(
        requester: Requester,
        bot_config: Arc<Config>,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        let config = TransferConfig::default();
        Transfers {
            requester,
            bot_config,
            tls,
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

    /// The HTTP client for file bodies: the bot's TLS settings and request rules (no
    /// redirects: a download URL authorises itself), but no read timeout (a long upload waits
    /// for its response longer than any request would), stalls being detected per chunk
    /// instead.
    pub(crate) fn http(&self) -> Result<reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c.clone());
        }
        let client = http_client(&self.tls, self.bot_config.https)
            .connect_timeout(self.bot_config.request_timeout)
            .build()
            .map_err(|e| Error::Http {
                status: None,
                message: "HTTP client setup failed".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// The upload limits, fetched once per connection and updated by the server's event.
    pub(crate) async fn limits(&self) -> Result<UploadLimits> {
        let generation = self.requester.generation();
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
        let limits = match self.execute(GetFileUploadLimits {}).await {
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

    pub(super) fn watched(&self, file_id: &str) -> bool {
        lock(&self.files).contains_key(file_id)
    }

    pub(super) fn watched_ids(&self) -> Vec<String> {
        lock(&self.files).keys().cloned().collect()
    }

    /// Reports progress to the file's local subscribers, if any.
    pub(crate) fn publish(&self, file_id: &str, progress: impl FnOnce(Option<u64>) -> Progress) {
        if let Some(w) = lock(&self.files).get(file_id) {
            w.tx.send_replace(Some(progress(w.total)));
        }
    }

    pub(super) fn learn(&self, info: &crate::types::FileInfo, file_id: &str) {
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

    /// The actor registers itself when it starts (and again after a restart).
    pub(super) fn register(&self, actor: ActorRef<TransferMsg>) {
        *write(&self.actor) = Some(actor);
    }

    /// The actor forgets itself when it stops, unless a newer one registered meanwhile.
    pub(super) fn unregister(&self, actor: &ActorRef<TransferMsg>) {
        let mut slot = write(&self.actor);
        if slot.as_ref().is_some_and(|a| a.get_id() == actor.get_id()) {
            *slot = None;
        }
    }

    /// New progress subscriptions are in place on a new socket.
    pub(super) fn online_done(&self) {
        self.online.send_modify(|n| *n += 1);
    }

    /// Sends a request on behalf of a transfer.
    pub(crate) async fn execute<R: Request>(&self, request: R) -> Result<R::Response> {
        self.requester.execute(request, None, None).await
    }

    /// The bot's default parse mode, for captions.
    pub(crate) fn default_parse_mode(&self) -> ParseMode {
        self.bot_config.default_parse_mode.clone()
    }

    /// `http(s)://host:port` of the server.
    pub(crate) fn http_base(&self) -> String {
        self.bot_config.http_base()
    }

    pub(super) fn send(&self, msg: TransferMsg) -> bool {
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

/// Takes what the transfer side needs from a server event (the event still goes on to the
/// user's event stream).
impl EventTap for Transfers {
    fn observe(&self, method: &str, payload: &RawValue) {
        match method {
            "uploadFileProgress" => match serde_json::from_str::<UploadProgress>(payload.get()) {
                Ok(p) => self.publish(&p.file_id, |total| Progress {
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
                    let mut cache = lock(&self.limits);
                    cache.value = Some((self.requester.generation(), l));
                    cache.events += 1;
                }
                Err(e) => tracing::warn!(error = %e, "unreadable getFileUploadLimits event"),
            },
            _ => {}
        }
    }
}
