//! `trueconf-sim`: a local TrueConf Chatbot Connector server emulator.
//!
//! Runs the emulator of `trueconf_bot::testkit` as a process: point any bot (ours, the official
//! Python client, anything speaking the protocol) at the printed URL with the printed token.
//! Optional modes drive a connected bot: `--script FILE` plays scripted users and checks the
//! bot's answers; `--load N` runs a load test and prints a JSON report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use trueconf_bot::testkit::{Account, LoadSpec, ReplayOptions, Sim, SimConfig, Transcript};

/// Local TrueConf Chatbot Connector server emulator (HTTP + WebSocket). For development and
/// tests only: it is not a server to expose or to trust with real credentials.
///
/// Prints the base URL and a ready-made bot token, then serves until interrupted, unless
/// --script or --load is given (then it exits with the outcome). It listens on 127.0.0.1
/// (another address needs --bind and --allow-remote) and refuses requests a foreign web page
/// could make (a foreign Host or Origin, a non-JSON token request). --web adds a chat page at
/// the base URL.
#[derive(Parser, Debug)]
#[command(name = "trueconf-sim", version)]
struct Args {
    /// TCP port (0 = any free port).
    #[arg(long, default_value_t = 4309)]
    port: u16,
    /// Serve the web chat client at the base URL: act as any user and talk to the bot in a
    /// browser, with a frame inspector.
    #[arg(long)]
    web: bool,
    /// Listen on this address instead of 127.0.0.1 (needs --allow-remote when it is not a
    /// loopback address: the emulator has no real authentication).
    #[arg(long, value_name = "IP")]
    bind: Option<std::net::IpAddr>,
    /// Allow --bind to a non-loopback address: anyone who can reach it can get tokens and act
    /// as any user.
    #[arg(long)]
    allow_remote: bool,
    /// Server domain (product.display_name; completes user ids).
    #[arg(long, default_value = "sim.example")]
    domain: String,
    /// Serve HTTPS/WSS with a self-signed certificate (written to --cert-out if given).
    #[arg(long)]
    tls: bool,
    /// Where to write the certificate PEM when --tls is on.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Bot account as LOGIN:PASSWORD (default: login `bot` with a random password, printed).
    #[arg(long)]
    bot: Option<String>,
    /// Extra user account as LOGIN:PASSWORD (repeatable).
    #[arg(long = "user")]
    users: Vec<String>,
    /// Write {url, ws_url, port, bot_id, token, domain} as JSON to this file once listening
    /// (readable by its owner only: it holds the token).
    #[arg(long)]
    info_file: Option<PathBuf>,
    /// Play a script of scripted-user steps against the connected bot, then exit (0 = passed).
    /// Lines: `wait-bot [SECS]`, `p2p USER`, `send USER TEXT…`, `expect USER TEXT…`,
    /// `expect-file USER NAME`, `upload USER NAME CONTENT…`, `press USER COMMAND`, `sleep MS`.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Record the session (users' actions, from scripts or the web page, and the bot's
    /// replies) as a transcript in FILE, written when the emulator stops (see
    /// `trueconf_bot::testkit::Transcript` for the format).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Replay the users' side of the transcript FILE against the connected bot, print the
    /// differences in the bot's replies, then exit (0 = the bot answered as recorded).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Load mode: push this many events to the connected bot and print a JSON report.
    #[arg(long)]
    load: Option<u64>,
    /// Load mode: number of chats the events are spread over.
    #[arg(long, default_value_t = 100)]
    load_chats: u32,
    /// Load mode: maximum un-replied events in flight.
    #[arg(long, default_value_t = 200)]
    load_window: u32,
    /// Load mode: push at most this many events per second (default: as fast as the window
    /// allows).
    #[arg(long)]
    load_rate: Option<f64>,
    /// Load mode: wait for this many sessions of the bot (replicas of one bot) before
    /// starting; an echo from any of them counts, and the report counts lost, duplicated and
    /// reordered echoes per chat across sessions and times failovers.
    #[arg(long, default_value_t = 1)]
    load_replicas: u32,
    /// Load mode: seconds to wait for the echoes.
    #[arg(long, default_value_t = 120)]
    load_timeout: u64,
    /// Seconds to wait for a bot to connect in --script / --load modes.
    #[arg(long, default_value_t = 60)]
    connect_timeout: u64,
}

fn account(spec: &str) -> Result<Account, String> {
    let (login, password) = spec
        .split_once(':')
        .ok_or_else(|| format!("account {spec:?} is not LOGIN:PASSWORD"))?;
    Ok(Account::new(login, password))
}

/// A password nobody can guess, for the default bot account.
fn random_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Writes `bytes` to a file only its owner can read (it holds a token).
#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its old mode through `open`: tighten it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// Writes `bytes` to a file (no owner-only mode to ask for on this platform).
#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trueconf-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let generated = random_password();
    let bind = args
        .bind
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    if !bind.is_loopback() {
        if !args.allow_remote {
            return Err(format!(
                "--bind {bind} is not a loopback address: add --allow-remote if you mean it \
                 (the emulator has no real authentication)"
            ));
        }
        eprintln!(
            "trueconf-sim: WARNING: listening on {bind}: anyone who can reach this address can \
             get tokens and act as any user; use it only on a network you trust"
        );
    }
    let cfg = SimConfig {
        domain: args.domain.clone(),
        port: args.port,
        bind,
        web: args.web,
        tls: args.tls,
        bot: match &args.bot {
            Some(spec) => account(spec)?,
            None => Account::new("bot", generated.clone()),
        },
        users: args
            .users
            .iter()
            .map(|u| account(u))
            .collect::<Result<_, _>>()?,
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await.map_err(|e| e.to_string())?;
    let token = sim.bot_token();
    println!("trueconf-sim listening on {}", sim.url());
    if args.web {
        println!("web chat: {}/ (open it in a browser)", sim.url());
    }
    println!("websocket: {}", sim.ws_url());
    println!("bot: {}", sim.bot_id());
    println!("token: {token}");
    if args.bot.is_none() {
        println!("bot login: bot, password: {generated}");
    }
    if let (Some(path), Some(pem)) = (&args.cert_out, sim.cert_pem()) {
        std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.info_file {
        let info = json!({
            "url": sim.url(), "ws_url": sim.ws_url(), "port": sim.addr().port(),
            "bot_id": sim.bot_id(), "token": token, "domain": sim.domain(),
        });
        write_private(path, info.to_string().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let connect = Duration::from_secs(args.connect_timeout);
    if args.record.is_some() {
        sim.start_recording();
    }
    let code = serve(&sim, &args, connect).await;
    if let Some(path) = &args.record {
        std::fs::write(path, sim.transcript().to_jsonl())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("transcript written to {}", path.display());
    }
    code
}

/// Runs the chosen mode: load, replay, script, or serve until Ctrl-C.
async fn serve(sim: &Sim, args: &Args, connect: Duration) -> Result<ExitCode, String> {
    if let Some(path) = &args.replay {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let transcript = Transcript::parse(&text).map_err(|e| e.to_string())?;
        sim.wait_for_bot(connect).await.map_err(|e| e.to_string())?;
        let report = sim
            .replay(&transcript, &ReplayOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        for difference in &report.differences {
            println!("difference: {difference}");
        }
        println!(
            "replayed {} entries: {} differences",
            report.entries,
            report.differences.len()
        );
        return Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Some(events) = args.load {
        let report = sim
            .run_load_replicas(
                LoadSpec {
                    events,
                    chats: args.load_chats,
                    window: args.load_window,
                    timeout: Duration::from_secs(args.load_timeout),
                    connect_timeout: connect,
                    rate: args.load_rate,
                },
                args.load_replicas,
            )
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
        return Ok(if report.replied == report.sent {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Some(path) = &args.script {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return match play(sim, &text, connect).await {
            Ok(()) => {
                println!("script passed");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("script failed: {e}");
                Ok(ExitCode::FAILURE)
            }
        };
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Plays a script; returns the first failing line with the reason.
async fn play(sim: &Sim, script: &str, connect: Duration) -> Result<(), String> {
    let mut chats: HashMap<String, String> = HashMap::new();
    let mut last_bot_message: HashMap<String, String> = HashMap::new();
    for (n, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |e: String| format!("line {}: `{line}`: {e}", n + 1);
        let mut words = line.splitn(3, ' ');
        let cmd = words.next().unwrap_or_default();
        let a = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default();
        let chat_of = |user: &str| {
            chats
                .get(user)
                .cloned()
                .ok_or_else(|| fail(format!("no p2p chat opened for {user}")))
        };
        println!("> {line}");
        match cmd {
            "wait-bot" => {
                let secs = a.parse().map(Duration::from_secs).unwrap_or(connect);
                sim.wait_for_bot(secs)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            "p2p" => {
                let chat = sim
                    .user(a)
                    .create_p2p_with_bot()
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                chats.insert(a.to_owned(), chat);
            }
            "send" => {
                let chat = chat_of(a)?;
                sim.user(a)
                    .send_text(&chat, rest)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            "upload" => {
                let chat = chat_of(a)?;
                let (name, content) = rest.split_once(' ').unwrap_or((rest, ""));
                sim.user(a)
                    .upload_file(&chat, name, content.as_bytes().to_vec())
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            "expect" | "expect-file" => {
                let chat = chat_of(a)?;
                let msg = sim
                    .expect_message(&chat)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let got = if cmd == "expect" {
                    msg["content"]["text"].as_str().unwrap_or_default()
                } else {
                    msg["content"]["name"].as_str().unwrap_or_default()
                };
                if !got.contains(rest) {
                    return Err(fail(format!("bot sent {msg}")));
                }
                println!("  bot: {}", msg["content"]);
                if let Some(id) = msg["messageId"].as_str() {
                    last_bot_message.insert(a.to_owned(), id.to_owned());
                }
            }
            "press" => {
                let chat = chat_of(a)?;
                let msg = last_bot_message
                    .get(a)
                    .ok_or_else(|| fail("no bot message seen yet".into()))?;
                sim.user(a)
                    .press_button(&chat, msg, rest)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            "sleep" => {
                let ms = a.parse().map_err(|_| fail("not a number".into()))?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            other => return Err(fail(format!("unknown command {other:?}"))),
        }
    }
    Ok(())
}
