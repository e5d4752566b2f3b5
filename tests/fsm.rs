//! One behavioural suite for dialog state, run against every storage backend.
//!
//! Run: `cargo test --features sqlite,redis --test fsm`. The Redis tests use
//! `TRUECONF_TEST_REDIS_URL` when set; otherwise they start their own `redis-server`. With
//! neither, they pass as skipped and say so on stderr (uncaptured); with
//! `TRUECONF_TEST_REQUIRE_REDIS=1` (CI sets it) a skip is a failure instead.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use trueconf_bot::Error;
use trueconf_bot::fsm::{
    Clock, Dialogue, KeyStrategy, ManualClock, MemoryStorage, StateError, StateFilter, StateRecord,
    Storage, StorageKey, SystemClock,
};

/// A storage under test plus how time passes for it.
struct Backend {
    storage: Arc<dyn Storage>,
    /// `None`: the backend expires by real time (Redis), so tests sleep.
    clock: Option<ManualClock>,
    _guard: Box<dyn Send>,
}

impl Backend {
    async fn pass(&self, d: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }
}

fn manual_clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

async fn memory() -> Option<Backend> {
    let clock = manual_clock();
    Some(Backend {
        storage: Arc::new(MemoryStorage::with_clock(Arc::new(clock.clone()))),
        clock: Some(clock),
        _guard: Box::new(()),
    })
}

#[cfg(feature = "sqlite")]
async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let storage = trueconf_bot::fsm::SqliteStorage::open_with_clock(
        dir.path().join("state.db"),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    Some(Backend {
        storage: Arc::new(storage),
        clock: Some(clock),
        _guard: Box::new(dir),
    })
}

#[cfg(feature = "redis")]
async fn redis() -> Option<Backend> {
    let server = redis_server::RedisServer::shared_or_own()?;
    let storage = trueconf_bot::fsm::RedisStorage::connect_with_prefix(
        server.url(),
        redis_server::unique_prefix(),
    )
    .await
    .unwrap();
    Some(Backend {
        storage: Arc::new(storage),
        clock: None,
        _guard: Box::new(server),
    })
}

fn key(chat: &str, user: &str) -> StorageKey {
    KeyStrategy::UserInChat
        .key("bot@srv", chat, Some(user))
        .unwrap()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Form {
    Name,
    Age { name: String },
    Done,
}

fn record(state: Value) -> StateRecord {
    StateRecord {
        state: Some(state),
        ..StateRecord::default()
    }
}

async fn set_get_remove(b: Backend) {
    let s = &b.storage;
    let k = key("c1", "ann@srv");
    assert_eq!(s.get(&k).await.unwrap(), None);

    let rev1 = s.set(&k, record(json!("Name"))).await.unwrap();
    let got = s.get(&k).await.unwrap().unwrap();
    assert_eq!(got.record, record(json!("Name")));
    assert_eq!(got.revision, rev1);

    let rev2 = s
        .set(&k, record(json!({"Age": {"name": "Ann"}})))
        .await
        .unwrap();
    assert_ne!(rev1, rev2, "every write gets a new revision");
    assert_eq!(
        s.get(&k).await.unwrap().unwrap().record.state,
        Some(json!({"Age": {"name": "Ann"}}))
    );

    // Compare-and-swap only replaces what the caller last saw.
    let stale = trueconf_bot::fsm::Versioned {
        record: record(json!("Done")),
        revision: 7,
    };
    assert!(
        !s.compare_and_swap(&k, Some(rev1), Some(stale.clone()))
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_swap(&k, None, Some(stale.clone()))
            .await
            .unwrap()
    );
    assert!(
        s.compare_and_swap(&k, Some(rev2), Some(stale))
            .await
            .unwrap()
    );
    let got = s.get(&k).await.unwrap().unwrap();
    assert_eq!((got.revision, got.record.state), (7, Some(json!("Done"))));

    s.remove(&k).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), None);
    s.remove(&k).await.unwrap(); // removing nothing is fine

    // A typed dialog over the same storage.
    let d = Dialogue::<Form>::new(s.clone(), k.clone());
    assert_eq!(d.get().await.unwrap(), None);
    d.update(Form::Name).await.unwrap();
    d.update(Form::Age { name: "Ann".into() }).await.unwrap();
    assert_eq!(
        d.get().await.unwrap(),
        Some(Form::Age { name: "Ann".into() })
    );
    let next = d
        .update_with(|s| match s {
            Some(Form::Age { .. }) => Some(Form::Done),
            other => other,
        })
        .await
        .unwrap();
    assert_eq!(next, Some(Form::Done));
    assert_eq!(d.get().await.unwrap(), Some(Form::Done));
    d.exit().await.unwrap();
    assert_eq!(d.get().await.unwrap(), None);
    assert_eq!(s.get(&k).await.unwrap(), None);
}

async fn ttl_expiry(b: Backend) {
    let k = key("c-ttl", "ann@srv");
    let d = Dialogue::<Form>::new(b.storage.clone(), k.clone());
    d.update_with_ttl(Form::Name, Duration::from_millis(1500))
        .await
        .unwrap();
    d.set_data("name", "Ann").await.unwrap();
    assert_eq!(d.get().await.unwrap(), Some(Form::Name));
    let rec = b.storage.get(&k).await.unwrap().unwrap().record;
    assert!(rec.expires_at.is_some(), "data writes keep the expiry");

    b.pass(Duration::from_millis(2000)).await;
    assert_eq!(d.get().await.unwrap(), None, "state outlived its TTL");
    assert_eq!(d.get_data::<String>("name").await.unwrap(), None);
    assert_eq!(b.storage.get(&k).await.unwrap(), None);
    // An expired record counts as absent for compare-and-swap too.
    let fresh = trueconf_bot::fsm::Versioned {
        record: record(json!("Done")),
        revision: 11,
    };
    assert!(
        b.storage
            .compare_and_swap(&k, None, Some(fresh))
            .await
            .unwrap()
    );
    assert_eq!(d.get().await.unwrap(), Some(Form::Done));

    // A plain update clears a previous TTL.
    d.update_with_ttl(Form::Name, Duration::from_millis(1500))
        .await
        .unwrap();
    d.update(Form::Age { name: "Ann".into() }).await.unwrap();
    b.pass(Duration::from_millis(2000)).await;
    assert_eq!(
        d.get().await.unwrap(),
        Some(Form::Age { name: "Ann".into() })
    );
}

async fn data_map_ops(b: Backend) {
    let d = Dialogue::<Form>::new(b.storage.clone(), key("c-data", "ann@srv"));
    assert!(d.data().await.unwrap().is_empty());
    assert_eq!(d.get_data::<String>("name").await.unwrap(), None);

    // Data without a state is kept (aiogram allows it).
    d.set_data("name", "Ann").await.unwrap();
    d.set_data("age", 31).await.unwrap();
    assert_eq!(d.get().await.unwrap(), None);
    assert_eq!(
        d.get_data::<String>("name").await.unwrap().as_deref(),
        Some("Ann")
    );
    assert_eq!(d.get_data::<u32>("age").await.unwrap(), Some(31));

    let wrong = d.get_data::<u32>("name").await.unwrap_err();
    match StateError::find(&wrong) {
        Some(StateError::Undecodable { key, reason }) => {
            assert_eq!(key, "bot@srv:c-data:ann@srv");
            assert!(reason.contains("`name`"), "{reason}");
        }
        other => panic!("expected Undecodable, got {other:?} from {wrong}"),
    }

    d.update(Form::Name).await.unwrap();
    let mut more = Map::new();
    more.insert("age".into(), json!(32));
    more.insert("city".into(), json!("Omsk"));
    let merged = d.update_data(more).await.unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({"name": "Ann", "age": 32, "city": "Omsk"})
    );
    assert_eq!(
        d.get().await.unwrap(),
        Some(Form::Name),
        "data ops keep the state"
    );

    assert_eq!(d.remove_data("city").await.unwrap(), Some(json!("Omsk")));
    assert_eq!(d.remove_data("city").await.unwrap(), None);
    d.clear_data().await.unwrap();
    assert!(d.data().await.unwrap().is_empty());
    assert_eq!(
        d.get().await.unwrap(),
        Some(Form::Name),
        "clear_data keeps the state"
    );

    // State changes keep the data.
    d.set_data("name", "Bob").await.unwrap();
    d.update(Form::Done).await.unwrap();
    assert_eq!(
        d.get_data::<String>("name").await.unwrap().as_deref(),
        Some("Bob")
    );

    d.reset().await.unwrap();
    assert!(d.data().await.unwrap().is_empty());
    assert_eq!(d.record().await.unwrap(), None);
}

async fn undecodable_state_is_an_error_and_reset_recovers(b: Backend) {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum OldForm {
        Phone { digits: String },
    }
    let k = key("c-old", "ann@srv");
    let old = Dialogue::<OldForm>::new(b.storage.clone(), k.clone());
    old.update(OldForm::Phone {
        digits: "123".into(),
    })
    .await
    .unwrap();
    old.set_data("keep", true).await.unwrap();

    // The bot was redeployed with a new state enum.
    let d = Dialogue::<Form>::new(b.storage.clone(), k.clone());
    let err = d.get().await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(err.to_string().contains("bot@srv:c-old:ann@srv"), "{err}");
    match StateError::find(&err) {
        Some(StateError::Undecodable { key, reason }) => {
            assert_eq!(key, &k.to_string());
            assert!(reason.contains("Phone"), "serde's reason is kept: {reason}");
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
    let filter = StateFilter::new(|s: &Form| matches!(s, Form::Name));
    assert!(filter.check(&d).await.is_err(), "a filter reports it too");
    assert!(
        d.update_with(|s| s).await.is_err(),
        "a transition cannot start from an unreadable state"
    );

    // Overwriting the state works without reading the old one; reset clears everything.
    d.update(Form::Name).await.unwrap();
    assert_eq!(d.get().await.unwrap(), Some(Form::Name));
    old.update(OldForm::Phone { digits: "9".into() })
        .await
        .unwrap();
    d.reset().await.unwrap();
    assert_eq!(d.get().await.unwrap(), None);
    d.update(Form::Done).await.unwrap();
    assert_eq!(d.get().await.unwrap(), Some(Form::Done));
}

async fn concurrent_updates_are_atomic(b: Backend) {
    const N: u64 = 40;
    let k = key("c-race", "ann@srv");
    let counter = Dialogue::<u64>::new(b.storage.clone(), k.clone());
    let mut tasks = Vec::new();
    for _ in 0..N {
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            counter
                .update_with(|n| Some(n.unwrap_or(0) + 1))
                .await
                .unwrap();
        }));
        // Racing on the same record through the untyped closure API.
        let storage = b.storage.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            storage
                .update(&k, |rec| {
                    let mut rec = rec.unwrap_or_default();
                    let n = rec.data.get("hits").and_then(Value::as_u64).unwrap_or(0);
                    rec.data.insert("hits".into(), json!(n + 1));
                    Ok(Some(rec))
                })
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counter.get().await.unwrap(), Some(N));
    assert_eq!(counter.get_data::<u64>("hits").await.unwrap(), Some(N));
}

async fn key_strategies_address_the_right_dialogs(b: Backend) {
    let per_user = |chat, user| {
        KeyStrategy::UserInChat
            .key("bot@srv", chat, Some(user))
            .unwrap()
    };
    let per_chat = |chat, user| KeyStrategy::Chat.key("bot@srv", chat, Some(user)).unwrap();
    let global = |chat, user| {
        KeyStrategy::GlobalUser
            .key("bot@srv", chat, Some(user))
            .unwrap()
    };

    assert_eq!(per_user("c1", "ann@srv").to_string(), "bot@srv:c1:ann@srv");
    assert_eq!(per_chat("c1", "ann@srv").to_string(), "bot@srv:c1:*");
    assert_eq!(global("c1", "ann@srv").to_string(), "bot@srv:*:ann@srv");
    assert_eq!(KeyStrategy::UserInChat.key("bot@srv", "c1", None), None);
    assert_eq!(KeyStrategy::GlobalUser.key("bot@srv", "c1", None), None);
    assert_eq!(
        KeyStrategy::Chat.key("bot@srv", "c1", None),
        Some(per_chat("c1", "x"))
    );
    // Separators inside ids cannot make two keys collide.
    assert_ne!(
        StorageKey::new("b", Some("a:b"), Some("c")).encode(),
        StorageKey::new("b", Some("a"), Some("b:c")).encode()
    );
    assert_ne!(
        StorageKey::new("b", Some("*"), None).encode(),
        StorageKey::new("b", None, None).encode()
    );

    let dialog = |k: StorageKey| Dialogue::<Form>::new(b.storage.clone(), k);
    let s = "c-keys";
    dialog(per_user(s, "ann@srv"))
        .update(Form::Name)
        .await
        .unwrap();
    assert_eq!(
        dialog(per_user(s, "bob@srv")).get().await.unwrap(),
        None,
        "users in one chat are apart"
    );
    assert_eq!(
        dialog(per_user("c-other", "ann@srv")).get().await.unwrap(),
        None
    );

    dialog(per_chat(s, "ann@srv"))
        .update(Form::Done)
        .await
        .unwrap();
    assert_eq!(
        dialog(per_chat(s, "bob@srv")).get().await.unwrap(),
        Some(Form::Done),
        "a chat dialog is shared"
    );
    assert_eq!(
        dialog(per_user(s, "ann@srv")).get().await.unwrap(),
        Some(Form::Name)
    );

    dialog(global(s, "ann@srv"))
        .update(Form::Age { name: "Ann".into() })
        .await
        .unwrap();
    assert_eq!(
        dialog(global("c-elsewhere", "ann@srv"))
            .get()
            .await
            .unwrap(),
        Some(Form::Age { name: "Ann".into() }),
        "a global dialog follows the user"
    );
    assert_eq!(dialog(global(s, "bob@srv")).get().await.unwrap(), None);
}

async fn state_filters(b: Backend) {
    let d = Dialogue::<Form>::new(b.storage.clone(), key("c-filter", "ann@srv"));
    let age = StateFilter::new(|s: &Form| matches!(s, Form::Age { .. }));
    let none = StateFilter::<Form>::none();
    let any = StateFilter::<Form>::any();
    let name_or_age = StateFilter::equals(Form::Name).or(age.clone());
    assert!(none.check(&d).await.unwrap() && !any.check(&d).await.unwrap());
    assert!(!age.check(&d).await.unwrap());
    d.update(Form::Age { name: "A".into() }).await.unwrap();
    assert!(age.check(&d).await.unwrap() && any.check(&d).await.unwrap());
    assert!(!none.check(&d).await.unwrap());
    assert!(name_or_age.check(&d).await.unwrap());
    d.update(Form::Done).await.unwrap();
    assert!(!name_or_age.check(&d).await.unwrap());
    assert!((!name_or_age).check(&d).await.unwrap());
}

/// Runs every behavioural test against one backend, each as its own `#[test]`.
macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    // None: the backend is not available here (skipped, and said so).
                    if let Some(backend) = super::$backend().await {
                        super::$test(backend).await;
                    }
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($test:ident),* $(,)?) => {
        suite!(memory: $($test),*);
        #[cfg(feature = "sqlite")]
        suite!(sqlite: $($test),*);
        #[cfg(feature = "redis")]
        suite!(redis: $($test),*);
    };
}

all_backends!(
    set_get_remove,
    ttl_expiry,
    data_map_ops,
    undecodable_state_is_an_error_and_reset_recovers,
    concurrent_updates_are_atomic,
    key_strategies_address_the_right_dialogs,
    state_filters,
);

#[tokio::test]
async fn memory_purges_expired_records() {
    let clock = manual_clock();
    let storage = MemoryStorage::with_clock(Arc::new(clock.clone()));
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    for i in 0..5 {
        let d = Dialogue::<Form>::new(shared.clone(), key("c", &format!("u{i}")));
        if i < 3 {
            d.update_with_ttl(Form::Name, Duration::from_secs(1))
                .await
                .unwrap();
        } else {
            d.update(Form::Name).await.unwrap();
        }
    }
    clock.advance(Duration::from_secs(2));
    assert_eq!(storage.purge_expired(), 3);
    assert_eq!(storage.len(), 2);
}

#[cfg(feature = "sqlite")]
mod sqlite_only {
    use super::*;
    use trueconf_bot::fsm::SqliteStorage;

    #[tokio::test]
    async fn dialog_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let k = key("c-restart", "ann@srv");
        {
            let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).await.unwrap());
            let d = Dialogue::<Form>::new(storage, k.clone());
            d.update(Form::Name).await.unwrap();
            d.set_data("name", "Ann").await.unwrap();
            d.update(Form::Age { name: "Ann".into() }).await.unwrap();
        }
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).await.unwrap());
        let d = Dialogue::<Form>::new(storage, k);
        assert_eq!(
            d.get().await.unwrap(),
            Some(Form::Age { name: "Ann".into() })
        );
        assert_eq!(
            d.get_data::<String>("name").await.unwrap().as_deref(),
            Some("Ann")
        );
        d.update(Form::Done).await.unwrap();
        assert_eq!(d.get().await.unwrap(), Some(Form::Done));
    }

    #[tokio::test]
    async fn uses_wal_and_purges_expired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let clock = manual_clock();
        let storage = SqliteStorage::open_with_clock(&path, Arc::new(clock.clone()))
            .await
            .unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        let mode: String = raw
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");

        let shared: Arc<dyn Storage> = Arc::new(storage);
        for i in 0..4 {
            Dialogue::<Form>::new(shared.clone(), key("c", &format!("u{i}")))
                .update_with_ttl(Form::Name, Duration::from_secs(i + 1))
                .await
                .unwrap();
        }
        clock.advance(Duration::from_millis(2500));
        let storage = SqliteStorage::open_with_clock(&path, Arc::new(clock.clone()))
            .await
            .unwrap();
        assert_eq!(storage.purge_expired().await.unwrap(), 2);
        let rows: i64 = raw
            .query_row("SELECT count(*) FROM fsm_state", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    #[tokio::test]
    async fn corrupt_row_is_an_error_naming_the_key_and_reset_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).await.unwrap());
        let k = key("c-bad", "ann@srv");
        let d = Dialogue::<Form>::new(storage.clone(), k.clone());
        d.update(Form::Name).await.unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE fsm_state SET record = 'tcfsm 9 1 -\n{}' WHERE key = ?1",
                [k.encode()],
            )
            .unwrap();
        let err = d.get().await.unwrap_err();
        assert!(
            matches!(StateError::find(&err), Some(StateError::Corrupt { key, .. }) if *key == k.to_string()),
            "{err:?}"
        );
        assert!(err.to_string().contains("version"), "{err}");
        d.reset().await.unwrap();
        assert_eq!(d.get().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_briefly_locked_database_delays_writes_without_losing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).await.unwrap());
        let locker = rusqlite::Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            locker.execute_batch("COMMIT").unwrap();
        });
        let d = Dialogue::<Form>::new(storage, key("c-lock", "ann@srv"));
        d.update(Form::Done).await.unwrap();
        release.join().unwrap();
        assert_eq!(d.get().await.unwrap(), Some(Form::Done));
    }

    #[tokio::test]
    async fn a_database_locked_for_long_is_a_storage_error_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let storage = SqliteStorage::open(&path).await.unwrap();
        storage
            .set_busy_timeout(Duration::from_millis(20))
            .await
            .unwrap();
        let k = key("c-locked", "ann@srv");
        let d = Dialogue::<Form>::new(Arc::new(storage), k.clone());
        d.update(Form::Name).await.unwrap();
        let locker = rusqlite::Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let err = d.update(Form::Done).await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&k.to_string()) && text.contains("locked"),
            "{text}"
        );
        locker.execute_batch("COMMIT").unwrap();
        d.update(Form::Done).await.unwrap();
        assert_eq!(d.get().await.unwrap(), Some(Form::Done));
    }

    #[tokio::test]
    async fn an_unopenable_file_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStorage::open(dir.path().join("missing-dir").join("bot.db"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}

#[cfg(feature = "redis")]
mod redis_only {
    use super::redis_server::{RedisServer, unique_prefix};
    use super::*;
    use trueconf_bot::fsm::RedisStorage;

    #[tokio::test]
    async fn dialog_survives_restart() {
        let Some(server) = RedisServer::shared_or_own() else {
            return;
        };
        let prefix = unique_prefix();
        let k = key("c-restart", "ann@srv");
        {
            let storage: Arc<dyn Storage> = Arc::new(
                RedisStorage::connect_with_prefix(server.url(), prefix.clone())
                    .await
                    .unwrap(),
            );
            let d = Dialogue::<Form>::new(storage, k.clone());
            d.update(Form::Name).await.unwrap();
            d.set_data("name", "Ann").await.unwrap();
            d.update(Form::Age { name: "Ann".into() }).await.unwrap();
        }
        let storage: Arc<dyn Storage> = Arc::new(
            RedisStorage::connect_with_prefix(server.url(), prefix)
                .await
                .unwrap(),
        );
        let d = Dialogue::<Form>::new(storage, k);
        assert_eq!(
            d.get().await.unwrap(),
            Some(Form::Age { name: "Ann".into() })
        );
        assert_eq!(
            d.get_data::<String>("name").await.unwrap().as_deref(),
            Some("Ann")
        );
        d.update(Form::Done).await.unwrap();
        assert_eq!(d.get().await.unwrap(), Some(Form::Done));
    }

    #[tokio::test]
    async fn uses_the_prefix_and_native_ttl() {
        let Some(server) = RedisServer::shared_or_own() else {
            return;
        };
        let prefix = unique_prefix();
        let storage = RedisStorage::connect_with_prefix(server.url(), prefix.clone())
            .await
            .unwrap();
        let k = key("c-native", "ann@srv");
        let d = Dialogue::<Form>::new(Arc::new(storage), k.clone());
        d.update_with_ttl(Form::Name, Duration::from_secs(60))
            .await
            .unwrap();
        let client = ::redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{prefix}{k}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            (50_000..=60_000).contains(&pttl),
            "Redis holds the TTL: {pttl}"
        );
        d.update(Form::Done).await.unwrap();
        let pttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{prefix}{k}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(pttl, -1, "a plain update persists the key");
    }

    #[tokio::test]
    async fn an_outage_is_a_storage_error_naming_the_key() {
        // Needs a server of its own to stop, whatever TRUECONF_TEST_REDIS_URL says.
        let Some(mut server) = RedisServer::own() else {
            return;
        };
        let storage: Arc<dyn Storage> =
            Arc::new(RedisStorage::connect(server.url()).await.unwrap());
        let k = key("c-down", "ann@srv");
        let d = Dialogue::<Form>::new(storage, k.clone());
        d.update(Form::Name).await.unwrap();
        server.stop();
        let err = d.get().await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        assert!(err.to_string().contains(&k.to_string()), "{err}");
        let err = d.update(Form::Done).await.unwrap_err();
        assert!(err.to_string().contains(&k.to_string()), "{err}");
    }
}

#[cfg(feature = "redis")]
mod redis_server {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    pub fn unique_prefix() -> String {
        format!("test:{:016x}:", rand::random::<u64>())
    }

    /// Set (to anything but empty or `0`) to make a skipped Redis test fail: CI sets it, so
    /// CI always runs them.
    const REQUIRE: &str = "TRUECONF_TEST_REQUIRE_REDIS";

    /// A Redis server for one test: `TRUECONF_TEST_REDIS_URL`, or a `redis-server` child process
    /// killed on drop.
    pub struct RedisServer {
        url: String,
        child: Option<Child>,
    }

    /// Reports a Redis test that cannot run here: skipped (it passes) with a line on stderr
    /// that the test harness does not capture, or a failure under [`REQUIRE`].
    fn skip(why: &str) {
        static EXPLAINED: std::sync::Once = std::sync::Once::new();
        let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let how = "install redis-server (apt-get install -y redis-server) or set \
                   TRUECONF_TEST_REDIS_URL=redis://HOST:PORT/ to run it";
        if required {
            panic!("Redis test {test} cannot run: {why}; {how} ({REQUIRE} is set, so no skip)");
        }
        // Straight to the process's stderr: `eprintln!` would be captured and hidden for a
        // passing test. The reason once, then one short line per skipped test.
        let mut lines = String::new();
        EXPLAINED.call_once(|| {
            lines = format!("\nSKIPPING the Redis storage tests: {why}; {how}.");
        });
        lines.push_str(&format!("\nSKIPPED {test} (no Redis)\n"));
        let _ = std::io::stderr().write_all(lines.as_bytes());
    }

    impl RedisServer {
        /// The server at `TRUECONF_TEST_REDIS_URL`, else one of our own; `None` (after saying
        /// so) when neither is possible.
        pub fn shared_or_own() -> Option<Self> {
            match std::env::var("TRUECONF_TEST_REDIS_URL") {
                Ok(url) if !url.is_empty() => Some(Self { url, child: None }),
                _ => Self::own(),
            }
        }

        /// A `redis-server` child process; `None` (after saying so) without one on PATH.
        pub fn own() -> Option<Self> {
            if !on_path("redis-server") {
                skip(
                    "no TRUECONF_TEST_REDIS_URL and no `redis-server` on PATH \
                     (this test starts its own server)",
                );
                return None;
            }
            for _ in 0..5 {
                if let Some(server) = Self::try_start() {
                    return Some(server);
                }
            }
            panic!("could not start a redis-server for the tests");
        }

        fn try_start() -> Option<Self> {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "the Redis storage tests need `redis-server` ({e}); install it \
                         (apt-get install -y redis-server) or set TRUECONF_TEST_REDIS_URL"
                    )
                });
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return None; // lost the port to someone else; try another
                }
                // Another test may have taken the port in between: make sure the server that
                // answers is ours.
                if server_pid(port) == Some(child.id()) {
                    return Some(Self {
                        url: format!("redis://127.0.0.1:{port}/"),
                        child: Some(child),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            None
        }

        pub fn url(&self) -> &str {
            &self.url
        }

        pub fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn on_path(program: &str) -> bool {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    }

    fn server_pid(port: u16) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(b"INFO server\r\n").ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(rest) = text.split("process_id:").nth(1)
                && let Some((pid, _)) = rest.split_once("\r\n")
            {
                return pid.trim().parse().ok();
            }
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
