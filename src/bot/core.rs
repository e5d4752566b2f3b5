//! State shared by the `Bot` handle and the runtime actors.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::{mpsc, watch};

use super::config::Config;
use super::throttle::Throttle;
use crate::connection::{ConnMsg, ConnectionState, ServerEvent};
use crate::protocol::Frame;
use crate::router::{RequestTable, RouterMsg};
use crate::supervisor::SupervisorMsg;

/// The outgoing frame queue of the current socket, tagged with its generation.
#[derive(Clone)]
pub(crate) struct Writer {
    pub epoch: u64,
    pub tx: mpsc::UnboundedSender<Frame>,
}

pub(crate) type StateHook = Arc<dyn Fn(&ConnectionState) + Send + Sync>;

pub(crate) struct Core {
    pub config: Config,
    pub http: reqwest::Client,
    pub tls: Arc<rustls::ClientConfig>,
    pub throttle: Option<Throttle>,
    pub table: RequestTable,
    /// The current token; replaced after a re-login.
    pub token: RwLock<Option<super::Secret>>,
    pub domain: OnceLock<String>,
    pub me: RwLock<Option<String>>,
    state: watch::Sender<ConnectionState>,
    hook: Option<StateHook>,
    /// The writer of the authorised socket; `None` while offline.
    writer: RwLock<Option<Writer>>,
    /// Bumped (under the `writer` lock) whenever a socket goes away.
    generation: AtomicU64,
    pub events_tx: RwLock<Option<mpsc::Sender<ServerEvent>>>,
    pub events_rx: Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    pub shutting_down: AtomicBool,
    /// Cancelled once the socket should close (after in-flight requests drained).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Cancelled when no more events should be taken.
    pub stop_events: tokio_util::sync::CancellationToken,
    pub offline_waiters: AtomicUsize,
    pub restarts: AtomicU64,
    pub started: tokio::sync::Mutex<bool>,
    pub supervisor: RwLock<Option<ActorRef<SupervisorMsg>>>,
    pub connection: RwLock<Option<ActorRef<ConnMsg>>>,
    pub router: RwLock<Option<ActorRef<RouterMsg>>>,
    pub transfers: Arc<crate::transfer::Transfers>,
}

impl Core {
    pub(crate) fn new(
        config: Config,
        http: reqwest::Client,
        tls: Arc<rustls::ClientConfig>,
        throttle: Option<Throttle>,
        token: Option<super::Secret>,
        hook: Option<StateHook>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(config.event_buffer.max(1));
        Self {
            config,
            http,
            tls,
            throttle,
            table: RequestTable::default(),
            token: RwLock::new(token),
            domain: OnceLock::new(),
            me: RwLock::new(None),
            state: watch::channel(ConnectionState::Idle).0,
            hook,
            writer: RwLock::new(None),
            generation: AtomicU64::new(0),
            events_tx: RwLock::new(Some(events_tx)),
            events_rx: Mutex::new(Some(events_rx)),
            shutting_down: AtomicBool::new(false),
            shutdown: Default::default(),
            stop_events: Default::default(),
            offline_waiters: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            started: tokio::sync::Mutex::new(false),
            supervisor: RwLock::new(None),
            connection: RwLock::new(None),
            router: RwLock::new(None),
            transfers: Arc::default(),
        }
    }

    pub(crate) fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    /// Publishes a state change. A terminal state is final: later changes are ignored.
    pub(crate) fn set_state(&self, next: ConnectionState) {
        let changed = self.state.send_if_modified(|s| {
            if s.is_terminal() || *s == next {
                return false;
            }
            *s = next.clone();
            true
        });
        if changed {
            tracing::debug!(state = ?next, "connection state");
            if let Some(hook) = &self.hook {
                hook(&next);
            }
        }
    }

    pub(crate) fn writer(&self) -> Option<Writer> {
        read(&self.writer).clone()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Installs the writer of a freshly authorised socket; returns its generation.
    pub(crate) fn go_online(&self, tx: mpsc::UnboundedSender<Frame>) -> u64 {
        let mut slot = write(&self.writer);
        let epoch = self.generation.load(Ordering::Acquire);
        *slot = Some(Writer { epoch, tx });
        epoch
    }

    /// Retires the socket of generation `epoch`: later requests wait for the next socket and the
    /// requests in flight on it are settled by the router.
    pub(crate) fn go_offline(&self, epoch: u64) {
        {
            let mut slot = write(&self.writer);
            if self.generation.load(Ordering::Acquire) != epoch {
                return;
            }
            *slot = None;
            self.generation.store(epoch + 1, Ordering::Release);
        }
        let router = read(&self.router).clone();
        let delivered =
            router.is_some_and(|r| r.send_message(RouterMsg::Offline { epoch }).is_ok());
        if !delivered {
            self.table.settle_offline(epoch);
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }
}

pub(crate) use crate::sync::{lock, read, write};
