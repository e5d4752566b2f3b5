//! Dialog state get/update per storage backend, and the memory an idle dialog costs.
//!
//! `cargo bench --features sqlite,redis --bench fsm`; the Redis group runs only when
//! `TRUECONF_TEST_REDIS_URL` is set.

use std::sync::Arc;

use criterion::Criterion;
use serde::{Deserialize, Serialize};
use trueconf_bot::fsm::{Dialogue, KeyStrategy, MemoryStorage, Storage, StorageKey};

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Form {
    Name,
    Age { name: String },
}

fn key(i: usize) -> StorageKey {
    KeyStrategy::UserInChat
        .key(
            "bot@video.example.com",
            &format!("{i:08x}-5c1e-4b0d-9a57-3e0d4b1f7a2c"),
            Some(&format!("user{i}@video.example.com")),
        )
        .expect("a user is given")
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// RSS growth per idle dialog (state only) held in a `MemoryStorage`.
fn memory_per_idle_dialog(rt: &tokio::runtime::Runtime) {
    for n in [10_000usize, 100_000] {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let before = rss_bytes();
        rt.block_on(async {
            for i in 0..n {
                Dialogue::<Form>::new(storage.clone(), key(i))
                    .update(Form::Age { name: "Ann".into() })
                    .await
                    .expect("memory storage does not fail");
            }
        });
        let after = rss_bytes();
        println!(
            "MemoryStorage: {n} idle dialogs, RSS +{} KiB = {} bytes per dialog",
            (after.saturating_sub(before)) / 1024,
            after.saturating_sub(before) / n
        );
        drop(storage);
    }
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    storage: Arc<dyn Storage>,
) {
    let mut group = c.benchmark_group(format!("fsm/{name}"));
    let d = Dialogue::<Form>::new(storage.clone(), key(1));
    rt.block_on(d.update(Form::Name)).expect("seed the dialog");
    group.bench_function("get", |b| {
        b.to_async(rt)
            .iter(|| async { d.get().await.expect("get") })
    });
    group.bench_function("update", |b| {
        b.to_async(rt).iter(|| async {
            d.update(Form::Age { name: "Ann".into() })
                .await
                .expect("update")
        })
    });
    group.bench_function("set_data", |b| {
        b.to_async(rt)
            .iter(|| async { d.set_data("n", 1).await.expect("set_data") })
    });
    group.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    memory_per_idle_dialog(&rt);

    let mut c = Criterion::default().configure_from_args();
    bench_backend(&mut c, &rt, "memory", Arc::new(MemoryStorage::new()));

    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = rt
            .block_on(trueconf_bot::fsm::SqliteStorage::open(
                dir.path().join("bench.db"),
            ))
            .expect("open sqlite");
        bench_backend(&mut c, &rt, "sqlite", Arc::new(storage));
    }

    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("TRUECONF_TEST_REDIS_URL") {
        let storage = rt
            .block_on(trueconf_bot::fsm::RedisStorage::connect_with_prefix(
                &url,
                "bench:fsm:",
            ))
            .expect("connect to redis");
        bench_backend(&mut c, &rt, "redis", Arc::new(storage));
    }

    c.final_summary();
}
