//! Replicas under faults: real bot processes (the `echo` example with `--redis`), a real
//! `redis-server` started here, the emulator in load mode counting every echo across sessions.
//!
//! Run: `cargo test --all-features --test replicas -- --include-ignored --nocapture
//! --test-threads=1` (the figures are printed; CI runs it so, in the debug build the suite
//! already has). The process tests are ignored in a plain `cargo test`: they take minutes.
//! The event rate follows the build: a debug build of three replicas sustains a few hundred
//! events a second on a small machine, a release build the issue's full 60,000 events at
//! 800/s (`--release`). The echo example is built first if it is missing or older than this
//! test. Needs `redis-server` on PATH.

#![cfg(all(unix, feature = "redis"))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep};
use trueconf_bot::testkit::{LoadReport, LoadSpec, Sim, SimConfig};

#[path = "support/redis_server.rs"]
mod redis_server;

/// The echo example binary next to this test's, built if missing.
fn echo_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/replicas-<hash> → target/<profile>/examples/echo
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let echo = profile_dir.join("examples").join("echo");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // A stale echo would test yesterday's library: `--test replicas` alone does not build it.
    if !echo.exists() || modified(&echo) < modified(&exe) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The features of the suite's own build (CI's `--all-features`): other features would
        // rebuild half the dependency tree.
        cmd.args(["build", "--example", "echo", "--all-features"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the echo example failed");
    }
    echo
}

/// One replica: an echo process joined to the group.
struct Replica {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

struct Group {
    echo: PathBuf,
    port: u16,
    token: String,
    redis: String,
    prefix: String,
    lease_ms: u64,
    dir: tempfile::TempDir,
    started: usize,
}

impl Group {
    fn spawn(&mut self, name: &str) -> Replica {
        self.started += 1;
        let log = self.dir.path().join(format!("{name}-{}.log", self.started));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&self.echo)
            .args(["--server", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--no-tls", "--quiet", "--ack-mode", "after-handled"])
            .args(["--redis", &self.redis, "--redis-prefix", &self.prefix])
            .args(["--redis-lease-ms", &self.lease_ms.to_string()])
            .env("TRUECONF_TOKEN", &self.token)
            .env("RUST_LOG", "info,trueconf_bot::replicas=debug")
            .env("HOSTNAME", name)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the echo example starts");
        Replica {
            name: name.into(),
            child: Some(child),
            log,
        }
    }
}

impl Replica {
    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL: no chance to hand anything over.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the clean exit (hand-over included).
    async fn terminate(&mut self) {
        let pid = self.pid();
        if let Some(mut child) = self.child.take() {
            // SAFETY-free: libc::kill on our own child's pid.
            unsafe_free_kill(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(status.success(), "{} exited with {status}", self.name);
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{} did not stop within 30 s of SIGTERM", self.name);
                }
                sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` to `pid` (one of this test's children).
fn unsafe_free_kill(pid: i32, signal: i32) {
    // `kill(1)` instead of libc: the crate forbids unsafe code, the tests follow suit.
    let name = match signal {
        libc::SIGTERM => "-TERM",
        libc::SIGSTOP => "-STOP",
        libc::SIGCONT => "-CONT",
        _ => "-KILL",
    };
    let _ = Command::new("kill").args([name, &pid.to_string()]).status();
}

async fn group(lease_ms: u64) -> (Arc<Sim>, Group, redis_server::RedisServer) {
    let redis = redis_server::RedisServer::own();
    let sim = Sim::start(SimConfig {
        port: 0,
        tls: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let group = Group {
        echo: echo_binary(),
        port: sim.addr().port(),
        token: sim.bot_token(),
        redis: redis.url().to_owned(),
        prefix: redis_server::unique_prefix(),
        lease_ms,
        dir: tempfile::Builder::new()
            .prefix("replicas-")
            .tempdir()
            .unwrap(),
        started: 0,
    };
    (Arc::new(sim), group, redis)
}

/// Events a second the replicas sustain in this build (see the file's header).
const RATE: f64 = if cfg!(debug_assertions) { 300.0 } else { 800.0 };

/// A steady load of `seconds` at [`RATE`] over 1,000 chats.
fn steady(seconds: u64) -> LoadSpec {
    spec((RATE as u64) * seconds, RATE)
}

fn spec(events: u64, rate: f64) -> LoadSpec {
    LoadSpec {
        events,
        chats: 1000,
        // Paced by the rate only: a dead replica's chats must not hold up the others.
        window: events as u32,
        rate: Some(rate),
        timeout: Duration::from_secs(120),
        connect_timeout: Duration::from_secs(60),
    }
}

fn print(what: &str, r: &LoadReport) {
    println!(
        "{what}: sent {} handled {} lost {} duplicated {} order violations {} sessions {} \
         latency p50 {:?} p99 {:?} failover p50 {:?} p99 {:?}",
        r.sent,
        r.replied,
        r.lost,
        r.duplicates,
        r.order_violations,
        r.sessions,
        r.p50,
        r.p99,
        r.failover_p50,
        r.failover_p99
    );
    for f in &r.failovers {
        println!(
            "  session closed at {:?}: {} chats, {} answered again, p50 {:?}, max {:?}",
            f.closed_at, f.chats, f.recovered, f.p50, f.max
        );
    }
    if !r.chats_with_issues.is_empty() {
        println!(
            "  chats with issues: {:?}",
            &r.chats_with_issues[..r.chats_with_issues.len().min(10)]
        );
    }
}

fn logs(replicas: &[Replica]) -> String {
    if std::env::var_os("TRUECONF_KEEP_REPLICA_LOGS").is_some()
        && let Some(r) = replicas.first()
        && let Some(dir) = r.log.parent()
    {
        let kept = std::env::temp_dir().join("replica-logs");
        let _ = std::fs::create_dir_all(&kept);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let _ = std::fs::copy(entry.path(), kept.join(entry.file_name()));
        }
        println!("replica logs kept in {}", kept.display());
    }
    replicas
        .iter()
        .map(|r| format!("--- {} ({})\n{}", r.name, r.log.display(), r.tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two dispatchers in this process, fed the same events (as two sessions of one account
/// are): every event is handled once between them, while they share the chats and after
/// one shuts down and hands its chats over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_handle_each_event_once_and_hand_over_on_shutdown() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::sync::mpsc;
    use trueconf_bot::bot::{Acknowledger, ServerEvent};
    use trueconf_bot::dispatch::{Dispatcher, Router, Update};
    use trueconf_bot::protocol::RawValue;
    use trueconf_bot::replicas::RedisCoordination;

    let redis = redis_server::RedisServer::shared_or_own();
    let prefix = redis_server::unique_prefix();
    // (replica, message id) of every handling.
    let handled: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let start = |replica: usize| {
        let handled = handled.clone();
        let router = Router::new().message(move |u: Update| {
            let handled = handled.clone();
            async move {
                let id = u.message_id().unwrap_or_default().to_owned();
                handled.lock().unwrap().push((replica, id));
            }
        });
        let dispatcher = Dispatcher::detached(router)
            .replicas(
                RedisCoordination::new(redis.url())
                    .prefix(prefix.clone())
                    .lease(Duration::from_secs(2))
                    .slots(16),
            )
            .build()
            .unwrap();
        let handle = dispatcher.handle();
        let (tx, rx) = mpsc::channel::<ServerEvent>(1024);
        (tx, handle, tokio::spawn(dispatcher.run_on(rx)))
    };
    let event = |n: u64| {
        let payload = serde_json::json!({
            "messageId": format!("m-{n}"),
            "chat": {"chatId": format!("chat-{}", n % 40), "chatType": 1},
            "timestamp": 1u64, "type": 200,
            "author": {"id": "alice@srv", "type": 1},
            "content": {"text": "hi", "parseMode": "text"}
        });
        ServerEvent {
            id: n,
            method: "sendMessage".into(),
            payload: RawValue::from_string(payload.to_string()).unwrap(),
            ack: Acknowledger::noop(n),
        }
    };
    let (tx_a, handle_a, run_a) = start(0);
    let (tx_b, _handle_b, run_b) = start(1);
    let mut n = 0;
    // Phase 1: both up; events before, during and after they split the slots.
    for _ in 0..30 {
        for _ in 0..10 {
            tx_a.send(event(n)).await.unwrap();
            tx_b.send(event(n)).await.unwrap();
            n += 1;
        }
        sleep(Duration::from_millis(100)).await;
    }
    let until = Instant::now() + Duration::from_secs(20);
    while handled.lock().unwrap().len() < n as usize && Instant::now() < until {
        sleep(Duration::from_millis(50)).await;
    }
    let by_a = handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| *r == 0)
        .count();
    assert!(
        by_a > 0 && by_a < n as usize,
        "the chats were shared: A handled {by_a} of {n}"
    );
    // Phase 2: A shuts down (hands over); B alone gets every new event, and A's chats.
    handle_a.shutdown();
    run_a.await.unwrap().unwrap();
    drop(tx_a);
    let after_a = n;
    for _ in 0..10 {
        for _ in 0..10 {
            tx_b.send(event(n)).await.unwrap();
            n += 1;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let until = Instant::now() + Duration::from_secs(20);
    while handled.lock().unwrap().len() < n as usize && Instant::now() < until {
        sleep(Duration::from_millis(50)).await;
    }
    drop(tx_b);
    let _ = tokio::time::timeout(Duration::from_secs(20), run_b).await;
    let handled = handled.lock().unwrap().clone();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for (_, id) in &handled {
        *times.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    assert_eq!(times.len(), n as usize, "every event handled");
    assert!(
        handled
            .iter()
            .filter(|(r, id)| *r == 0 && id[2..].parse::<u64>().unwrap() >= after_a)
            .count()
            == 0,
        "nothing handled by the replica that left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "two minutes of load on real processes (see the file's header); CI runs it with --include-ignored"]
async fn three_replicas_lose_nothing_through_kills_and_a_rolling_restart() {
    const LEASE_MS: u64 = 3000;
    let (sim, mut g, _redis) = group(LEASE_MS).await;
    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"].iter().map(|n| g.spawn(n)).collect();

    // Phase 1: 50 s of events over 1,000 chats at a steady rate (40,000 in release); SIGKILL
    // a replica and start it again, twice.
    let load = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.run_load_replicas(steady(50), 3).await })
    };
    sim.wait_for_bot(Duration::from_secs(60)).await.unwrap();
    // The run starts once all three are connected; give them time to share the slots.
    sleep(Duration::from_secs(12)).await;
    for victim in [0usize, 1] {
        replicas[victim].kill();
        let killed_at = Instant::now();
        sleep(Duration::from_secs(3)).await;
        let name = replicas[victim].name.clone();
        replicas[victim] = g.spawn(&name);
        println!(
            "killed {name} (SIGKILL) and restarted it after {:?}",
            killed_at.elapsed()
        );
        sleep(Duration::from_secs(12)).await;
    }
    let killed = load.await.unwrap().unwrap();
    print("kills", &killed);

    // Phase 2: 25 s more (20,000 in release); SIGTERM each replica in turn and start it
    // again.
    let load = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.run_load_replicas(steady(25), 3).await })
    };
    sleep(Duration::from_secs(4)).await;
    for replica in replicas.iter_mut() {
        replica.terminate().await;
        let name = replica.name.clone();
        *replica = g.spawn(&name);
        sleep(Duration::from_secs(5)).await;
    }
    let rolled = load.await.unwrap().unwrap();
    print("rolling restart", &rolled);

    let logs = logs(&replicas);
    assert_eq!(killed.lost, 0, "lost events after kills\n{logs}");
    assert_eq!(killed.order_violations, 0, "reordered after kills\n{logs}");
    assert!(
        killed.duplicates <= killed.sent / 100,
        "duplicates beyond what the killed replicas had in flight: {}\n{logs}",
        killed.duplicates
    );
    // Generous against a busy machine: the target is lease + 1 s.
    let kill_failovers: Vec<_> = killed.failovers.iter().collect();
    assert_eq!(
        kill_failovers.len(),
        2,
        "two sessions were killed: {killed:?}"
    );
    for f in &kill_failovers {
        assert_eq!(
            f.recovered, f.chats,
            "every orphaned chat answered again: {f:?}"
        );
        assert!(
            f.max <= Duration::from_millis(LEASE_MS) + Duration::from_secs(6),
            "failover took {:?}",
            f.max
        );
    }
    assert_eq!(rolled.lost, 0, "lost events in the rolling restart\n{logs}");
    assert_eq!(
        rolled.duplicates, 0,
        "duplicates in the rolling restart\n{logs}"
    );
    assert_eq!(
        rolled.order_violations, 0,
        "reordered in the rolling restart\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "half a minute of load on real processes (see the file's header); CI runs it with --include-ignored"]
async fn a_redis_outage_shorter_than_the_lease_changes_nothing() {
    // The default lease (15 s) outlasts a 10 s outage: owners keep handling their chats.
    const LEASE_MS: u64 = 15_000;
    let (sim, mut g, redis) = group(LEASE_MS).await;
    let replicas: Vec<Replica> = ["r0", "r1", "r2"].iter().map(|n| g.spawn(n)).collect();
    let load = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.run_load_replicas(steady(30), 3).await })
    };
    sim.wait_for_bot(Duration::from_secs(60)).await.unwrap();
    sleep(Duration::from_secs(10)).await;
    let pid = redis.pid().expect("this test's own redis-server") as i32;
    unsafe_free_kill(pid, libc::SIGSTOP);
    println!("redis-server stopped (SIGSTOP) for 10 s");
    sleep(Duration::from_secs(10)).await;
    unsafe_free_kill(pid, libc::SIGCONT);
    let report = load.await.unwrap().unwrap();
    print("redis outage", &report);
    let logs = logs(&replicas);
    assert_eq!(report.lost, 0, "{logs}");
    assert_eq!(report.duplicates, 0, "two owners of a chat\n{logs}");
    assert_eq!(report.order_violations, 0, "{logs}");
    // Still serving through the outage: a 10 s stall would put the p99 near 10 s.
    assert!(
        report.p99 < Duration::from_secs(5),
        "stalled: p99 {:?}\n{logs}",
        report.p99
    );
}
