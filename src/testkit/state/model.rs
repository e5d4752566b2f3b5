//! The records behind the emulator's state: accounts, chats, messages, files, connections and
//! the events waiting for an acknowledgement.
//!
//! They are plain data with no behaviour beyond building themselves and writing an event to a
//! socket, so every domain file of the state can share them without depending on another
//! domain's logic.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::testkit::pattern::Blob;
use crate::testkit::wire::Out;

/// A preview image: file name, MIME type, bytes.
pub(crate) type Preview = (String, String, Bytes);

pub(crate) struct UserRecord {
    pub(crate) display_name: String,
    pub(crate) password: Option<String>,
    pub(crate) disabled: bool,
    /// Accounts that connect over WebSocket: their events are queued while they are offline.
    pub(crate) bot: bool,
}

pub(crate) struct ChatRecord {
    pub(crate) title: Option<String>,
    pub(crate) chat_type: u8,
    /// `(login, role)` in joining order.
    pub(crate) participants: Vec<(String, &'static str)>,
    /// Message ids, oldest first.
    pub(super) history: Vec<String>,
    pub(super) avatar_url: Option<String>,
    /// The last `box.id` handed out in this chat.
    pub(super) next_box: u64,
    /// Index of the chat in the running load test, if it is a load chat.
    pub(crate) load: Option<u32>,
}

impl ChatRecord {
    pub(super) fn new(
        title: Option<String>,
        chat_type: u8,
        participants: Vec<(String, &'static str)>,
        load: Option<u32>,
    ) -> Self {
        ChatRecord {
            title,
            chat_type,
            participants,
            history: Vec::new(),
            avatar_url: None,
            next_box: 0,
            load,
        }
    }
}

pub(super) struct MessageRecord {
    pub(super) chat: String,
    /// Login of the author; empty for system messages.
    pub(super) author: String,
    pub(super) timestamp: u64,
    pub(super) kind: u16,
    pub(super) content: Value,
    pub(super) edited: bool,
    pub(super) reply_to: Option<String>,
    pub(super) box_id: u64,
    /// Logins that removed the message or cleared the history only for themselves.
    pub(super) hidden_for: Vec<String>,
}

/// A permanent file, downloadable with its token once `ready` is READY.
pub(crate) struct FileRecord {
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) data: Blob,
    /// `readyState`.
    pub(crate) ready: u8,
    pub(crate) received: u64,
    pub(crate) token: String,
    pub(crate) preview: Option<Preview>,
    /// Connections subscribed to upload progress.
    pub(super) subscribers: HashSet<u64>,
}

/// An uploaded file not yet used by `sendFile` or `editChatAvatar`.
pub(super) struct TemporalFile {
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) mime: String,
    pub(super) data: Blob,
    pub(super) preview: Option<Preview>,
}

/// What `uploadFile` announced, waiting for the HTTP upload.
pub(super) struct UploadTask {
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) size: u64,
}

/// A pushed event kept until acked, so it can be re-delivered.
#[derive(Clone)]
pub(crate) struct Event {
    /// Global push order, to re-deliver in the original order.
    pub(super) seq: u64,
    /// The method, already a JSON string.
    pub(super) method: Cow<'static, str>,
    pub(super) payload: Arc<str>,
    /// A system envelope: only for connections that asked for them.
    pub(super) system: bool,
}

/// `method` as a JSON string, ready to be spliced into a frame.
pub(super) fn quoted(method: &str) -> Cow<'static, str> {
    Cow::Owned(serde_json::to_string(method).unwrap_or_default())
}

/// One WebSocket connection.
pub(crate) struct Connection {
    /// Set by a successful `auth`.
    pub(crate) login: Option<String>,
    pub(crate) tx: UnboundedSender<Out>,
    /// Whether it asked for system envelopes (`receiveSystemMessageEnvelopes`).
    pub(super) system: bool,
    /// Which successful `auth` this connection's session is (1 = the first on this server);
    /// `0` until it authenticates.
    pub(crate) session: u64,
    next_event_id: u64,
    /// Pushed events by their per-connection id, until acked.
    pub(super) unacked: BTreeMap<u64, Event>,
}

impl Connection {
    pub(super) fn new(tx: UnboundedSender<Out>) -> Self {
        Connection {
            login: None,
            tx,
            system: false,
            session: 0,
            next_event_id: 0,
            unacked: BTreeMap::new(),
        }
    }

    /// Writes `event` as the next event frame and keeps it until the client acks it.
    pub(super) fn push(&mut self, event: Event) {
        self.next_event_id += 1;
        let id = self.next_event_id;
        let frame = format!(
            r#"{{"type":1,"id":{id},"method":{},"payload":{}}}"#,
            event.method, event.payload
        );
        self.unacked.insert(id, event);
        let _ = self.tx.send(Out::Text(frame));
    }
}

/// A session recording (see `journal`): the entries so far and the names given to ids.
pub(crate) struct Journal {
    pub(super) started: tokio::time::Instant,
    pub(crate) entries: Vec<Value>,
    pub(super) names: std::collections::HashMap<String, String>,
    pub(super) chats: usize,
    pub(super) messages: usize,
}
