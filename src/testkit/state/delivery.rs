//! Event delivery and the acknowledgement rule: every event pushed to a connection is kept
//! until the client acks it, and whatever is still un-acked when a socket closes — or was meant
//! for a bot account with no connection at all — waits for that account's next `auth` with
//! `receiveUnread: true`.
//!
//! Every domain reaches the bot only through [`State::deliver`] and [`State::broadcast`], so the
//! counters in [`SimStats`](crate::testkit::SimStats) and the re-delivery order hold for all of
//! them alike.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::State;
use super::model::{Connection, Event, quoted};
use crate::testkit::wire::{ApiResult, Out, response_frame};

impl State {
    /// A new event, numbered in global push order.
    pub(super) fn next_event(
        &mut self,
        method: Cow<'static, str>,
        payload: Arc<str>,
        system: bool,
    ) -> Event {
        self.next_seq += 1;
        Event {
            seq: self.next_seq,
            method,
            payload,
            system,
        }
    }

    /// Pushes `event` to connection `conn`, if it is still open.
    pub(super) fn push_to(&mut self, conn: u64, event: Event) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.push(event);
            self.stats.pushed += 1;
        }
    }

    /// Sends `method(payload)` to every authenticated connection of `login` except `except`;
    /// queues it when the account is a bot with no connection at all.
    pub(crate) fn deliver(
        &mut self,
        login: &str,
        except: Option<u64>,
        method: &str,
        payload: &Arc<str>,
        system: bool,
    ) {
        let event = self.next_event(quoted(method), payload.clone(), system);
        let mut online = false;
        let mut pushed = 0;
        for (id, connection) in self.conns.iter_mut() {
            if connection.login.as_deref() != Some(login) {
                continue;
            }
            online = true;
            if Some(*id) == except || (system && !connection.system) {
                continue;
            }
            connection.push(event.clone());
            pushed += 1;
        }
        self.stats.pushed += pushed;
        if !online && self.users.get(login).is_some_and(|user| user.bot) {
            self.offline_queue
                .entry(login.to_owned())
                .or_default()
                .push(event);
        }
    }

    /// [`deliver`](Self::deliver)s `method(payload)` to every participant of `chat`.
    pub(super) fn broadcast(
        &mut self,
        chat: &str,
        except: Option<u64>,
        method: &str,
        payload: Value,
    ) {
        let text: Arc<str> = payload.to_string().into();
        for member in self.members(chat) {
            self.deliver(&member, except, method, &text, false);
        }
    }

    /// Pushes an event to one connection (fault injection: unknown methods).
    pub(crate) fn push_raw(&mut self, conn: u64, method: &str, payload: Value) {
        let event = self.next_event(quoted(method), payload.to_string().into(), false);
        self.push_to(conn, event);
    }

    /// Writes the response to request `request_id` of connection `conn`.
    pub(crate) fn respond(&self, conn: u64, request_id: u64, result: &ApiResult<Value>) {
        if let Some(connection) = self.conns.get(&conn) {
            let _ = connection
                .tx
                .send(Out::Text(response_frame(request_id, result)));
        }
    }

    /// The client acknowledged event `id` on connection `conn`.
    pub(crate) fn ack(&mut self, conn: u64, id: u64) {
        if let Some(connection) = self.conns.get_mut(&conn)
            && connection.unacked.remove(&id).is_some()
        {
            self.stats.acked += 1;
        }
    }

    /// A socket was accepted; `tx` reaches its writer task.
    pub(crate) fn open(&mut self, id: u64, tx: UnboundedSender<Out>) {
        self.stats.connections += 1;
        self.conns.insert(id, Connection::new(tx));
    }

    /// A socket closed: its un-acked events wait for the account's next `receiveUnread` login.
    pub(crate) fn close(&mut self, id: u64) {
        let Some(connection) = self.conns.remove(&id) else {
            return;
        };
        if let Some(run) = self.load.as_mut() {
            run.session_closed(id);
        }
        self.files.values_mut().for_each(|file| {
            file.subscribers.remove(&id);
        });
        if let Some(login) = connection.login
            && !connection.unacked.is_empty()
        {
            let queue = self.offline_queue.entry(login).or_default();
            queue.extend(connection.unacked.into_values());
            queue.sort_by_key(|event| event.seq);
        }
    }

    /// The login connection `conn` authenticated as.
    pub(crate) fn authed(&self, conn: u64) -> Option<&str> {
        self.conns
            .get(&conn)
            .and_then(|connection| connection.login.as_deref())
    }

    /// The newest authenticated session still open (see [`Connection::session`]).
    pub(crate) fn newest_session(&self) -> Option<u64> {
        self.conns
            .values()
            .map(|connection| connection.session)
            .filter(|s| *s > 0)
            .max()
    }

    /// Authenticated connections of `login`.
    pub(crate) fn sessions_of(&self, login: &str) -> usize {
        self.conns
            .values()
            .filter(|connection| connection.login.as_deref() == Some(login))
            .count()
    }

    /// Ids of the connections that passed `auth` (fault injection reaches live sockets so).
    pub(crate) fn authed_conn_ids(&self) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(_, connection)| connection.login.is_some())
            .map(|(id, _)| *id)
            .collect()
    }
}
