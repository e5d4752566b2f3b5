//! The FileTransfer actor: owns the wire side of progress subscriptions.
//!
//! `subscribeFileProgress` is sent once per file however many local subscribers watch it,
//! and every subscription is restored on a new socket (the supervisor sends `Online`).
//! Handling both one message at a time keeps subscribe and unsubscribe of a file in order
//! without locks.

use std::collections::HashSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::state::{TransferMsg, Transfers};
use crate::error::Result;
use crate::methods::{GetFileInfo, SubscribeFileProgress, UnsubscribeFileProgress};
use crate::types::ReadyState;

/// Owns the wire side of progress subscriptions. Handling them one message at a time keeps
/// subscribe and unsubscribe of one file in order without locks.
pub(crate) struct TransferActor;

pub(crate) struct TransferState {
    transfers: Arc<Transfers>,
    /// Files subscribed on the current socket.
    wire: HashSet<String>,
}

impl Actor for TransferActor {
    type Msg = TransferMsg;
    type State = TransferState;
    type Arguments = Arc<Transfers>;

    async fn pre_start(
        &self,
        myself: ActorRef<TransferMsg>,
        transfers: Arc<Transfers>,
    ) -> Result<TransferState, ActorProcessingErr> {
        transfers.register(myself);
        Ok(TransferState {
            transfers,
            wire: HashSet::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<TransferMsg>,
        msg: TransferMsg,
        state: &mut TransferState,
    ) -> Result<(), ActorProcessingErr> {
        let transfers = &state.transfers;
        match msg {
            TransferMsg::Sync { file_id, reply } => {
                let wanted = transfers.watched(&file_id);
                let result = if wanted && !state.wire.contains(&file_id) {
                    let r = subscribe(transfers, &file_id).await;
                    if r.is_ok() {
                        state.wire.insert(file_id);
                    }
                    r
                } else if !wanted && state.wire.remove(&file_id) {
                    if let Err(e) = transfers
                        .execute(UnsubscribeFileProgress::new(&file_id))
                        .await
                    {
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
                    match subscribe(transfers, &file_id).await {
                        Ok(()) => {
                            state.wire.insert(file_id);
                        }
                        Err(e) => {
                            tracing::warn!(%file_id, error = %e, "restoring a progress subscription failed")
                        }
                    }
                }
                transfers.online_done();
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<TransferMsg>,
        state: &mut TransferState,
    ) -> Result<(), ActorProcessingErr> {
        state.transfers.unregister(&myself);
        Ok(())
    }
}

/// Subscribes on the wire. The file's size is learned first, so every progress event can
/// carry its total, and again afterwards unless it was complete already: it may have
/// finished before the subscription took effect.
async fn subscribe(transfers: &Transfers, file_id: &str) -> Result<()> {
    let before = learn_info(transfers, file_id).await;
    transfers
        .execute(SubscribeFileProgress::new(file_id))
        .await?;
    if before != Some(ReadyState::Ready) {
        learn_info(transfers, file_id).await;
    }
    Ok(())
}

async fn learn_info(transfers: &Transfers, file_id: &str) -> Option<ReadyState> {
    match transfers.execute(GetFileInfo::new(file_id)).await {
        Ok(info) => {
            transfers.learn(&info, file_id);
            Some(info.ready_state)
        }
        Err(e) => {
            tracing::debug!(%file_id, error = %e, "getFileInfo for progress failed");
            None
        }
    }
}
