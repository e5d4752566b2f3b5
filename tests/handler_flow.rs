//! Handler data flow: async filters, per-event values from filters and middleware (`Data<T>`,
//! checked at build time), router-scoped middleware and error handlers, regex commands and
//! argument predicates, the `F` field-filter builder.

use std::sync::{Arc, Mutex};

use serde_json::json;
use trueconf_bot::connection::ServerEvent;
use trueconf_bot::dispatch::{
    BotCommand, CommandFilter, Ctx, Data, Dispatcher, DispatcherBuilder, DispatcherHandle,
    ExtractError, F, Filter, HandlerError, HandlerResult, Next, Regex, Router, Text, TextMatch,
    Update,
};
use trueconf_bot::harness::{event, run_events};
use trueconf_bot::types::{ChatType, MessageKind};

const BOT: &str = "bot@srv.example";

fn message(id: u64, chat_type: u8, author: &str, text: &str, reply: bool) -> ServerEvent {
    let mut payload = json!({
        "messageId": format!("m-{id}"),
        "chat": {"chatId": "c", "chatTitle": "t", "chatType": chat_type},
        "timestamp": 1735314170572u64,
        "type": 200,
        "author": {"id": author, "type": 1},
        "box": {"id": id, "position": format!("{id:010}")},
        "content": {"text": text, "parseMode": "text"},
        "isEdited": false
    });
    if reply {
        payload["replyMessageId"] = json!("m-0");
    }
    event(id, "sendMessage", payload)
}

fn msg(id: u64, text: &str) -> ServerEvent {
    message(id, 1, "alice@srv.example", text, false)
}

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

async fn run(builder: DispatcherBuilder, events: Vec<ServerEvent>) -> DispatcherHandle {
    run_events(builder.self_id(BOT).build().unwrap(), events)
        .await
        .unwrap()
}

/// A handler logging `tag:text`.
fn log_text(
    log: &Log,
    tag: &'static str,
) -> impl Fn(Text) -> std::future::Ready<()> + Clone + Send + Sync + 'static {
    let log = log.clone();
    move |Text(t): Text| {
        push(&log, format!("{tag}:{t}"));
        std::future::ready(())
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Ticket(u32);

#[derive(Clone, Debug, PartialEq)]
struct Account(String);

#[tokio::test]
async fn async_filters_route_and_compose_with_sync_ones() {
    let log: Log = Default::default();
    let slow_yes = Filter::new_async(|ctx: Arc<Ctx>| async move {
        tokio::task::yield_now().await;
        ctx.update().text().is_some_and(|t| t.contains("vip"))
    });
    let router = Router::new()
        .message_when(
            slow_yes.clone() & Filter::text_starts_with("a"),
            log_text(&log, "a-vip"),
        )
        .message_when(
            !slow_yes.clone() | Filter::text_eq("vip"),
            log_text(&log, "not-vip"),
        )
        .message(log_text(&log, "rest"));
    run(
        Dispatcher::detached(router),
        vec![msg(1, "a vip"), msg(2, "b"), msg(3, "b vip"), msg(4, "vip")],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        ["a-vip:a vip", "not-vip:b", "rest:b vip", "not-vip:vip"]
    );
}

#[tokio::test]
async fn filters_attach_typed_values_for_handlers() {
    let log: Log = Default::default();
    let ticket = Filter::map(|ctx| {
        let n = ctx.update().text()?.strip_prefix('#')?.parse().ok()?;
        Some(Ticket(n))
    });
    let account = Filter::map_async(|ctx: Arc<Ctx>| async move {
        let id = ctx.update().author_id()?.to_string();
        tokio::task::yield_now().await;
        id.starts_with("alice").then_some(Account(id))
    });
    let l = log.clone();
    let both = move |Data(t): Data<Ticket>, Data(a): Data<Account>| {
        let l = l.clone();
        async move { push(&l, format!("{}:{}", a.0, t.0)) }
    };
    let l = log.clone();
    let just_ticket = move |Data(t): Data<Ticket>, a: Option<Data<Account>>| {
        let l = l.clone();
        async move { push(&l, format!("ticket {} account {}", t.0, a.is_some())) }
    };
    let router = Router::new()
        .message_when(ticket.clone() & account, both)
        .message_when(ticket, just_ticket);
    run(
        Dispatcher::detached(router),
        vec![msg(1, "#7"), message(2, 1, "bob@srv.example", "#8", false)],
    )
    .await;
    // Bob's `#8`: the first route's ticket filter attached a Ticket, then the account
    // filter failed; the second route sees only its own Ticket and no stale Account.
    assert_eq!(
        *log.lock().unwrap(),
        ["alice@srv.example:7", "ticket 8 account false"]
    );
}

#[test]
fn a_data_parameter_without_provider_is_a_build_error_naming_the_type() {
    async fn wants(_: Data<Ticket>) {}
    let e = Dispatcher::detached(Router::new().message(wants))
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("handler_flow::Ticket"), "{text}");
    assert!(text.contains("Filter::map"), "{text}");

    // `or` provides only what both sides provide; `!` provides nothing.
    let t = || Filter::map(|_| Some(Ticket(1)));
    let a = || Filter::map(|_| Some(Account("a".into())));
    assert!(
        Dispatcher::detached(Router::new().message_when(t() | a(), wants))
            .build()
            .is_err()
    );
    assert!(
        Dispatcher::detached(Router::new().message_when(!t(), wants))
            .build()
            .is_err()
    );
    assert!(
        Dispatcher::detached(Router::new().message_when(t() | (a() & t()), wants))
            .build()
            .is_ok()
    );
    // A router filter provides for every route under it; a sibling router's does not.
    let provided = Router::new().filter(t()).message(wants);
    assert!(
        Dispatcher::detached(Router::new().include_router(provided))
            .build()
            .is_ok()
    );
    let sibling = Router::new().filter(t()).message(|| async {});
    let router = Router::new().include_router(sibling).message(wants);
    assert!(Dispatcher::detached(router).build().is_err());
    // Middleware declares what it attaches.
    let declared = Router::new().provides::<Ticket>().message(wants);
    assert!(Dispatcher::detached(declared).build().is_ok());
}

#[tokio::test]
async fn router_middleware_wraps_only_its_subtree_and_passes_values() {
    let log: Log = Default::default();
    let l = log.clone();
    let tag_admin = move |ctx: Arc<Ctx>, next: Next| {
        let l = l.clone();
        async move {
            if ctx.update().author_id() != Some("root@srv.example") {
                push(&l, "admin mw: denied");
                return Ok(());
            }
            ctx.insert(Account("root".into()));
            push(&l, "admin mw: in");
            let r = next.run(ctx).await;
            push(&l, "admin mw: out");
            r
        }
    };
    let l = log.clone();
    let outer = move |ctx: Arc<Ctx>, next: Next| {
        let l = l.clone();
        async move {
            push(&l, "root mw");
            next.run(ctx).await
        }
    };
    let l = log.clone();
    let ban = move |Data(a): Data<Account>, Text(t): Text| {
        let l = l.clone();
        async move { push(&l, format!("{} bans: {t}", a.0)) }
    };
    let admin = Router::new()
        .middleware(tag_admin)
        .provides::<Account>()
        .message_when(Filter::text_starts_with("/ban"), ban);
    let router = Router::new()
        .middleware(outer)
        .include_router(admin)
        .message(log_text(&log, "public"));
    let l = log.clone();
    let d = Dispatcher::detached(router).inner_middleware(move |ctx: Arc<Ctx>, next: Next| {
        let l = l.clone();
        async move {
            push(&l, "dispatcher inner");
            next.run(ctx).await
        }
    });
    run(
        d,
        vec![
            message(1, 1, "root@srv.example", "/ban eve", false),
            msg(2, "/ban bob"),
            msg(3, "hello"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "dispatcher inner",
            "root mw",
            "admin mw: in",
            "root bans: /ban eve",
            "admin mw: out",
            "dispatcher inner",
            "root mw",
            "admin mw: denied",
            "dispatcher inner",
            "root mw",
            "public:hello",
        ]
    );
}

#[tokio::test]
async fn router_error_handlers_take_their_subtree_errors() {
    let scoped: Log = Default::default();
    let global: Log = Default::default();
    let s = scoped.clone();
    let inner = Router::new()
        .error_handler(move |u: Update, e: HandlerError| {
            let s = s.clone();
            async move { push(&s, format!("inner {}: {e}", u.text().unwrap_or(""))) }
        })
        .message_when(Filter::text_eq("inner"), || async {
            Err::<(), _>("inner failed")
        });
    let s = scoped.clone();
    let outer = Router::new()
        .error_handler(move |u: Update, e: HandlerError| {
            let s = s.clone();
            async move { push(&s, format!("outer {}: {e}", u.text().unwrap_or(""))) }
        })
        .include_router(inner)
        .message_when(Filter::text_eq("outer"), || async {
            Err::<(), _>("outer failed")
        })
        // An extraction error is a handler error too.
        .message_when(Filter::text_eq("extract"), |_: Data<Ticket>| async {});
    let router = Router::new()
        .include_router(outer.provides::<Ticket>())
        .message(|| async { Err::<(), _>("top failed") });
    let g = global.clone();
    let d = Dispatcher::detached(router).error_handler(move |u, e| {
        let g = g.clone();
        async move { push(&g, format!("global {}: {e}", u.text().unwrap_or(""))) }
    });
    let h = run(
        d,
        vec![
            msg(1, "inner"),
            msg(2, "outer"),
            msg(3, "extract"),
            msg(4, "top"),
        ],
    )
    .await;
    let scoped = scoped.lock().unwrap().clone();
    assert_eq!(scoped[0], "inner inner: inner failed");
    assert_eq!(scoped[1], "outer outer: outer failed");
    assert!(scoped[2].starts_with("outer extract: no filter or middleware provides"));
    assert_eq!(scoped.len(), 3);
    let global = global.lock().unwrap().clone();
    assert_eq!(global.len(), 1, "{global:?}");
    assert!(global[0].starts_with("global top: handler"), "{global:?}");
    // Every failed handling counts, whichever error handler took it.
    assert_eq!(h.metrics().errors, 4);
}

#[tokio::test]
async fn regex_commands_and_argument_predicates() {
    let log: Log = Default::default();
    let cmd = |tag: &'static str| {
        let log = log.clone();
        move |c: BotCommand| {
            let log = log.clone();
            async move { push(&log, format!("{tag}:{}:{}", c.name, c.args)) }
        }
    };
    let router = Router::new()
        .command(
            CommandFilter::regex(Regex::new(r"echo_\d+").unwrap()),
            cmd("numbered"),
        )
        .command(CommandFilter::new("echo").with_args(), cmd("echo"))
        .command(
            CommandFilter::regex(Regex::new("caps?").unwrap()).alias("shout"),
            cmd("caps"),
        )
        .command(
            CommandFilter::new("upper").args_when(|a| a.chars().count() > 3),
            cmd("upper"),
        )
        .message(log_text(&log, "other"));
    run(
        Dispatcher::detached(router),
        vec![
            msg(1, "/echo_12 hi"),
            msg(2, "/echo_12x hi"),
            msg(3, "/echo"),
            msg(4, "/echo hi"),
            msg(5, "/cap x"),
            msg(6, "/shout y"),
            msg(7, "/upper abc"),
            msg(8, "/upper abcd"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "numbered:echo_12:hi",
            "other:/echo_12x hi",
            "other:/echo",
            "echo:echo:hi",
            "caps:cap:x",
            "caps:shout:y",
            "other:/upper abc",
            "upper:upper:abcd",
        ]
    );
}

#[tokio::test]
async fn field_filters_cover_text_content_chat_sender_and_reply() {
    let log: Log = Default::default();
    let l = log.clone();
    let ticket = move |Data(m): Data<TextMatch>| {
        let l = l.clone();
        async move { push(&l, format!("ticket {}", m.name("n").unwrap_or("?"))) }
    };
    let router = Router::new()
        .message_when(
            F::text().regex(Regex::new(r"^#(?<n>\d+)$").unwrap()),
            ticket,
        )
        .message_when(
            F::author().one_of(["root@srv.example"]) & F::text().contains("ban"),
            log_text(&log, "admin-ban"),
        )
        .message_when(F::reply().exists(), log_text(&log, "reply"))
        .message_when(
            F::chat_type().is(ChatType::Group) & F::text().lower().eq("hello"),
            log_text(&log, "group-hello"),
        )
        .message_when(
            F::text().starts_with("!") | F::text().ends_with("?"),
            log_text(&log, "bang-or-question"),
        )
        .message_when(
            F::text().len(|n| n == 5) & !F::text().one_of(["abcde"]),
            log_text(&log, "five"),
        )
        .message_when(F::content().is(MessageKind::Text), log_text(&log, "text"));
    run(
        Dispatcher::detached(router),
        vec![
            msg(1, "#42"),
            message(2, 1, "root@srv.example", "ban eve", false),
            msg(3, "ban eve"),
            message(4, 1, "alice@srv.example", "sure", true),
            message(5, 2, "alice@srv.example", "HeLLo", false),
            msg(6, "HeLLo"),
            msg(7, "why?"),
            msg(8, "abcde"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "ticket 42",
            "admin-ban:ban eve",
            "text:ban eve",
            "reply:sure",
            "group-hello:HeLLo",
            "five:HeLLo",
            "bang-or-question:why?",
            "text:abcde",
        ]
    );
}

#[tokio::test]
async fn a_declared_value_missing_at_run_time_is_a_typed_error() {
    let errors: Log = Default::default();
    let e = errors.clone();
    let router = Router::new()
        .provides::<Ticket>()
        .message(|_: Data<Ticket>| async {});
    let d = Dispatcher::detached(router).error_handler(move |_, err| {
        let e = e.clone();
        async move {
            let missing = match &err {
                trueconf_bot::dispatch::DispatchError::Handler { error, .. } => matches!(
                    error.downcast_ref::<ExtractError>(),
                    Some(ExtractError::MissingData(t)) if t.ends_with("Ticket")
                ),
                _ => false,
            };
            push(&e, format!("missing data: {missing}"));
        }
    });
    run(d, vec![msg(1, "x")]).await;
    assert_eq!(*errors.lock().unwrap(), ["missing data: true"]);
}

// The bad-arguments hook still runs for a command whose handler sits under router
// middleware (the wrapped handler handles it before the dispatcher sees the error).
#[tokio::test]
async fn bad_args_hook_runs_inside_router_middleware() {
    use trueconf_bot::dispatch::{BadArgs, CommandArgs};
    let log: Log = Default::default();
    let l = log.clone();
    let mw = move |ctx: Arc<Ctx>, next: Next| {
        let l = l.clone();
        async move {
            push(&l, "mw");
            next.run(ctx).await
        }
    };
    let l = log.clone();
    let hook = move |bad: BadArgs| {
        let l = l.clone();
        async move {
            push(&l, format!("usage: {}", bad.usage.unwrap_or_default()));
            HandlerResult::Ok(())
        }
    };
    let router = Router::new().middleware(mw).command(
        CommandFilter::new("add")
            .usage("/add a b")
            .on_bad_args(hook),
        |CommandArgs((a, b)): CommandArgs<(i32, i32)>| async move {
            let _ = a + b;
        },
    );
    let h = run(Dispatcher::detached(router), vec![msg(1, "/add 1")]).await;
    assert_eq!(*log.lock().unwrap(), ["mw", "usage: /add a b"]);
    assert_eq!(h.metrics().errors, 0);
}

/// The whole flow against the emulator: a user's messages through an async filter attaching
/// an account, router middleware attaching a role, regex commands and field filters, with
/// the bot's answers read back from the emulated server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_emulator_values_reach_handlers_that_answer() {
    use std::time::Duration;
    use trueconf_bot::bot::Bot;
    use trueconf_bot::dispatch::MessageContext;
    use trueconf_bot::testkit::{Sim, SimConfig};

    #[derive(Clone)]
    struct Role(&'static str);

    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        .build()
        .unwrap();
    let known = Filter::map_async(|ctx: Arc<Ctx>| async move {
        let id = ctx.update().author_id()?.to_string();
        tokio::task::yield_now().await;
        Some(Account(id))
    });
    let role = |ctx: Arc<Ctx>, next: Next| async move {
        ctx.insert(Role("member"));
        next.run(ctx).await
    };
    let members =
        Router::new()
            .filter(known)
            .middleware(role)
            .provides::<Role>()
            .command(
                CommandFilter::regex(Regex::new(r"ticket_\d+").unwrap()),
                |msg: MessageContext,
                 cmd: BotCommand,
                 Data(a): Data<Account>,
                 Data(r): Data<Role>| async move {
                    msg.answer(format!("{} for {} ({})", cmd.name, a.0, r.0))
                        .await?;
                    HandlerResult::Ok(())
                },
            )
            .message_when(
                F::text().lower().starts_with("hi") & !F::reply().exists(),
                |msg: MessageContext, Data(a): Data<Account>| async move {
                    msg.answer(format!("hello {}", a.0)).await?;
                    HandlerResult::Ok(())
                },
            );
    let d = Dispatcher::builder(bot, Router::new().include_router(members))
        .build()
        .unwrap();
    let handle = d.handle();
    let task = tokio::spawn(d.run());
    sim.wait_for_bot(Duration::from_secs(10)).await.unwrap();
    let alice = sim.user("alice");
    let chat = alice.create_p2p_with_bot().await.unwrap();
    let answer = |m: trueconf_bot::testkit::SimMessage| m.text().unwrap_or_default().to_string();
    alice.send_text(&chat, "/ticket_7").await.unwrap();
    let m = sim
        .expect_message_within(&chat, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        answer(m).starts_with("ticket_7 for alice@"),
        "ticket answer"
    );
    alice.send_text(&chat, "Hi bot").await.unwrap();
    let m = sim
        .expect_message_within(&chat, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer(m).starts_with("hello alice@"), "greeting answer");
    handle.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(handle.metrics().errors, 0);
}

/// Dispatcher-wide outer middleware can attach values too; the root router declares them.
#[tokio::test]
async fn dispatcher_middleware_values_declared_on_the_root_router() {
    let log: Log = Default::default();
    let l = log.clone();
    let router = Router::new()
        .provides::<Ticket>()
        .message(move |Data(t): Data<Ticket>| {
            let l = l.clone();
            async move { push(&l, format!("ticket {}", t.0)) }
        });
    let d = Dispatcher::detached(router).outer_middleware(|ctx: Arc<Ctx>, next: Next| async move {
        ctx.insert(Ticket(9));
        next.run(ctx).await
    });
    run(d, vec![msg(1, "x")]).await;
    assert_eq!(*log.lock().unwrap(), ["ticket 9"]);
}
