//! Middleware: logging, per-user throttling and access control around an echo bot.
//!
//! ```text
//! cargo run --example middleware
//! cargo run --example middleware -- --admin alice@video.example.com --ban spam@video.example.com …
//! ```
//!
//! Outer middleware runs for every event before routing, in the order registered:
//! 1. `Log` prints each event and how long handling took;
//! 2. `Ban` drops events from banned users (nothing else runs for them);
//! 3. `Throttle` lets each user send 3 messages per 10 seconds and answers "slow down" once
//!    when they go over.
//!
//! Access control of the `/admin` commands is a router-level filter plus a fallback route:
//! the admin router only takes events from the configured admins.
//!
//! The bot's own outgoing requests are rate-limited on the client too
//! (`BotBuilder::throttle`): that protects the server, this protects the bot.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{BoxError, Connect, Person};
use trueconf_bot::bot::{Bot, ThrottleConfig};
use trueconf_bot::dispatch::{
    BoxFuture, Ctx, Dep, Dispatcher, DispatcherHandle, Filter, HandlerResult, MessageContext,
    Middleware, Next, Router,
};

/// An echo bot behind logging, ban, throttling and admin-only commands.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    connect: Connect,
    /// TrueConf IDs allowed to use /admin (repeatable) [default in emulator mode: alice].
    #[arg(long = "admin", value_name = "ID")]
    admins: Vec<String>,
    /// TrueConf IDs whose events are dropped (repeatable) [default in emulator mode: mallory].
    #[arg(long = "ban", value_name = "ID")]
    banned: Vec<String>,
}

/// Prints every event and the time its handling took.
struct Log;

impl Middleware for Log {
    fn call(&self, ctx: Arc<Ctx>, next: Next) -> BoxFuture<HandlerResult> {
        Box::pin(async move {
            let started = Instant::now();
            let what = format!(
                "{} from {}",
                ctx.update().method(),
                ctx.update().author_id().unwrap_or("(server)")
            );
            let result = next.run(ctx).await;
            let outcome = match &result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            println!(
                "          [log] {what}: {outcome} in {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
            result
        })
    }
}

/// Drops events from banned users.
struct Ban(HashSet<String>);

impl Middleware for Ban {
    fn call(&self, ctx: Arc<Ctx>, next: Next) -> BoxFuture<HandlerResult> {
        let banned = ctx.update().author_id().is_some_and(|a| self.0.contains(a));
        Box::pin(async move {
            if banned {
                println!("          [ban] dropped");
                return Ok(()); // not calling `next` stops the event here
            }
            next.run(ctx).await
        })
    }
}

/// At most `limit` messages per user per `window` (a fixed window, enough for a demo).
struct Throttle {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Middleware for Throttle {
    fn call(&self, ctx: Arc<Ctx>, next: Next) -> BoxFuture<HandlerResult> {
        let verdict = ctx.update().author_id().map(|user| {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let entry = seen.entry(user.to_owned()).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 += 1;
            entry.1
        });
        let (limit, window) = (self.limit, self.window);
        Box::pin(async move {
            match verdict {
                Some(n) if n > limit => {
                    // Warn once per window; later messages are dropped silently.
                    if n == limit + 1
                        && let (Some(bot), Some(chat)) =
                            (ctx.dependency::<Bot>(), ctx.update().chat_id())
                    {
                        bot.send_message(
                            chat,
                            format!("Slow down: {limit} messages per {} s.", window.as_secs()),
                        )
                        .await?;
                    }
                    Ok(())
                }
                _ => next.run(ctx).await,
            }
        })
    }
}

async fn echo(msg: MessageContext) -> HandlerResult {
    msg.reply(format!("echo: {}", msg.text().unwrap_or("(not text)")))
        .await?;
    Ok(())
}

async fn stats(msg: MessageContext, Dep(handle): Dep<Handle>) -> HandlerResult {
    let m = handle
        .0
        .lock()
        .map_err(|_| "lock poisoned")?
        .as_ref()
        .map(DispatcherHandle::metrics)
        .unwrap_or_default();
    msg.reply(format!(
        "events {}, handled {}, unhandled {}, errors {}",
        m.events, m.handled, m.unhandled, m.errors
    ))
    .await?;
    Ok(())
}

async fn denied(msg: MessageContext) -> HandlerResult {
    msg.reply("Sorry, /admin is for administrators.").await?;
    Ok(())
}

/// The dispatcher's own handle, filled in after it is built, so `/admin stats` can read it.
#[derive(Clone, Default)]
struct Handle(Arc<Mutex<Option<DispatcherHandle>>>);

fn router(admins: Vec<String>) -> Router {
    let admin = Router::new()
        .filter(Filter::author_in(admins))
        .command("admin", stats);
    Router::new()
        .include_router(admin)
        .command("admin", denied)
        .message(echo)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::parse();
    let emulated = args.connect.server.is_none();
    let session = args
        .connect
        .connect(|bot| bot.throttle(ThrottleConfig::new().per_chat(5, Duration::from_secs(1))))
        .await?;
    let domain = session
        .sim
        .as_ref()
        .map(|s| s.domain().to_owned())
        .unwrap_or_default();
    let or_default = |ids: Vec<String>, login: &str| {
        if ids.is_empty() && emulated {
            vec![format!("{login}@{domain}")]
        } else {
            ids
        }
    };
    let admins = or_default(args.admins, "alice");
    let banned = or_default(args.banned, "mallory");
    let handle = Handle::default();
    let dispatcher = Dispatcher::builder(session.bot.clone(), router(admins))
        .outer_middleware(Log)
        .outer_middleware(Ban(banned.into_iter().collect()))
        .outer_middleware(Throttle {
            limit: 3,
            window: Duration::from_secs(10),
            seen: Mutex::default(),
        })
        .dependency(handle.clone())
        .build()?;
    *handle.0.lock().map_err(|_| "lock poisoned")? = Some(dispatcher.handle());
    session
        .serve(dispatcher, |sim| async move {
            let alice = Person::p2p(&sim, "alice").await?;
            alice.say("hello").await?;
            alice.expect("echo: hello").await?;
            let mallory = Person::p2p(&sim, "mallory").await?;
            mallory.say("let me in").await?;
            sim.expect_no_message(&mallory.chat, Duration::from_millis(300))
                .await?;
            println!("{:>8}   (no answer: banned)", "bot");
            let bob = Person::p2p(&sim, "bob").await?;
            bob.say("/admin stats").await?;
            bob.expect("for administrators").await?;
            alice.say("/admin stats").await?;
            alice.expect("events").await?;
            for i in 1..=4 {
                bob.say(&format!("flood {i}")).await?;
            }
            bob.expect("echo: flood 1").await?;
            bob.expect("echo: flood 2").await?;
            bob.expect("Slow down").await?;
            bob.say("one more").await?;
            sim.expect_no_message(&bob.chat, Duration::from_millis(300))
                .await?;
            println!("{:>8}   (no answer: throttled)", "bot");
            Ok(())
        })
        .await
}
