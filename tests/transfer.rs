//! File transfer tests against the emulator: sending every kind of file from every kind of
//! source, upload limits, downloads that wait, resume, cancel, and flat memory.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::AsyncWrite;
use trueconf_bot::bot::Bot;
use trueconf_bot::bot::RuntimeActor;
use trueconf_bot::testkit::{
    ExtensionFilter, PatternReader, Sim, SimConfig, SimUser, UploadLimits, is_pattern,
};
use trueconf_bot::transfer::{Direction, InputFile, TransferConfig, TransferHandle};
use trueconf_bot::types::ParseMode;
use trueconf_bot::{Error, Result};

const WEBP: &[u8] = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00";

struct Env {
    sim: Sim,
    bot: Bot,
    alice: SimUser,
    chat: String,
    _gate: Gate,
}

/// The memory test measures the whole process, so it runs alone: the others share the gate.
static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

enum Gate {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

async fn env() -> Env {
    env_with(Gate::Shared(GATE.read().await)).await
}

async fn env_with(gate: Gate) -> Env {
    let sim = Sim::start(SimConfig::default()).await.expect("sim starts");
    let bot = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .https(false)
        .token(sim.bot_token())
        .build()
        .expect("bot builds");
    bot.start().await.expect("bot connects");
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.expect("chat");
    Env {
        sim,
        bot,
        alice,
        chat,
        _gate: gate,
    }
}

impl Env {
    /// The server pushes limit changes as events; wait until the bot has taken this one in.
    async fn limits_event_applied(
        &self,
        applied: impl Fn(&trueconf_bot::types::UploadLimits) -> bool,
    ) {
        let until = Instant::now() + Duration::from_secs(5);
        while !applied(&self.bot.upload_limits().await.unwrap()) {
            assert!(Instant::now() < until, "the limits event never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn count(&self, method: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    async fn wait_for_requests(&self, method: &str, n: usize) {
        let until = Instant::now() + Duration::from_secs(5);
        while self.count(method) < n {
            assert!(
                Instant::now() < until,
                "expected {n} {method} requests, saw {}",
                self.count(method)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn documents_from_path_bytes_and_reader_arrive_intact() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    let pdf = b"%PDF-1.4 not really a pdf".repeat(5000);
    std::fs::write(&path, &pdf).unwrap();

    let sent = env
        .bot
        .send_document(&env.chat, InputFile::path(&path))
        .caption("*Q3* report")
        .parse_mode(ParseMode::Markdown)
        .await
        .unwrap();
    let stored = env.sim.file_info(&sent.file_id).unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.mime.as_str()),
        ("report.pdf", "application/pdf")
    );
    assert_eq!(env.sim.file_bytes(&sent.file_id).unwrap(), pdf.as_slice());
    let upload = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "uploadFile")
        .unwrap();
    assert_eq!(upload.payload["fileSize"], pdf.len());
    assert_eq!(upload.payload["fileName"], "report.pdf");
    let send = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "sendFile")
        .unwrap();
    assert_eq!(send.payload["content"]["caption"]["parseMode"], "markdown");
    assert!(sent.caption_message_id.is_some());

    let reply_to = env
        .alice
        .send_text(&env.chat, "send me notes")
        .await
        .unwrap();
    let sent = env
        .bot
        .send_document(
            &env.chat,
            InputFile::bytes("notes.txt", "line one\nline two"),
        )
        .reply_to(&reply_to)
        .await
        .unwrap();
    assert_eq!(
        env.sim.file_bytes(&sent.file_id).unwrap(),
        "line one\nline two"
    );
    assert_eq!(env.sim.file_info(&sent.file_id).unwrap().mime, "text/plain");
    let msg = env.sim.message(&sent.message_id).unwrap();
    assert_eq!(msg["replyMessageId"], reply_to.as_str(), "{msg}");

    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let reader = std::io::Cursor::new(data.clone());
    let (call, mut progress) = env
        .bot
        .send_document(
            &env.chat,
            InputFile::reader("data.bin", data.len() as u64, reader),
        )
        .with_progress();
    let sent = call.await.unwrap();
    assert_eq!(env.sim.file_bytes(&sent.file_id).unwrap(), data.as_slice());
    let mut last = None;
    while let Some(p) = progress.next().await {
        assert_eq!(p.direction, Direction::Upload);
        last = Some(p);
    }
    let last = last.expect("progress reported");
    assert!(
        last.is_done() && last.transferred == data.len() as u64,
        "{last:?}"
    );
}

#[tokio::test]
async fn a_reader_that_lies_about_its_size_fails_clearly() {
    let env = env().await;
    let short = InputFile::reader("short.bin", 1000, &b"only a few bytes"[..]);
    let e = env.bot.send_document(&env.chat, short).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { argument: "file", rule } if rule.contains("declared")),
        "{e}"
    );
    assert_eq!(env.count("sendFile"), 0);
}

#[tokio::test]
async fn photos_carry_their_preview_and_stickers_their_own_copy() {
    let env = env().await;
    let sent = env
        .bot
        .send_photo(
            &env.chat,
            InputFile::bytes("cat.png", vec![0x89, b'P', b'N', b'G', 1, 2, 3]),
        )
        .preview(InputFile::bytes("котик.jpg", vec![0xff, 0xd8, 0xff, 9]))
        .caption("a cat")
        .await
        .unwrap();
    let stored = env.sim.file_info(&sent.file_id).unwrap();
    assert_eq!(stored.mime, "image/png");
    let (name, mime, data) = stored.preview.expect("preview stored");
    assert_eq!((name.as_str(), mime.as_str()), ("котик.jpg", "image/jpeg"));
    assert_eq!(data.as_ref(), &[0xff, 0xd8, 0xff, 9]);

    // A sticker is recognised by content, whatever its name says.
    let sent = env
        .bot
        .send_sticker(&env.chat, InputFile::bytes("smile.bin", WEBP))
        .await
        .unwrap();
    let stored = env.sim.file_info(&sent.file_id).unwrap();
    assert_eq!(stored.mime, "sticker/webp");
    let (_, mime, data) = stored.preview.expect("sticker preview");
    assert_eq!((mime.as_str(), data.as_ref()), ("image/webp", WEBP));
    let send = env
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.method == "sendFile")
        .unwrap();
    assert!(
        send.payload["content"].get("caption").is_none(),
        "{}",
        send.payload
    );

    let uploads = env.count("uploadFile");
    let e = env
        .bot
        .send_sticker(
            &env.chat,
            InputFile::bytes("fake.webp", b"\x89PNG\r\n\x1a\n0000".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                argument: "sticker",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        env.count("uploadFile"),
        uploads,
        "nothing uploaded for a rejected sticker"
    );
}

#[tokio::test]
async fn long_captions_and_limit_violations_are_refused_before_uploading() {
    let env = env().await;
    let none = trueconf_bot::types::UploadLimits::default();
    let asked = futures_util::future::join_all((0..5).map(|_| env.bot.upload_limits())).await;
    assert!(asked.into_iter().all(|l| l.unwrap() == none));
    assert_eq!(env.bot.upload_limits().await.unwrap(), none);
    assert_eq!(
        env.count("getFileUploadLimits"),
        1,
        "asked once for the connection"
    );
    let e = env
        .bot
        .send_document(&env.chat, InputFile::bytes("a.txt", "x"))
        .caption("y".repeat(4097))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                argument: "caption",
                ..
            }
        ),
        "{e}"
    );

    env.sim.set_upload_limits(UploadLimits {
        max_size: Some(1000),
        extensions: Some(ExtensionFilter {
            allow: true,
            list: vec!["txt".into(), "pdf".into()],
        }),
    });
    env.limits_event_applied(|l| l.max_size == Some(1000)).await;
    let too_big = env
        .bot
        .send_document(&env.chat, InputFile::bytes("big.txt", vec![b'a'; 1001]))
        .await
        .unwrap_err();
    assert!(
        matches!(&too_big, Error::InvalidArgument { rule, .. } if rule.contains("1000")),
        "{too_big}"
    );
    let not_allowed = env
        .bot
        .send_document(&env.chat, InputFile::bytes("run.exe", "MZ"))
        .await
        .unwrap_err();
    assert!(
        matches!(&not_allowed, Error::InvalidArgument { rule, .. } if rule.contains("exe")),
        "{not_allowed}"
    );
    env.bot
        .send_document(&env.chat, InputFile::bytes("ok.TXT", "fine"))
        .await
        .unwrap();

    // A limits change pushed by the server applies at once, without asking again.
    env.sim.set_upload_limits(UploadLimits {
        max_size: None,
        extensions: Some(ExtensionFilter {
            allow: false,
            list: vec!["txt".into()],
        }),
    });
    env.limits_event_applied(|l| l.max_size.is_none()).await;
    let blocked = env
        .bot
        .send_document(&env.chat, InputFile::bytes("notes.txt", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(blocked, Error::InvalidArgument { .. }),
        "{blocked}"
    );
    env.bot
        .send_document(&env.chat, InputFile::bytes("big.bin", vec![0; 5000]))
        .await
        .unwrap();
    assert_eq!(
        env.count("getFileUploadLimits"),
        1,
        "events update the cache"
    );
    assert_eq!(
        env.count("uploadFile"),
        2,
        "only accepted files were uploaded"
    );

    // A new connection asks again.
    env.sim.faults().drop_connections();
    let until = Instant::now() + Duration::from_secs(5);
    while env.count("getFileUploadLimits") < 2 {
        assert!(
            Instant::now() < until,
            "limits not fetched on the new connection"
        );
        env.bot.upload_limits().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_download_waits_for_a_file_still_being_uploaded() {
    let env = env().await;
    let data = b"slowly uploaded contents".repeat(1000);
    let upload = env
        .alice
        .start_upload(&env.chat, "slow.txt", data.clone())
        .await
        .unwrap();
    let file_id = upload.file.file_id.clone();
    let mut watching = env.bot.file_progress(&file_id);
    let download = TransferHandle::spawn(env.bot.download_file_by_id(&file_id).to_bytes());
    env.wait_for_requests("subscribeFileProgress", 1).await;

    upload.progress(10_000);
    let p = tokio::time::timeout(Duration::from_secs(5), watching.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.direction, p.transferred, p.total),
        (Direction::Remote, 10_000, Some(data.len() as u64))
    );
    assert!(!download.is_finished());
    upload.finish();

    let bytes = tokio::time::timeout(Duration::from_secs(5), download)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, data.as_slice());
    assert_eq!(
        env.count("subscribeFileProgress"),
        1,
        "one wire subscription for two local subscribers"
    );
    drop(watching);
    env.wait_for_requests("unsubscribeFileProgress", 1).await;

    // Watching a complete file yields one final report and ends.
    let mut done = env.bot.file_progress(&file_id);
    let last = tokio::time::timeout(Duration::from_secs(5), done.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        last.is_done() && last.transferred == data.len() as u64,
        "{last:?}"
    );
    assert!(done.next().await.is_none());

    let gone = env
        .alice
        .start_upload(&env.chat, "gone.txt", "x")
        .await
        .unwrap();
    let short_wait = env
        .bot
        .download_file_by_id(&gone.file.file_id)
        .ready_timeout(Duration::from_millis(200))
        .wait_ready()
        .await
        .unwrap_err();
    assert!(matches!(short_wait, Error::Timeout { .. }), "{short_wait}");
    gone.fail();
    let e = env
        .bot
        .download_file_by_id(&gone.file.file_id)
        .to_bytes()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not available"), "{e}");
}

#[tokio::test]
async fn a_waiting_download_survives_a_reconnect() {
    let env = env().await;
    let upload = env
        .alice
        .start_upload(&env.chat, "later.txt", "after the reconnect")
        .await
        .unwrap();
    let download = TransferHandle::spawn(
        env.bot
            .download_file_by_id(&upload.file.file_id)
            .ready_timeout(Duration::from_secs(60))
            .to_bytes(),
    );
    env.wait_for_requests("subscribeFileProgress", 1).await;
    env.sim.faults().drop_connections();
    // The subscription is restored on the new socket, so the final event reaches us.
    env.wait_for_requests("subscribeFileProgress", 2).await;
    upload.finish();
    let bytes = tokio::time::timeout(Duration::from_secs(10), download)
        .await
        .expect("completes long before the ready timeout")
        .unwrap();
    assert_eq!(bytes, "after the reconnect");
    assert_eq!(env.sim.stats().auths, 2);
}

#[tokio::test]
async fn progress_survives_a_restart_of_the_transfer_actor() {
    let env = env().await;
    let upload = env
        .alice
        .start_upload(&env.chat, "big.iso", vec![0u8; 4000])
        .await
        .unwrap();
    let mut watching = env.bot.file_progress(&upload.file.file_id);
    env.wait_for_requests("subscribeFileProgress", 1).await;
    let actor = env
        .bot
        .actor_id(RuntimeActor::FileTransfer)
        .await
        .expect("running");
    assert!(env.bot.kill_actor(RuntimeActor::FileTransfer));
    let until = Instant::now() + Duration::from_secs(5);
    while env
        .bot
        .actor_id(RuntimeActor::FileTransfer)
        .await
        .is_none_or(|a| a == actor)
    {
        assert!(
            Instant::now() < until,
            "the supervisor did not restart the actor"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.bot.restarts(), 1);
    // The new actor re-establishes what the local subscribers want.
    env.wait_for_requests("subscribeFileProgress", 2).await;
    upload.finish();
    let last = tokio::time::timeout(Duration::from_secs(5), watching.next())
        .await
        .unwrap()
        .unwrap();
    assert!(last.is_done() && last.transferred == 4000, "{last:?}");
    drop(watching);
    env.wait_for_requests("unsubscribeFileProgress", 1).await;
}

#[tokio::test]
async fn dropping_a_download_leaves_no_file() {
    let env = env().await;
    let sent = env
        .alice
        .upload_file(&env.chat, "big.bin", vec![1u8; 2 << 20])
        .await
        .unwrap();
    env.sim.faults().stall_downloads_after(Some(512 * 1024));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.bin");
    let (call, mut progress) = env.bot.download_file_by_id(&sent.file_id).with_progress();
    let handle = TransferHandle::spawn(call.to_path(target.clone()));
    let p = tokio::time::timeout(Duration::from_secs(5), progress.next())
        .await
        .unwrap()
        .unwrap();
    assert!(p.transferred > 0 && !p.is_done(), "{p:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "the partial file exists meanwhile"
    );
    drop(handle);
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(dir.path()).unwrap().count() > 0 {
        assert!(Instant::now() < until, "partial download left behind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!target.exists());

    env.sim.faults().clear();
    env.bot
        .download_file_by_id(&sent.file_id)
        .to_path(&target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), vec![1u8; 2 << 20]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[tokio::test]
async fn a_cut_download_resumes_with_a_range_request() {
    let env = env().await;
    let len = 3 << 20;
    let sent = env
        .alice
        .upload_pattern_file(&env.chat, "movie.mp4", len)
        .await
        .unwrap();
    env.sim.faults().cut_next_download_after(1 << 20);
    let mut stream = env.bot.download_file_by_id(&sent.file_id).stream();
    let mut offset = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(is_pattern(offset, &chunk), "bad bytes at {offset}");
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, len);
    let ranges = env.sim.download_ranges();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    let resumed_at: u64 = ranges[1]
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .expect("a Range request");
    assert!(resumed_at > 0 && resumed_at <= 1 << 20, "{resumed_at}");

    let e = env
        .bot
        .download_file_by_id(&sent.file_id)
        .max_size(1 << 20)
        .to_bytes()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                argument: "max_size",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        env.sim.download_ranges().len(),
        2,
        "refused before fetching"
    );

    // A server without range support sends everything again; what we have is skipped.
    env.sim.faults().ignore_download_ranges(true);
    env.sim.faults().cut_next_download_after(1 << 20);
    let bytes = env
        .bot
        .download_file_by_id(&sent.file_id)
        .to_bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, len);
    assert!(is_pattern(0, &bytes));
    let ranges = env.sim.download_ranges();
    assert_eq!(ranges.len(), 4, "{ranges:?}");
    assert!(ranges[3].is_some(), "{ranges:?}");
}

#[tokio::test]
async fn avatars_are_uploaded_then_set() {
    let env = env().await;
    let group = env.sim.create_group(&env.alice, "team", &["bot"]).await;
    env.alice.set_role(&group, "bot", "admin").await.unwrap();
    env.bot
        .edit_chat_avatar(
            &group,
            InputFile::bytes("logo.png", vec![0x89, b'P', b'N', b'G']),
        )
        .await
        .unwrap();
    let req = env
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.method == "editChatAvatar")
        .unwrap();
    assert!(
        req.payload["temporalFileId"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}

#[tokio::test]
async fn concurrent_transfers_are_bounded() {
    let env = env().await;
    env.bot
        .configure_transfers(TransferConfig::default().max_concurrent(1));
    let a = env
        .alice
        .upload_file(&env.chat, "a.bin", vec![2u8; 1 << 20])
        .await
        .unwrap();
    let b = env
        .alice
        .upload_file(&env.chat, "b.bin", vec![3u8; 1000])
        .await
        .unwrap();
    env.sim.faults().stall_downloads_after(Some(1000));
    let first = TransferHandle::spawn(env.bot.download_file_by_id(&a.file_id).to_bytes());
    // The stall applies to requests the server has seen; later ones run freely.
    let until = Instant::now() + Duration::from_secs(5);
    while env.sim.download_ranges().is_empty() {
        assert!(Instant::now() < until, "the first download never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.sim.faults().clear();
    // The only slot is held by the stalled download, so this one cannot start.
    let second = env.bot.download_file_by_id(&b.file_id).to_bytes();
    let blocked = tokio::time::timeout(Duration::from_millis(300), second).await;
    assert!(blocked.is_err(), "second transfer ran despite the limit");
    drop(first);
    let bytes = tokio::time::timeout(
        Duration::from_secs(5),
        env.bot.download_file_by_id(&b.file_id).to_bytes(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(bytes.len(), 1000);
}

#[tokio::test]
async fn transfers_use_the_bots_tls_settings() {
    let _gate = GATE.read().await;
    let sim = Sim::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    // The emulator's download URLs name 127.0.0.1; downloads stay on the configured origin.
    let bot = Bot::builder("127.0.0.1")
        .port(sim.addr().port())
        .ca_certificate_pem(sim.cert_pem().unwrap().as_bytes().to_vec())
        .token(sim.bot_token())
        .build()
        .unwrap();
    bot.start().await.unwrap();
    let chat = sim.user("alice").create_p2p_with_bot().await.unwrap();
    let sent = bot
        .send_document(&chat, InputFile::bytes("secret.txt", "over TLS"))
        .await
        .unwrap();
    let back = bot
        .download_file_by_id(&sent.file_id)
        .to_bytes()
        .await
        .unwrap();
    assert_eq!(back, "over TLS");
}

// ---------------------------------------------------------------- memory

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Checks downloaded bytes against the pattern without keeping them.
struct PatternSink {
    offset: u64,
    ok: bool,
}

impl AsyncWrite for PatternSink {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let at = self.offset;
        self.ok &= is_pattern(at, buf);
        self.offset += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

async fn round_trip(env: &Env, len: u64) -> Result<(f64, f64)> {
    let started = Instant::now();
    let reader = PatternReader::new(len);
    let sent = env
        .bot
        .send_document(&env.chat, InputFile::reader("big.bin", len, reader))
        .await?;
    let up = started.elapsed().as_secs_f64();
    let stored = env.sim.file_info(&sent.file_id).expect("stored");
    assert!(stored.pattern && stored.size == len, "{stored:?}");
    let started = Instant::now();
    let mut sink = PatternSink {
        offset: 0,
        ok: true,
    };
    env.bot
        .download_file_by_id(&sent.file_id)
        .to_writer(&mut sink)
        .await?;
    let down = started.elapsed().as_secs_f64();
    assert!(sink.ok && sink.offset == len, "downloaded bytes differ");
    let mib = len as f64 / (1024.0 * 1024.0);
    Ok((mib / up, mib / down))
}

/// Uploads and downloads a generated file (64 MiB; 1 GiB with `TRUECONF_BIG_TRANSFER=1`) and
/// checks that peak memory grows by less than 64 MiB per GiB moved (at least 16 MiB, so the
/// small CI run is not at the mercy of allocator noise; a buffered 64 MiB file still fails it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_while_moving_a_large_file() {
    let env = env_with(Gate::Alone(GATE.write().await)).await;
    let len: u64 = if std::env::var_os("TRUECONF_BIG_TRANSFER").is_some() {
        1 << 30
    } else {
        64 << 20
    };
    // Warm up connection pools, buffers and lazy statics, then measure from a reset peak.
    round_trip(&env, 4 << 20).await.unwrap();
    // Writing 5 resets the peak (VmHWM) to the current RSS; where that is refused, growth is
    // measured from the earlier peak, which can only understate it a little.
    let base = match std::fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => status_kib("VmRSS:"),
        Err(_) => status_kib("VmHWM:"),
    };
    let (up, down) = round_trip(&env, len).await.unwrap();
    let peak = status_kib("VmHWM:");
    let growth_mib = peak.saturating_sub(base) as f64 / 1024.0;
    let budget_mib = (64.0 * len as f64 / (1u64 << 30) as f64).max(16.0);
    eprintln!(
        "moved {} MiB: upload {up:.0} MiB/s, download {down:.0} MiB/s, peak RSS growth {growth_mib:.1} MiB (budget {budget_mib:.0} MiB)",
        len >> 20
    );
    assert!(
        growth_mib < budget_mib,
        "peak RSS grew by {growth_mib:.1} MiB"
    );
}
