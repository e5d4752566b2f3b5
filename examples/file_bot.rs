//! A bot that downloads every file a user sends it, with a progress bar, and sends it back.
//!
//! ```text
//! cargo run --example file_bot -- --server video.example.com --user file_bot --password …
//! cargo run --example file_bot -- --once        # embedded emulator and a scripted user
//! ```
//!
//! Without `--server` it starts the embedded TrueConf emulator, and a scripted user sends the
//! bot a file that is still being uploaded: the bot waits for it (progress events, no
//! polling), downloads it and sends it back. `--once` stops after the first file and
//! `--for-seconds N` after N seconds, for CI.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use trueconf_bot::bot::Bot;
use trueconf_bot::testkit::{Sim, SimConfig};
use trueconf_bot::transfer::InputFile;
use trueconf_bot::types::Event;

#[derive(Parser)]
#[command(about = "Echoes every file it receives back to its sender")]
struct Args {
    /// TrueConf Server host; without it the embedded emulator is used.
    #[arg(long)]
    server: Option<String>,
    /// Server port (default 443, or 4309 with --plain).
    #[arg(long)]
    port: Option<u16>,
    /// Use plain HTTP/WS instead of HTTPS/WSS.
    #[arg(long)]
    plain: bool,
    /// Do not verify the server certificate (testing only).
    #[arg(long)]
    insecure: bool,
    /// Bot login.
    #[arg(long, env = "TRUECONF_USER")]
    user: Option<String>,
    /// Bot password.
    #[arg(long, env = "TRUECONF_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Where downloads are kept.
    #[arg(long, default_value = "downloads")]
    dir: PathBuf,
    /// Stop after the first file.
    #[arg(long)]
    once: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    for_seconds: Option<u64>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (bot, sim) = match &args.server {
        Some(server) => {
            let (Some(user), Some(password)) = (&args.user, &args.password) else {
                return Err("--server needs --user and --password".into());
            };
            let mut b = Bot::builder(server.as_str())
                .credentials(user.as_str(), password.as_str())
                .https(!args.plain)
                .verify_ssl(!args.insecure);
            if let Some(p) = args.port {
                b = b.port(p);
            }
            (b.build()?, None)
        }
        None => {
            let sim = Sim::start(SimConfig::default()).await?;
            let bot = Bot::builder("127.0.0.1")
                .port(sim.addr().port())
                .https(false)
                .token(sim.bot_token())
                .build()?;
            (bot, Some(sim))
        }
    };
    tokio::fs::create_dir_all(&args.dir).await?;
    let mut events = bot.events().ok_or("event stream already taken")?;
    bot.start().await?;
    tracing::info!(me = ?bot.me(), "file bot ready");
    if let Some(sim) = &sim {
        tokio::spawn(scripted_user(sim.user("alice")));
    }

    let mut last_chat = None;
    let stop = tokio::time::sleep(Duration::from_secs(
        args.for_seconds.unwrap_or(u64::MAX / 4),
    ));
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            e = events.next() => match e { Some(e) => e, None => break },
            _ = &mut stop => break,
        };
        let Ok(Event::Message(msg)) = Event::decode(&event.method, &event.payload) else {
            continue;
        };
        let (Some(file), Some(chat)) = (msg.file(), msg.chat_id()) else {
            continue;
        };
        if bot.me().as_deref() == Some(msg.author_id()) {
            continue;
        }
        match echo_file(
            &bot,
            &args.dir,
            chat,
            &msg.message_id,
            &file.file_id,
            &file.name,
        )
        .await
        {
            Ok(()) => {
                last_chat = Some(chat.to_owned());
                if args.once {
                    break;
                }
            }
            Err(e) => tracing::error!(error = %e, file = %file.name, "could not echo the file"),
        }
    }
    if let (Some(sim), Some(chat)) = (&sim, &last_chat) {
        let echo = sim.expect_message(chat).await?;
        let size = &echo["content"]["size"];
        if *size != serde_json::json!(8u64 << 20) {
            return Err(format!("the echoed file has size {size}, expected 8 MiB").into());
        }
        tracing::info!("the scripted user got the file back intact");
    }
    bot.shutdown().await?;
    Ok(())
}

async fn echo_file(
    bot: &Bot,
    dir: &std::path::Path,
    chat: &str,
    message_id: &str,
    file_id: &str,
    name: &str,
) -> trueconf_bot::Result<()> {
    // Keep only the last path component of a name chosen by someone else.
    let safe = std::path::Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let target = dir.join(&safe);
    let (download, mut progress) = bot.download_file_by_id(file_id).with_progress();
    let bar = ProgressBar::new(0).with_message(safe.clone());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let shown = bar.clone();
    let drawing = tokio::spawn(async move {
        while let Some(p) = progress.next().await {
            if let Some(total) = p.total {
                shown.set_length(total);
            }
            shown.set_position(p.transferred);
        }
    });
    let info = download.to_path(&target).await;
    let _ = drawing.await;
    bar.finish();
    let info = info?;
    tracing::info!(file = %info.name, size = info.size, path = %target.display(), "downloaded");
    let sent = bot
        .send_document(chat, InputFile::path(&target))
        .caption(format!("Here is {} back ({} bytes).", info.name, info.size))
        .reply_to(message_id)
        .await?;
    tracing::info!(file_id = %sent.file_id, "sent it back");
    Ok(())
}

/// Sends the bot an 8 MiB file that arrives in steps, then checks the echo.
async fn scripted_user(alice: trueconf_bot::testkit::SimUser) -> trueconf_bot::Result<()> {
    let chat = alice.create_p2p_with_bot().await?;
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    let len = data.len() as u64;
    let upload = alice.start_upload(&chat, "holiday.mp4", data).await?;
    for step in 1..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        upload.progress(len * step / 8);
    }
    upload.finish();
    Ok(())
}
