//! End-to-end benchmarks: an echo bot in its own process against the emulator's load mode over
//! loopback, with the raw tokio-tungstenite echo client and the official Python client as
//! baselines; the chat-count sweep with its plot; the 100,000-conversation scale run.
//!
//! Run through `scripts/bench.sh` (which builds, copies the binary out of the shared target
//! directory and installs the Python client), or directly:
//!
//! ```text
//! e2e load  [--events N] [--chats C] [--window W] [--delay-ms D] [--ack receive|handled]
//!           [--bots ours,raw,python,before] [--repeat K] [--half-rate] [--python PATH]
//!           [--drop-every N] [--bot-workers N] [--raw-workers N] [--before-exe PATH]
//!           [--json FILE]
//! e2e sweep [--chat-counts 1,10,100,1000,10000] [--events N] [--json FILE] [--png FILE]
//! e2e scale [--chats 100000] [--idle-ms 20000] [--hibernate-ms 10000] [--json FILE]
//! e2e plot  --json FILE --png FILE
//! e2e bot   ours|raw --url WS_URL --token T --port P [--delay-ms D] [--ack receive|handled]
//! ```

#[path = "../examples/raw_echo.rs"]
#[allow(dead_code)]
mod raw_echo;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use trueconf_bot::bot::Bot;
use trueconf_bot::connection::{AckMode, Acknowledger, ServerEvent};
use trueconf_bot::dispatch::{Dispatcher, HandlerError, MessageContext, Router};
use trueconf_bot::protocol::RawValue;
use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The system allocator, keeping the count of live heap bytes while `HEAP_ON` is set (the
/// scale run turns it on; the bots never do).
struct HeapCounter;

static HEAP_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HEAP_LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

// SAFETY: defers every operation to `System`; only counts on the side.
unsafe impl std::alloc::GlobalAlloc for HeapCounter {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if HEAP_ON.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if HEAP_ON.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if HEAP_ON.load(Ordering::Relaxed) {
            HEAP_LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: HeapCounter = HeapCounter;

#[derive(Parser)]
#[command(name = "e2e", about = "trueconf-bot end-to-end benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// One load shape against each bot; a table, ratios and JSON.
    Load(LoadArgs),
    /// Ours and raw over a range of chat counts; JSON and a PNG plot.
    Sweep(SweepArgs),
    /// Many conversations at once: RSS per live conversation, spawn time, RSS after eviction.
    Scale(ScaleArgs),
    /// Plot a sweep's JSON.
    Plot {
        /// Sweep results.
        #[arg(long)]
        json: PathBuf,
        /// Where to write the PNG.
        #[arg(long)]
        png: PathBuf,
    },
    /// Child process: one echo bot.
    Bot(BotArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// This crate: Bot + Dispatcher + an echo handler.
    Ours,
    /// The raw tokio-tungstenite echo client (examples/raw_echo.rs).
    Raw,
    /// The official Python client's echo bot (scripts/bench_echo.py).
    Python,
    /// Ours as built into another copy of this binary (`--before-exe`, e.g. of the main
    /// branch), for before/after ratios in one run.
    Before,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Ack {
    Receive,
    Handled,
}

#[derive(clap::Args, Clone)]
struct Shape {
    /// Events to push.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Maximum un-replied events in flight.
    #[arg(long, default_value_t = 200)]
    window: u32,
    /// Handler delay in milliseconds (ours and python; raw ignores it).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// When ours acknowledges events.
    #[arg(long, value_enum, default_value_t = Ack::Receive)]
    ack: Ack,
    /// Runs of each bot (interleaved); the summary takes the median by throughput.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Python interpreter with python-trueconf-bot installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Seconds to wait for all echoes of one run.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Tokio worker threads of our bots (0 = one per core; 1 = a current-thread runtime).
    #[arg(long, default_value_t = 0)]
    bot_workers: usize,
    /// Tokio worker threads of the raw bot (1 = a current-thread runtime, its cheapest form).
    #[arg(long, default_value_t = 1)]
    raw_workers: usize,
    /// The server closes the bot's socket (code 1012, "service restart", and accepts the
    /// next connection at once) every this many pushed events.
    #[arg(long)]
    drop_every: Option<u64>,
    /// Another build of this binary whose `ours` bot runs as the `before` bot.
    #[arg(long)]
    before_exe: Option<PathBuf>,
    /// Fail (exit code 1) if any run lost an echo or reordered a chat.
    #[arg(long)]
    strict: bool,
}

/// With `--strict`, an error naming the first bad run.
fn check(shape: &Shape, runs: &[Run]) -> Result<(), BoxError> {
    match runs
        .iter()
        .find(|r| r.replied < r.sent || r.order_violations > 0)
    {
        Some(r) if shape.strict => Err(format!(
            "{:?} with {} chats: {} of {} echoes, {} order violations",
            r.bot, r.chats, r.replied, r.sent, r.order_violations
        )
        .into()),
        _ => Ok(()),
    }
}

#[derive(clap::Args)]
struct LoadArgs {
    #[command(flatten)]
    shape: Shape,
    /// Chats the events are spread over.
    #[arg(long, default_value_t = 100)]
    chats: u32,
    /// Bots to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "raw,ours,python"
    )]
    bots: Vec<Kind>,
    /// Push at this many events/s instead of as fast as the window allows.
    #[arg(long)]
    rate: Option<f64>,
    /// Then run ours (and raw) at half of ours' median maximum throughput, for latency.
    #[arg(long)]
    half_rate: bool,
    /// Write every run as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    shape: Shape,
    /// Chat counts.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
    chat_counts: Vec<u32>,
    /// Bots to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "raw,ours")]
    bots: Vec<Kind>,
    /// Write every run as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Plot throughput and p99 against chats here.
    #[arg(long)]
    png: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ScaleArgs {
    /// Conversations (chats with one event each).
    #[arg(long, default_value_t = 100_000)]
    chats: u64,
    /// The dispatcher's conversation idle timeout, in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    idle_ms: u64,
    /// How long an idle conversation keeps its actor, in milliseconds (longer than the spawn
    /// phase, so that the live figures are of conversations with actors).
    #[arg(long, default_value_t = 10_000)]
    hibernate_ms: u64,
    /// Fail when a hibernating (idle) conversation keeps more live heap than this, in bytes.
    #[arg(long)]
    max_idle_heap: Option<f64>,
    /// Cap of live conversations (default: every chat live at once); below the chat count the
    /// least recently used idle ones hibernate early while spawning, as in a real bot.
    #[arg(long)]
    max_live: Option<usize>,
    /// Stop after the hibernated figures instead of waiting for idle eviction.
    #[arg(long)]
    no_eviction: bool,
    /// Events per chat, sent round-robin over the chats (with a fixed count this is a
    /// callgrind-friendly run of the dispatch path: no sockets, no timing).
    #[arg(long, default_value_t = 1)]
    rounds: u64,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BotArgs {
    #[arg(value_enum)]
    kind: Kind,
    #[arg(long)]
    url: String,
    #[arg(long)]
    token: String,
    #[arg(long)]
    port: u16,
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    #[arg(long, value_enum, default_value_t = Ack::Receive)]
    ack: Ack,
    /// Tokio worker threads (0 = one per core; 1 = a current-thread runtime).
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

/// Server-side socket closes during a run and how long each took to recover.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Recovery {
    /// Sockets the server closed.
    closes: u64,
    /// Close → first event acknowledged on the new socket (in `--ack handled`: handled), ms.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// One bot's run of one load shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Run {
    bot: Kind,
    events: u64,
    chats: u32,
    window: u32,
    delay_ms: u64,
    ack: Ack,
    rate: Option<f64>,
    sent: u64,
    replied: u64,
    msgs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    order_violations: u64,
    duration_ms: f64,
    /// CPU seconds (user + system) the bot process spent during the load.
    cpu_s: f64,
    /// CPU microseconds per replied message.
    cpu_us_per_msg: f64,
    /// Peak resident set of the bot process, KiB.
    peak_rss_kib: u64,
    /// 1-minute load average when the run started.
    loadavg: f64,
    /// Tokio worker threads of the bot (0 = one per core, 1 = current-thread).
    #[serde(default)]
    workers: usize,
    /// With `--drop-every`: the closes and the recovery times.
    #[serde(default)]
    recovery: Option<Recovery>,
}

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let Some(cmd) = cli.cmd else {
        eprintln!("e2e: nothing to do under `cargo bench`; see scripts/bench.sh or `e2e --help`");
        return Ok(());
    };
    match cmd {
        Cmd::Bot(a) => run_bot(a),
        Cmd::Plot { json, png } => {
            let runs: Vec<Run> = serde_json::from_slice(&std::fs::read(&json)?)?;
            plot(&runs, &png)
        }
        Cmd::Load(a) => runtime(4)?.block_on(load(a)),
        Cmd::Sweep(a) => runtime(4)?.block_on(sweep(a)),
        Cmd::Scale(a) => runtime(0)?.block_on(scale(a)),
    }
}

/// The emulator's runtime; `workers == 0` means the default (one per core).
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        b.worker_threads(workers);
    }
    b.enable_all().build()
}

// ---------------------------------------------------------------------------------------------
// Child: the echo bots.

fn run_bot(a: BotArgs) -> Result<(), BoxError> {
    let rt = match a.workers {
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    rt.block_on(async move {
        match a.kind {
            Kind::Raw => {
                // Reconnects at once when the server closes the socket (the parent ends
                // this process when the run is over).
                let after_reply = matches!(a.ack, Ack::Handled);
                loop {
                    let (url, token) = (a.url.clone(), a.token.clone());
                    if let Err(e) = raw_echo::echo_bot_with(url, token, after_reply).await {
                        eprintln!("raw echo ended: {e}");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            Kind::Ours => ours(a).await,
            Kind::Python => Err("the python bot is scripts/bench_echo.py".into()),
            Kind::Before => Err("the before bot is `ours` of --before-exe".into()),
        }
    })
}

/// The echo bot on this crate, as a user would write it.
async fn ours(a: BotArgs) -> Result<(), BoxError> {
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(a.port)
        .token(a.token)
        .ack_mode(match a.ack {
            Ack::Receive => AckMode::OnReceive,
            Ack::Handled => AckMode::AfterHandled,
        })
        // At-least-once: what was not acknowledged on a lost socket comes on the next one.
        .receive_unread(matches!(a.ack, Ack::Handled))
        .build()?;
    let delay = Duration::from_millis(a.delay_ms);
    let router = Router::new().message(move |msg: MessageContext| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // The echo example's form: queued in the chat's order, not waiting for the answer.
        let text = msg.text().unwrap_or_default().to_owned();
        msg.answer(text).queue().await?;
        Ok::<(), HandlerError>(())
    });
    // A chat's queue must hold the whole window when every event goes to one chat.
    Dispatcher::builder(bot, router)
        .queue_capacity(100_000)
        .build()?
        .run()
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Parent: emulator in this process, bot in a child.

struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// CPU seconds so far, from /proc (clock-tick resolution).
    fn cpu_now(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return 0.0;
        };
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(11) + ticks(12)) / hz.max(1.0)
    }

    /// Kills the child and returns (CPU seconds, peak RSS KiB) from its rusage.
    fn finish(mut self) -> (f64, u64) {
        let _ = self.child.kill();
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(self.pid(), &mut status, 0, &mut ru) };
        if r <= 0 {
            let _ = self.child.wait();
            return (0.0, 0);
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as u64)
    }
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The bot's Tokio worker threads in this shape.
fn workers(kind: Kind, shape: &Shape) -> usize {
    match kind {
        Kind::Raw => shape.raw_workers,
        Kind::Ours | Kind::Before => shape.bot_workers,
        Kind::Python => 1,
    }
}

/// Closes the bot's socket every `every` pushed events (the server restarting, up again at
/// once) and times each close → the first event acknowledged on the next socket. Polls the
/// emulator's counters from a thread of its own every 200 µs until `stop`.
fn dropper(
    sim: Arc<Sim>,
    every: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let tick = Duration::from_micros(200);
        let base = sim.stats().pushed;
        let mut next = base + every;
        let mut times = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if sim.stats().pushed < next {
                std::thread::sleep(tick);
                continue;
            }
            let closed = Instant::now();
            let before = sim.stats();
            sim.faults().restart(Duration::ZERO);
            // A new socket passed `auth`, then an event was acknowledged after that.
            let mut authed_acks = None;
            while !stop.load(Ordering::Relaxed) {
                let now = sim.stats();
                match authed_acks {
                    None if now.auths > before.auths => authed_acks = Some(now.acked),
                    Some(acked) if now.acked > acked => {
                        times.push(closed.elapsed());
                        break;
                    }
                    _ => {}
                }
                std::thread::sleep(tick);
            }
            next = sim.stats().pushed + every;
        }
        times
    })
}

fn recovery(mut times: Vec<Duration>) -> Recovery {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |f: f64| {
        times
            .get(((times.len() as f64 * f).ceil() as usize).clamp(1, times.len().max(1)) - 1)
            .map_or(0.0, |d| ms(*d))
    };
    Recovery {
        closes: times.len() as u64,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: times.last().map_or(0.0, |d| ms(*d)),
    }
}

fn spawn_bot(kind: Kind, sim: &Sim, shape: &Shape) -> Result<Proc, BoxError> {
    let port = sim.addr().port().to_string();
    let delay = shape.delay_ms.to_string();
    let mut cmd = match kind {
        Kind::Python => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_echo.py");
            let script = std::env::var("BENCH_PY_SCRIPT").map_or(script, PathBuf::from);
            let mut c = Command::new(&shape.python);
            c.arg(script);
            c
        }
        Kind::Ours | Kind::Raw | Kind::Before => {
            let exe = match (kind, &shape.before_exe) {
                (Kind::Before, Some(exe)) => exe.clone(),
                (Kind::Before, None) => return Err("--bots before needs --before-exe".into()),
                _ => std::env::current_exe()?,
            };
            let mut c = Command::new(exe);
            let name = if kind == Kind::Raw { "raw" } else { "ours" };
            c.arg("bot").arg(name);
            c.arg("--ack")
                .arg(format!("{:?}", shape.ack).to_lowercase());
            c.arg("--workers").arg(workers(kind, shape).to_string());
            c
        }
    };
    cmd.args(["--url", &sim.ws_url(), "--token", &sim.bot_token()])
        .args(["--port", &port, "--delay-ms", &delay])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Ok(Proc {
        child: cmd.spawn()?,
    })
}

async fn one_run(
    kind: Kind,
    shape: &Shape,
    chats: u32,
    rate: Option<f64>,
) -> Result<Run, BoxError> {
    let sim = Arc::new(
        Sim::start(SimConfig {
            port: 0,
            ..SimConfig::default()
        })
        .await?,
    );
    let loadavg = loadavg();
    let bot = spawn_bot(kind, &sim, shape)?;
    let connect = Duration::from_secs(60);
    if let Err(e) = sim.wait_for_bot(connect).await {
        bot.finish();
        return Err(format!("{kind:?} bot did not connect: {e}").into());
    }
    // Let the bot settle (the Python client sends its own requests after auth).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu0 = bot.cpu_now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drops = shape
        .drop_every
        .filter(|n| *n > 0)
        .map(|n| dropper(sim.clone(), n, stop.clone()));
    let report = sim
        .run_load(LoadSpec {
            events: shape.events,
            chats,
            window: shape.window,
            timeout: Duration::from_secs(shape.timeout),
            connect_timeout: connect,
            rate,
        })
        .await;
    let cpu1 = bot.cpu_now();
    stop.store(true, Ordering::Relaxed);
    let recovery = drops.map(|t| self::recovery(t.join().unwrap_or_default()));
    let (_, peak) = bot.finish();
    sim.shutdown();
    let r = report?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu = (cpu1 - cpu0).max(0.0);
    Ok(Run {
        bot: kind,
        events: shape.events,
        chats,
        window: shape.window,
        delay_ms: shape.delay_ms,
        ack: shape.ack,
        rate,
        sent: r.sent,
        replied: r.replied,
        msgs_per_sec: r.msgs_per_sec,
        p50_ms: ms(r.p50),
        p99_ms: ms(r.p99),
        p999_ms: ms(r.p999),
        order_violations: r.order_violations,
        duration_ms: ms(r.duration),
        cpu_s: cpu,
        cpu_us_per_msg: cpu * 1e6 / r.replied.max(1) as f64,
        peak_rss_kib: peak,
        loadavg,
        workers: workers(kind, shape),
        recovery,
    })
}

fn header() {
    println!(
        "{:<7} {:>2} {:>6} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>8} {:>9} {:>5}",
        "bot",
        "w",
        "chats",
        "delay",
        "rate",
        "msgs/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "order",
        "cpu us/m",
        "peak KiB",
        "load"
    );
}

fn row(r: &Run) {
    let rate = r.rate.map_or("max".to_owned(), |x| format!("{x:.0}"));
    let mut lost = if r.replied < r.sent {
        format!("  (replied {}/{})", r.replied, r.sent)
    } else {
        String::new()
    };
    if let Some(rec) = &r.recovery {
        lost.push_str(&format!(
            "  {} closes, close->first handled p50 {:.1} ms p99 {:.1} ms",
            rec.closes, rec.p50_ms, rec.p99_ms
        ));
    }
    println!(
        "{:<7} {:>2} {:>6} {:>5} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8.1} {:>9} {:>5.2}{lost}",
        format!("{:?}", r.bot).to_lowercase(),
        r.workers,
        r.chats,
        r.delay_ms,
        rate,
        r.msgs_per_sec,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.order_violations,
        r.cpu_us_per_msg,
        r.peak_rss_kib,
        r.loadavg
    );
}

/// The run with the median throughput of `kind` among `runs`.
fn median(runs: &[Run], kind: Kind, rate: bool) -> Option<Run> {
    let mut v: Vec<&Run> = runs
        .iter()
        .filter(|r| r.bot == kind && r.rate.is_some() == rate)
        .collect();
    v.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
    v.get(v.len() / 2).map(|r| (*r).clone())
}

/// The median of `metric` over `kind`'s runs at full speed.
fn median_of(runs: &[Run], kind: Kind, metric: fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs
        .iter()
        .filter(|r| r.bot == kind && r.rate.is_none())
        .map(metric)
        .collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn load(a: LoadArgs) -> Result<(), BoxError> {
    let mut runs = Vec::new();
    header();
    for _ in 0..a.shape.repeat.max(1) {
        for &kind in &a.bots {
            let r = one_run(kind, &a.shape, a.chats, a.rate).await?;
            row(&r);
            runs.push(r);
        }
    }
    if a.half_rate
        && let Some(max) = median(&runs, Kind::Ours, false)
    {
        let rate = (max.msgs_per_sec / 2.0).floor();
        for _ in 0..a.shape.repeat.max(1) {
            for kind in [Kind::Raw, Kind::Ours, Kind::Before] {
                if a.bots.contains(&kind) {
                    let r = one_run(kind, &a.shape, a.chats, Some(rate)).await?;
                    row(&r);
                    runs.push(r);
                }
            }
        }
    }
    println!();
    let mut summary = Vec::new();
    for &kind in &a.bots {
        if let Some(m) = median(&runs, kind, false) {
            summary.push(format!("{kind:?} median {:.0} msgs/s", m.msgs_per_sec));
        }
    }
    println!("{}", summary.join("; "));
    for mine in [Kind::Ours, Kind::Before] {
        let Some(o) = median(&runs, mine, false) else {
            continue;
        };
        for base in [Kind::Raw, Kind::Python, Kind::Before] {
            if base == mine {
                continue;
            }
            if let Some(b) = median(&runs, base, false) {
                println!(
                    "{} / {}: {:.2}x throughput, {:.2}x CPU per message, {:.2}x p99 \
                     (medians by throughput)",
                    format!("{mine:?}").to_lowercase(),
                    format!("{base:?}").to_lowercase(),
                    o.msgs_per_sec / b.msgs_per_sec.max(1e-9),
                    median_of(&runs, mine, |r| r.cpu_us_per_msg)
                        / median_of(&runs, base, |r| r.cpu_us_per_msg).max(1e-9),
                    median_of(&runs, mine, |r| r.p99_ms)
                        / median_of(&runs, base, |r| r.p99_ms).max(1e-9),
                );
            }
        }
    }
    for &kind in &a.bots {
        let recs: Vec<&Recovery> = runs
            .iter()
            .filter(|r| r.bot == kind && r.rate.is_none())
            .filter_map(|r| r.recovery.as_ref())
            .collect();
        if !recs.is_empty() {
            let mut p50: Vec<f64> = recs.iter().map(|r| r.p50_ms).collect();
            let mut p99: Vec<f64> = recs.iter().map(|r| r.p99_ms).collect();
            p50.sort_by(f64::total_cmp);
            p99.sort_by(f64::total_cmp);
            println!(
                "{}: close -> first handled event on the new socket: p50 {:.1} ms, p99 {:.1} ms \
                 (medians over runs; {} closes per run)",
                format!("{kind:?}").to_lowercase(),
                p50[p50.len() / 2],
                p99[p99.len() / 2],
                recs[0].closes
            );
        }
    }
    if let Some(h) = median(&runs, Kind::Ours, true) {
        println!(
            "ours at {:.0} msgs/s (half its maximum): p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
            h.rate.unwrap_or_default(),
            h.p50_ms,
            h.p99_ms,
            h.p999_ms
        );
    }
    let violations: u64 = runs.iter().map(|r| r.order_violations).sum();
    println!("order violations over all runs: {violations}");
    if let Some(path) = a.json {
        std::fs::write(&path, serde_json::to_string_pretty(&runs)?)?;
        println!("wrote {}", path.display());
    }
    check(&a.shape, &runs)
}

async fn sweep(a: SweepArgs) -> Result<(), BoxError> {
    let mut runs = Vec::new();
    header();
    for &chats in &a.chat_counts {
        for _ in 0..a.shape.repeat.max(1) {
            for &kind in &a.bots {
                let r = one_run(kind, &a.shape, chats, None).await?;
                row(&r);
                runs.push(r);
            }
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&runs)?)?;
        println!("wrote {}", path.display());
    }
    if let Some(png) = &a.png {
        plot(&runs, png)?;
        println!("wrote {}", png.display());
    }
    check(&a.shape, &runs)
}

// ---------------------------------------------------------------------------------------------
// The plot.

fn plot(runs: &[Run], png: &Path) -> Result<(), BoxError> {
    use plotters::prelude::*;

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("{FONT}: not a usable font"))?;

    let mut kinds: Vec<Kind> = runs.iter().map(|r| r.bot).collect();
    kinds.dedup();
    kinds.sort_by_key(|k| *k as u8);
    kinds.dedup();
    // One point per (bot, chats): the median run.
    let series = |kind: Kind, y: fn(&Run) -> f64| -> Vec<(f64, f64)> {
        let mut chats: Vec<u32> = runs
            .iter()
            .filter(|r| r.bot == kind && r.rate.is_none())
            .map(|r| r.chats)
            .collect();
        chats.sort_unstable();
        chats.dedup();
        chats
            .into_iter()
            .filter_map(|c| {
                let at: Vec<Run> = runs.iter().filter(|r| r.chats == c).cloned().collect();
                median(&at, kind, false).map(|r| (c as f64, y(&r)))
            })
            .collect()
    };
    let max_chats = runs.iter().map(|r| r.chats).max().unwrap_or(1).max(10) as f64;
    let max_tput = runs.iter().map(|r| r.msgs_per_sec).fold(1.0, f64::max) * 1.1;
    let max_p99 = runs.iter().map(|r| r.p99_ms).fold(1.0, f64::max) * 1.1;

    let root = BitMapBackend::new(png, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let colour = |k: Kind| match k {
        Kind::Ours => RGBColor(200, 60, 20),
        Kind::Raw => RGBColor(40, 90, 200),
        Kind::Python => RGBColor(60, 150, 60),
        Kind::Before => RGBColor(120, 120, 120),
    };
    type Metric = fn(&Run) -> f64;
    let panels: [(_, &str, f64, Metric); 2] = [
        (left, "throughput (msgs/s)", max_tput, |r| r.msgs_per_sec),
        (right, "p99 latency (ms)", max_p99, |r| r.p99_ms),
    ];
    for (area, title, ymax, y) in panels {
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((1f64..max_chats).log_scale(), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("chats")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for &kind in &kinds {
            let pts = series(kind, y);
            let c = colour(kind);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                .label(format!("{kind:?}").to_lowercase())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scale: many live conversations in one dispatcher.

#[derive(Debug, Serialize)]
struct ScaleResult {
    chats: u64,
    live_conversations: usize,
    spawn_ms: f64,
    spawn_per_sec: f64,
    rss_before_kib: u64,
    rss_live_kib: u64,
    rss_per_conversation_bytes: f64,
    /// Live heap bytes per conversation (counting allocator), without allocator overhead.
    heap_per_conversation_bytes: f64,
    /// Of the live conversations, those already hibernating when measured.
    hibernating_at_live: usize,
    /// Once every conversation hibernates (idle, no actor): how many do, and the same figures.
    hibernating: usize,
    rss_hibernating_kib: u64,
    heap_per_hibernating_bytes: f64,
    rss_hibernating_trim_kib: u64,
    /// RSS per hibernating conversation once freed pages went back to the OS (malloc_trim).
    rss_per_hibernating_bytes: f64,
    rss_after_eviction_kib: u64,
    rss_after_trim_kib: u64,
    live_after_eviction: usize,
    loadavg: f64,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn message(id: u64, chat: &str) -> ServerEvent {
    let payload = format!(
        r#"{{"messageId":"m{id}","chat":{{"chatId":"{chat}","chatTitle":"t","chatType":1}},"timestamp":1735314170572,"type":200,"author":{{"id":"u{id}@srv.example","type":1}},"box":{{"id":{id},"position":"{id:010}"}},"content":{{"text":"hi","parseMode":"text"}},"isEdited":false}}"#
    );
    ServerEvent {
        id,
        method: "sendMessage".into(),
        payload: RawValue::from_string(payload).unwrap_or_else(|_| unreachable!("valid JSON")),
        ack: Acknowledger::noop(id),
    }
}

/// Conversations are forgotten (or hibernate) at once; their actors finish stopping just
/// after: waits until the live heap stops shrinking.
async fn settle() {
    let mut prev = HEAP_LIVE.load(Ordering::Relaxed);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = HEAP_LIVE.load(Ordering::Relaxed);
        if (prev - now).abs() < 64 * 1024 {
            break;
        }
        prev = now;
    }
}

async fn scale(a: ScaleArgs) -> Result<(), BoxError> {
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let router = Router::new().message(move || {
        h.fetch_add(1, Ordering::Relaxed);
        async {}
    });
    let d = Dispatcher::detached(router)
        .idle_timeout(Duration::from_millis(a.idle_ms))
        .hibernate_after(Duration::from_millis(a.hibernate_ms))
        // The bench measures every chat live at once, so no cap may hibernate them early.
        .max_live_conversations(a.max_live.unwrap_or(a.chats as usize + 1))
        .build()?;
    let handle = d.handle();
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let task = tokio::spawn(d.run_on(rx));
    // Warm up the runtime, the channel and the allocator with one chat, then measure.
    let _ = tx.send(message(u64::MAX / 2, "warmup")).await;
    while handled.load(Ordering::Relaxed) < 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let loadavg = loadavg();
    let rss_before = rss_kib();
    HEAP_LIVE.store(0, Ordering::Relaxed);
    HEAP_ON.store(true, Ordering::Relaxed);
    let start = Instant::now();
    // 40 hex digits like a real chat id.
    let chat = |i: u64| format!("{i:040x}");
    for r in 0..a.rounds {
        for i in 0..a.chats {
            tx.send(message(r * a.chats + i, &chat(i))).await?;
        }
    }
    while handled.load(Ordering::Relaxed) < a.chats * a.rounds + 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let spawn = start.elapsed();
    let m = handle.metrics();
    let (live, hibernating_at_live) = (m.live_conversations, m.hibernating_conversations);
    let rss_live = rss_kib();
    let heap_live = HEAP_LIVE.load(Ordering::Relaxed);
    let mut hibernating = 0;
    let (mut rss_hib, mut heap_hib, mut rss_hib_trim) = (0, 0, 0);
    if a.hibernate_ms < a.idle_ms {
        let deadline = Instant::now() + Duration::from_millis(a.hibernate_ms * 3 + 5_000);
        while handle.metrics().hibernating_conversations < live && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hibernating = handle.metrics().hibernating_conversations;
        settle().await;
        rss_hib = rss_kib();
        heap_hib = HEAP_LIVE.load(Ordering::Relaxed);
        // SAFETY: malloc_trim only returns free heap pages to the OS.
        unsafe {
            libc::malloc_trim(0);
        }
        rss_hib_trim = rss_kib();
    }
    let deadline = if a.no_eviction {
        Instant::now()
    } else {
        Instant::now() + Duration::from_millis(a.idle_ms * 3 + 5_000)
    };
    while handle.metrics().live_conversations > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live_after = handle.metrics().live_conversations;
    settle().await;
    let rss_after = rss_kib();
    // SAFETY: malloc_trim only returns free heap pages to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
    let rss_trim = rss_kib();
    handle.shutdown();
    drop(tx);
    let _ = task.await;
    let r = ScaleResult {
        chats: a.chats,
        live_conversations: live,
        spawn_ms: spawn.as_secs_f64() * 1e3,
        spawn_per_sec: a.chats as f64 / spawn.as_secs_f64(),
        rss_before_kib: rss_before,
        rss_live_kib: rss_live,
        rss_per_conversation_bytes: (rss_live.saturating_sub(rss_before) as f64 * 1024.0)
            / live.max(1) as f64,
        heap_per_conversation_bytes: heap_live as f64 / live.max(1) as f64,
        hibernating_at_live,
        hibernating,
        rss_hibernating_kib: rss_hib,
        heap_per_hibernating_bytes: heap_hib as f64 / hibernating.max(1) as f64,
        rss_hibernating_trim_kib: rss_hib_trim,
        rss_per_hibernating_bytes: (rss_hib_trim.saturating_sub(rss_before) as f64 * 1024.0)
            / hibernating.max(1) as f64,
        rss_after_eviction_kib: rss_after,
        rss_after_trim_kib: rss_trim,
        live_after_eviction: live_after,
        loadavg,
    };
    println!(
        "{} chats: spawned and handled in {:.0} ms ({:.0}/s); {} live conversations; RSS {} -> {} KiB \
         = {:.0} B per conversation ({:.0} B of live heap, {} hibernating); {} hibernating: \
         RSS {} KiB, {:.0} B of live heap each, {} KiB after malloc_trim = {:.0} B per idle conversation; after idle eviction ({} live) {} KiB, after malloc_trim {} KiB; load {:.2}",
        r.chats,
        r.spawn_ms,
        r.spawn_per_sec,
        r.live_conversations,
        r.rss_before_kib,
        r.rss_live_kib,
        r.rss_per_conversation_bytes,
        r.heap_per_conversation_bytes,
        r.hibernating_at_live,
        r.hibernating,
        r.rss_hibernating_kib,
        r.heap_per_hibernating_bytes,
        r.rss_hibernating_trim_kib,
        r.rss_per_hibernating_bytes,
        r.live_after_eviction,
        r.rss_after_eviction_kib,
        r.rss_after_trim_kib,
        r.loadavg
    );
    if let Some(path) = a.json {
        std::fs::write(&path, serde_json::to_string_pretty(&r)?)?;
        println!("wrote {}", path.display());
    }
    if let Some(max) = a.max_idle_heap
        && (r.hibernating == 0 || r.heap_per_hibernating_bytes > max)
    {
        return Err(format!(
            "{} hibernating conversations keep {:.0} B of heap each (limit {max:.0} B)",
            r.hibernating, r.heap_per_hibernating_bytes
        )
        .into());
    }
    Ok(())
}
