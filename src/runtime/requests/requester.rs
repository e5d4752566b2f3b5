//! The request path: what `.await` on a call does, from validation to the decoded response.
//!
//! A [`Requester`] is the narrow handle the RequestRouter's module hands to everyone who
//! sends requests (the `Bot` facade, the FileTransfer actor). It validates and encodes the
//! request, waits for the throttle and for a socket (bounded by the offline queue and the
//! caller's deadline), takes an id, registers the pending entry tagged with the socket's
//! generation, writes the frame and waits. A read whose socket died is sent again on the
//! next one within the same deadline; a write is never re-sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::table::{Callback, Outcome, Pending, Reply, RequestTable};
use super::throttle::{Throttle, ThrottleConfig};
use crate::error::{DisconnectKind, Error, Result};
use crate::methods::{Request, decode_response};
use crate::protocol::{Frame, RawValue};
use crate::runtime::connection::{ConnectionState, Identity, Link, StateBoard};

/// Sends requests and waits for their responses. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Requester(Arc<Inner>);

struct Inner {
    table: Arc<RequestTable>,
    link: Arc<Link>,
    states: Arc<StateBoard>,
    identity: Arc<Identity>,
    throttle: Option<Throttle>,
    timeout: Duration,
    offline_queue: usize,
    offline_waiters: AtomicUsize,
    closing: AtomicBool,
}

/// What a [`Requester`] is built from.
pub(crate) struct RequesterParts {
    pub table: Arc<RequestTable>,
    pub link: Arc<Link>,
    pub states: Arc<StateBoard>,
    pub identity: Arc<Identity>,
    pub throttle: ThrottleConfig,
    pub timeout: Duration,
    pub offline_queue: usize,
}

/// Removes a pending entry when the caller gives up (timeout, dropped future).
struct PendingGuard<'a> {
    table: &'a RequestTable,
    id: Option<u64>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.table.remove(id);
        }
    }
}

/// What one attempt to send a request needs to know.
struct Attempt<'a> {
    method: &'static str,
    idempotent: bool,
    deadline: Instant,
    after: Duration,
    pinned: Option<&'a AtomicBool>,
}

/// A validated, encoded request and its deadline.
struct Prepared {
    body: Box<RawValue>,
    started: Instant,
    deadline: Instant,
    after: Duration,
}

/// How an attempt to send ended.
enum Placed {
    /// Queued on the socket under this id.
    Written(u64),
    /// The socket went away before the frame was queued: safe to send again.
    Unsent(Box<RawValue>, Reply),
    /// Queued, but the socket died around it and its entry was not settled: maybe sent.
    Lost(Reply),
}

fn encode<R: Request>(request: &R) -> Result<Box<RawValue>> {
    serde_json::value::to_raw_value(request).map_err(|e| {
        Error::invalid(
            "request",
            format!("`{}` could not be encoded: {e}", R::METHOD),
        )
    })
}

fn lost_in_flight(method: &str) -> Error {
    Error::disconnected(
        DisconnectKind::OutcomeUnknown,
        format!("connection lost while sending `{method}`; it may or may not have been applied"),
    )
}

/// One of the `offline_queue` places for callers waiting for a socket.
struct OfflineSlot<'a>(&'a AtomicUsize);

impl Drop for OfflineSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Requester {
    pub(crate) fn new(parts: RequesterParts) -> Self {
        Requester(Arc::new(Inner {
            table: parts.table,
            link: parts.link,
            states: parts.states,
            identity: parts.identity,
            throttle: Throttle::new(parts.throttle),
            timeout: parts.timeout,
            offline_queue: parts.offline_queue,
            offline_waiters: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        }))
    }

    /// Refuses new requests from now on; returns whether it did so already.
    pub(crate) fn close(&self) -> bool {
        self.0.closing.swap(true, Ordering::AcqRel)
    }

    /// Whether new requests are refused (shutdown began).
    pub(crate) fn is_closed(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }

    /// Requests waiting for their response.
    pub(crate) fn in_flight(&self) -> usize {
        self.0.table.len()
    }

    /// Whether a throttle is configured (calls then tell which chat they go to).
    pub(crate) fn is_throttled(&self) -> bool {
        self.0.throttle.is_some()
    }

    /// The generation of the current (or next) socket.
    pub(crate) fn generation(&self) -> u64 {
        self.0.link.generation()
    }

    /// Sends `request` (to `chat`, for the per-chat throttle) and waits for its response,
    /// at most `timeout` (default: the bot's request timeout), reconnects included.
    pub(crate) async fn execute<R: Request>(
        &self,
        request: R,
        chat: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<R::Response> {
        self.execute_signalled(request, chat, timeout, None, None)
            .await
    }

    /// [`execute`](Self::execute), telling `queued` as soon as the frame is in the socket's
    /// writer queue (so everything queued after it goes out after it); dropped unsent when the
    /// call ends before that. With `pinned` (the retired flag of the socket the calling
    /// handler's event came on, when that event comes again if not acknowledged) the call is
    /// never written once that socket is retired: it fails with
    /// [`DisconnectKind::EventRedelivered`].
    pub(crate) async fn execute_signalled<R: Request>(
        &self,
        request: R,
        chat: Option<&str>,
        timeout: Option<Duration>,
        mut queued: Option<oneshot::Sender<()>>,
        pinned: Option<Arc<AtomicBool>>,
    ) -> Result<R::Response> {
        let Prepared {
            body: payload,
            started,
            deadline,
            after,
        } = self.prepare(request, chat, timeout).await?;
        let result = self
            .send::<R>(payload, deadline, after, &mut queued, pinned.as_deref())
            .await;
        let elapsed = started.elapsed();
        crate::runtime::telemetry::request_done(R::METHOD, &result, elapsed);
        match &result {
            Ok(_) => tracing::debug!(method = R::METHOD, ?elapsed, "request ok"),
            Err(e) => tracing::debug!(method = R::METHOD, ?elapsed, error = %e, "request failed"),
        }
        result
    }

    async fn send<R: Request>(
        &self,
        body: Box<serde_json::value::RawValue>,
        deadline: Instant,
        after: Duration,
        signal: &mut Option<oneshot::Sender<()>>,
        pinned: Option<&AtomicBool>,
    ) -> Result<R::Response> {
        let this = &*self.0;
        let mut payload = Some(body);
        loop {
            // A read may have to go out again on the next socket, so it keeps a copy.
            let body = match (R::IDEMPOTENT, payload.take()) {
                (true, Some(p)) => {
                    payload = Some(p.clone());
                    p
                }
                (_, Some(p)) => p,
                (_, None) => return Err(Error::protocol("request payload lost")),
            };
            let (tx, rx) = oneshot::channel();
            let at = Attempt {
                method: R::METHOD,
                idempotent: R::IDEMPOTENT,
                deadline,
                after,
                pinned,
            };
            let id = match self.place(&at, body, Reply::Waiter(tx)).await? {
                Placed::Unsent(p, _) => {
                    payload = Some(p);
                    continue;
                }
                Placed::Lost(_) => {
                    if let Some(tx) = signal.take() {
                        let _ = tx.send(());
                    }
                    if R::IDEMPOTENT {
                        continue;
                    }
                    return Err(lost_in_flight(R::METHOD));
                }
                Placed::Written(id) => id,
            };
            if let Some(tx) = signal.take() {
                let _ = tx.send(());
            }
            let mut guard = PendingGuard {
                table: &this.table,
                id: Some(id),
            };
            let outcome = match tokio::time::timeout_at(deadline, rx).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        what: R::METHOD.to_owned(),
                        after,
                    });
                }
                Ok(outcome) => outcome,
            };
            guard.id = None;
            match outcome {
                Err(_) => {
                    return Err(Error::disconnected(
                        DisconnectKind::Internal,
                        format!("`{}` was dropped by the runtime", R::METHOD),
                    ));
                }
                Ok(Outcome::Response(p)) => return decode_response::<R>(p.as_deref()),
                Ok(Outcome::Retry) => {
                    tracing::debug!(id, "re-sending idempotent request after reconnect");
                }
                Ok(Outcome::Failed(e)) => return Err(e),
            }
        }
    }

    /// Queues `request` without waiting for its response (what
    /// [`Call::queue`](crate::bot::Call::queue) does): returns once the frame is in the socket's
    /// writer queue, and `done` gets the result later, from whoever learns it (the socket
    /// reader, a lost socket, the router's sweep at the deadline). No task waits for the
    /// answer. Only for requests that are never sent again (writes): nothing is kept to
    /// resend on the next socket. An error before the frame is queued is returned, and
    /// `done` is then dropped uncalled.
    pub(crate) async fn enqueue<R: Request>(
        &self,
        request: R,
        chat: Option<&str>,
        timeout: Option<Duration>,
        pinned: Option<&AtomicBool>,
        done: Box<dyn FnOnce(Result<()>) + Send + Sync>,
    ) -> Result<()> {
        debug_assert!(!R::IDEMPOTENT, "reads are re-sent, so they are awaited");
        let Prepared {
            mut body,
            started,
            deadline,
            after,
        } = self.prepare(request, chat, timeout).await?;
        let callback: Callback = Box::new(move |outcome| {
            let result = match outcome {
                Outcome::Response(p) => decode_response::<R>(p.as_deref()).map(drop),
                Outcome::Retry => Err(lost_in_flight(R::METHOD)),
                Outcome::Failed(e) => Err(e),
            };
            crate::runtime::telemetry::request_done(R::METHOD, &result, started.elapsed());
            done(result);
        });
        let mut reply = Reply::Callback {
            done: callback,
            deadline,
            after,
        };
        let at = Attempt {
            method: R::METHOD,
            idempotent: false,
            deadline,
            after,
            pinned,
        };
        loop {
            match self.place(&at, body, reply).await {
                Ok(Placed::Written(_)) => return Ok(()),
                Ok(Placed::Unsent(b, r)) => (body, reply) = (b, r),
                Ok(Placed::Lost(r)) => {
                    r.send(Outcome::Failed(lost_in_flight(R::METHOD)));
                    return Ok(());
                }
                Err(e) => {
                    // Never queued: counted here, as the callback that would count it is
                    // dropped uncalled.
                    let result = Err(e);
                    crate::runtime::telemetry::request_done(R::METHOD, &result, started.elapsed());
                    return result;
                }
            }
        }
    }

    /// What every call does before its first attempt: validation, `@domain` completion of
    /// bare logins, the deadline, the throttle, the encoding.
    async fn prepare<R: Request>(
        &self,
        mut request: R,
        chat: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Prepared> {
        let this = &*self.0;
        request.validate()?;
        if let Some(domain) = this.identity.domain() {
            request.complete_user_ids(domain);
        }
        let started = Instant::now();
        let after = timeout.unwrap_or(this.timeout);
        if let Some(t) = &this.throttle {
            t.acquire(chat).await;
        }
        Ok(Prepared {
            body: encode(&request)?,
            started,
            deadline: started + after,
            after,
        })
    }

    /// One attempt to put a request on the current socket: waits for one (within the
    /// deadline, in the offline queue), registers `reply` under a fresh id and queues the
    /// frame behind whatever is queued already.
    async fn place(&self, at: &Attempt<'_>, body: Box<RawValue>, reply: Reply) -> Result<Placed> {
        let this = &*self.0;
        if at.pinned.is_some_and(|p| p.load(Ordering::Acquire)) {
            return Err(Error::disconnected(
                DisconnectKind::EventRedelivered,
                format!(
                    "`{}` not sent: the event being handled came on a connection that is \
                     gone, and comes again",
                    at.method
                ),
            ));
        }
        if self.is_closed() {
            return Err(Error::disconnected(
                DisconnectKind::ShuttingDown,
                "the bot is shutting down",
            ));
        }
        let Some(writer) = this.link.writer() else {
            self.wait_online(at.deadline, at.after, at.method).await?;
            return Ok(Placed::Unsent(body, reply));
        };
        let id = this.table.next_id();
        tracing::Span::current().record("id", id);
        this.table.insert(
            id,
            Pending {
                method: at.method,
                generation: writer.generation,
                idempotent: at.idempotent,
                tx: reply,
            },
        );
        let mut guard = PendingGuard {
            table: &this.table,
            id: Some(id),
        };
        // Waits for room in the socket's writer queue (backpressure), within the deadline.
        let queued = tokio::time::timeout_at(
            at.deadline,
            writer.tx.send(Frame::request(id, at.method, body)),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: at.method.to_owned(),
            after: at.after,
        })?;
        guard.id = None;
        if let Err(frame) = queued {
            // Never written: the socket is gone, so it is safe to wait and send again.
            let pending = this.table.remove(id);
            let _ =
                tokio::time::timeout_at(at.deadline, this.link.retired(writer.generation)).await;
            return match (frame, pending) {
                (Frame::Request { payload, .. }, Some(p)) => Ok(Placed::Unsent(payload, p.tx)),
                _ => Err(Error::protocol("request payload lost")),
            };
        }
        if this.link.generation() != writer.generation
            && let Some(p) = this.table.remove(id)
        {
            // The socket died around the send and the router's sweep missed this entry.
            return Ok(Placed::Lost(p.tx));
        }
        Ok(Placed::Written(id))
    }

    /// Waits for an authorised socket, in one of the `offline_queue` places.
    async fn wait_online(&self, deadline: Instant, after: Duration, method: &str) -> Result<()> {
        let this = &*self.0;
        let mut states = this.states.subscribe();
        let state = states.borrow().clone();
        match state {
            ConnectionState::Failed(f) => return Err(f.to_error()),
            ConnectionState::Stopped => {
                return Err(Error::disconnected(
                    DisconnectKind::ShuttingDown,
                    "the bot is stopped",
                ));
            }
            ConnectionState::Idle => {
                return Err(Error::disconnected(
                    DisconnectKind::NotStarted,
                    "the bot is not started: call `start()` or `run()` first",
                ));
            }
            _ => {}
        }
        let waiting = this.offline_waiters.fetch_add(1, Ordering::AcqRel);
        let _slot = OfflineSlot(&this.offline_waiters);
        if waiting >= this.offline_queue {
            return Err(Error::disconnected(
                DisconnectKind::OfflineQueueFull,
                format!("offline: {waiting} requests already wait for the reconnect"),
            ));
        }
        let wait = async {
            tokio::select! {
                _ = this.link.online() => Ok(()),
                s = states.wait_for(ConnectionState::is_terminal) => match s.as_deref() {
                    Ok(ConnectionState::Failed(f)) => Err(f.to_error()),
                    _ => Err(Error::disconnected(DisconnectKind::ShuttingDown, "the bot is stopped")),
                },
            }
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Err(_) => Err(Error::Timeout {
                what: format!("{method} (waiting for the connection)"),
                after,
            }),
            Ok(r) => r,
        }
    }
}

/// The request path without sockets: a fake writer stands in for the connection, the test
/// settles lost sockets as the RequestRouter would, and tokio's paused clock makes the
/// timeouts exact.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{GetChats, SendMessage};
    use crate::protocol::RawValue;
    use crate::runtime::connection::{FrameReceiver, frame_queue};

    struct World {
        requester: Requester,
        table: Arc<RequestTable>,
        link: Arc<Link>,
        states: Arc<StateBoard>,
    }

    fn world(offline_queue: usize) -> World {
        let table = Arc::new(RequestTable::default());
        let link = Arc::new(Link::default());
        let states = Arc::new(StateBoard::new(None));
        let requester = Requester::new(RequesterParts {
            table: table.clone(),
            link: link.clone(),
            states: states.clone(),
            identity: Arc::new(Identity::new(None)),
            throttle: ThrottleConfig::default(),
            timeout: Duration::from_secs(10),
            offline_queue,
        });
        World {
            requester,
            table,
            link,
            states,
        }
    }

    impl World {
        fn online(&self) -> (u64, FrameReceiver) {
            let (tx, rx) = frame_queue(1 << 20);
            let generation = self.link.install(tx);
            self.states.publish(ConnectionState::Ready);
            (generation, rx)
        }

        fn offline(&self, generation: u64) {
            assert!(self.link.retire(generation));
            self.table.settle_offline(generation);
            self.states
                .publish(ConnectionState::Reconnecting { attempt: 1 });
        }

        fn answer(&self, frame: &Frame, json: &str) {
            let raw = RawValue::from_string(json.to_owned()).expect("json");
            self.table.resolve(frame.id(), Some(raw));
        }

        fn call<R: Request + Send + 'static>(
            &self,
            request: R,
        ) -> tokio::task::JoinHandle<Result<R::Response>>
        where
            R::Response: Send,
        {
            let requester = self.requester.clone();
            tokio::spawn(async move { requester.execute(request, None, None).await })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_before_start_fail_as_not_started() {
        let w = world(4);
        let err = w.call(GetChats::new(10, 1)).await.unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::NotStarted),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn offline_requests_wait_in_a_bounded_queue_and_time_out() {
        let w = world(1);
        w.states.publish(ConnectionState::Connecting);
        let waiting = w.call(GetChats::new(10, 1));
        tokio::task::yield_now().await;
        let err = w.call(GetChats::new(10, 1)).await.unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::OfflineQueueFull),
            "{err}"
        );

        let (generation, mut rx) = w.online();
        let frame = rx.recv().await.expect("sent once online");
        w.answer(&frame, r#"{"chats":[]}"#);
        assert!(waiting.await.unwrap().expect("answered").chats.is_empty());

        w.offline(generation);
        let began = Instant::now();
        let err = w.call(GetChats::new(10, 1)).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(began.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_pinned_to_a_retired_socket_is_never_sent_on_the_next_one() {
        let w = world(16);
        let (generation, _rx) = w.online();
        let retired = Arc::new(AtomicBool::new(false));
        let requester = w.requester.clone();
        let pin = retired.clone();
        // Offline: the call waits for a socket, as a handler's answer does after a close.
        retired.store(true, Ordering::Release);
        w.offline(generation);
        let call = tokio::spawn(async move {
            requester
                .execute_signalled(SendMessage::new("c", "hi"), None, None, None, Some(pin))
                .await
        });
        let (_, mut rx) = w.online();
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::EventRedelivered),
            "{err}"
        );
        assert!(
            rx.try_recv().is_none(),
            "nothing went out on the new socket"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_socket_resends_reads_and_fails_writes() {
        let w = world(16);
        let (generation, mut rx) = w.online();
        let read = w.call(GetChats::new(10, 1));
        let write = w.call(SendMessage::new("c", "hi"));
        let first = rx.recv().await.expect("read sent");
        let _ = rx.recv().await.expect("write sent");
        w.offline(generation);
        let err = write.await.unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::OutcomeUnknown),
            "{err}"
        );
        assert_eq!(w.requester.in_flight(), 0);

        let (_, mut rx) = w.online();
        let again = rx.recv().await.expect("read re-sent on the new socket");
        assert!(again.id() > first.id(), "a fresh id, never reused");
        // A late answer to the old id resolves nothing.
        w.answer(&first, r#"{"chats":[]}"#);
        w.answer(&again, r#"{"chats":[]}"#);
        assert!(read.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_and_cancelled_calls_leave_nothing_behind() {
        let w = world(16);
        let (_, mut rx) = w.online();
        let call = w.call(SendMessage::new("c", "x"));
        let frame = rx.recv().await.expect("sent");
        w.answer(&frame, r#"{"errorCode":304}"#);
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.api_code().map(|c| c.0), Some(304));

        let call = w.call(GetChats::new(1, 1));
        let _ = rx.recv().await.expect("sent");
        assert_eq!(w.requester.in_flight(), 1);
        call.abort();
        let _ = call.await;
        assert_eq!(
            w.requester.in_flight(),
            0,
            "a dropped call removes its pending entry"
        );
    }

    /// A queued call: resolves once queued; its outcome arrives on the returned receiver.
    async fn enqueue(
        w: &World,
        request: SendMessage,
        timeout: Option<Duration>,
    ) -> tokio::sync::oneshot::Receiver<Result<()>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = Box::new(move |r: Result<()>| {
            let _ = tx.send(r);
        });
        w.requester
            .enqueue(request, None, timeout, None, done)
            .await
            .expect("queued");
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_call_learns_its_answer_without_a_waiting_task() {
        let w = world(16);
        let (_, mut rx) = w.online();
        let mut ok = enqueue(&w, SendMessage::new("c", "a"), None).await;
        let mut refused = enqueue(&w, SendMessage::new("c", "b"), None).await;
        let (first, second) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert!(ok.try_recv().is_err(), "nothing before the answer");
        w.answer(&first, r#"{"chatId":"c","messageId":"m","timestamp":1}"#);
        w.answer(&second, r#"{"errorCode":304}"#);
        assert!(ok.await.unwrap().is_ok());
        let err = refused.try_recv().unwrap().unwrap_err();
        assert_eq!(err.api_code().map(|c| c.0), Some(304));
        assert_eq!(w.requester.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_call_times_out_at_the_sweep_and_fails_when_its_socket_dies() {
        let w = world(16);
        let (generation, _rx) = w.online();
        let timeout = Duration::from_secs(3);
        let mut silent = enqueue(&w, SendMessage::new("c", "a"), Some(timeout)).await;
        let mut lost = enqueue(&w, SendMessage::new("c", "b"), None).await;
        assert_eq!(w.table.expire(Instant::now() + timeout / 2), 0, "not yet");
        assert!(silent.try_recv().is_err());
        assert_eq!(w.table.expire(Instant::now() + timeout), 1);
        let err = silent.try_recv().unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Timeout { what, after } if what == "sendMessage" && *after == timeout),
            "{err}"
        );
        w.offline(generation);
        let err = lost.try_recv().unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::OutcomeUnknown),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_requester_refuses_new_calls() {
        let w = world(16);
        let _online = w.online();
        assert!(!w.requester.close());
        let err = w.call(GetChats::new(1, 1)).await.unwrap().unwrap_err();
        assert_eq!(
            err.disconnect_kind(),
            Some(DisconnectKind::ShuttingDown),
            "{err}"
        );
    }
}
