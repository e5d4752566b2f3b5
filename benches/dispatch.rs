//! The dispatch path: raw event in → routed through a 20-route router with filters → handler
//! called, on the per-chat conversation actors. Before the timings, a counting global allocator
//! reports the heap allocations per event on that path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::{Notify, mpsc};
use trueconf_bot::connection::{Acknowledger, ServerEvent};
use trueconf_bot::dispatch::{CommandArgs, CommandFilter, Dispatcher, Filter, Router, Text};
use trueconf_bot::protocol::RawValue;

fn message(id: u64, chat: &str, text: &str) -> ServerEvent {
    let payload = format!(
        r#"{{"messageId":"m{id}","chat":{{"chatId":"{chat}","chatTitle":"t","chatType":2}},"timestamp":1735314170572,"type":200,"author":{{"id":"alice@srv.example","type":1}},"box":{{"id":{id},"position":"{id:010}"}},"content":{{"text":"{text}","parseMode":"text"}},"isEdited":false}}"#
    );
    ServerEvent {
        id,
        method: "sendMessage".into(),
        payload: RawValue::from_string(payload).expect("valid JSON"),
        ack: Acknowledger::noop(id),
    }
}

/// The system allocator, counting allocations (and reallocations) while `COUNTING` is on.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every operation to `System`; only counts on the side.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

struct Counter {
    n: AtomicU64,
    done: Notify,
}

/// 19 routes that do not match the benchmark's messages (commands, text filters, other event
/// kinds), then the catch-all that does.
fn router(counter: Arc<Counter>) -> Router {
    let mut r = Router::new();
    for i in 0..8 {
        r = r.command(
            CommandFilter::new(format!("cmd{i}")).ignore_case(),
            |CommandArgs((_a, _b)): CommandArgs<(u32, u32)>| async {},
        );
    }
    for i in 0..6 {
        r = r.message_when(
            Filter::text_starts_with(format!("prefix{i}")).and(Filter::author("bob@srv.example")),
            |Text(_t): Text| async {},
        );
    }
    r = r
        .message_when(Filter::mentioned(), || async {})
        .message_when(Filter::is_reply(), || async {})
        .button(|| async {})
        .edited(|| async {})
        .message_when(!Filter::text_contains("hello"), || async {});
    r.message(move |Text(_t): Text| {
        let c = counter.clone();
        async move {
            c.n.fetch_add(1, Ordering::Relaxed);
            c.done.notify_one();
        }
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let counter = Arc::new(Counter {
        n: AtomicU64::new(0),
        done: Notify::new(),
    });
    let (tx, task) = rt.block_on(async {
        let d = Dispatcher::detached(router(counter.clone()))
            .queue_capacity(100_000)
            .dedup_window(0)
            .build()
            .expect("dispatcher");
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(d.run_on(rx));
        (tx, task)
    });

    // Allocations per event, event in → handler called (the events are built beforehand;
    // counting covers every thread: the dispatcher, the conversation actors, the handler).
    for chats in [1usize, 100] {
        const N: u64 = 20_000;
        let (allocs, bytes) = rt.block_on(async {
            let events: Vec<ServerEvent> = (0..N)
                .map(|i| message(i, &format!("alloc-chat{}", i as usize % chats), "hello"))
                .collect();
            let run = |events: Vec<ServerEvent>| {
                let tx = tx.clone();
                let counter = counter.clone();
                async move {
                    let target = counter.n.load(Ordering::Relaxed) + events.len() as u64;
                    for e in events {
                        let _ = tx.send(e).await;
                    }
                    while counter.n.load(Ordering::Relaxed) < target {
                        tokio::task::yield_now().await;
                    }
                }
            };
            let (warm, measured) = {
                let mut events = events;
                let measured = events.split_off(N as usize / 2);
                (events, measured)
            };
            // The first half starts the conversations; the second half is the steady state.
            run(warm).await;
            let n = measured.len() as u64;
            ALLOCS.store(0, Ordering::Relaxed);
            ALLOC_BYTES.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            run(measured).await;
            COUNTING.store(false, Ordering::Relaxed);
            (
                ALLOCS.load(Ordering::Relaxed) as f64 / n as f64,
                ALLOC_BYTES.load(Ordering::Relaxed) as f64 / n as f64,
            )
        });
        println!(
            "dispatch/allocations_per_event_{chats}_chats: {allocs:.2} allocations, {bytes:.0} bytes"
        );
    }

    let mut group = c.benchmark_group("dispatch");
    group.measurement_time(Duration::from_secs(5));
    for chats in [1usize, 100] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("event_to_handler_20_routes_{chats}_chats"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let tx = tx.clone();
                let counter = counter.clone();
                async move {
                    let target = counter.n.load(Ordering::Relaxed) + iters;
                    let events: Vec<ServerEvent> = (0..iters)
                        .map(|i| message(i, &format!("chat{}", i as usize % chats), "hello"))
                        .collect();
                    let start = Instant::now();
                    for e in events {
                        let _ = tx.send(e).await;
                    }
                    while counter.n.load(Ordering::Relaxed) < target {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(1), counter.done.notified())
                                .await;
                    }
                    start.elapsed()
                }
            })
        });
    }
    group.finish();
    // Stop the conversations before the runtime goes away.
    drop(tx);
    let _ = rt.block_on(task);
}

criterion_group!(benches, bench);
criterion_main!(benches);
