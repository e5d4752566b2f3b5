//! The Connection actor: the supervised owner of the socket task.
//!
//! The actor itself is small on purpose: the socket needs a loop of its own (reads, writes
//! and timers at once), so the actor owns that task and its close signal. Killing the actor
//! aborts the task, which drops the socket and retires its generation; the supervisor then
//! starts a fresh actor that reconnects.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::args::SocketArgs;
use super::socket;

/// Messages of the [`ConnectionActor`].
#[derive(Debug)]
pub(crate) enum ConnMsg {
    /// Close the socket cleanly (queued frames first) and stop reconnecting.
    Close,
}

/// Owns the socket task; see the module docs.
pub(crate) struct ConnectionActor;

/// The actor's state: the task and the signal that closes it.
pub(crate) struct ConnState {
    close: CancellationToken,
    _task: AbortOnDropHandle<()>,
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = SocketArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        args: SocketArgs,
    ) -> Result<ConnState, ActorProcessingErr> {
        let close = args.halt.child_token();
        let run = AssertUnwindSafe(socket::run(args, close.clone())).catch_unwind();
        let task = tokio::spawn(async move {
            // A panic in the socket task must not leave a live actor with a dead socket:
            // stopping the actor lets the supervisor restart it.
            if run.await.is_err() {
                tracing::error!("socket task panicked");
                myself.stop(Some("socket task panicked".into()));
            }
        });
        Ok(ConnState {
            close,
            _task: AbortOnDropHandle::new(task),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnMsg::Close => state.close.cancel(),
        }
        Ok(())
    }
}
