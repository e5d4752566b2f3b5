//! The one object the test-side handles ([`Sim`], [`SimUser`], [`Faults`]) and the server's
//! request handlers share: configuration, the protocol state behind its lock, the JWT secret,
//! and the knobs fault injection turns.
//!
//! Handles and handlers never talk to each other directly; they change this object and wake
//! whoever waits on [`Shared::notify`]. Keeping it in its own file lets both sides import it
//! without importing each other.
//!
//! [`Sim`]: crate::testkit::Sim
//! [`SimUser`]: crate::testkit::SimUser
//! [`Faults`]: crate::testkit::Faults

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::SimConfig;
use super::jwt;
use super::state::State;
use super::tap::Tap;
use super::wire::Out;
use crate::error::{Error, Result};
use crate::sync::lock;

/// Everything a running emulator shares between its handles and its request handlers.
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    state: Mutex<State>,
    pub(crate) secret: [u8; 32],
    /// Woken after every change a waiting assertion might be looking for.
    pub(crate) notify: Notify,
    pub(crate) next_conn: AtomicU64,
    pub(crate) password_login: AtomicBool,
    /// Drop one socket after this many more frames (one-shot; `0` = off).
    pub(crate) drop_after: AtomicU64,
    /// Delay before answering each request, in microseconds (`0` = off).
    pub(crate) delay_us: AtomicU64,
    /// Downloads: cut the next one after this many bytes (one-shot; `u64::MAX` = off).
    pub(crate) cut_download: AtomicU64,
    /// Downloads: stall every one after this many bytes (`u64::MAX` = off).
    pub(crate) stall_download: AtomicU64,
    /// Downloads: answer `Range` requests with the whole file (200), as servers without range
    /// support do.
    pub(crate) ignore_ranges: AtomicBool,
    /// The `Range` header of every file download request.
    pub(crate) download_ranges: Mutex<Vec<Option<String>>>,
    /// Refuse WebSocket handshakes until then.
    pub(crate) refuse_until: Mutex<Option<Instant>>,
    /// OAuth step 1: web API token → login.
    pub(crate) web_tokens: Mutex<HashMap<String, String>>,
    /// OAuth step 2: authorization code → login.
    pub(crate) auth_codes: Mutex<HashMap<String, String>>,
    /// Copies of the WebSocket frames, for the web page's inspector.
    pub(crate) tap: Tap,
}

impl Shared {
    /// Fresh shared state with every fault off.
    pub(crate) fn new(cfg: SimConfig, state: State) -> Self {
        Shared {
            password_login: AtomicBool::new(cfg.password_login),
            cfg,
            state: Mutex::new(state),
            secret: rand::random(),
            notify: Notify::new(),
            next_conn: AtomicU64::new(1),
            drop_after: AtomicU64::new(0),
            delay_us: AtomicU64::new(0),
            cut_download: AtomicU64::new(u64::MAX),
            stall_download: AtomicU64::new(u64::MAX),
            download_ranges: Mutex::new(Vec::new()),
            ignore_ranges: AtomicBool::new(false),
            refuse_until: Mutex::new(None),
            web_tokens: Mutex::new(HashMap::new()),
            auth_codes: Mutex::new(HashMap::new()),
            tap: Tap::new(),
        }
    }

    /// The protocol state, locked.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A valid token for `login`, living the configured time.
    pub(crate) fn token_for(&self, login: &str) -> String {
        let expires = jwt::now_secs() + self.cfg.token_ttl.as_secs() as i64;
        jwt::sign(
            &self.secret,
            &format!("{login}@{}", self.cfg.domain),
            expires,
        )
    }

    /// The login, when `password` is right and the account is enabled.
    pub(crate) fn check_password(&self, login: &str, password: &str) -> Option<String> {
        let state = self.state();
        let user = state.users.get(login)?;
        (user.password.as_deref() == Some(password) && !user.disabled).then(|| login.to_owned())
    }

    /// Whether WebSocket handshakes are being refused right now.
    pub(crate) fn refusing(&self) -> bool {
        lock(&self.refuse_until).is_some_and(|until| Instant::now() < until)
    }

    /// The injected response delay.
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Relaxed))
    }

    /// Counts one sent frame against the drop-after fault; `true` = drop after this one.
    pub(crate) fn count_frame(&self) -> bool {
        if self.drop_after.load(Relaxed) == 0 {
            return false;
        }
        self.drop_after
            .fetch_update(Relaxed, Relaxed, |left| left.checked_sub(1))
            .is_ok_and(|before| before == 1)
    }

    /// Writes `out()` to every authenticated connection.
    pub(crate) fn send_all(&self, out: impl Fn() -> Out) {
        let state = self.state();
        for id in state.authed_conn_ids() {
            if let Some(conn) = state.conns.get(&id) {
                let _ = conn.tx.send(out());
            }
        }
    }

    /// Waits until `check` yields a value or the timeout passes.
    pub(crate) async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check(&mut self.state()) {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                });
            }
        }
    }
}
