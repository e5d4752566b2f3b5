//! A bot that downloads every file a user sends it, with a progress bar, and sends it back.
//!
//! ```text
//! cargo run --example file_bot                   # embedded emulator and a scripted user
//! cargo run --example file_bot -- --server video.example.com --username file_bot --password …
//! ```
//!
//! Without `--server` it starts the embedded TrueConf emulator, and a scripted user sends the
//! bot a file that is still being uploaded: the bot waits for it (progress events, no
//! polling), downloads it and sends it back; the run stops after that file. With a server,
//! `--once` stops after the first file and `--for-seconds N` after N seconds.
//!
//! Chat users choose what they send, not where it lands: every file is saved under the
//! download directory with a name the bot makes (a unique prefix and the sender's name reduced
//! to safe characters), and files larger than `--max-size-mib` are refused before download.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::{BoxError, Connect};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use trueconf_bot::bot::Bot;
use trueconf_bot::transfer::InputFile;
use trueconf_bot::types::Event;

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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let for_seconds = args.connect.for_seconds;
    let mut once = args.connect.once;
    let session = args.connect.connect(|bot| bot).await?;
    let (bot, sim) = (session.bot.clone(), session.sim.clone());
    let scratch = tempfile::tempdir()?;
    let dir = match (args.dir, &sim) {
        (Some(dir), _) => dir,
        (None, Some(_)) => scratch.path().to_path_buf(),
        (None, None) => PathBuf::from("downloads"),
    };
    if let Some(sim) = &sim {
        session.announce_emulator(sim);
        once = true; // the script sends one file
    }
    tokio::fs::create_dir_all(&dir).await?;
    bot.configure_transfers(
        bot.transfer_config()
            .max_download_size(Some(args.max_size_mib.saturating_mul(1 << 20))),
    );
    let mut events = bot.events().ok_or("event stream already taken")?;
    bot.start().await?;
    println!("-- file bot ready as {}", bot.me().unwrap_or_default());
    if let Some(sim) = &sim {
        tokio::spawn(scripted_user(sim.user("alice")));
    }

    let mut last_chat = None;
    let stop = tokio::time::sleep(Duration::from_secs(for_seconds.unwrap_or(u64::MAX / 4)));
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
        match echo_file(&bot, &dir, chat, &msg.message_id, &file.file_id, &file.name).await {
            Ok(()) => {
                last_chat = Some(chat.to_owned());
                if once {
                    break;
                }
            }
            Err(e) => tracing::error!(error = %e, file = %file.name, "could not echo the file"),
        }
    }
    if let (Some(sim), Some(chat)) = (&sim, &last_chat) {
        let (_, file) = sim.expect_file(chat).await?;
        let size = file.size;
        if size != 8u64 << 20 {
            return Err(format!("the echoed file has size {size}, expected 8 MiB").into());
        }
        println!(
            "{:>8} < [file] {} ({size} bytes, the same size as sent)",
            "bot", file.name
        );
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
async fn scripted_user(alice: trueconf_bot::testkit::SimUser) -> trueconf_bot::Result<()> {
    let chat = alice.create_p2p_with_bot().await?;
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    let len = data.len() as u64;
    println!("   alice * uploads holiday.mp4 (8 MiB, arriving in 8 steps)");
    let upload = alice.start_upload(&chat, "holiday.mp4", data).await?;
    for step in 1..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        upload.progress(len * step / 8);
    }
    upload.finish();
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
