//! HTTP and WebSocket endpoints of the emulator (axum).
//!
//! This file only maps URLs to handlers; the handlers live by job: `tokens` (the token
//! endpoints of both authorisation flows), `files` (upload and download over HTTP) and
//! `socket` (the chat-bot WebSocket); `guard` keeps web pages out (DNS rebinding,
//! cross-site posts).

mod files;
mod guard;
mod socket;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::shared::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let pages = if shared.cfg.web {
        super::web::routes()
    } else {
        Router::new()
    };
    pages
        .route("/api/v4/server", get(tokens::server_info))
        .route("/bridge/api/client/v1/oauth/token", post(tokens::token))
        .route("/api/v4/oauth2/token", post(tokens::oauth2_token))
        .route(
            "/bridge/api/client/v1/auth/web_rest_api_token",
            post(tokens::web_rest_api_token),
        )
        .route(
            "/bridge/api/client/v1/auth/token",
            post(tokens::auth_code_token),
        )
        .route(
            "/bridge/api/client/v1/files",
            // Uploads are bounded by the emulated upload limits, not by axum's 2 MB default.
            post(files::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/bridge/api/client/v1/files/{id}/{what}",
            get(files::download),
        )
        .route("/websocket/chat_bot", get(socket::upgrade))
        .route("/websocket/chat_bot/", get(socket::upgrade))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .with_state(shared)
}
