//! Requests: ids, the pending table, timeouts, the client-side throttle, and the
//! RequestRouter actor that decides what happens to requests when their socket goes away.
//!
//! The hot path has no actor hop: a caller's [`Requester`] writes its frame to the current
//! socket and waits on a oneshot that the socket reader resolves through the table. The
//! RequestRouter actor handles what is rare and must be ordered: a lost socket (reads are
//! told to retry on the next one, writes fail with `DisconnectKind::OutcomeUnknown`), the
//! deadlines of queued calls nobody awaits (a sweep every [`SWEEP_EVERY`]), and the drain
//! at shutdown.

pub(crate) mod requester;
mod table;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

pub(crate) use requester::Requester;
pub(crate) use table::RequestTable;
pub use throttle::{Rate, ThrottleConfig};

use crate::error::DisconnectKind;
use crate::runtime::connection::Link;

/// How often the router fails the queued calls past their deadline: such a call times out at
/// most this much late.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Messages of the [`RequestRouter`].
#[derive(Debug)]
pub(crate) enum RouterMsg {
    /// Fail the queued calls whose deadline passed (sent to itself every [`SWEEP_EVERY`]).
    Sweep,
    /// Socket `generation` is gone: settle its in-flight requests.
    Offline {
        /// The retired socket generation.
        generation: u64,
    },
    /// Wait up to `deadline` for the pending requests to finish, then fail the rest; replies
    /// with the number failed.
    Drain {
        /// How long in-flight requests may still take.
        deadline: Duration,
        /// Where the count of failed requests goes.
        reply: RpcReplyPort<usize>,
    },
}

/// What a RequestRouter is started with (again after every restart).
#[derive(Clone)]
pub(crate) struct RouterArgs {
    /// The pending table; it outlives the actor, so a restart loses no request.
    pub table: Arc<RequestTable>,
    /// The connection's link, to learn which sockets are gone.
    pub link: Arc<Link>,
}

/// The RequestRouter actor; see the module docs.
pub(crate) struct RequestRouter;

/// The router's state: what it was started with and its sweep timer.
pub(crate) struct RouterState {
    args: RouterArgs,
    sweep: JoinHandle<()>,
}

impl Actor for RequestRouter {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        // A socket may have died while no router was running: settle what it left behind.
        let current = args.link.generation();
        if current > 0 {
            args.table.settle_offline(current - 1);
        }
        let sweep = myself.send_interval(SWEEP_EVERY, || RouterMsg::Sweep);
        Ok(RouterState { args, sweep })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RouterMsg>,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        state.sweep.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        let state = &state.args;
        match msg {
            RouterMsg::Sweep => {
                let n = state.table.expire(tokio::time::Instant::now());
                if n > 0 {
                    tracing::debug!(expired = n, "queued calls timed out");
                }
            }
            RouterMsg::Offline { generation } => {
                let n = state.table.settle_offline(generation);
                if n > 0 {
                    tracing::info!(
                        generation,
                        settled = n,
                        "settled requests of a lost connection"
                    );
                }
            }
            RouterMsg::Drain { deadline, reply } => {
                let until = tokio::time::Instant::now() + deadline;
                while state.table.len() > 0 && tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let failed = state
                    .table
                    .fail_all(DisconnectKind::ShuttingDown, "the bot is shutting down");
                let _ = reply.send(failed);
            }
        }
        Ok(())
    }
}
