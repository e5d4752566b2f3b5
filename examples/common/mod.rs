//! What every example shares: the command line, connecting to a TrueConf server or to the
//! embedded emulator, running a dispatcher for as long as asked, and the scripted users that
//! talk to the bot in emulator mode and print the conversation.
//!
//! Without `--server` (or `TRUECONF_SERVER`) an example starts the in-process emulator
//! (`trueconf_bot::testkit::Sim`), connects its bot to it, lets a scripted user exercise the
//! bot, prints the conversation and exits: non-zero when the bot did not answer as expected.
//! With `--server` it is a real bot that runs until Ctrl-C, `--for-seconds N` or, with
//! `--once`, its first handled event.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use trueconf_bot::bot::{Bot, BotBuilder};
use trueconf_bot::connection::ConnectionState;
use trueconf_bot::dispatch::{Dispatcher, DispatcherHandle};
use trueconf_bot::testkit::{Sim, SimConfig, SimUser};

/// Any error, for example `main`s.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a scripted user waits for each answer of the bot.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection options shared by every example. Each can also come from the environment
/// variable named in `--help`. No `Debug`: it holds secrets.
#[derive(clap::Args)]
pub struct Connect {
    /// TrueConf Server host name (e.g. video.example.com). Without it the embedded emulator
    /// is started and a scripted user talks to the bot.
    #[arg(long, env = "TRUECONF_SERVER")]
    pub server: Option<String>,
    /// Server port [default: 443, or 4309 with --no-tls].
    #[arg(long, env = "TRUECONF_PORT")]
    pub port: Option<u16>,
    /// Plain ws:// and http:// instead of wss:// and https://.
    #[arg(long, env = "TRUECONF_NO_TLS")]
    pub no_tls: bool,
    /// Accept any server certificate (testing only: this disables server authentication).
    #[arg(long, env = "TRUECONF_INSECURE")]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, env = "TRUECONF_CA_CERT", value_name = "PEM_FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The bot's access token (a JWT). Prefer the environment variable: command lines are
    /// visible to other users of the machine.
    #[arg(long, env = "TRUECONF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The bot account's login (with --password; the token is fetched and renewed).
    #[arg(long, env = "TRUECONF_USERNAME")]
    pub username: Option<String>,
    /// The bot account's password (prefer the environment variable).
    #[arg(long, env = "TRUECONF_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Log in through this registered OAuth application (with --username/--password), for
    /// servers where password login to the Bridge is disabled.
    #[arg(long, env = "TRUECONF_OAUTH_CLIENT_ID")]
    pub oauth_client_id: Option<String>,
    /// Stop after the first handled event (server mode). The emulator script always runs
    /// once.
    #[arg(long)]
    pub once: bool,
    /// Stop after N seconds (emulator mode: keep the emulator and the bot up N seconds after
    /// the script, printing how to connect to it).
    #[arg(long, value_name = "N")]
    pub for_seconds: Option<u64>,
}

type Configure = Arc<dyn Fn(BotBuilder) -> BotBuilder + Send + Sync>;

/// A connected example: the bot, and the emulator when there is no real server.
pub struct Session {
    /// The bot (not started: the dispatcher starts it).
    pub bot: Bot,
    /// The embedded emulator, in emulator mode.
    pub sim: Option<Arc<Sim>>,
    opts: Connect,
    configure: Configure,
}

/// Logs to stderr (`RUST_LOG` to change; default: warnings only, so the conversation stays
/// readable).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

impl Connect {
    /// Starts the emulator if no server was given, and builds the bot; `configure` adds the
    /// example's own settings (ack mode, throttling…).
    pub async fn connect(
        self,
        configure: impl Fn(BotBuilder) -> BotBuilder + Send + Sync + 'static,
    ) -> Result<Session, BoxError> {
        init_logging();
        let sim = match self.server {
            Some(_) => None,
            None => {
                let sim = Sim::start(SimConfig::default()).await?;
                Some(Arc::new(sim))
            }
        };
        let configure: Configure = Arc::new(configure);
        let bot = build_bot(&self, sim.as_deref(), &configure)?;
        Ok(Session {
            bot,
            sim,
            opts: self,
            configure,
        })
    }
}

fn build_bot(opts: &Connect, sim: Option<&Sim>, configure: &Configure) -> Result<Bot, BoxError> {
    let builder = match (sim, &opts.server) {
        (Some(sim), _) => Bot::builder("127.0.0.1")
            .https(false)
            .port(sim.addr().port())
            .token(sim.bot_token()),
        (None, Some(server)) => {
            let mut b = Bot::builder(server.as_str())
                .https(!opts.no_tls)
                .verify_ssl(!opts.insecure);
            if let Some(port) = opts.port {
                b = b.port(port);
            }
            if let Some(path) = &opts.ca_cert {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
                b = b.ca_certificate_pem(pem);
            }
            match (&opts.token, &opts.username, &opts.password) {
                (Some(_), Some(_), _) => {
                    return Err("give either --token or --username/--password, not both".into());
                }
                (Some(token), None, _) => b.token(token.as_str()),
                (None, Some(user), Some(password)) => match &opts.oauth_client_id {
                    Some(app) => b.oauth_app(app.as_str(), user.as_str(), password.as_str()),
                    None => b.credentials(user.as_str(), password.as_str()),
                },
                (None, Some(_), None) => return Err("--username needs --password".into()),
                (None, None, _) => {
                    return Err("a server needs --token, or --username and --password".into());
                }
            }
        }
        (None, None) => return Err("no server and no emulator".into()),
    };
    Ok(configure(builder).build()?)
}

/// A dispatcher running in the background.
pub struct Running {
    /// Its counters and shutdown switch.
    pub handle: DispatcherHandle,
    task: JoinHandle<trueconf_bot::Result<()>>,
}

impl Running {
    /// Stops the dispatcher (in-flight handlers finish) and the bot.
    pub async fn stop(self) -> Result<(), BoxError> {
        self.handle.shutdown();
        self.task.await??;
        Ok(())
    }
}

impl Session {
    /// Another bot with the same settings (for a restart).
    pub fn new_bot(&self) -> Result<Bot, BoxError> {
        build_bot(&self.opts, self.sim.as_deref(), &self.configure)
    }

    /// Runs `dispatcher` in the background and waits until its bot is connected.
    pub async fn spawn(&self, dispatcher: Dispatcher) -> Result<Running, BoxError> {
        let bot = dispatcher
            .bot()
            .cloned()
            .ok_or("the dispatcher has no bot")?;
        let handle = dispatcher.handle();
        let task = tokio::spawn(dispatcher.run());
        let mut state = bot.state();
        let ready = state
            .wait_for(|s| matches!(s, ConnectionState::Ready) || s.is_terminal())
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped);
        if ready != ConnectionState::Ready {
            // The dispatcher's result carries the reason (bad token, refused certificate…).
            task.await??;
            return Err(format!("the bot did not connect: {ready:?}").into());
        }
        Ok(Running { handle, task })
    }

    /// The whole life of an example: runs `dispatcher`; in emulator mode plays `script`
    /// against it and stops, with a real server runs until Ctrl-C, `--for-seconds` or
    /// `--once`.
    pub async fn serve<F, Fut>(self, dispatcher: Dispatcher, script: F) -> Result<(), BoxError>
    where
        F: FnOnce(Arc<Sim>) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let running = self.spawn(dispatcher).await?;
        match &self.sim {
            Some(sim) => {
                self.announce_emulator(sim);
                let outcome = script(sim.clone()).await;
                if outcome.is_ok()
                    && let Some(secs) = self.opts.for_seconds
                {
                    self.print_sim_access(sim, secs);
                    wait_or_signal(Duration::from_secs(secs)).await;
                }
                let handle = running.handle.clone();
                running.stop().await?;
                outcome?;
                print_done(&handle);
            }
            None => {
                println!(
                    "-- {} connected as {}; Ctrl-C to stop",
                    self.opts.server.as_deref().unwrap_or_default(),
                    self.bot.me().unwrap_or_default()
                );
                self.until_done(running).await?;
            }
        }
        Ok(())
    }

    /// Prints where the emulator listens.
    pub fn announce_emulator(&self, sim: &Sim) {
        println!(
            "-- embedded TrueConf emulator at {}; bot {} (no --server given)",
            sim.url(),
            sim.bot_id()
        );
    }

    fn print_sim_access(&self, sim: &Sim, secs: u64) {
        println!(
            "-- emulator stays up {secs} s: ws {}  token {}",
            sim.ws_url(),
            sim.bot_token()
        );
    }

    async fn until_done(&self, mut running: Running) -> Result<(), BoxError> {
        let limit = self.opts.for_seconds.map(Duration::from_secs);
        let once = self.opts.once;
        let handle = running.handle.clone();
        let first_event = async {
            loop {
                if handle.metrics().handled > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            r = &mut running.task => {
                // The bot stopped on its own: a fatal error (credentials, retries exhausted).
                r??;
                return Ok(());
            }
            _ = wait_or_signal(limit.unwrap_or(Duration::MAX)) => {}
            _ = first_event, if once => println!("-- first event handled (--once)"),
        }
        running.stop().await?;
        let metrics = handle.metrics();
        println!(
            "-- stopped: {} events, {} handled, {} errors",
            metrics.events, metrics.handled, metrics.errors
        );
        Ok(())
    }
}

/// The process exit status for an example's outcome; an error is printed as one readable
/// line (with its causes) instead of `main`'s `Debug` output.
pub fn exit_code(result: Result<(), BoxError>) -> std::process::ExitCode {
    let Err(error) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    let mut line = format!("error: {error}");
    let mut cause = error.source();
    while let Some(c) = cause {
        line.push_str(&format!(": {c}"));
        cause = c.source();
    }
    eprintln!("{line}");
    std::process::ExitCode::FAILURE
}

/// Prints the dispatcher's counters at the end of an emulator run.
pub fn print_done(handle: &DispatcherHandle) {
    let metrics = handle.metrics();
    println!(
        "-- done: {} events, {} handled, {} errors",
        metrics.events, metrics.handled, metrics.errors
    );
}

/// Sleeps for `d` (saturating) or until Ctrl-C.
async fn wait_or_signal(d: Duration) {
    let sleep = async {
        // Duration::MAX overflows Instant arithmetic: wait in bounded steps.
        let mut left = d;
        while !left.is_zero() {
            let step = left.min(Duration::from_secs(3600));
            tokio::time::sleep(step).await;
            left -= step;
        }
    };
    // SIGTERM (systemd, Kubernetes, a rolling restart) stops as cleanly as Ctrl-C.
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = sleep => {}
        _ = tokio::signal::ctrl_c() => println!("-- Ctrl-C"),
        _ = term => println!("-- SIGTERM"),
    }
}

/// A scripted user of the emulator in one chat: says things, waits for the bot's answers
/// and prints both sides.
#[derive(Clone)]
pub struct Person {
    /// Display name used in the printout.
    pub name: String,
    /// The emulator user.
    pub user: SimUser,
    /// The chat this person talks in.
    pub chat: String,
    sim: Arc<Sim>,
}

impl Person {
    /// `login` in a personal chat with the bot.
    pub async fn p2p(sim: &Arc<Sim>, login: &str) -> Result<Person, BoxError> {
        let user = sim.user(login);
        let chat = user.create_p2p_with_bot().await?;
        Ok(Person {
            name: login.to_owned(),
            user,
            chat,
            sim: sim.clone(),
        })
    }

    /// `login` in the chat `chat` (a group or channel they belong to).
    pub fn in_chat(sim: &Arc<Sim>, login: &str, chat: &str) -> Person {
        Person {
            name: login.to_owned(),
            user: sim.user(login),
            chat: chat.to_owned(),
            sim: sim.clone(),
        }
    }

    /// The same user in another chat.
    pub fn moved_to(&self, chat: &str) -> Person {
        Person {
            chat: chat.to_owned(),
            ..self.clone()
        }
    }

    /// Sends `text`; returns the message id.
    pub async fn say(&self, text: &str) -> Result<String, BoxError> {
        println!("{:>8} > {text}", self.name);
        Ok(self.user.send_text(&self.chat, text).await?)
    }

    /// Waits for the bot's next message in this chat and prints it.
    pub async fn hear(&self) -> Result<Value, BoxError> {
        let m = self.hear_quietly().await?;
        println!("{:>8} < {}", "bot", describe(&m));
        Ok(m)
    }

    /// Waits for the bot's next message in this chat without printing it.
    pub async fn hear_quietly(&self) -> Result<Value, BoxError> {
        Ok(self
            .sim
            .expect_message_within(&self.chat, ANSWER_TIMEOUT)
            .await
            .map_err(|e| format!("{} got no answer from the bot: {e}", self.name))?)
    }

    /// Waits for the bot's next message and checks that its text contains `needle`.
    pub async fn expect(&self, needle: &str) -> Result<Value, BoxError> {
        let m = self.hear().await?;
        let text = text_of(&m);
        if !text.contains(needle) {
            return Err(format!("expected the bot to say {needle:?}, it said {text:?}").into());
        }
        Ok(m)
    }

    /// Presses the command button `command` of the bot message `message`.
    pub async fn press(&self, message: &Value, command: &str) -> Result<(), BoxError> {
        let id = message["messageId"]
            .as_str()
            .ok_or("the message has no messageId")?;
        let label = message["content"]["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .find(|b| b["command"] == command)
            .and_then(|b| b["label"].as_str())
            .unwrap_or(command)
            .to_owned();
        println!("{:>8} * presses [{label}]", self.name);
        self.user.press_button(&self.chat, id, command).await?;
        Ok(())
    }
}

/// The text of a message envelope.
pub fn text_of(m: &Value) -> String {
    m["content"]["text"]
        .as_str()
        .or_else(|| m["content"]["title"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// One line for a bot message: its text, its buttons, or what kind of message it is.
pub fn describe(m: &Value) -> String {
    let content = &m["content"];
    let mut line = match m["type"].as_u64() {
        Some(204) => format!(
            "[survey card] {}",
            content["title"].as_str().unwrap_or_default()
        ),
        Some(202) => format!(
            "[file] {}",
            content["name"].as_str().unwrap_or("(attachment)")
        ),
        _ => text_of(m).replace('\n', "\n           "),
    };
    let buttons: Vec<String> = content["buttons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|b| b["label"].as_str().map(|t| format!("[{t}]")))
        .collect();
    if !buttons.is_empty() {
        line.push_str("  ");
        line.push_str(&buttons.join(" "));
    }
    line
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, BoxError> {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
