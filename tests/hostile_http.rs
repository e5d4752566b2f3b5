//! Hostile HTTP peers (security review, issue 21): a token endpoint that redirects the
//! password to another origin, server info, token and upload answers that never end or drip,
//! a `getFileInfo` whose `downloadUrl` points elsewhere, a download that redirects or breaks
//! off. Each peer is a small axum server on 127.0.0.1; a second listener, the "sink",
//! records whatever reaches it and must stay empty. Last, hostile senders against the
//! emulator: files too large for the disk, a symbolic link where a download is headed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};
use trueconf_bot::Error;
use trueconf_bot::bot::{Bot, BotBuilder, ReconnectPolicy};
use trueconf_bot::testkit::{Sim, SimConfig, SimUser};
use trueconf_bot::transfer::TransferConfig;

const PASSWORD: &str = "Pw-hostile-0b1c";
const FILE_TOKEN: &str = "dl-secret-5e7a0c2d9f";
const FILE_SIZE: u64 = 1000;
/// Far more than any small JSON answer; less than would hurt if it were read whole.
const HUGE: u64 = 64 << 20;

fn jwt() -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(json!({"sub": "bot", "exp": 4_000_000_000u64}).to_string())
    )
}

/// How the hostile server's small endpoints answer.
#[derive(Clone, Copy, Default, PartialEq)]
enum Mode {
    /// A normal JSON answer.
    #[default]
    Normal,
    /// `HUGE` bytes of filler, as fast as the client takes them.
    Huge,
    /// One byte every 100 ms, forever.
    Drip,
    /// `307 Temporary Redirect` to the sink (token endpoints only).
    Redirect,
}

#[derive(Default)]
struct Hostile {
    info: Mode,
    token: Mode,
    /// The `downloadUrl` handed out by `getFileInfo`.
    download_url: Mutex<String>,
    /// The download answers `302` to the sink.
    download_redirect: bool,
    /// The download sends 10 bytes of the promised `FILE_SIZE`, then breaks off.
    download_breaks: bool,
    sink: Mutex<String>,
    /// How the file upload endpoint answers.
    upload: Mode,
    /// Filler bytes the server produced for `Huge` bodies.
    produced: Arc<AtomicU64>,
    logins: AtomicU32,
}

fn filler(produced: Arc<AtomicU64>) -> Body {
    let chunk = Bytes::from(vec![b' '; 64 << 10]);
    let chunks = HUGE / chunk.len() as u64;
    Body::from_stream(futures_util::stream::iter(0..chunks).map(move |_| {
        produced.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

fn drip() -> Body {
    let stream = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), ()))
    });
    Body::from_stream(stream)
}

fn answer(srv: &Hostile, mode: Mode, path: &str, normal: Value) -> Response {
    match mode {
        Mode::Normal => axum::Json(normal).into_response(),
        Mode::Huge => filler(srv.produced.clone()).into_response(),
        Mode::Drip => drip().into_response(),
        Mode::Redirect => {
            let to = format!("{}{path}", srv.sink.lock().unwrap());
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, to)],
                "moved",
            )
                .into_response()
        }
    }
}

async fn server_info(State(srv): State<Arc<Hostile>>) -> Response {
    let normal = json!({"product": {"display_name": "hostile.example", "version": "5.5.3.1"}});
    answer(&srv, srv.info, "/api/v4/server", normal)
}

async fn token(State(srv): State<Arc<Hostile>>, req: Request) -> Response {
    srv.logins.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_owned();
    answer(
        &srv,
        srv.token,
        &path,
        json!({"access_token": jwt(), "token_type": "JWT", "expires_in": 3600}),
    )
}

async fn upload(State(srv): State<Arc<Hostile>>) -> Response {
    answer(
        &srv,
        srv.upload,
        "/bridge/api/client/v1/files",
        json!({"temporalFileId": "tmp1"}),
    )
}

async fn download(State(srv): State<Arc<Hostile>>) -> Response {
    if srv.download_redirect {
        let to = format!("{}/steal", srv.sink.lock().unwrap());
        return (StatusCode::FOUND, [(header::LOCATION, to)], "moved").into_response();
    }
    if srv.download_breaks {
        let parts = futures_util::stream::iter([
            Ok(Bytes::from_static(b"0123456789")),
            Err(std::io::Error::other("cut")),
        ]);
        return (
            [(header::CONTENT_LENGTH, FILE_SIZE.to_string())],
            Body::from_stream(parts),
        )
            .into_response();
    }
    vec![7u8; FILE_SIZE as usize].into_response()
}

async fn ws(State(srv): State<Arc<Hostile>>, up: WebSocketUpgrade) -> impl IntoResponse {
    up.on_upgrade(move |socket| session(srv, socket))
}

/// Enough of the Chatbot Connector for a download: `auth` and `getFileInfo`.
async fn session(srv: Arc<Hostile>, mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            break;
        };
        if frame["type"] != 1 {
            continue;
        }
        let payload = match frame["method"].as_str().unwrap_or_default() {
            "auth" => json!({"userId": "bot@hostile.example/r1", "connectionId": "c1"}),
            "uploadFile" => json!({"uploadTaskId": "task1"}),
            "getFileInfo" => json!({
                "fileId": frame["payload"]["fileId"], "name": "report.bin", "size": FILE_SIZE,
                "mimeType": "application/octet-stream", "readyState": 2,
                "downloadUrl": *srv.download_url.lock().unwrap(),
            }),
            _ => json!({"errorCode": 304}),
        };
        let out = json!({"type": 2, "id": frame["id"], "payload": payload}).to_string();
        if socket.send(Message::Text(out.into())).await.is_err() {
            break;
        }
    }
}

/// Records every request that reaches it; the tests expect none.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<String>>>);

impl Sink {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn record(State(sink): State<Sink>, headers: HeaderMap, req: Request) -> StatusCode {
    let line = format!("{} {} {headers:?}", req.method(), req.uri());
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    sink.0
        .lock()
        .unwrap()
        .push(format!("{line} {}", String::from_utf8_lossy(&body)));
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn listen(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Starts the sink and the hostile server; returns the server's address.
async fn start(srv: Hostile) -> (Arc<Hostile>, SocketAddr, Sink) {
    let sink = Sink::default();
    let sink_addr = listen(Router::new().fallback(record).with_state(sink.clone())).await;
    *srv.sink.lock().unwrap() = format!("http://{sink_addr}");
    let srv = Arc::new(srv);
    let router = Router::new()
        .route("/api/v4/server", get(server_info))
        .route("/bridge/api/client/v1/oauth/token", post(token))
        .route("/api/v4/oauth2/token", post(token))
        .route("/websocket/chat_bot", get(ws))
        .route("/files/{id}/download", get(download))
        .route("/bridge/api/client/v1/files", post(upload))
        .with_state(srv.clone());
    let addr = listen(router).await;
    (srv, addr, sink)
}

/// One connection attempt, no retries: a failure shows in `start()` at once.
fn builder(addr: SocketAddr) -> BotBuilder {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(addr.port())
        .request_timeout(Duration::from_secs(2))
        .reconnect(ReconnectPolicy::default().max_retries(Some(0)))
}

/// `start()`, bounded generously: a bot that hangs fails the test instead of the suite.
async fn start_bot(bot: &Bot) -> trueconf_bot::Result<()> {
    tokio::time::timeout(Duration::from_secs(30), bot.start())
        .await
        .expect("start() returned within 30 s")
}

// ---------------------------------------------------------------- credentials

#[tokio::test]
async fn a_redirected_token_request_never_sends_the_password_elsewhere() {
    let (srv, addr, sink) = start(Hostile {
        token: Mode::Redirect,
        ..Hostile::default()
    })
    .await;
    let bot = builder(addr).credentials("bot", PASSWORD).build().unwrap();
    let err = start_bot(&bot).await.unwrap_err();
    assert_eq!(srv.logins.load(Ordering::SeqCst), 1);
    assert!(sink.seen().is_empty(), "the sink got {:?}", sink.seen());
    assert!(err.to_string().contains("307"), "{err}");
}

#[tokio::test]
async fn a_redirected_oauth_app_login_never_sends_the_password_elsewhere() {
    let (srv, addr, sink) = start(Hostile {
        token: Mode::Redirect,
        ..Hostile::default()
    })
    .await;
    let bot = builder(addr)
        .oauth_app("app", "bot", PASSWORD)
        .build()
        .unwrap();
    let err = start_bot(&bot).await.unwrap_err();
    assert_eq!(srv.logins.load(Ordering::SeqCst), 1);
    assert!(sink.seen().is_empty(), "the sink got {:?}", sink.seen());
    assert!(err.to_string().contains("307"), "{err}");
}

// ---------------------------------------------------------------- small bodies

#[tokio::test]
async fn an_endless_server_info_body_is_cut_off() {
    let (srv, addr, _sink) = start(Hostile {
        info: Mode::Huge,
        ..Hostile::default()
    })
    .await;
    let bot = builder(addr).token(jwt()).build().unwrap();
    start_bot(&bot).await.unwrap_err();
    // The client stopped reading at the cap: what the server produced is the cap plus
    // what socket buffers held, far from the whole body.
    let produced = srv.produced.load(Ordering::SeqCst);
    eprintln!("HOSTILE server info: the server produced {produced} of {HUGE} bytes");
    assert!(produced < HUGE / 2, "the server produced {produced} bytes");
}

#[tokio::test]
async fn an_endless_token_body_is_cut_off() {
    let (srv, addr, _sink) = start(Hostile {
        token: Mode::Huge,
        ..Hostile::default()
    })
    .await;
    let bot = builder(addr).credentials("bot", PASSWORD).build().unwrap();
    start_bot(&bot).await.unwrap_err();
    let produced = srv.produced.load(Ordering::SeqCst);
    eprintln!("HOSTILE token: the server produced {produced} of {HUGE} bytes");
    assert!(produced < HUGE / 2, "the server produced {produced} bytes");
}

#[tokio::test]
async fn an_endless_upload_answer_is_cut_off() {
    let (srv, addr, _sink) = start(Hostile {
        upload: Mode::Huge,
        ..Hostile::default()
    })
    .await;
    let bot = builder(addr).token(jwt()).build().unwrap();
    start_bot(&bot).await.unwrap();
    let err = bot
        .send_document(
            "chat1",
            trueconf_bot::transfer::InputFile::bytes("a.txt", "hi"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { .. }), "{err:?}");
    let produced = srv.produced.load(Ordering::SeqCst);
    eprintln!("HOSTILE upload answer: the server produced {produced} of {HUGE} bytes");
    assert!(produced < HUGE / 2, "the server produced {produced} bytes");
}

#[tokio::test]
async fn a_dripping_server_info_body_ends_at_the_request_timeout() {
    let (_srv, addr, _sink) = start(Hostile {
        info: Mode::Drip,
        ..Hostile::default()
    })
    .await;
    // Every byte comes well within the read timeout; only an overall deadline ends it.
    let bot = builder(addr)
        .request_timeout(Duration::from_secs(1))
        .token(jwt())
        .build()
        .unwrap();
    start_bot(&bot).await.unwrap_err();
}

// ---------------------------------------------------------------- downloads

async fn download_env(srv: Hostile, url: impl FnOnce(SocketAddr, &str) -> String) -> (Bot, Sink) {
    let (srv, addr, sink) = start(srv).await;
    let sink_base = sink_base(&srv);
    *srv.download_url.lock().unwrap() = url(addr, &sink_base);
    let bot = builder(addr).token(jwt()).build().unwrap();
    start_bot(&bot).await.unwrap();
    bot.configure_transfers(TransferConfig::default().download_retries(0));
    (bot, sink)
}

fn sink_base(srv: &Hostile) -> String {
    srv.sink.lock().unwrap().clone()
}

fn assert_no_token(err: &Error) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(FILE_TOKEN), "the token leaked: {text}");
}

#[tokio::test]
async fn a_download_url_on_another_origin_is_refused() {
    let (bot, sink) = download_env(Hostile::default(), |_, sink| {
        format!("{sink}/files/f1/download?token={FILE_TOKEN}")
    })
    .await;
    let err = bot.download_file_by_id("f1").to_bytes().await.unwrap_err();
    assert!(sink.seen().is_empty(), "the sink got {:?}", sink.seen());
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("/files/f1/download"), "{err}");
    assert_no_token(&err);
}

#[tokio::test]
async fn a_redirected_download_is_not_followed() {
    let (bot, sink) = download_env(
        Hostile {
            download_redirect: true,
            ..Hostile::default()
        },
        |addr, _| {
            format!(
                "http://127.0.0.1:{}/files/f1/download?token={FILE_TOKEN}",
                addr.port()
            )
        },
    )
    .await;
    let err = bot.download_file_by_id("f1").to_bytes().await.unwrap_err();
    // A followed redirect would also have carried the URL, token included, as `Referer`.
    assert!(sink.seen().is_empty(), "the sink got {:?}", sink.seen());
    assert!(
        matches!(
            err,
            Error::Http {
                status: Some(302),
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_token(&err);
}

#[tokio::test]
async fn a_broken_download_names_no_token_in_its_error() {
    let (bot, _sink) = download_env(
        Hostile {
            download_breaks: true,
            ..Hostile::default()
        },
        |addr, _| {
            format!(
                "http://127.0.0.1:{}/files/f1/download?token={FILE_TOKEN}",
                addr.port()
            )
        },
    )
    .await;
    let err = bot.download_file_by_id("f1").to_bytes().await.unwrap_err();
    assert!(matches!(err, Error::Http { .. }), "{err:?}");
    assert_no_token(&err);
    let info = bot.download_file_by_id("f1").wait_ready().await.unwrap();
    let debug = format!("{info:?}");
    assert!(!debug.contains(FILE_TOKEN), "FileInfo Debug: {debug}");
}

// ---------------------------------------------------------------- hostile senders

struct SimEnv {
    sim: Sim,
    bot: Bot,
    alice: SimUser,
    chat: String,
}

async fn sim_env() -> SimEnv {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .https(false)
        .token(sim.bot_token())
        .build()
        .unwrap();
    bot.start().await.unwrap();
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    SimEnv {
        sim,
        bot,
        alice,
        chat,
    }
}

#[tokio::test]
async fn downloads_larger_than_max_download_size_are_refused() {
    let env = sim_env().await;
    let sent = env
        .alice
        .upload_pattern_file(&env.chat, "movie.mp4", 64 << 10)
        .await
        .unwrap();
    env.bot
        .configure_transfers(TransferConfig::default().max_download_size(Some(16 << 10)));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("movie.mp4");
    let e = env
        .bot
        .download_file_by_id(&sent.file_id)
        .to_path(&target)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                argument: "max_download_size",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("65536"), "names the size: {e}");
    assert!(
        env.sim.download_ranges().is_empty(),
        "refused before fetching"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file left"
    );
    // At the cap it goes through, whatever the target.
    env.bot
        .configure_transfers(TransferConfig::default().max_download_size(Some(64 << 10)));
    let bytes = env
        .bot
        .download_file_by_id(&sent.file_id)
        .to_bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 64 << 10);
}

#[cfg(unix)]
#[tokio::test]
async fn to_path_does_not_replace_a_symlink() {
    let env = sim_env().await;
    let sent = env
        .alice
        .upload_file(&env.chat, "notes.txt", b"from the chat".to_vec())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = dir.path().join("notes.txt");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = env
        .bot
        .download_file_by_id(&sent.file_id)
        .to_path(&link)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                argument: "path",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("notes.txt"), "names the path: {e}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary file left"
    );
}
