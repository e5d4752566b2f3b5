//! The web chat client: a page at the emulator's base URL where a developer acts as any
//! emulated user and talks to the bot by hand (feature `testkit`, [`SimConfig::web`]).
//!
//! The page is static HTML, CSS and JavaScript compiled into the binary (`include_str!`, no
//! front-end build step). It talks to the emulator over its own endpoints under `/sim/api/`,
//! never over the bot's WebSocket:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /sim/api/state` | users, chats with participants and messages, typing activity |
//! | `GET /sim/api/events` | server-sent events: `change` (refetch the state), `frame` (one WebSocket frame for the inspector), `lagged` |
//! | `POST /sim/api/act` | a user's action, JSON `{op, as, …}`: `user`, `p2p`, `group`, `channel`, `send`, `press`, `edit`, `remove` |
//! | `POST /sim/api/upload?as=&chat=&name=` | a user posts a file (the request body is the file) |
//! | `GET /sim/api/file/{id}` | a file's bytes |
//!
//! The emulator's guard (foreign `Host`/`Origin` refused) covers these endpoints too.
//!
//! [`SimConfig::web`]: crate::testkit::SimConfig::web

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::shared::Shared;
use super::user::SimUser;
use super::wire::{CHANNEL, GROUP};
use crate::error::Error;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Largest file the page may upload.
const MAX_UPLOAD: usize = 64 << 20;

/// The page's routes, merged into the emulator's router when the web client is on.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/sim/app.js",
            get(|| async { page("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/sim/app.css",
            get(|| async { page("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/sim/api/state", get(state))
        .route("/sim/api/events", get(events))
        .route("/sim/api/act", post(act))
        .route(
            "/sim/api/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/sim/api/file/{id}", get(file))
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            // The page runs only its own script and talks only to this server.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let snapshot = shared.state().snapshot(&shared.cfg.bot.login);
    Json(snapshot)
}

/// Server-sent events: a `change` now (so the page loads), the frames kept so far, then new
/// frames and a `change` after every state change (at most every 50 ms).
async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    shared.tap.enable();
    let (backlog, rx) = shared.tap.subscribe();
    let start = (shared, rx, backlog.into_iter(), true);
    let stream = futures_util::stream::unfold(
        start,
        |(shared, mut rx, mut backlog, first)| async move {
            if first {
                let event = Event::default().event("change").data("{}");
                return Some((Ok(event), (shared, rx, backlog, false)));
            }
            if let Some(frame) = backlog.next() {
                let event = frame_event(&frame);
                return Some((Ok(event), (shared, rx, backlog, false)));
            }
            let event = tokio::select! {
                () = shared.notify.notified() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Event::default().event("change").data("{}")
                }
                frame = rx.recv() => match frame {
                    Ok(frame) => frame_event(&frame),
                    Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(event), (shared, rx, backlog, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn frame_event(frame: &super::tap::TapFrame) -> Event {
    let data = serde_json::to_string(frame).unwrap_or_default();
    Event::default().event("frame").data(data)
}

/// A refused action: HTTP status and a JSON `{error, code?}` the page shows.
struct Refusal(StatusCode, String, Option<u32>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1, "code": self.2 }))).into_response()
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Api { code, .. } => Some(code.0),
            _ => None,
        };
        Refusal(StatusCode::CONFLICT, e.to_string(), code)
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into(), None)
}

/// A login the page may create: short, and made of characters safe in an id.
fn login(value: &str) -> Result<&str, Refusal> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(value)
    } else {
        Err(bad(format!(
            "login {value:?} must be 1-64 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// One action of the page's user.
#[derive(Deserialize)]
struct Act {
    op: String,
    #[serde(rename = "as")]
    actor: String,
    #[serde(default)]
    chat: String,
    #[serde(default)]
    text: String,
    #[serde(default, rename = "parseMode")]
    parse_mode: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default, rename = "replyTo")]
    reply_to: Option<String>,
}

fn user(shared: &Arc<Shared>, name: &str) -> Result<SimUser, Refusal> {
    let name = login(name)?;
    shared.state().ensure_user(name);
    Ok(SimUser::new(shared.clone(), name))
}

async fn act(
    State(shared): State<Arc<Shared>>,
    Json(act): Json<Act>,
) -> Result<Json<Value>, Refusal> {
    let who = user(&shared, &act.actor)?;
    let result = match act.op.as_str() {
        "user" => json!({ "login": who.login() }),
        "p2p" => json!({ "chatId": who.create_p2p_with_bot().await? }),
        "group" | "channel" => {
            let members = act
                .members
                .iter()
                .map(|m| login(m).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            let title = act.title.trim();
            if title.is_empty() {
                return Err(bad("a group or channel needs a title"));
            }
            let kind = if act.op == "group" { GROUP } else { CHANNEL };
            let id = {
                let mut state = shared.state();
                for member in &members {
                    state.ensure_user(member);
                }
                state.create_chat(who.login(), kind, Some(title.to_owned()), &members, None)
            };
            shared.notify.notify_waiters();
            json!({ "chatId": id })
        }
        "send" => {
            let parse_mode = act.parse_mode.as_deref().unwrap_or("text");
            if !matches!(parse_mode, "text" | "markdown" | "html") {
                return Err(bad(format!("unknown parse mode {parse_mode:?}")));
            }
            let content = json!({ "text": act.text, "parseMode": parse_mode });
            let id = match &act.reply_to {
                Some(reply_to) => who.reply_content(&act.chat, reply_to, content).await?,
                None => who.send_content(&act.chat, content).await?,
            };
            json!({ "messageId": id })
        }
        "press" => {
            let command_id = who
                .press_button(&act.chat, &act.message, &act.command)
                .await?;
            json!({ "commandId": command_id })
        }
        "edit" => {
            who.edit(&act.message, &act.text).await?;
            json!({})
        }
        "remove" => {
            who.remove(&act.message).await?;
            json!({})
        }
        other => return Err(bad(format!("unknown action {other:?}"))),
    };
    Ok(Json(result))
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(rename = "as")]
    actor: String,
    chat: String,
    name: String,
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let who = user(&shared, &query.actor)?;
    let name = query.name.trim();
    if name.is_empty() || name.len() > 255 || name.contains(['/', '\\']) {
        return Err(bad(format!("file name {name:?} is not a plain name")));
    }
    let sent = who.upload_file(&query.chat, name, body).await?;
    Ok(Json(
        json!({ "messageId": sent.message_id, "fileId": sent.file_id }),
    ))
}

async fn file(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let found = {
        let state = shared.state();
        state
            .files
            .get(&id)
            .map(|file| (file.name.clone(), file.mime.clone(), file.data.to_bytes()))
    };
    let Some((name, mime, bytes)) = found else {
        return (StatusCode::NOT_FOUND, format!("no file {id}")).into_response();
    };
    // The name goes into a header: keep it to characters that cannot break the header.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let inline = mime.starts_with("image/") || mime == "text/plain";
    let disposition = format!(
        "{}; filename=\"{safe}\"",
        if inline { "inline" } else { "attachment" }
    );
    let content_type = if inline {
        mime
    } else {
        "application/octet-stream".into()
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        ],
        bytes,
    )
        .into_response()
}
