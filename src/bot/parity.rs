//! What the official client's `Bot` has beyond the protocol methods: the server's version,
//! the Favorites chat, a health snapshot, a credentials constructor and the client's names
//! where ours differ.

use std::time::SystemTime;

use serde::Serialize;

use super::{Bot, Call, ConnectionState};
use crate::error::{Error, Result};
use crate::methods::{ClearHistory, GetFileUploadLimits};
use crate::types::ServerVersion;

/// Connection health at one moment: [`Bot::health_check`] (the official client's
/// `health_check()` dictionary, with the same keys when serialised).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// `"authorized"`, `"connected"` (socket up, `auth` not done) or `"disconnected"`.
    pub status: HealthStatus,
    /// Whether a WebSocket is open.
    pub websocket_connected: bool,
    /// Whether the socket is authorised (requests go through).
    pub authorized: bool,
    /// The configured server host.
    pub server: String,
    /// The port of the WebSocket, the token endpoint and uploads.
    pub port: u16,
    /// `"https"` or `"http"`.
    pub protocol: &'static str,
    /// When the snapshot was taken, as Unix milliseconds.
    pub timestamp_ms: u64,
    /// The detailed state (not serialised: see `status`).
    #[serde(skip)]
    pub state: ConnectionState,
    /// Restarts of the runtime's actors so far.
    pub restarts: u64,
    /// Requests waiting for their response.
    pub in_flight: usize,
}

/// [`HealthSnapshot::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Connected and authorised.
    Authorized,
    /// A socket is open, `auth` is not done yet.
    Connected,
    /// No socket (not started, reconnecting, stopped or failed).
    Disconnected,
}

impl Bot {
    /// Builds a bot that logs in with `username` and `password` (the official client's
    /// `Bot.from_credentials`); the same as
    /// `Bot::builder(server).credentials(username, password).build()`, whose other settings
    /// you need for anything beyond the defaults.
    ///
    /// Unlike the client, the token is not fetched here but when the bot starts (and again
    /// whenever it expires), so this does no I/O.
    pub fn from_credentials(
        server: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Bot> {
        Bot::builder(server).credentials(username, password).build()
    }

    /// The server's version, read now from `GET /api/v4/server` (the official client's
    /// `server_version`). Works before [`Bot::start`]. The client falls back to a
    /// `/vsstatus` page on another port when this fails; this crate does not (it would be a
    /// plain-`http` request to a second port).
    pub async fn server_version(&self) -> Result<ServerVersion> {
        self.runtime().fetch_server_info().await?.version()
    }

    /// Checks that the server supports chat bots (5.5.0 or newer) and returns its version
    /// (the official client's `check_version`); [`Error::UnsupportedServer`] for an older
    /// one. [`Bot::start`] makes the same check.
    ///
    /// The client also compares its own release with the server's (1.1.x for 5.5.0–5.5.2,
    /// 1.2.1–1.4.x for 5.5.3–5.5.5): this crate speaks every dialect those map to (both
    /// envelope shapes, both `getChats` answers), so it has no such table.
    pub async fn check_version(&self) -> Result<ServerVersion> {
        let version = self.server_version().await?;
        if version.supports_bots() {
            Ok(version)
        } else {
            Err(Error::UnsupportedServer {
                version: version.to_string(),
            })
        }
    }

    /// The bot's own user id, once authorised: the official client's `me_id`, the same as
    /// [`Bot::me`].
    ///
    /// Note the client's deprecated `bot.me` is the id of the *Favorites chat*
    /// ([`Bot::me_chat`]), while ours is the bot's user id.
    pub fn me_id(&self) -> Option<String> {
        self.me()
    }

    /// The id of the bot's Favorites chat (`createFavoritesChat`, which the server answers
    /// with the existing chat once there is one); the official client's `me_chat` (and its
    /// deprecated `me`). Not cached: each call is one request.
    pub async fn me_chat(&self) -> Result<String> {
        Ok(self.create_favorites_chat().await?.chat_id)
    }

    /// The connection's health now (the official client's `health_check()`), for a
    /// health endpoint or a probe; [`BotBuilder::on_state_change`](super::BotBuilder::on_state_change)
    /// reports every change instead.
    pub fn health_check(&self) -> HealthSnapshot {
        let state = self.state().borrow().clone();
        let authorized = state == ConnectionState::Ready;
        let websocket_connected = authorized || state == ConnectionState::Authenticating;
        let config = self.runtime().config();
        HealthSnapshot {
            status: if authorized {
                HealthStatus::Authorized
            } else if websocket_connected {
                HealthStatus::Connected
            } else {
                HealthStatus::Disconnected
            },
            websocket_connected,
            authorized,
            server: config.host.clone(),
            port: config.port,
            protocol: if config.https { "https" } else { "http" },
            timestamp_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            state,
            restarts: self.restarts(),
            in_flight: self.in_flight(),
        }
    }

    /// The official client's name for [`Bot::clear_history`] (`clearHistory`).
    pub fn clear_chat_history(&self, chat_id: impl Into<String>) -> Call<ClearHistory> {
        self.clear_history(chat_id)
    }

    /// The official client's name for [`Bot::get_file_upload_limits`]
    /// (`getFileUploadLimits`).
    pub fn get_file_info_upload_limits(&self) -> Call<GetFileUploadLimits> {
        self.get_file_upload_limits()
    }
}
