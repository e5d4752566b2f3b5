//! Who the bot is on the server: the token in use, the server's domain and the bot's own
//! user id. Learned and renewed by the connection while it connects; read by everyone else.

use std::sync::{OnceLock, RwLock};

use crate::runtime::config::Secret;
use crate::sync::{read, write};

/// The bot's identity on the server.
#[derive(Default)]
pub(crate) struct Identity {
    /// The current token; replaced after a re-login.
    token: RwLock<Option<Secret>>,
    domain: OnceLock<String>,
    me: RwLock<Option<String>>,
}

impl Identity {
    pub(crate) fn new(token: Option<Secret>) -> Self {
        Identity {
            token: RwLock::new(token),
            ..Default::default()
        }
    }

    pub(crate) fn token(&self) -> Option<Secret> {
        read(&self.token).clone()
    }

    /// The server's domain, once its info was read.
    pub(crate) fn domain(&self) -> Option<&str> {
        self.domain.get().map(String::as_str)
    }

    /// The bot's own user id (`login@domain`), once authorised.
    pub(crate) fn me(&self) -> Option<String> {
        read(&self.me).clone()
    }

    pub(super) fn set_token(&self, token: Option<Secret>) {
        *write(&self.token) = token;
    }

    pub(super) fn set_domain(&self, domain: String) {
        let _ = self.domain.set(domain);
    }

    pub(super) fn set_me(&self, me: String) {
        *write(&self.me) = Some(me);
    }
}
