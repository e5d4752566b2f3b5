//! The HTTP endpoints that hand out tokens: the password grant of the bot token endpoint, and
//! the three steps of the OAuth flow (PROTOCOL.md §2.1), plus the server-info probe clients
//! make first.
//!
//! Errors follow each endpoint's own OAuth error shape, because clients map those to distinct
//! failures (wrong password, disabled method, bad scope).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::sync::lock;
use crate::testkit::shared::Shared;
use crate::testkit::wire::uuid;

/// `GET /api/v4/server`: the server's name (the domain) and version.
pub(super) async fn server_info(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({
        "product": { "display_name": shared.cfg.domain, "version": shared.cfg.version }
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The body as a JSON object, if it is one.
fn parse_body(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// A string field of a request body; empty when missing.
fn field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The bot token endpoint: the password grant for `client_id` `chat_bot`.
pub(super) async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(request) = parse_body(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body is not a JSON object",
        );
    };
    if field(&request, "client_id") != "chat_bot" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id must be chat_bot",
        );
    }
    if field(&request, "grant_type") != "password" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only the password grant is supported",
        );
    }
    if !shared.password_login.load(Relaxed) {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "auth_method_disabled",
            "Password authentication is disabled",
        );
    }
    match shared.check_password(field(&request, "username"), field(&request, "password")) {
        Some(login) => issue(&shared, &login),
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid username or password",
        ),
    }
}

/// A `201` with a fresh bot token for `login`.
fn issue(shared: &Shared, login: &str) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "access_token": shared.token_for(login),
            "token_type": "JWT",
            "expires_in": shared.cfg.token_ttl.as_secs(),
        })),
    )
        .into_response()
}

/// OAuth step 1: an application's password login yields a web API token.
pub(super) async fn oauth2_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = parse_body(&body).unwrap_or_default();
    let Some(app) = shared
        .cfg
        .oauth_apps
        .iter()
        .find(|app| app.client_id == field(&request, "client_id"))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    };
    let Some(login) =
        shared.check_password(field(&request, "username"), field(&request, "password"))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid username or password",
        );
    };
    if app.scopes.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": { "errors": [{
                "reason": "invalidScope",
                "message": "No scope configured for this application"
            }], "code": 400 } })),
        )
            .into_response();
    }
    let token = uuid();
    lock(&shared.web_tokens).insert(token.clone(), login);
    axum::Json(json!({ "access_token": token, "token_type": "bearer", "expires_in": 3600 }))
        .into_response()
}

/// OAuth step 2: the web API token yields an authorization code.
pub(super) async fn web_rest_api_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = parse_body(&body).unwrap_or_default();
    let owner = lock(&shared.web_tokens)
        .get(field(&request, "token"))
        .cloned();
    match owner {
        Some(login) if login == field(&request, "client_id") => {
            let code = uuid();
            lock(&shared.auth_codes).insert(code.clone(), login);
            axum::Json(json!({ "authorization_code": code })).into_response()
        }
        _ => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "unknown web API token",
        ),
    }
}

/// OAuth step 3: the authorization code (single use) yields a bot token.
pub(super) async fn auth_code_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = parse_body(&body).unwrap_or_default();
    if field(&request, "grant_type") != "authorization_code"
        || field(&request, "client_id") != "user"
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "expected the authorization_code grant for client user",
        );
    }
    let login = lock(&shared.auth_codes).remove(field(&request, "code"));
    match login {
        Some(login) => issue(&shared, &login),
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "unknown authorization code",
        ),
    }
}
