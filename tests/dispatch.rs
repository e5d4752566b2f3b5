//! Dispatcher behaviour on synthetic events: routing, extraction, commands, ordering,
//! isolation, overflow policies, idle eviction, duplicates, middleware and shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use trueconf_bot::connection::ServerEvent;
use trueconf_bot::dispatch::{
    BadArgs, BotCommand, ButtonPress, ChatId, CommandArgs, CommandFilter, Ctx, Dep, DispatchError,
    Dispatcher, DispatcherBuilder, DispatcherHandle, EventKind, ExtractError, Filter,
    HandlerResult, Next, Overflow, OverflowReason, Router, Text, Update,
};
use trueconf_bot::fsm::{Dialogue, MemoryStorage, Storage};
use trueconf_bot::harness::{event, run_events};
use trueconf_bot::types::{Event, Message};

const BOT: &str = "bot@srv.example";

fn msg_from(id: u64, chat: &str, author: &str, text: &str) -> ServerEvent {
    event(
        id,
        "sendMessage",
        json!({
            "messageId": format!("m-{chat}-{id}"),
            "chat": {"chatId": chat, "chatTitle": "t", "chatType": 2},
            "timestamp": 1735314170572u64,
            "type": 200,
            "author": {"id": author, "type": 1},
            "box": {"id": id, "position": format!("{id:010}")},
            "content": {"text": text, "parseMode": "text"},
            "isEdited": false
        }),
    )
}

fn msg(id: u64, chat: &str, text: &str) -> ServerEvent {
    msg_from(id, chat, "alice@srv.example", text)
}

fn fixture(name: &str) -> ServerEvent {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event(
        v["id"].as_u64().unwrap(),
        v["method"].as_str().unwrap(),
        v["payload"].clone(),
    )
}

type Log = Arc<Mutex<Vec<String>>>;

fn log_push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

/// Runs `builder` over `events`, then closes the stream and waits for every handler.
async fn run(builder: DispatcherBuilder, events: Vec<ServerEvent>) -> DispatcherHandle {
    run_events(builder.self_id(BOT).build().unwrap(), events)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_matching_route_wins_and_nested_routers_keep_their_place() {
    let log: Log = Default::default();
    let l = |tag: &'static str, log: &Log| {
        let log = log.clone();
        move |Text(t): Text| {
            let log = log.clone();
            async move { log_push(&log, format!("{tag}:{t}")) }
        }
    };
    let admin = Router::new()
        .filter(Filter::author("root@srv.example"))
        .message(l("admin", &log));
    let nested = Router::new()
        .message_when(Filter::text_starts_with("n"), l("nested", &log))
        .message_when(Filter::text_eq("shadowed"), l("nested-shadowed", &log));
    let router = Router::new()
        .include_router(admin)
        .message_when(Filter::text_eq("shadowed"), l("top-first", &log))
        .include_router(nested)
        .message_when(
            Filter::text_contains("x").or(Filter::text_eq("y")),
            l("xy", &log),
        )
        .message_when(!Filter::text_eq("z"), l("fallback", &log));
    let events = vec![
        msg(1, "c", "shadowed"),
        msg(2, "c", "nope"),
        msg(3, "c", "box"),
        msg(4, "c", "y"),
        msg(5, "c", "q"),
        msg(6, "c", "z"),
        msg_from(7, "c", "root@srv.example", "shadowed"),
    ];
    let h = run(Dispatcher::detached(router), events).await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "top-first:shadowed",
            "nested:nope",
            "xy:box",
            "xy:y",
            "fallback:q",
            "admin:shadowed"
        ]
    );
    let m = h.metrics();
    assert_eq!((m.events, m.handled, m.unhandled), (7, 6, 1));
}

#[tokio::test]
async fn every_event_kind_reaches_its_handler() {
    let seen: Arc<Mutex<Vec<(EventKind, String)>>> = Default::default();
    let rec = |seen: &Arc<Mutex<Vec<(EventKind, String)>>>| {
        let seen = seen.clone();
        move |u: Update, e: Event| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((u.kind(), e.method().to_string()));
            }
        }
    };
    let router = Router::new()
        .message(rec(&seen))
        .button(rec(&seen))
        .edited(rec(&seen))
        .removed(rec(&seen))
        .chat_created(rec(&seen))
        .chat_removed(rec(&seen))
        .title_edited(rec(&seen))
        .avatar_edited(rec(&seen))
        .history_cleared(rec(&seen))
        .participant_added(rec(&seen))
        .participant_removed(rec(&seen))
        .role_changed(rec(&seen))
        .limits_changed(rec(&seen))
        .upload_progress(rec(&seen))
        .unknown(rec(&seen));
    let names = [
        ("event.sendMessage.plain.json", EventKind::Message),
        ("event.command.json", EventKind::Command),
        ("event.editMessage.json", EventKind::MessageEdited),
        ("event.removeMessage.json", EventKind::MessageRemoved),
        ("event.createP2PChat.json", EventKind::ChatCreated),
        ("event.createGroupChat.json", EventKind::ChatCreated),
        ("event.createChannel.json", EventKind::ChatCreated),
        ("event.createFavoritesChat.json", EventKind::ChatCreated),
        ("event.removeChat.json", EventKind::ChatRemoved),
        ("event.editChatTitle.json", EventKind::TitleEdited),
        ("event.editChatAvatar.json", EventKind::AvatarEdited),
        ("event.clearHistory.json", EventKind::HistoryCleared),
        ("event.addChatParticipant.json", EventKind::ParticipantAdded),
        (
            "event.removeChatParticipant.json",
            EventKind::ParticipantRemoved,
        ),
        ("event.changeParticipantRole.json", EventKind::RoleChanged),
        ("event.getFileUploadLimits.json", EventKind::LimitsChanged),
        ("event.uploadFileProgress.json", EventKind::UploadProgress),
    ];
    let mut events: Vec<_> = names.iter().map(|(n, _)| fixture(n)).collect();
    events.push(event(9999, "somethingNew", json!({"x": 1})));
    let errors = Arc::new(AtomicUsize::new(0));
    let e2 = errors.clone();
    let b = Dispatcher::detached(router).error_handler(move |_u, e| {
        let e2 = e2.clone();
        async move {
            eprintln!("{e}");
            e2.fetch_add(1, Ordering::SeqCst);
        }
    });
    run(b, events).await;
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    let seen = seen.lock().unwrap();
    for (name, kind) in names {
        assert!(seen.iter().any(|(k, _)| *k == kind), "{name} not handled");
    }
    assert!(seen.contains(&(EventKind::Unknown, "somethingNew".to_string())));
    assert_eq!(seen.len(), names.len() + 1);
}

#[tokio::test]
async fn command_arguments_parse_or_reach_the_bad_args_hook() {
    let log: Log = Default::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let add = move |CommandArgs((a, b)): CommandArgs<(i64, i64)>, chat: ChatId| {
        let l = l1.clone();
        async move {
            log_push(&l, format!("{}={}", &*chat, a + b));
            HandlerResult::Ok(())
        }
    };
    let usage = move |bad: BadArgs| {
        let l = l2.clone();
        async move { log_push(&l, format!("usage:{}:{}", bad.usage.unwrap(), bad.error)) }
    };
    let echo = move |c: BotCommand| {
        let l = l3.clone();
        async move { log_push(&l, format!("cmd:{}:{}", c.name, c.args)) }
    };
    let errors: Arc<Mutex<Vec<String>>> = Default::default();
    let e2 = errors.clone();
    let router = Router::new()
        .command(
            CommandFilter::new("add")
                .alias("sum")
                .ignore_case()
                .usage("/add <a> <b>")
                .on_bad_args(usage),
            add,
        )
        .command(
            "mul",
            |CommandArgs((a, b)): CommandArgs<(u8, u8)>| async move {
                let _ = a * b;
            },
        )
        .command(CommandFilter::new("echo").prefixes("!/"), echo);
    let b = Dispatcher::detached(router).error_handler(move |_u, e: DispatchError| {
        let e2 = e2.clone();
        async move {
            if let DispatchError::Handler { error, .. } = &e {
                assert!(matches!(
                    error.downcast_ref::<ExtractError>(),
                    Some(ExtractError::BadArgs(_))
                ));
            }
            e2.lock().unwrap().push(e.to_string());
        }
    });
    let events = vec![
        msg(1, "c", "/add 2 3"),
        msg(2, "c", "/SUM@bot 4 5"),
        msg(3, "c", "/add 2 x"),
        msg(4, "c", "/add 2"),
        msg(5, "c", "/add@someoneelse 1 1"),
        msg(6, "c", "/mul 300 1"),
        msg(7, "c", "!echo hi there"),
    ];
    run(b, events).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0], "c=5");
    assert_eq!(log[1], "c=9");
    assert!(
        log[2].starts_with("usage:/add <a> <b>:argument 2 `x` is not a valid i64"),
        "{}",
        log[2]
    );
    assert!(log[3].contains("expected 2 arguments, got 1"), "{}", log[3]);
    assert_eq!(log[4], "cmd:echo:hi there");
    assert_eq!(log.len(), 5);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("argument 1 `300` is not a valid u8"),
        "{}",
        errors[0]
    );
}

#[tokio::test]
async fn buttons_route_by_command_and_custom_data() {
    let log: Log = Default::default();
    let (l1, l2) = (log.clone(), log.clone());
    let router = Router::new()
        .button_when(
            Filter::button("/confirm").and(Filter::custom_data_starts_with("ticket=")),
            move |p: ButtonPress| {
                let l = l1.clone();
                async move {
                    log_push(
                        &l,
                        format!(
                            "{}|{}|{}",
                            p.command,
                            p.custom_data.unwrap(),
                            p.command_id.is_some()
                        ),
                    )
                }
            },
        )
        .button_when(Filter::waits_reply(), move |_p: ButtonPress| {
            let l = l2.clone();
            async move { log_push(&l, "waits") }
        });
    run(
        Dispatcher::detached(router),
        vec![
            fixture("event.command.json"),
            fixture("event.command.waitReply.json"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        ["/confirm|ticket=4711|false", "/confirm|ticket=4711|true"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_chats_keep_their_order_and_run_in_parallel() {
    const CHATS: usize = 1000;
    const PER_CHAT: usize = 50;
    let replies: Arc<Mutex<HashMap<String, Vec<usize>>>> = Default::default();
    // Handlers running right now, and the most seen at once: parallelism without a clock.
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, run, m) = (replies.clone(), running.clone(), most.clone());
    let router = Router::new().message(move |chat: ChatId, Text(text): Text| {
        let (r, run, m) = (r.clone(), run.clone(), m.clone());
        async move {
            let n: usize = text.parse().unwrap();
            let now = run.fetch_add(1, Ordering::AcqRel) + 1;
            m.fetch_max(now, Ordering::AcqRel);
            let delay = rand::random_range(0..2000u64);
            tokio::time::sleep(Duration::from_micros(delay)).await;
            run.fetch_sub(1, Ordering::AcqRel);
            r.lock()
                .unwrap()
                .entry(chat.0.to_string())
                .or_default()
                .push(n);
        }
    });
    let d = Dispatcher::detached(router)
        .queue_capacity(PER_CHAT)
        .build()
        .unwrap();
    let mut events = Vec::new();
    for i in 0..PER_CHAT {
        for c in 0..CHATS {
            let id = events.len() as u64 + 1;
            events.push(msg(id, &format!("chat{c}"), &i.to_string()));
        }
    }
    let handle = run_events(d, events).await.unwrap();
    let replies = replies.lock().unwrap();
    assert_eq!(replies.len(), CHATS);
    for (chat, seq) in replies.iter() {
        assert_eq!(
            *seq,
            (0..PER_CHAT).collect::<Vec<_>>(),
            "{chat} out of order"
        );
    }
    assert_eq!(handle.metrics().handled, (CHATS * PER_CHAT) as u64);
    assert_eq!(handle.metrics().overflowed, 0);
    // Sleeping handlers of different chats overlap; a dispatcher that ran them one at a time
    // would never see two at once.
    let most = most.load(Ordering::Acquire);
    assert!(most >= 8, "at most {most} handlers ran at once");
}

#[tokio::test]
async fn a_panicking_handler_leaves_other_chats_and_later_events_alone() {
    let log: Log = Default::default();
    let l = log.clone();
    let router = Router::new().message(move |chat: ChatId, Text(t): Text| {
        let l = l.clone();
        async move {
            if t == "boom" {
                panic!("handler exploded");
            }
            log_push(&l, format!("{}:{t}", &*chat));
        }
    });
    let panics: Arc<Mutex<Vec<String>>> = Default::default();
    let p2 = panics.clone();
    let b = Dispatcher::detached(router).error_handler(move |u, e| {
        let p2 = p2.clone();
        async move {
            if let DispatchError::Panic { message, .. } = e {
                p2.lock()
                    .unwrap()
                    .push(format!("{}:{message}", u.chat_id().unwrap()));
            }
        }
    });
    let h = run(
        b,
        vec![
            msg(1, "a", "1"),
            msg(2, "a", "boom"),
            msg(3, "b", "1"),
            msg(4, "a", "2"),
            msg(5, "b", "2"),
        ],
    )
    .await;
    let mut log = log.lock().unwrap().clone();
    log.sort();
    assert_eq!(log, ["a:1", "a:2", "b:1", "b:2"]);
    assert_eq!(*panics.lock().unwrap(), ["a:handler exploded"]);
    let m = h.metrics();
    assert_eq!((m.panics, m.errors, m.handled), (1, 1, 5));
}

fn slow_and_fast_router(log: &Log) -> Router {
    slow_router(log, Duration::from_millis(20))
}

fn slow_router(log: &Log, flood_delay: Duration) -> Router {
    let l = log.clone();
    Router::new().message(move |chat: ChatId, Text(t): Text| {
        let l = l.clone();
        async move {
            if &*chat == "flood" {
                tokio::time::sleep(flood_delay).await;
            }
            log_push(&l, format!("{}:{t}", &*chat));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_overflow_reports_every_event_and_spares_other_chats() {
    let log: Log = Default::default();
    let overflowed: Arc<Mutex<Vec<(String, OverflowReason)>>> = Default::default();
    let o2 = overflowed.clone();
    let d = Dispatcher::detached(slow_router(&log, Duration::from_millis(50)))
        .queue_capacity(4)
        .overflow_handler(move |u: Update, r| {
            let o2 = o2.clone();
            async move { o2.lock().unwrap().push((u.text().unwrap().to_string(), r)) }
        })
        .build()
        .unwrap();
    let handle = d.handle();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(d.run_on(rx));
    let mut max_in_flight = 0;
    for i in 0..200 {
        tx.send(msg(i, "flood", &i.to_string())).await.unwrap();
        max_in_flight = max_in_flight.max(handle.metrics().in_flight);
    }
    tx.send(msg(1000, "calm", "hi")).await.unwrap();
    // The calm chat answers while the flood's accepted events (≥ 5 × 50 ms of work) are
    // still queued: it never waits behind another chat.
    loop {
        if log.lock().unwrap().iter().any(|s| s == "calm:hi") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        handle.metrics().in_flight >= 1,
        "the calm chat was answered only after the flood was worked off"
    );
    // Memory stays bounded: 4 queued + 1 running.
    assert!(max_in_flight <= 5, "in flight {max_in_flight}");
    drop(tx);
    task.await.unwrap().unwrap();
    let handled_flood = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("flood"))
        .count();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let over = overflowed.lock().unwrap();
    assert_eq!(handled_flood + over.len(), 200, "nothing lost silently");
    assert!(over.iter().all(|(_, r)| *r == OverflowReason::Rejected));
    assert_eq!(handle.metrics().overflowed as usize, over.len());
    assert!(handled_flood < 100, "handled {handled_flood}");
}

#[tokio::test]
async fn drop_oldest_keeps_the_latest_events() {
    let log: Log = Default::default();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d2 = dropped.clone();
    let b = Dispatcher::detached(slow_and_fast_router(&log))
        .queue_capacity(3)
        .overflow(Overflow::DropOldest)
        .overflow_handler(move |_u, r| {
            assert_eq!(r, OverflowReason::DroppedOldest);
            d2.fetch_add(1, Ordering::SeqCst);
            async {}
        });
    run(
        b,
        (0..30).map(|i| msg(i, "flood", &i.to_string())).collect(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let log = log.lock().unwrap().clone();
    assert!(
        log.ends_with(&["flood:27".into(), "flood:28".into(), "flood:29".into()]),
        "{log:?}"
    );
    assert_eq!(log.len() + dropped.load(Ordering::SeqCst), 30);
}

#[tokio::test]
async fn block_overflow_loses_nothing() {
    let log: Log = Default::default();
    let b = Dispatcher::detached(slow_and_fast_router(&log))
        .queue_capacity(2)
        .overflow(Overflow::Block);
    let h = run(
        b,
        (0..15).map(|i| msg(i, "flood", &i.to_string())).collect(),
    )
    .await;
    let log = log.lock().unwrap().clone();
    let want: Vec<String> = (0..15).map(|i| format!("flood:{i}")).collect();
    assert_eq!(log, want);
    assert_eq!(h.metrics().overflowed, 0);
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Count(u32);

#[tokio::test]
async fn idle_conversations_stop_and_come_back_with_their_dialog_state() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log: Log = Default::default();
    let l = log.clone();
    let router = Router::new().message(move |dialogue: Dialogue<Count>| {
        let l = l.clone();
        async move {
            let n = dialogue.get().await?.map_or(0, |c| c.0) + 1;
            dialogue.update(Count(n)).await?;
            log_push(&l, n.to_string());
            HandlerResult::Ok(())
        }
    });
    let d = Dispatcher::detached(router)
        .dependency(storage)
        .idle_timeout(Duration::from_millis(100))
        .self_id(BOT)
        .build()
        .unwrap();
    let handle = d.handle();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(d.run_on(rx));
    tx.send(msg(1, "a", "x")).await.unwrap();
    tx.send(msg(2, "a", "x")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(handle.metrics().live_conversations, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(handle.metrics().live_conversations, 0, "evicted");
    tx.send(msg(3, "a", "x")).await.unwrap();
    drop(tx);
    task.await.unwrap().unwrap();
    assert_eq!(*log.lock().unwrap(), ["1", "2", "3"]);
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Signup {
    Name,
    Age { name: String },
}

#[tokio::test]
async fn dialog_state_routes_a_multi_step_conversation() {
    use trueconf_bot::fsm::StateFilter;
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log: Log = Default::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let router = Router::new()
        .command("signup", |d: Dialogue<Signup>| async move {
            d.update(Signup::Name).await?;
            HandlerResult::Ok(())
        })
        .message_in(
            StateFilter::equals(Signup::Name),
            move |d: Dialogue<Signup>, Text(name): Text| {
                let l = l1.clone();
                async move {
                    log_push(&l, format!("name={name}"));
                    d.update(Signup::Age { name }).await?;
                    HandlerResult::Ok(())
                }
            },
        )
        .on_state(
            Some(EventKind::Message),
            Some(Filter::text(|t| t.parse::<u8>().is_ok())),
            StateFilter::new(|s: &Signup| matches!(s, Signup::Age { .. })),
            move |d: Dialogue<Signup>, Text(age): Text| {
                let l = l2.clone();
                async move {
                    if let Some(Signup::Age { name }) = d.get().await? {
                        log_push(&l, format!("{name} is {age}"));
                    }
                    d.exit().await?;
                    HandlerResult::Ok(())
                }
            },
        )
        .message(move |Text(t): Text| {
            let l = l3.clone();
            async move { log_push(&l, format!("no dialog: {t}")) }
        });
    let b = Dispatcher::detached(router).dependency(storage);
    run(
        b,
        vec![
            msg(1, "c", "hello"),
            msg(2, "c", "/signup"),
            msg(3, "c", "Ann"),
            msg(4, "c", "old"),
            msg(5, "c", "33"),
            msg(6, "c", "bye"),
            // Another user in the same chat has a dialog of their own.
            msg_from(7, "c", "bob@srv.example", "Bob"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "no dialog: hello",
            "name=Ann",
            "no dialog: old",
            "Ann is 33",
            "no dialog: bye",
            "no dialog: Bob"
        ]
    );
}

#[tokio::test]
async fn missing_dependency_is_refused_at_build_time() {
    struct Db;
    let router = Router::new().message(|_db: Dep<Arc<Db>>| async {});
    let err = Dispatcher::detached(router)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing dependency") && err.contains("Db"),
        "{err}"
    );
    let router = Router::new().message(|_d: Dialogue<Count>| async {});
    assert!(Dispatcher::detached(router).build().is_err());
    let state = trueconf_bot::fsm::StateFilter::<Count>::any();
    let router = Router::new().message_in(state, || async {});
    let err = Dispatcher::detached(router)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Storage"), "{err}");
    let router = Router::new().message(|_db: Dep<Arc<Db>>| async {});
    assert!(
        Dispatcher::detached(router)
            .dependency(Arc::new(Db))
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn middleware_wraps_and_can_stop_events() {
    let log: Log = Default::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let router = Router::new().message_when(Filter::text_eq("hi"), move |m: Message| {
        let l = l3.clone();
        async move { log_push(&l, format!("handler:{}", m.message_id)) }
    });
    let b = Dispatcher::detached(router)
        .outer_middleware(move |ctx: Arc<Ctx>, next: Next| {
            let l = l1.clone();
            async move {
                if ctx.update().author_id() == Some("mallory@srv.example") {
                    log_push(&l, "denied");
                    return Ok(());
                }
                log_push(&l, "outer");
                next.run(ctx).await
            }
        })
        .inner_middleware(move |ctx: Arc<Ctx>, next: Next| {
            let l = l2.clone();
            async move {
                log_push(&l, "inner-before");
                let r = next.run(ctx).await;
                log_push(&l, "inner-after");
                r
            }
        });
    let h = run(
        b,
        vec![
            msg(1, "c", "hi"),
            msg(2, "c", "other"),
            msg_from(3, "c", "mallory@srv.example", "hi"),
        ],
    )
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer",
            "inner-before",
            "handler:m-c-1",
            "inner-after",
            "outer",
            "denied"
        ]
    );
    assert_eq!(h.metrics().unhandled, 2);
}

#[tokio::test]
async fn own_messages_and_redeliveries_are_skipped() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let router = Router::new().message(move || {
        c.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    let h = run(
        Dispatcher::detached(router),
        vec![
            msg(1, "c", "a"),
            msg_from(2, "c", BOT, "mine"),
            msg(1, "c", "a"), // redelivered: same message id
            msg(3, "c", "b"),
        ],
    )
    .await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let m = h.metrics();
    assert_eq!((m.skipped_own, m.duplicates, m.events), (1, 1, 4));
}

#[tokio::test]
async fn mention_filter() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let router = Router::new().message_when(Filter::mentioned(), move || {
        c.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    run(
        Dispatcher::detached(router),
        vec![
            msg(1, "c", "@all"),
            msg(
                2,
                "c",
                &format!("hey <a href=\"trueconf:{BOT}&do=profile\">Bot</a>"),
            ),
            msg(3, "c", "hey <a href=\"trueconf:other@srv.example\">x</a>"),
            msg(4, "c", "plain"),
            // The mention is in the reply quote: still a mention, as in the official client.
            msg(
                5,
                "c",
                &format!(
                    "<quote class=\"reply\">ask <a href=\"trueconf:{BOT}\">Bot</a></quote><br><br>ok"
                ),
            ),
        ],
    )
    .await;
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn shutdown_lets_in_flight_handlers_finish() {
    let done = Arc::new(AtomicUsize::new(0));
    let d2 = done.clone();
    let router = Router::new().message(move || {
        let d2 = d2.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            d2.fetch_add(1, Ordering::SeqCst);
        }
    });
    let d = Dispatcher::detached(router).build().unwrap();
    let handle = d.handle();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(d.run_on(rx));
    for c in 0..5 {
        tx.send(msg(c, &format!("c{c}"), "x")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    handle.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!(handle.metrics().live_conversations, 0);
}

mod against_the_emulator {
    use super::*;
    use trueconf_bot::bot::{Bot, ReconnectPolicy};
    use trueconf_bot::connection::AckMode;
    use trueconf_bot::dispatch::MessageContext;
    use trueconf_bot::harness::{SimBot, bot_builder};
    use trueconf_bot::testkit::{LoadSpec, Sim, SimConfig, eventually};

    async fn boom() {
        panic!("boom");
    }

    fn bot_for(sim: &Sim, ack: AckMode) -> Bot {
        bot_builder(sim)
            .ack_mode(ack)
            .receive_unread(true)
            .request_timeout(Duration::from_secs(3))
            .reconnect(
                ReconnectPolicy::default()
                    .min_delay(Duration::from_millis(20))
                    .max_delay(Duration::from_millis(200)),
            )
            .build()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_handled_delivery_survives_a_dropped_socket() {
        const N: usize = 60;
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let bot = bot_for(&sim, AckMode::AfterHandled);
        let seen: Arc<Mutex<HashMap<String, usize>>> = Default::default();
        let s = seen.clone();
        let router = Router::new().message(move |Text(t): Text| {
            let s = s.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                *s.lock().unwrap().entry(t).or_default() += 1;
            }
        });
        let d = Dispatcher::builder(bot.clone(), router).build().unwrap();
        let running = SimBot::run(d).await.unwrap();
        let handle = running.handle().clone();
        let alice = sim.user("alice");
        let chat = alice.create_p2p_with_bot().await.unwrap();
        for i in 0..N {
            if i == N / 3 {
                // The socket dies a few frames later, with events in flight and unacked.
                sim.faults().drop_after_frames(3);
            }
            alice.send_text(&chat, &format!("m{i}")).await.unwrap();
        }
        let all_seen = eventually("every event handled", Duration::from_secs(15), || {
            let seen = seen.lock().unwrap();
            (0..N)
                .all(|i| seen.contains_key(&format!("m{i}")))
                .then_some(())
        })
        .await;
        assert!(
            all_seen.is_ok(),
            "lost events: {:?}",
            seen.lock().unwrap().len()
        );
        let stats = sim.stats();
        assert!(
            stats.connections >= 2,
            "the socket was dropped and re-opened: {stats:?}"
        );
        running.stop().await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), N);
        eprintln!(
            "redelivered {} / duplicates suppressed {} / max handled {}",
            stats.redelivered,
            handle.metrics().duplicates,
            seen.values().max().unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn thousand_chats_echo_in_order_through_the_server() {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let bot = bot_for(&sim, AckMode::OnReceive);
        // Chats run in parallel: handlers of different chats are in flight at once. Counted,
        // not timed, so a busy machine cannot fail the test.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (f, p) = (in_flight.clone(), peak.clone());
        let router = Router::new().message(move |msg: MessageContext| {
            let (f, p) = (f.clone(), p.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let delay = rand::random_range(0..4000u64);
                tokio::time::sleep(Duration::from_micros(delay)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                msg.answer(msg.text().unwrap_or_default()).await?;
                HandlerResult::Ok(())
            }
        });
        let d = Dispatcher::builder(bot, router)
            .queue_capacity(64)
            .build()
            .unwrap();
        let running = SimBot::run(d).await.unwrap();
        let handle = running.handle().clone();
        let report = sim
            .run_load(LoadSpec {
                events: 50_000,
                chats: 1000,
                window: 4000,
                timeout: Duration::from_secs(120),
                connect_timeout: Duration::from_secs(10),
                rate: None,
            })
            .await
            .unwrap();
        let peak = peak.load(Ordering::SeqCst);
        eprintln!("{report:?}; at most {peak} handlers at once");
        assert_eq!(report.replied, report.sent);
        assert_eq!(report.order_violations, 0);
        // A window of 4,000 over 1,000 chats keeps hundreds of chats busy at a time; one
        // handler at a time would mean chats wait for each other.
        assert!(peak >= 16, "only {peak} handlers ran at once");
        assert_eq!(handle.metrics().overflowed, 0);
        running.stop().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shortcuts_usage_replies_and_panics_through_the_server() {
        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let bot = bot_for(&sim, AckMode::OnReceive);
        let usage = |bad: BadArgs, msg: MessageContext| async move {
            msg.reply(format!("usage: {}", bad.usage.unwrap_or_default()))
                .await?;
            HandlerResult::Ok(())
        };
        let router = Router::new()
            .command(
                CommandFilter::new("add")
                    .usage("/add <a> <b>")
                    .on_bad_args(usage),
                |CommandArgs((a, b)): CommandArgs<(i64, i64)>, msg: MessageContext| async move {
                    msg.answer((a + b).to_string()).await?;
                    HandlerResult::Ok(())
                },
            )
            .message_when(Filter::text_eq("boom"), boom)
            .message(|msg: MessageContext| async move {
                msg.reply(format!("echo {}", msg.text().unwrap_or_default()))
                    .await?;
                HandlerResult::Ok(())
            });
        let d = Dispatcher::builder(bot, router).build().unwrap();
        let running = SimBot::run(d).await.unwrap();
        let handle = running.handle().clone();
        let (alice, bob) = (sim.user("alice"), sim.user("bob"));
        let (ca, cb) = (
            alice.create_p2p_with_bot().await.unwrap(),
            bob.create_p2p_with_bot().await.unwrap(),
        );
        alice.send_text(&ca, "/add 2 40").await.unwrap();
        let m = sim.expect_message(&ca).await.unwrap();
        assert_eq!(m.text(), Some("42"));
        let bad = alice.send_text(&ca, "/add two").await.unwrap();
        let m = sim.expect_message(&ca).await.unwrap();
        assert_eq!(m.text(), Some("usage: /add <a> <b>"));
        assert_eq!(m.reply_to.as_deref(), Some(bad.as_str()));
        alice.send_text(&ca, "boom").await.unwrap();
        bob.send_text(&cb, "hello").await.unwrap();
        let m = sim.expect_message(&cb).await.unwrap();
        assert_eq!(m.text(), Some("echo hello"));
        alice.send_text(&ca, "still there?").await.unwrap();
        let m = sim.expect_message(&ca).await.unwrap();
        assert_eq!(m.text(), Some("echo still there?"));
        sim.expect_no_message(&ca, Duration::from_millis(100))
            .await
            .unwrap();
        let metrics = handle.metrics();
        assert_eq!(metrics.panics, 1);
        assert_eq!((metrics.handled, metrics.errors), (5, 1), "{metrics:?}");
        running.stop().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn button_presses_are_routed_and_answered() {
        use trueconf_bot::dispatch::ButtonContext;
        use trueconf_bot::types::{AnswerType, Button, InlineKeyboard};

        let sim = Sim::start(SimConfig::default()).await.unwrap();
        let bot = bot_for(&sim, AckMode::OnReceive);
        let router = Router::new()
            .command("menu", |msg: MessageContext| async move {
                let kb = InlineKeyboard::builder()
                    .row([
                        Button::command("Close", "/close")
                            .custom_data("ticket=7")
                            .wait_reply(true),
                        Button::command("Other", "/other"),
                    ])
                    .build()?;
                msg.answer("pick one").buttons(kb).await?;
                HandlerResult::Ok(())
            })
            .button_when(
                Filter::button("/close").and(Filter::custom_data_starts_with("ticket=")),
                |press: ButtonContext| async move {
                    press.answer(AnswerType::Complete, "closed")?.await?;
                    let data = press.custom_data().unwrap_or_default().to_string();
                    press.send(format!("closed {data}"))?.await?;
                    HandlerResult::Ok(())
                },
            )
            .button(|press: ButtonContext| async move {
                // No waitReply on this button: answering it is a clear error, not a panic.
                let err = press.answer(AnswerType::Complete, "x").unwrap_err();
                press.send(format!("other: {err}"))?.await?;
                HandlerResult::Ok(())
            });
        let d = Dispatcher::builder(bot, router).build().unwrap();
        let running = SimBot::run(d).await.unwrap();
        let handle = running.handle().clone();
        let alice = sim.user("alice");
        let chat = alice.create_p2p_with_bot().await.unwrap();
        alice.send_text(&chat, "/menu").await.unwrap();
        let menu = sim.expect_message(&chat).await.unwrap();
        let menu_id = menu.id.clone();
        let command_id = alice.press_button(&chat, &menu_id, "/close").await.unwrap();
        assert!(command_id.is_some());
        let m = sim.expect_message(&chat).await.unwrap();
        assert_eq!(m.text(), Some("closed ticket=7"));
        let answer = sim.expect_request("answerCommand").await.unwrap();
        assert_eq!(answer["commandId"].as_str(), command_id.as_deref());
        assert_eq!(answer["answerType"], "complete");
        alice.press_button(&chat, &menu_id, "/other").await.unwrap();
        let m = sim.expect_message(&chat).await.unwrap();
        let text = m.text().unwrap();
        assert!(
            text.starts_with("other: ") && text.contains("commandId"),
            "{text}"
        );
        assert_eq!(handle.metrics().errors, 0);
        running.stop().await.unwrap();
    }
}
