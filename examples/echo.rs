//! An echo bot: every text message comes back to its chat. Doubles as the load-test bot for
//! any server (the emulator's `trueconf-sim --load`, or a real TrueConf Server).
//!
//! ```text
//! cargo run --example echo                                   # emulator + scripted users
//! cargo run --release --example echo -- --load 20000         # emulator load run, JSON report
//! cargo run --release --example echo -- --server 127.0.0.1 --port 4309 --no-tls \
//!     --token "$TOKEN" --quiet --ack-mode after-handled     # against trueconf-sim --load
//! ```
//!
//! Several processes of one bot (replicas, feature `redis`) share its chats through Redis:
//!
//! ```text
//! trueconf-sim --no-tls --load 60000 --load-chats 1000 --load-replicas 3 --info-file sim.json
//! cargo run --release --features redis --example echo -- --server 127.0.0.1 --port 4309 \
//!     --no-tls --token "$TOKEN" --ack-mode after-handled --redis redis://127.0.0.1:6379/   # × 3
//! ```
//!
//! `--ack-mode after-handled` acknowledges each event only once its reply was sent, so an
//! event interrupted by a crash or a dropped connection is delivered again (at-least-once);
//! the dispatcher's duplicate window keeps a redelivered message from being echoed twice.

mod common;

use clap::{Parser, ValueEnum};
use common::{BoxError, Connect, Person};
use trueconf_bot::connection::AckMode;
use trueconf_bot::dispatch::{Dep, Dispatcher, HandlerResult, MessageContext, Router};
use trueconf_bot::testkit::LoadSpec;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Ack {
    /// Acknowledge on receipt (the official client's behaviour).
    OnReceive,
    /// Acknowledge after the handler finished (at-least-once); also asks for unread
    /// events, so what arrived while the bot was away is delivered on connect.
    AfterHandled,
}

/// Echoes every text message back to its chat.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// When events are acknowledged.
    #[arg(
        long,
        value_enum,
        default_value = "on-receive",
        env = "TRUECONF_ACK_MODE"
    )]
    ack_mode: Ack,
    /// Do not print each message (for load tests).
    #[arg(long)]
    quiet: bool,
    /// Emulator mode: instead of the scripted users, push this many events through the bot
    /// with the emulator's load generator and print its JSON report.
    #[arg(long, value_name = "EVENTS")]
    load: Option<u64>,
    /// Chats the load run spreads its events over.
    #[arg(long, default_value_t = 100)]
    load_chats: u32,
    /// Join the replica group coordinated through this Redis: several processes of this bot
    /// share its chats (needs the `redis` feature; use with --ack-mode after-handled).
    #[arg(long, env = "TRUECONF_REDIS_URL", value_name = "URL")]
    redis: Option<String>,
    /// The replica group's key prefix in Redis.
    #[arg(long, default_value = "trueconf:replicas:echo:")]
    redis_prefix: String,
    /// How long a replica's hold on its chats lasts without renewal, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    redis_lease_ms: u64,
}

#[derive(Clone, Copy)]
struct Quiet(bool);

async fn echo(msg: MessageContext, quiet: Dep<Quiet>) -> HandlerResult {
    let Some(text) = msg.text() else {
        return Ok(());
    };
    if !quiet.0.0 {
        println!(
            "          [bot] {} in {}: {text}",
            msg.author_id(),
            msg.chat()
        );
    }
    // Queued in the chat's order without waiting for the server's answer, so the chat's next
    // message is handled meanwhile; a late failure goes to the error handler.
    msg.answer(text).queue().await?;
    Ok(())
}

/// The replica group to join (`--redis`).
struct Group {
    url: Option<String>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    prefix: String,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    lease_ms: u64,
}

/// Joins the replica group when `--redis` is given.
#[cfg(feature = "redis")]
fn replicas(
    builder: trueconf_bot::dispatch::DispatcherBuilder,
    group: &Group,
) -> Result<trueconf_bot::dispatch::DispatcherBuilder, BoxError> {
    use trueconf_bot::replicas::RedisCoordination;
    Ok(match &group.url {
        Some(url) => builder.replicas(
            RedisCoordination::new(url.clone())
                .prefix(group.prefix.clone())
                .lease(std::time::Duration::from_millis(group.lease_ms)),
        ),
        None => builder,
    })
}

#[cfg(not(feature = "redis"))]
fn replicas(
    builder: trueconf_bot::dispatch::DispatcherBuilder,
    group: &Group,
) -> Result<trueconf_bot::dispatch::DispatcherBuilder, BoxError> {
    match &group.url {
        Some(_) => Err("--redis needs the example built with --features redis".into()),
        None => Ok(builder),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let ack = match args.ack_mode {
        Ack::OnReceive => AckMode::OnReceive,
        Ack::AfterHandled => AckMode::AfterHandled,
    };
    let quiet = args.quiet || args.load.is_some();
    let group = Group {
        url: args.redis.clone(),
        prefix: args.redis_prefix.clone(),
        lease_ms: args.redis_lease_ms,
    };
    let session = args
        .connect
        // Un-acked events come back on the next connection that asks for unread messages.
        .connect(move |b| {
            b.ack_mode(ack)
                .receive_unread(ack == AckMode::AfterHandled)
                .event_buffer(4096)
        })
        .await?;
    let builder = Dispatcher::builder(session.bot.clone(), Router::new().message(echo))
        .dependency(Quiet(quiet))
        .queue_capacity(256);
    let dispatcher = replicas(builder, &group)?.build()?;
    let load = args.load;
    let chats = args.load_chats;
    session
        .serve(dispatcher, move |sim| async move {
            if let Some(events) = load {
                let report = sim
                    .run_load(LoadSpec {
                        events,
                        chats,
                        // Timeouts and the rest: the emulator's defaults.
                        ..LoadSpec::default()
                    })
                    .await?;
                println!("{}", serde_json::to_string(&report)?);
                if report.replied != report.sent || report.order_violations > 0 {
                    return Err("load run: lost or reordered echoes".into());
                }
                return Ok(());
            }
            let alice = Person::p2p(&sim, "alice").await?;
            let bob = Person::p2p(&sim, "bob").await?;
            alice.say("ping").await?;
            alice.expect("ping").await?;
            bob.say("Hello from Bob").await?;
            bob.expect("Hello from Bob").await?;
            alice
                .say("Ünïcödé and emoji 🦀 survive the round trip")
                .await?;
            alice.expect("🦀").await?;
            Ok(())
        })
        .await
}
