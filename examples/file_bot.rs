//! A bot that downloads every file a user sends it, with a progress bar, and sends it back.
//!
//! ```text
//! cargo run --example file_bot                   # embedded emulator and a scripted user
//! cargo run --example file_bot -- --server video.example.com --username file_bot --password …
//! ```
//!
//! Without `--server` it starts the embedded TrueConf emulator, and a scripted user sends the
//! bot a file that is still being uploaded: the bot waits for it (progress events, no
//! polling), downloads it and sends it back; the run stops after that file (`--web`,
//! `--record` and `--replay` as in every example). With a server, `--once` stops after the
//! first file and `--for-seconds N` after N seconds.
//!
//! Chat users choose what they send, not where it lands: every file is saved under the
//! download directory with a name the bot makes (a unique prefix and the sender's name reduced
//! to safe characters), and files larger than `--max-size-mib` are refused before download.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect, Person};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use trueconf_bot::bot::Bot;
use trueconf_bot::dispatch::{Dep, Dispatcher, Filter, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::Sim;
use trueconf_bot::transfer::InputFile;
use trueconf_bot::types::MessageKind;

/// Echoes every file it receives back to its sender.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// Where downloads are kept [default: ./downloads, or a temporary directory in emulator
    /// mode].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Largest file downloaded, in MiB; larger ones are refused before any byte is fetched.
    #[arg(long, default_value_t = 100)]
    max_size_mib: u64,
}

/// Where downloads go: a dependency of the file handler.
#[derive(Clone)]
struct Downloads(Arc<PathBuf>);

/// Messages that carry a file (every attachment kind).
fn has_file() -> Filter {
    Filter::new(|c| {
        c.update().message_kind().is_some_and(|kind| {
            matches!(
                kind,
                MessageKind::Photo
                    | MessageKind::Video
                    | MessageKind::Sticker
                    | MessageKind::Audio
                    | MessageKind::Document
                    | MessageKind::Voice
            )
        })
    })
}

async fn on_file(msg: MessageContext, Dep(Downloads(dir)): Dep<Downloads>) -> HandlerResult {
    let Some(file) = msg.file() else {
        return Ok(());
    };
    // A failed echo is logged and counted (the handler's error), and the bot goes on.
    echo_file(
        &msg.bot,
        &dir,
        msg.chat(),
        &msg.message_id,
        &file.file_id,
        &file.name,
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let session = args.connect.connect(|bot| bot).await?;
    let bot = session.bot.clone();
    let scratch = tempfile::tempdir()?;
    let dir = match (args.dir, &session.sim) {
        (Some(dir), _) => dir,
        (None, Some(_)) => scratch.path().to_path_buf(),
        (None, None) => PathBuf::from("downloads"),
    };
    tokio::fs::create_dir_all(&dir).await?;
    bot.configure_transfers(
        bot.transfer_config()
            .max_download_size(Some(args.max_size_mib.saturating_mul(1 << 20))),
    );
    let dispatcher = Dispatcher::builder(bot, Router::new().message_when(has_file(), on_file))
        .dependency(Downloads(Arc::new(dir)))
        .build()?;
    session.serve(dispatcher, scripted_user).await
}

async fn echo_file(
    bot: &Bot,
    dir: &std::path::Path,
    chat: &str,
    message_id: &str,
    file_id: &str,
    name: &str,
) -> trueconf_bot::Result<()> {
    // The sender chose `name`: it only contributes safe characters to a name the bot makes.
    let safe = safe_file_name(name);
    let target = dir.join(format!("{}-{safe}", unique_prefix()));
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
    println!(
        "          [bot] downloaded {} ({} bytes) to {}",
        info.name,
        info.size,
        target.display()
    );
    let sent = bot
        .send_document(chat, InputFile::path(&target).file_name(&safe))
        .caption(format!("Here is {} back ({} bytes).", info.name, info.size))
        .reply_to(message_id)
        .await?;
    println!("          [bot] sent it back as file {}", sent.file_id);
    Ok(())
}

/// `name` reduced to ASCII letters, digits, `.`, `-` and `_` (anything else becomes `_`),
/// without leading dots (no hidden files, no `..`), at most 100 characters, never empty.
fn safe_file_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed: String = mapped.trim_start_matches('.').chars().take(100).collect();
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed
    }
}

/// A prefix no earlier download has: the time in milliseconds and a random part, so one
/// user's file never replaces another's, whatever they are called.
fn unique_prefix() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{ms}-{:08x}", rand::random::<u32>())
}

/// Sends the bot an 8 MiB file that arrives in steps, then checks the echo.
async fn scripted_user(sim: Arc<Sim>) -> Result<(), BoxError> {
    let alice = Person::p2p(&sim, "alice").await?;
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    let len = data.len() as u64;
    println!("   alice * uploads holiday.mp4 (8 MiB, arriving in 8 steps)");
    let upload = alice
        .user
        .start_upload(&alice.chat, "holiday.mp4", data)
        .await?;
    for step in 1..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        upload.progress(len * step / 8);
    }
    upload.finish();
    let (_, file) = sim.expect_file(&alice.chat).await?;
    if file.size != len {
        return Err(format!("the echoed file has size {}, expected {len}", file.size).into());
    }
    println!(
        "{:>8} < [file] {} ({} bytes, the same size as sent)",
        "bot", file.name, file.size
    );
    alice.expect("Here is holiday.mp4 back").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn file_names_from_chat_users_cannot_leave_the_directory() {
        for (name, safe) in [
            ("holiday.mp4", "holiday.mp4"),
            ("../../etc/passwd", "_.._etc_passwd"),
            ("/etc/passwd", "_etc_passwd"),
            ("..", "file"),
            (".bashrc", "bashrc"),
            ("", "file"),
            ("a\\b\0c\nd", "a_b_c_d"),
            ("отчёт 2026.pdf", "______2026.pdf"),
        ] {
            assert_eq!(safe_file_name(name), safe, "{name:?}");
        }
        assert_eq!(safe_file_name(&"x".repeat(500)).len(), 100);
    }
}
