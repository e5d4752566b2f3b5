//! The official client's API as a porting user reaches for it (issue 17, part A), each
//! against the emulator: message and button shortcuts, quotes, Favorites, contacts, the
//! bot's version / health / constructors / aliases, URL input files, storage registration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use trueconf_bot::Error;
use trueconf_bot::bot::{Bot, HealthStatus};
use trueconf_bot::dispatch::{
    ButtonContext, ButtonPress, Dispatcher, DispatcherHandle, Filter, HandlerResult,
    MessageContext, Router,
};
use trueconf_bot::error::VcardError;
use trueconf_bot::fsm::{Dialogue, MemoryStorage};
use trueconf_bot::testkit::{Sim, SimConfig};
use trueconf_bot::transfer::InputFile;
use trueconf_bot::types::{Button, InlineKeyboard, ParseMode};

fn bot_for(sim: &Sim) -> Bot {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap()
}

struct Running {
    sim: Sim,
    bot: Bot,
    handle: DispatcherHandle,
    task: tokio::task::JoinHandle<trueconf_bot::Result<()>>,
}

impl Running {
    async fn start(router: Router) -> Running {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let bot = bot_for(&sim);
        let d = Dispatcher::builder(bot.clone(), router).build().unwrap();
        let handle = d.handle();
        let task = tokio::spawn(d.run());
        sim.wait_for_bot(Duration::from_secs(10)).await.unwrap();
        Running {
            sim,
            bot,
            handle,
            task,
        }
    }

    async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap().unwrap();
    }
}

/// The smallest valid WebP header the sticker check accepts.
fn webp() -> Vec<u8> {
    let mut v = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00".to_vec();
    v.extend_from_slice(&[
        0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07,
    ]);
    v
}

fn text_of(message: &trueconf_bot::testkit::SimMessage) -> &str {
    message.text().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_shortcuts_answer_and_reply() {
    async fn files(msg: MessageContext) -> HandlerResult {
        msg.answer_document(InputFile::bytes("a.txt", "doc"))
            .await?;
        msg.answer_photo(InputFile::bytes("p.png", &b"\x89PNG fake"[..]))
            .caption("a photo")
            .await?;
        msg.answer_sticker(InputFile::bytes("s.webp", webp()))
            .await?;
        msg.reply_document(InputFile::bytes("b.txt", "reply doc"))
            .await?;
        msg.reply_photo(InputFile::bytes("q.png", &b"\x89PNG fake"[..]))
            .await?;
        msg.reply_sticker(InputFile::bytes("t.webp", webp()))
            .await?;
        Ok(())
    }
    let r = Running::start(Router::new().command("files", files)).await;
    let alice = r.sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let asked = alice.send_text(&chat, "/files").await.unwrap();
    // 6 files, one of them with a caption message.
    let got = r.sim.expect_messages(&chat, 7).await.unwrap();
    let files: Vec<&Value> = got
        .iter()
        .map(|m| m.raw())
        .filter(|m| m["type"] == 202)
        .collect();
    let names: Vec<&str> = files
        .iter()
        .map(|m| m["content"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["a.txt", "p.png", "s.webp", "b.txt", "q.png", "t.webp"],
        "{got:?}"
    );
    let replies: Vec<bool> = files
        .iter()
        .map(|m| m["replyMessageId"].as_str() == Some(asked.as_str()))
        .collect();
    assert_eq!(replies, [false, false, false, true, true, true]);
    assert!(got.iter().any(|m| text_of(m) == "a photo"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_on_replies_and_text_without_the_quote() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let router = Router::new()
        .command("start", {
            let tx = tx.clone();
            move |msg: MessageContext| {
                let tx = tx.clone();
                async move {
                    // A reply-with-quote's text is what the user typed; the quote apart.
                    tx.send(format!("{:?} {:?}", msg.text(), msg.quote()))
                        .unwrap();
                    HandlerResult::Ok(())
                }
            }
        })
        .message(move |msg: MessageContext| {
            let tx = tx.clone();
            async move {
                let wrong = msg.reply_quoting("not in it", "x").map(drop);
                tx.send(format!(
                    "{}",
                    matches!(wrong, Err(Error::InvalidArgument { .. }))
                ))
                .unwrap();
                msg.reply_quoting("world", "a <plain> reply")?.await?;
                msg.bot
                    .send_message(msg.chat(), "**md**")
                    .reply_to(&msg.message_id)
                    .parse_mode(ParseMode::Markdown)
                    .quote("hello")
                    .await?;
                // A quote without a reply is refused before sending.
                let lone = msg.answer("x").quote("hello").await;
                tx.send(format!(
                    "{}",
                    matches!(
                        lone,
                        Err(Error::InvalidArgument {
                            argument: "quote",
                            ..
                        })
                    )
                ))
                .unwrap();
                HandlerResult::Ok(())
            }
        });
    let r = Running::start(router).await;
    let alice = r.sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice
        .send_html(
            &chat,
            r#"<quote class="reply">a &lt;b&gt; c</quote><br><br>/start"#,
        )
        .await
        .unwrap();
    assert_eq!(
        rx.recv().await.unwrap(),
        r#"Some("/start") Some("a <b> c")"#
    );

    alice.send_text(&chat, "hello world").await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "true");
    let html = r.sim.expect_message(&chat).await.unwrap();
    assert_eq!(
        text_of(&html),
        r#"<quote class="reply">world</quote><br><br>a &lt;plain&gt; reply"#
    );
    assert_eq!(html["content"]["parseMode"], "html");
    let md = r.sim.expect_message(&chat).await.unwrap();
    assert_eq!(text_of(&md), ">hello\n\n**md**");
    assert_eq!(rx.recv().await.unwrap(), "true");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_to_favorites_forwards_or_copies() {
    let router = Router::new().message(|msg: MessageContext| async move {
        msg.save_to_favorites(false).await?;
        msg.save_to_favorites(true).await?;
        HandlerResult::Ok(())
    });
    let r = Running::start(router).await;
    let alice = r.sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.send_text(&chat, "keep this").await.unwrap();
    let favorites = r.bot.me_chat().await.unwrap();
    let saved = r.sim.expect_messages(&favorites, 2).await.unwrap();
    assert_eq!(saved[0]["type"], 201, "a forward: {saved:?}");
    assert_eq!(text_of(&saved[1]), "keep this");
    // The Favorites chat is one chat, whoever asks.
    assert_eq!(r.bot.me_chat().await.unwrap(), favorites);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_edits_its_message_keeping_the_buttons() {
    let presses: Arc<Mutex<Vec<ButtonPress>>> = Arc::default();
    let seen = presses.clone();
    let router = Router::new().button_when(
        Filter::button_starts_with("vote:"),
        move |press: ButtonContext| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(press.to_press());
                match press.command() {
                    "vote:close" => press.edit_message().remove_buttons().await?,
                    cmd => press.edit(format!("last: {cmd}")).await?,
                };
                HandlerResult::Ok(())
            }
        },
    );
    let r = Running::start(router).await;
    let alice = r.sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let kb = InlineKeyboard::builder()
        .row([
            Button::command("Yes", "vote:yes"),
            Button::command("Close", "vote:close"),
        ])
        .build()
        .unwrap();
    let poll = r
        .bot
        .send_message(&chat, "<b>Poll</b>")
        .parse_mode(ParseMode::Html)
        .buttons(kb)
        .await
        .unwrap();
    r.sim.expect_message(&chat).await.unwrap();
    alice
        .press_button(&chat, &poll.message_id, "vote:yes")
        .await
        .unwrap();
    let message = wait_for(|| {
        let m = r.sim.message(&poll.message_id)?;
        (text_of(&m) == "last: vote:yes").then_some(m)
    })
    .await;
    assert_eq!(message["content"]["parseMode"], "html");
    assert_eq!(
        message["content"]["buttons"][0].as_array().map(Vec::len),
        Some(2),
        "buttons kept: {message}"
    );
    alice
        .press_button(&chat, &poll.message_id, "vote:close")
        .await
        .unwrap();
    let closed = wait_for(|| {
        let m = r.sim.message(&poll.message_id)?;
        m["content"].get("buttons").is_none().then_some(m)
    })
    .await;
    assert_eq!(text_of(&closed), "last: vote:yes", "text kept");
    let presses = presses.lock().unwrap().clone();
    assert_eq!(presses.len(), 2);
    assert_eq!(
        presses[0].message_id.as_deref(),
        Some(poll.message_id.as_str())
    );
    assert_eq!(presses[0].chat_id.as_deref(), Some(chat.as_str()));
    r.stop().await;
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met in 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_version_health_aliases_and_constructors() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    // Before start: version over HTTP, health disconnected.
    let version = bot.check_version().await.unwrap();
    assert_eq!(version.to_string(), "5.5.6.0");
    assert_eq!(bot.server_version().await.unwrap(), version);
    let health = bot.health_check();
    assert_eq!(health.status, HealthStatus::Disconnected);
    assert!(!health.authorized);
    assert_eq!(health.protocol, "http");
    assert_eq!(health.port, sim.addr().port());
    bot.start().await.unwrap();
    let health = bot.health_check();
    assert_eq!(health.status, HealthStatus::Authorized);
    assert!(health.websocket_connected && health.authorized);
    let shown = serde_json::to_value(&health).unwrap();
    assert_eq!(shown["status"], "authorized");
    assert_eq!(bot.me_id().as_deref(), Some("bot@sim.example"));
    assert_eq!(bot.me_id(), bot.me());

    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    bot.send_message(&chat, "x").await.unwrap();
    bot.clear_chat_history(&chat).for_all(true).await.unwrap();
    assert_eq!(
        sim.expect_request("clearHistory").await.unwrap()["chatId"],
        chat.as_str()
    );
    bot.get_file_info_upload_limits().await.unwrap();
    sim.expect_request("getFileUploadLimits").await.unwrap();
    bot.shutdown().await.unwrap();

    // The client's constructor: credentials, every other setting at its default.
    let b = Bot::from_credentials("video.example.com", "helpdesk", "secret").unwrap();
    let h = b.health_check();
    assert_eq!(
        (h.server.as_str(), h.port, h.protocol),
        ("video.example.com", 443, "https")
    );
    assert!(!format!("{b:?}").contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_version_refuses_an_old_server() {
    let sim = Sim::start(SimConfig {
        version: "5.4.9.1".into(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let e = bot_for(&sim).check_version().await.unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedServer { version } if version == "5.4.9.1"),
        "{e}"
    );
}

/// A small file host on 127.0.0.1: `/doc` (with a `Content-Disposition` name), `/big`
/// (2 MiB), `/moved` (a redirect to `/doc`), `/loop` (redirects to itself), `/gone` (404),
/// `/pic/photo.png`.
async fn file_host() -> String {
    use axum::Router as Web;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let app = Web::new()
        .route(
            "/doc",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (
                            header::CONTENT_DISPOSITION,
                            r#"attachment; filename="notes.txt""#,
                        ),
                    ],
                    "remote notes",
                )
            }),
        )
        .route("/big", get(|| async { vec![7u8; 2 << 20] }))
        .route("/moved", get(|| async { Redirect::to("/doc") }))
        .route("/loop", get(|| async { Redirect::to("/loop") }))
        .route(
            "/gone",
            get(|| async { StatusCode::NOT_FOUND.into_response() }),
        )
        .route(
            "/pic/photo.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], &b"\x89PNG fake"[..]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_input_files_are_fetched_with_their_real_size() {
    let host = file_host().await;
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = bot_for(&sim);
    bot.start().await.unwrap();
    let chat = sim.user("alice").create_p2p_with_bot().await.unwrap();

    let sent = bot
        .send_document(&chat, InputFile::url(format!("{host}/doc?sig=s3cret")))
        .await
        .unwrap();
    assert_eq!(sim.file_bytes(&sent.file_id).unwrap(), "remote notes");
    let info = sim.file_info(&sent.file_id).unwrap();
    assert_eq!(info.name, "notes.txt");
    // Redirects are followed; the name comes from the URL when no header names it.
    let moved = bot
        .send_document(&chat, InputFile::url(format!("{host}/moved")))
        .await
        .unwrap();
    assert_eq!(sim.file_bytes(&moved.file_id).unwrap(), "remote notes");
    let pic = bot
        .send_photo(&chat, InputFile::url(format!("{host}/pic/photo.png")))
        .await
        .unwrap();
    assert_eq!(sim.file_info(&pic.file_id).unwrap().name, "photo.png");

    let big = bot
        .send_document(
            &chat,
            InputFile::url(format!("{host}/big")).max_url_size(1 << 20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            big,
            Error::InvalidArgument {
                argument: "url",
                ..
            }
        ),
        "{big}"
    );
    let gone = bot
        .send_document(&chat, InputFile::url(format!("{host}/gone?token=s3cret")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            gone,
            Error::Http {
                status: Some(404),
                ..
            }
        ),
        "{gone}"
    );
    assert!(!gone.to_string().contains("s3cret"), "{gone}");
    let looping = bot
        .send_document(&chat, InputFile::url(format!("{host}/loop")))
        .await
        .unwrap_err();
    assert!(matches!(looping, Error::Http { .. }), "{looping}");
    let bad = bot
        .send_document(&chat, InputFile::url("ftp://127.0.0.1/x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad,
            Error::InvalidArgument {
                argument: "url",
                ..
            }
        ),
        "{bad}"
    );
    bot.shutdown().await.unwrap();
}

const VCARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Petrova;Anna;;;\r\nFN:Anna Petrova\r\n\
                     TEL;TYPE=CELL:+7 900 123-45-67\r\nEND:VCARD\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_from_vcards_and_profile_links() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let router = Router::new().message(move |msg: MessageContext| {
        let tx = tx.clone();
        async move {
            let shown = match msg.contact().await {
                Ok(Some(c)) => format!(
                    "{} / {:?} / {:?} / {:?}",
                    c.first_name, c.last_name, c.phone_number, c.user_id
                ),
                Ok(None) => "none".to_owned(),
                Err(Error::Vcard(VcardError::Unterminated)) => "unterminated".to_owned(),
                Err(e) => format!("error {e}"),
            };
            tx.send(shown).unwrap();
            HandlerResult::Ok(())
        }
    });
    let r = Running::start(router).await;
    let alice = r.sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    alice.upload_file(&chat, "anna.vcf", VCARD).await.unwrap();
    assert_eq!(
        rx.recv().await.unwrap(),
        r#"Anna / Some("Petrova") / Some("+7 900 123-45-67") / None"#
    );
    let _carol = r.sim.user("carol");
    alice
        .send_html(
            &chat,
            r#"<a href="trueconf:carol@sim.example&do=profile">Old name</a>"#,
        )
        .await
        .unwrap();
    let carol = rx.recv().await.unwrap();
    assert!(
        carol.ends_with(r#"/ None / None / Some("carol@sim.example")"#),
        "{carol}"
    );
    assert!(
        carol.starts_with("Carol /"),
        "the server's display name: {carol}"
    );
    // A deleted or unknown user: the link text.
    alice
        .send_html(
            &chat,
            r#"<a href="trueconf:nobody@sim.example">No Body</a>"#,
        )
        .await
        .unwrap();
    assert!(rx.recv().await.unwrap().starts_with("No Body /"));
    alice
        .upload_file(&chat, "broken.vcf", "BEGIN:VCARD\nFN:x\n")
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap(), "unterminated");
    alice.send_text(&chat, "just text").await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "none");
    r.stop().await;
}

#[test]
fn any_storage_registers_and_a_detached_dispatcher_explains_the_bot() {
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    enum Step {
        One,
    }
    async fn dialog(_d: Dialogue<Step>) {}
    let router = || Router::new().message(dialog);
    Dispatcher::detached(router())
        .storage(MemoryStorage::new())
        .build()
        .expect("a storage value");
    Dispatcher::detached(router())
        .storage(Arc::new(MemoryStorage::new()))
        .build()
        .expect("a concrete Arc");
    let shared: Arc<dyn trueconf_bot::fsm::Storage> = Arc::new(MemoryStorage::new());
    Dispatcher::detached(router())
        .storage(shared)
        .build()
        .expect("an Arc<dyn Storage>");
    let _ = Step::One;

    async fn needs_bot(_msg: MessageContext) {}
    let e = Dispatcher::detached(Router::new().message(needs_bot))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
}

#[test]
fn message_text_leaves_out_a_leading_reply_quote() {
    let m: trueconf_bot::types::Message = serde_json::from_value(serde_json::json!({
        "messageId": "m1", "timestamp": 1, "type": 200,
        "chat": { "chatId": "c1", "chatType": 1 },
        "author": { "id": "alice@sim.example", "type": 1 },
        "content": { "text": "<quote class=\"reply\">a &amp; b</quote><br><br>my answer", "parseMode": "html" },
        "isEdited": false
    }))
    .unwrap();
    assert_eq!(m.text(), Some("my answer"));
    assert_eq!(m.reply_quote_html(), Some("a &amp; b"));
    assert!(m.full_text().unwrap().starts_with("<quote"));
    // The same split as `format::strip_reply_quote` (which also unescapes the quote).
    let (quote, rest) = trueconf_bot::format::strip_reply_quote(m.full_text().unwrap());
    assert_eq!(
        (quote.as_deref(), rest.as_str()),
        (Some("a & b"), "my answer")
    );
}
