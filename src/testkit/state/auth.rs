//! The `auth` method: checking a connection's JWT and switching the connection to that account,
//! then re-delivering the events the account missed.
//!
//! `auth` is answered here rather than through the generic method path so that its response is
//! written before any re-delivered event: a client must see itself authorised before it sees
//! the backlog.

use serde_json::{Value, json};

use super::State;
use super::payload::{bool_field, str_field};
use crate::testkit::jwt::{self, TokenError};
use crate::testkit::wire::{
    ApiResult, E_EXPIRED, E_INVALID_CREDENTIALS, E_UNSUPPORTED_CREDENTIALS, E_USER_DISABLED, Out,
    hex40, response_frame, uuid,
};

/// What a valid `auth` request grants.
struct Grant {
    login: String,
    /// `receiveUnread`: re-deliver what the account missed.
    receive_unread: bool,
    /// `receiveSystemMessageEnvelopes`.
    system_envelopes: bool,
}

impl State {
    /// `auth`: answers it itself so the auth response precedes any re-delivered event.
    pub(crate) fn auth(&mut self, conn: u64, request_id: u64, payload: &Value, secret: &[u8]) {
        let result = self.check_auth(payload, secret);
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let grant = match result {
            Ok(grant) => grant,
            Err(code) => {
                let _ = connection
                    .tx
                    .send(Out::Text(response_frame(request_id, &Err(code))));
                return;
            }
        };
        let login = grant.login;
        connection.login = Some(login.clone());
        connection.system = grant.system_envelopes;
        connection.session = self.stats.auths + 1;
        let response = json!({
            "userId": format!("{login}@{}/{}", self.domain, &hex40()[..8]),
            "connectionId": uuid(),
        });
        let _ = connection
            .tx
            .send(Out::Text(response_frame(request_id, &Ok(response))));
        self.stats.auths += 1;
        if let Some(user) = self.users.get_mut(&login) {
            user.bot = true;
        }
        if grant.receive_unread
            && let Some(queue) = self.offline_queue.remove(&login)
            && let Some(connection) = self.conns.get_mut(&conn)
        {
            let wanted = queue
                .into_iter()
                .filter(|event| !event.system || grant.system_envelopes);
            for event in wanted {
                connection.push(event);
                self.stats.pushed += 1;
                self.stats.redelivered += 1;
            }
        }
    }

    /// Checks the token and the account; the error code `auth` answers otherwise.
    fn check_auth(&self, payload: &Value, secret: &[u8]) -> ApiResult<Grant> {
        let token = str_field(payload, "token")?;
        if payload.get("tokenType").and_then(Value::as_str) != Some("JWT") {
            return Err(E_UNSUPPORTED_CREDENTIALS);
        }
        let subject = jwt::verify(secret, token).map_err(|e| match e {
            TokenError::Invalid => E_INVALID_CREDENTIALS,
            TokenError::Expired => E_EXPIRED,
        })?;
        let login = subject.split('@').next().unwrap_or_default().to_owned();
        let user = self.users.get(&login).ok_or(E_INVALID_CREDENTIALS)?;
        if user.disabled {
            return Err(E_USER_DISABLED);
        }
        Ok(Grant {
            login,
            receive_unread: bool_field(payload, "receiveUnread")?,
            system_envelopes: bool_field(payload, "receiveSystemMessageEnvelopes")?,
        })
    }
}
