//! The Supervisor: the root of the runtime's actor tree.
//!
//! It spawns the RequestRouter (first, so a lost socket always has someone to settle its
//! requests), the Connection and the FileTransfer actor, and owns what ties them together:
//!
//! * their references, so one child reaches another only through it;
//! * the restart budget: a child that dies while the bot runs is restarted, at most `max`
//!   times within `window`; one more and the bot fails with `FailureKind::RestartLimit`;
//! * the published connection state: the socket task reports [`LinkEvent`]s, the
//!   supervisor turns them into `ConnectionState`s and tells the other children (a lost
//!   socket to the RequestRouter, a new one to the FileTransfer actor).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;

use super::config::Config;
use super::connection::{
    ConnMsg, ConnectionActor, ConnectionState, Failure, FailureKind, LinkEvent, SocketArgs,
    StateBoard,
};
use super::requests::{RequestRouter, RequestTable, RouterArgs, RouterMsg};
use super::transfer::{TransferActor, TransferMsg, Transfers};
use crate::error::DisconnectKind;

/// Messages of the [`Supervisor`].
#[derive(Debug)]
pub(crate) enum SupervisorMsg {
    /// A report of the socket task.
    Link(LinkEvent),
    /// Graceful shutdown: let in-flight requests finish within `deadline`, fail the rest,
    /// then close the socket. Replies with the number of requests failed.
    Shutdown {
        /// How long in-flight requests may still take.
        deadline: Duration,
        /// Where the count goes.
        reply: RpcReplyPort<usize>,
    },
    /// Which actor currently plays `role` (fault-injection tests).
    #[cfg(feature = "testkit")]
    Whois(RuntimeActor, RpcReplyPort<Option<RuntimeActorId>>),
    /// Kill the actor that plays `role` (fault-injection tests).
    #[cfg(feature = "testkit")]
    Kill(RuntimeActor),
}

impl From<LinkEvent> for SupervisorMsg {
    fn from(e: LinkEvent) -> Self {
        SupervisorMsg::Link(e)
    }
}

impl TryFrom<SupervisorMsg> for LinkEvent {
    type Error = SupervisorMsg;

    fn try_from(m: SupervisorMsg) -> Result<Self, SupervisorMsg> {
        match m {
            SupervisorMsg::Link(e) => Ok(e),
            other => Err(other),
        }
    }
}

/// The children of the supervisor, for fault-injection tests (feature `testkit`).
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeActor {
    /// The Connection actor (socket, auth, keepalive, reconnect).
    Connection,
    /// The RequestRouter actor (lost sockets, drain).
    RequestRouter,
    /// The FileTransfer actor (progress subscriptions).
    FileTransfer,
}

/// Identifies one incarnation of a runtime actor: a restarted actor has a new one.
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeActorId(ractor::ActorId);

/// What the supervisor is started with: the parts its children are made of.
pub(crate) struct SupervisorArgs {
    pub config: Arc<Config>,
    pub states: Arc<StateBoard>,
    pub table: Arc<RequestTable>,
    pub transfers: Arc<Transfers>,
    pub restarts: Arc<AtomicU64>,
    /// The socket task's parts, all but the report address (the supervisor's own).
    pub socket: Box<dyn Fn(ractor::DerivedActorRef<LinkEvent>) -> SocketArgs + Send + Sync>,
}

/// The Supervisor actor; see the module docs.
pub(crate) struct Supervisor;

/// The supervisor's own state.
pub(crate) struct SupState {
    args: SupervisorArgs,
    socket: SocketArgs,
    connection: ActorRef<ConnMsg>,
    router: ActorRef<RouterMsg>,
    transfer: ActorRef<TransferMsg>,
    /// When recent restarts happened, for the budget.
    restarts: VecDeque<Instant>,
    /// The authorised socket's generation, while there is one.
    online: Option<u64>,
    /// Shutting down: children that end are not restarted.
    closing: bool,
}

impl SupState {
    fn router_args(&self) -> RouterArgs {
        RouterArgs {
            table: self.args.table.clone(),
            link: self.socket.link.clone(),
        }
    }

    /// Ends the bot for good: pending requests fail and the state says why.
    fn fail(&self, f: Failure, myself: &ActorRef<SupervisorMsg>) {
        tracing::error!(failure = %f, "the bot failed");
        self.args
            .table
            .fail_all(DisconnectKind::Failed(f.kind), &f.message);
        self.args.states.publish(ConnectionState::Failed(f));
        myself.stop(Some("bot failed".into()));
    }

    #[cfg(feature = "testkit")]
    fn cell(&self, role: RuntimeActor) -> ractor::ActorCell {
        match role {
            RuntimeActor::Connection => self.connection.get_cell(),
            RuntimeActor::RequestRouter => self.router.get_cell(),
            RuntimeActor::FileTransfer => self.transfer.get_cell(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Child {
    Connection,
    Router,
    Transfer,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupState, ActorProcessingErr> {
        let socket = (args.socket)(myself.get_derived());
        let cell = myself.get_cell();
        let router_args = RouterArgs {
            table: args.table.clone(),
            link: socket.link.clone(),
        };
        let (router, _) =
            Actor::spawn_linked(None, RequestRouter, router_args, cell.clone()).await?;
        let (connection, _) =
            Actor::spawn_linked(None, ConnectionActor, socket.clone(), cell.clone()).await?;
        let (transfer, _) =
            Actor::spawn_linked(None, TransferActor, args.transfers.clone(), cell).await?;
        Ok(SupState {
            args,
            socket,
            connection,
            router,
            transfer,
            restarts: VecDeque::new(),
            online: None,
            closing: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Link(event) => on_link(event, state, &myself),
            SupervisorMsg::Shutdown { deadline, reply } => {
                state.closing = true;
                let (router, connection) = (state.router.clone(), state.connection.clone());
                let table = state.args.table.clone();
                // Drained on a task of its own: socket reports keep flowing meanwhile.
                tokio::spawn(async move {
                    let drained = router
                        .call(
                            |reply| RouterMsg::Drain { deadline, reply },
                            Some(deadline + Duration::from_millis(500)),
                        )
                        .await;
                    let failed = match drained {
                        Ok(ractor::rpc::CallResult::Success(n)) => n,
                        _ => {
                            table.fail_all(DisconnectKind::ShuttingDown, "the bot is shutting down")
                        }
                    };
                    let _ = connection.send_message(ConnMsg::Close);
                    let _ = reply.send(failed);
                });
            }
            #[cfg(feature = "testkit")]
            SupervisorMsg::Whois(role, reply) => {
                let _ = reply.send(Some(RuntimeActorId(state.cell(role).get_id())));
            }
            #[cfg(feature = "testkit")]
            SupervisorMsg::Kill(role) => state.cell(role).kill(),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match &event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                reason.clone().unwrap_or_else(|| "terminated".to_owned()),
            ),
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        let child = if id == state.connection.get_id() {
            Child::Connection
        } else if id == state.router.get_id() {
            Child::Router
        } else if id == state.transfer.get_id() {
            Child::Transfer
        } else {
            return Ok(());
        };
        if state.closing || state.args.states.is_terminal() {
            tracing::debug!(?child, %why, "child ended; not restarting");
            myself.stop(Some("bot finished".into()));
            return Ok(());
        }
        let (max, window) = state.args.config.restart_limit;
        let now = Instant::now();
        while state
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            state.restarts.pop_front();
        }
        if state.restarts.len() >= max as usize {
            let f = Failure::new(
                FailureKind::RestartLimit,
                format!(
                    "the {child:?} actor died {} times within {window:?} (last: {why}); giving up",
                    state.restarts.len() + 1
                ),
            );
            state.fail(f, &myself);
            return Ok(());
        }
        state.restarts.push_back(now);
        let total = state.args.restarts.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::warn!(?child, %why, restarts = total, "restarting child actor");
        let cell = myself.get_cell();
        match child {
            Child::Connection => {
                let (r, _) =
                    Actor::spawn_linked(None, ConnectionActor, state.socket.clone(), cell).await?;
                state.connection = r;
            }
            Child::Router => {
                let (r, _) =
                    Actor::spawn_linked(None, RequestRouter, state.router_args(), cell).await?;
                state.router = r;
            }
            Child::Transfer => {
                let transfers = state.args.transfers.clone();
                let (r, _) = Actor::spawn_linked(None, TransferActor, transfers, cell).await?;
                if state.online.is_some() {
                    // It missed the socket's arrival: restore the subscriptions now.
                    let _ = r.send_message(TransferMsg::Online);
                }
                state.transfer = r;
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        _state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(None);
        Ok(())
    }
}

/// What a report of the socket task means for the bot.
fn on_link(event: LinkEvent, state: &mut SupState, myself: &ActorRef<SupervisorMsg>) {
    let states = &state.args.states;
    match event {
        LinkEvent::Connecting { attempt: 0 } => states.publish(ConnectionState::Connecting),
        LinkEvent::Connecting { attempt } => {
            states.publish(ConnectionState::Reconnecting { attempt })
        }
        LinkEvent::Authenticating => states.publish(ConnectionState::Authenticating),
        LinkEvent::Up { generation } => {
            state.online = Some(generation);
            states.publish(ConnectionState::Ready);
            let _ = state.transfer.send_message(TransferMsg::Online);
        }
        LinkEvent::Lost { generation } => {
            state.online = None;
            // A router that is down settles it when it starts again.
            let _ = state.router.send_message(RouterMsg::Offline { generation });
        }
        LinkEvent::Closed(None) => {
            states.publish(ConnectionState::Stopped);
            myself.stop(Some("connection closed".into()));
        }
        LinkEvent::Closed(Some(f)) => state.fail(f, myself),
    }
}
