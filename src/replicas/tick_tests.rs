//! The tick script's hand-over rules, against a real `redis-server` with hand-made group
//! states (the moments a replica joins or leaves, frozen).

use super::coordinator::TICK_SCRIPT;

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

const LEASE: u64 = 3_000;
/// Far in the future: the hand-made members never expire during a test.
const FOREVER: u64 = 99_999_999_999_999;

struct Group {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
    slots: usize,
    _server: redis_server::RedisServer,
}

/// What a tick returned: receiving members, share, held slots, server time, lossy takes.
type Reply = (i64, i64, Vec<usize>, u64, i64);

impl Group {
    async fn new(slots: usize) -> Self {
        let server = redis_server::RedisServer::shared_or_own();
        let client = redis::Client::open(server.url()).unwrap();
        Self {
            conn: client.get_multiplexed_async_connection().await.unwrap(),
            prefix: redis_server::unique_prefix(),
            slots,
            _server: server,
        }
    }

    /// A member that began receiving at `since` (server ms) and lives on.
    async fn member(&mut self, id: &str, since: u64) {
        let _: () = redis::pipe()
            .zadd(format!("{}members", self.prefix), id, FOREVER)
            .hset(format!("{}since", self.prefix), id, since)
            .query_async(&mut self.conn)
            .await
            .unwrap();
    }

    async fn set_slot(&mut self, slot: usize, value: &str) {
        let _: () = redis::cmd("SET")
            .arg(format!("{}slot:{slot}", self.prefix))
            .arg(value)
            .query_async(&mut self.conn)
            .await
            .unwrap();
    }

    async fn slot(&mut self, slot: usize) -> String {
        redis::cmd("GET")
            .arg(format!("{}slot:{slot}", self.prefix))
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    /// One tick of `me`, receiving, releasing nothing.
    async fn tick(&mut self, me: &str) -> Reply {
        let mut reply: Reply = redis::cmd("EVAL")
            .arg(TICK_SCRIPT)
            .arg(0)
            .arg(&self.prefix)
            .arg(me)
            .arg(LEASE)
            .arg(self.slots)
            .arg("run")
            .arg("1")
            .arg(0)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        reply.2.sort_unstable();
        reply
    }
}

fn owned(by: &str) -> String {
    format!("o|{by}|{FOREVER}")
}

/// The loss seen when a restarted replica joined: a slot released before the joiner began
/// receiving went to the joiner (once the release was a lease old), whose buffer lacks the
/// events the releaser left unhandled. It must go to a member that was receiving then.
#[tokio::test]
async fn a_released_slot_goes_only_to_a_member_that_was_receiving_at_the_release() {
    let mut g = Group::new(4).await;
    g.member("a", 1_000).await;
    g.member("b", 1_000).await;
    g.set_slot(0, &owned("a")).await;
    g.set_slot(1, &owned("a")).await;
    g.set_slot(2, &owned("b")).await;
    // Released by "c" (gone since) at 2 000, long more than a lease ago.
    g.set_slot(3, "r|2000|c").await;
    // "d" joins now: below its share, but without the slot's events.
    let (_, share, held, _, lossy) = g.tick("d").await;
    assert_eq!(share, 2);
    assert!(held.is_empty(), "the joiner took {held:?}");
    assert_eq!(lossy, 0);
    assert_eq!(g.slot(3).await, "r|2000|c");
    // "b" was receiving at the release and is below its share.
    let (_, _, held, _, lossy) = g.tick("b").await;
    assert_eq!(held, [2, 3]);
    assert_eq!(lossy, 0);
}

#[tokio::test]
async fn a_member_with_the_events_takes_a_released_slot_above_its_share() {
    let mut g = Group::new(5).await;
    g.member("a", 1_000).await;
    g.member("b", 1_000).await;
    for (slot, by) in [(0, "a"), (1, "a"), (2, "b"), (3, "b")] {
        g.set_slot(slot, &owned(by)).await;
    }
    g.set_slot(4, "r|2000|c").await;
    let (_, share, held, _, _) = g.tick("d").await;
    assert_eq!(share, 2);
    assert!(held.is_empty(), "the joiner took {held:?}");
    // Both that qualify are at their share (2 of 5 with three receiving): one goes above.
    let (_, _, held, _, lossy) = g.tick("a").await;
    assert_eq!(held, [0, 1, 4]);
    assert_eq!(lossy, 0);
}

#[tokio::test]
async fn the_releaser_takes_its_slot_back_only_when_nobody_else_has_the_events() {
    let mut g = Group::new(4).await;
    g.member("a", 1_000).await;
    g.member("b", 1_000).await;
    for (slot, by) in [(0, "a"), (1, "a"), (2, "b"), (3, "b")] {
        g.set_slot(slot, &owned(by)).await;
    }
    g.set_slot(0, "r|2000|a").await;
    g.set_slot(2, "r|2000|b").await;
    let (_, share, held, _, _) = g.tick("d").await;
    assert_eq!(share, 2);
    assert!(held.is_empty());
    // "a" is below its share (1 of 2): it takes the first released slot back, then "b"'s
    // is above its share and "b" qualifies: left to "b".
    let (_, _, held, _, _) = g.tick("a").await;
    assert_eq!(held, [0, 1]);
    let (_, _, held, _, _) = g.tick("b").await;
    assert_eq!(held, [2, 3]);
}

#[tokio::test]
async fn with_nobody_having_the_events_a_released_slot_is_taken_and_counted_lost() {
    let mut g = Group::new(2).await;
    g.set_slot(0, "r|2000|c").await;
    let (_, _, held, _, lossy) = g.tick("d").await;
    assert_eq!(held, [0, 1]);
    assert_eq!(
        lossy, 1,
        "slot 0's unfinished events are lost; slot 1 was never owned"
    );
}

#[tokio::test]
async fn a_dead_owners_slot_goes_to_a_member_that_was_receiving_before_its_last_renewal() {
    let mut g = Group::new(2).await;
    g.member("a", 1_000).await;
    // "x" renewed at 4 000 (lease end 7 000) and died.
    g.set_slot(0, "o|x|7000").await;
    g.set_slot(1, &owned("a")).await;
    let (_, _, held, _, _) = g.tick("d").await;
    assert!(held.is_empty(), "the joiner took {held:?}");
    let (_, _, held, _, lossy) = g.tick("a").await;
    assert_eq!(held, [0, 1]);
    assert_eq!(lossy, 0);
}
