//! Port of the official client's `examples/webhook.py`: an HTTP endpoint (axum) that makes
//! the bot post a message, next to a running bot.
//!
//! ```text
//! cargo run --example webhook          # emulator, bot, endpoint; the script POSTs and shows the chat
//! cargo run --example webhook -- --server video.example.com --token "$TOKEN" --listen 127.0.0.1:8000
//! curl -s localhost:8000/send -H 'content-type: application/json' -d '{"user":"alice","text":"Build #42 passed"}'
//! ```
//!
//! `POST /send {"user": LOGIN, "text": TEXT}` opens (or finds) the personal chat with `LOGIN`
//! (`create_personal_chat` completes a bare login with the server's domain) and posts `TEXT`
//! there; the answer is `{"chat_id", "message_id"}`, or a 502 with the error. `GET /health`
//! answers the bot's `health_check()` snapshot (200 while authorised, else 503). The Python
//! original runs FastAPI with `bot.run()` in its lifespan; here the dispatcher and the axum
//! server are two tasks sharing one `Bot` (a cheap clone).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router as Web};
use clap::Parser;
use common::{BoxError, Connect, Person};
use serde::{Deserialize, Serialize};
use trueconf_bot::bot::{Bot, HealthSnapshot};
use trueconf_bot::dispatch::{Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::Sim;

/// A bot with an HTTP endpoint that makes it post.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// Where the HTTP endpoint listens [default: 127.0.0.1 on a free port].
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[derive(Deserialize)]
struct SendRequest {
    user: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Sent {
    chat_id: String,
    message_id: String,
}

/// `POST /send`: the handler gets the bot as axum state.
async fn send(
    State(bot): State<Bot>,
    Json(req): Json<SendRequest>,
) -> Result<Json<Sent>, (StatusCode, String)> {
    let failed = |e: trueconf_bot::Error| (StatusCode::BAD_GATEWAY, e.to_string());
    let chat = bot
        .create_personal_chat(&req.user)
        .await
        .map_err(failed)?
        .chat_id;
    let sent = bot.send_message(&chat, req.text).await.map_err(failed)?;
    Ok(Json(Sent {
        chat_id: chat,
        message_id: sent.message_id,
    }))
}

/// `GET /health`: the official client's `health_check()` snapshot, for a load balancer.
async fn health(State(bot): State<Bot>) -> (StatusCode, Json<HealthSnapshot>) {
    let snapshot = bot.health_check();
    let status = if snapshot.authorized {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(snapshot))
}

async fn start(msg: MessageContext) -> HandlerResult {
    msg.answer("I post what the webhook receives.").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let app = Web::new()
        .route("/send", post(send))
        .route("/health", get(health))
        .with_state(session.bot.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let endpoint = format!("http://{}/send", listener.local_addr()?);
    println!("-- webhook endpoint: POST {endpoint}");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dispatcher =
        Dispatcher::builder(session.bot.clone(), Router::new().command("start", start)).build()?;
    // The driver is what a CI job or a monitoring system would do: call the endpoint. It makes
    // the bot act on its own, so it runs in replay mode too (the transcript has the bot's
    // chat and posts with no user entry before them).
    let driver = |sim: Arc<Sim>| async move {
        // Built after the bot, with the user's own reqwest (see `install_crypto_provider`).
        let client = reqwest::Client::new();
        let _alice_exists = sim.user("alice");
        let health: serde_json::Value = client
            .get(endpoint.replace("/send", "/health"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("    curl < GET /health: {}", health["status"]);
        for text in ["Build #42 passed", "Deploy to staging: done"] {
            println!("    curl > POST /send {{\"user\":\"alice\",\"text\":{text:?}}}");
            let sent: Sent = client
                .post(&endpoint)
                .json(&serde_json::json!({ "user": "alice", "text": text }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            println!("    curl < 200 {{\"message_id\":{:?}}}", sent.message_id);
        }
        let bad = client
            .post(&endpoint)
            .json(&serde_json::json!({ "user": "alice", "text": "  " }))
            .send()
            .await?;
        println!("    curl < {} (an empty text is refused)", bad.status());
        if bad.status() != reqwest::StatusCode::BAD_GATEWAY {
            return Err("an empty text was not refused".into());
        }
        Ok(())
    };
    session
        .serve_driven(dispatcher, driver, |sim| async move {
            // The chat as alice sees it (the bot opened it).
            let alice = Person::p2p(&sim, "alice").await?;
            alice.expect("Build #42 passed").await?;
            alice.expect("Deploy to staging").await?;
            Ok(())
        })
        .await
}
