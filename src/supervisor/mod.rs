//! The Supervisor actor: owns the Connection and RequestRouter actors and restarts them when
//! they die, at most `N` times within a window; past that the bot fails with a clear error.
//!
//! The `Bot` handle never holds a child's `ActorRef` for long: it looks the current one up in
//! the shared core, which the supervisor updates on every restart.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::time::Instant;

use crate::bot::core::{Core, write};
use crate::connection::{ConnectionActor, ConnectionState, Failure, FailureKind};
use crate::error::DisconnectKind;
use crate::router::{RouterActor, RouterArgs};
use crate::transfer::TransferActor;

/// Messages of the [`Supervisor`] (it only reacts to supervision events).
#[derive(Debug)]
pub(crate) enum SupervisorMsg {}

pub(crate) struct Supervisor;

pub(crate) struct SupState {
    core: Arc<Core>,
    connection: ActorCell,
    router: ActorCell,
    transfer: ActorCell,
    restarts: VecDeque<Instant>,
}

#[derive(Clone, Copy, Debug)]
enum Child {
    Connection,
    Router,
    Transfer,
}

async fn spawn_child(
    core: &Arc<Core>,
    child: Child,
    myself: &ActorRef<SupervisorMsg>,
) -> Result<ActorCell, ActorProcessingErr> {
    let cell = match child {
        Child::Connection => {
            let (r, _) =
                Actor::spawn_linked(None, ConnectionActor, core.clone(), myself.get_cell()).await?;
            *write(&core.connection) = Some(r.clone());
            r.get_cell()
        }
        Child::Transfer => {
            let (r, _) =
                Actor::spawn_linked(None, TransferActor, core.clone(), myself.get_cell()).await?;
            r.get_cell()
        }
        Child::Router => {
            let (r, _) = Actor::spawn_linked(
                None,
                RouterActor,
                RouterArgs { core: core.clone() },
                myself.get_cell(),
            )
            .await?;
            *write(&core.router) = Some(r.clone());
            r.get_cell()
        }
    };
    Ok(cell)
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupState;
    type Arguments = Arc<Core>;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        core: Arc<Core>,
    ) -> Result<SupState, ActorProcessingErr> {
        // The router first, so the connection always has someone to report lost sockets to.
        let router = spawn_child(&core, Child::Router, &myself).await?;
        let connection = spawn_child(&core, Child::Connection, &myself).await?;
        let transfer = spawn_child(&core, Child::Transfer, &myself).await?;
        Ok(SupState {
            core,
            connection,
            transfer,
            router,
            restarts: VecDeque::new(),
        })
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
        let child = if cell.get_id() == state.connection.get_id() {
            Child::Connection
        } else if cell.get_id() == state.router.get_id() {
            Child::Router
        } else if cell.get_id() == state.transfer.get_id() {
            Child::Transfer
        } else {
            return Ok(());
        };
        let core = &state.core;
        if core.shutting_down.load(Ordering::Acquire) || core.state().is_terminal() {
            // The connection ended on purpose (shutdown) or for good (fatal error).
            tracing::debug!(?child, %why, "child ended; not restarting");
            myself.stop(Some("bot finished".into()));
            return Ok(());
        }
        let (max, window) = core.config.restart_limit;
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
            tracing::error!(failure = %f, "supervisor gives up");
            core.table
                .fail_all(DisconnectKind::Failed(f.kind), &f.message);
            core.set_state(ConnectionState::Failed(f));
            myself.stop(Some("restart limit".into()));
            return Ok(());
        }
        state.restarts.push_back(now);
        let total = core.restarts.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::warn!(?child, %why, restarts = total, "restarting child actor");
        let cell = spawn_child(core, child, &myself).await?;
        match child {
            Child::Connection => state.connection = cell,
            Child::Router => state.router = cell,
            Child::Transfer => state.transfer = cell,
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
