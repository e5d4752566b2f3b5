//! What every example shares: the command line, connecting to a TrueConf server or to the
//! embedded emulator, and running a dispatcher for as long as asked. The test side (running
//! the dispatcher against the emulator, the scripted users that talk to the bot and print the
//! conversation) is the public kit: `trueconf_bot::harness` and `trueconf_bot::testkit`.
//!
//! Without `--server` (or `TRUECONF_SERVER`) an example starts the in-process emulator
//! (`trueconf_bot::testkit::Sim`), connects its bot to it, lets a scripted user exercise the
//! bot, prints the conversation and exits: non-zero when the bot did not answer as expected.
//! With `--server` it is a real bot that runs until Ctrl-C, `--for-seconds N` or, with
//! `--once`, its first handled event.
//!
//! An emulator run has two parts: the *script* (the users' side: what scripted users say and
//! what they expect back), which `--replay FILE` replaces by the users' side of a transcript,
//! and, for a bot that acts on its own, the *driver* (what makes it act: a call to its HTTP
//! endpoint, a bulk job, the second bot of a pair), which runs in every emulator mode, replay
//! included, before the script. `--record FILE` records from the emulator's start, so what
//! the bot does while starting is in the transcript too.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trueconf_bot::bot::{Bot, BotBuilder};
use trueconf_bot::dispatch::{Dispatcher, DispatcherHandle};
use trueconf_bot::harness::{SimBot, bot_builder};
// Each example uses a different part of the kit.
#[allow(unused_imports)]
pub use trueconf_bot::testkit::{Person, eventually};
use trueconf_bot::testkit::{ReplayOptions, Sim, SimConfig, Transcript};

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
    /// Emulator mode: serve the web chat client, print its URL and keep running after the
    /// script (until Ctrl-C or --for-seconds) so you can talk to the bot in a browser.
    #[arg(long)]
    pub web: bool,
    /// Emulator mode: record the session (the script's and the browser's users and the bot's
    /// replies) as a transcript in FILE (see `trueconf_bot::testkit::Transcript`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Emulator mode: instead of the script, replay the users' side of the transcript FILE
    /// and fail if the bot's replies differ from the recorded ones.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Serve GET /metrics (Prometheus), /health/live and /health/ready on this address
    /// (e.g. 127.0.0.1:9464).
    #[arg(long, env = "TRUECONF_METRICS", value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

type Configure = Arc<dyn Fn(BotBuilder) -> BotBuilder + Send + Sync>;

/// The running dispatcher of an emulator run, shared with a [`Restarter`].
type Running = Arc<tokio::sync::Mutex<Option<SimBot>>>;

/// A connected example: the bot, and the emulator when there is no real server.
pub struct Session {
    /// The bot (not started: the dispatcher starts it).
    pub bot: Bot,
    /// The embedded emulator, in emulator mode.
    pub sim: Option<Arc<Sim>>,
    opts: Connect,
    configure: Configure,
    /// The `--metrics` endpoint, once a dispatcher runs.
    ops: std::sync::Mutex<Option<trueconf_bot::ops::OpsServer>>,
    running: Running,
}

/// Restarts the bot in the middle of an emulator script (see [`Session::restarter`]).
#[derive(Clone)]
pub struct Restarter {
    running: Running,
    sim: Arc<Sim>,
    configure: Configure,
}

impl Restarter {
    /// Stops the running dispatcher and its bot.
    pub async fn stop(&self) -> Result<(), BoxError> {
        let running = self.running.lock().await.take();
        if let Some(running) = running {
            running.stop().await?;
        }
        Ok(())
    }

    /// A new bot with the session's settings, for the next dispatcher.
    pub fn new_bot(&self) -> Result<Bot, BoxError> {
        Ok((self.configure)(bot_builder(&self.sim)).build()?)
    }

    /// Runs `dispatcher` in place of the stopped one, once its bot is connected.
    pub async fn start(&self, dispatcher: Dispatcher) -> Result<(), BoxError> {
        // Ready means the emulator has authorised the new session: messages reach it.
        let running = SimBot::run(dispatcher).await?;
        *self.running.lock().await = Some(running);
        Ok(())
    }
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
        self.connect_with(|sim| sim, configure).await
    }

    /// [`connect`](Self::connect) with the example's own emulator settings (`emulator`
    /// changes the defaults: token lifetime, accounts…).
    pub async fn connect_with(
        self,
        emulator: impl FnOnce(SimConfig) -> SimConfig,
        configure: impl Fn(BotBuilder) -> BotBuilder + Send + Sync + 'static,
    ) -> Result<Session, BoxError> {
        init_logging();
        let sim = match self.server {
            Some(_) => None,
            None => {
                let sim = Sim::start(emulator(SimConfig {
                    expect_timeout: ANSWER_TIMEOUT,
                    web: self.web,
                    ..SimConfig::default()
                }))
                .await?;
                sim.set_transcript(|line| println!("{line}"));
                if self.record.is_some() {
                    sim.start_recording();
                }
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
            ops: std::sync::Mutex::new(None),
            running: Running::default(),
        })
    }
}

fn build_bot(opts: &Connect, sim: Option<&Sim>, configure: &Configure) -> Result<Bot, BoxError> {
    let builder = match (sim, &opts.server) {
        (Some(sim), _) => bot_builder(sim),
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

impl Session {
    /// Another bot with the same settings (for a restart).
    pub fn new_bot(&self) -> Result<Bot, BoxError> {
        build_bot(&self.opts, self.sim.as_deref(), &self.configure)
    }

    /// Restarts the bot from inside an emulator script (`None` with a real server).
    pub fn restarter(&self) -> Option<Restarter> {
        Some(Restarter {
            running: self.running.clone(),
            sim: self.sim.clone()?,
            configure: self.configure.clone(),
        })
    }

    /// Runs `dispatcher` in the background and waits until its bot is connected.
    pub async fn spawn(&self, dispatcher: Dispatcher) -> Result<SimBot, BoxError> {
        if let Some(addr) = self.opts.metrics {
            let bot = dispatcher
                .bot()
                .cloned()
                .ok_or("the dispatcher has no bot")?;
            let ops = trueconf_bot::ops::OpsServer::builder(&bot)
                .dispatcher(dispatcher.handle())
                .serve(addr)
                .await?;
            println!("-- metrics at http://{}/metrics", ops.local_addr());
            // Served for as long as the session lives (a restarted bot keeps the first one's).
            if let Ok(mut slot) = self.ops.lock() {
                slot.get_or_insert(ops);
            }
        }
        Ok(SimBot::run(dispatcher).await?)
    }

    /// The whole life of an example: runs `dispatcher`; in emulator mode plays `script`
    /// against it and stops, with a real server runs until Ctrl-C, `--for-seconds` or
    /// `--once`.
    pub async fn serve<F, Fut>(self, dispatcher: Dispatcher, script: F) -> Result<(), BoxError>
    where
        F: FnOnce(Arc<Sim>) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        self.serve_driven(dispatcher, |_| async { Ok(()) }, script)
            .await
    }

    /// [`serve`](Self::serve) for a bot that acts on its own: in emulator mode `driver` (what
    /// makes the bot act) runs first, also when `--replay` replaces `script`.
    pub async fn serve_driven<D, DFut, F, Fut>(
        self,
        dispatcher: Dispatcher,
        driver: D,
        script: F,
    ) -> Result<(), BoxError>
    where
        D: FnOnce(Arc<Sim>) -> DFut,
        DFut: Future<Output = Result<(), BoxError>>,
        F: FnOnce(Arc<Sim>) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let running = self.spawn(dispatcher).await?;
        match &self.sim {
            Some(sim) => {
                self.announce_emulator(sim);
                *self.running.lock().await = Some(running);
                let outcome = async {
                    driver(sim.clone()).await?;
                    match &self.opts.replay {
                        Some(path) => replay(sim, path).await,
                        None => script(sim.clone()).await,
                    }
                }
                .await;
                if outcome.is_ok() && self.opts.web {
                    println!(
                        "-- web chat: {}/  (open it in a browser; Ctrl-C to stop)",
                        sim.url()
                    );
                    let limit = self.opts.for_seconds.map(Duration::from_secs);
                    wait_or_signal(limit.unwrap_or(Duration::MAX)).await;
                } else if outcome.is_ok()
                    && let Some(secs) = self.opts.for_seconds
                {
                    self.print_sim_access(sim, secs);
                    wait_or_signal(Duration::from_secs(secs)).await;
                }
                if let Some(path) = &self.opts.record {
                    std::fs::write(path, sim.transcript().to_jsonl())
                        .map_err(|e| format!("cannot write --record {}: {e}", path.display()))?;
                    println!("-- transcript written to {}", path.display());
                }
                // A failed restart leaves no dispatcher: the script's error says why.
                let running = self.running.lock().await.take();
                let stopped = match running {
                    Some(running) => {
                        let handle = running.handle().clone();
                        running.stop().await?;
                        Some(handle)
                    }
                    None => None,
                };
                outcome?;
                if let Some(handle) = stopped {
                    print_done(&handle);
                }
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

    async fn until_done(&self, running: SimBot) -> Result<(), BoxError> {
        let limit = self.opts.for_seconds.map(Duration::from_secs);
        let once = self.opts.once;
        let handle = running.handle().clone();
        let first_event = async {
            loop {
                if handle.metrics().handled > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let wait = async {
            tokio::select! {
                _ = wait_or_signal(limit.unwrap_or(Duration::MAX)) => {}
                _ = first_event, if once => println!("-- first event handled (--once)"),
            }
        };
        // Returns early with the dispatcher's error when the bot stops on its own (a fatal
        // error: credentials, retries exhausted).
        running.stop_when(wait).await?;
        let metrics = handle.metrics();
        println!(
            "-- stopped: {} events, {} handled, {} errors",
            metrics.events, metrics.handled, metrics.errors
        );
        Ok(())
    }
}

/// Replays the transcript at `path` against the running bot; an error lists the differences.
async fn replay(sim: &Sim, path: &std::path::Path) -> Result<(), BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --replay {}: {e}", path.display()))?;
    let transcript = Transcript::parse(&text)?;
    let report = sim.replay(&transcript, &ReplayOptions::default()).await?;
    if report.is_clean() {
        println!(
            "-- replayed {}: {} entries, the bot answered as recorded",
            path.display(),
            report.entries
        );
        return Ok(());
    }
    for difference in &report.differences {
        println!("-- difference: {difference}");
    }
    Err(format!(
        "the bot's replies differ from {} in {} places",
        path.display(),
        report.differences.len()
    )
    .into())
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
