//! Client-side rate limiting: token buckets, one global and one per chat.

use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// A rate: `count` requests per `per`, with bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed per period (also the burst size).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

/// Client-side throttle settings for [`BotBuilder::throttle`](crate::bot::BotBuilder::throttle).
/// Requests over the limit wait; nothing is dropped.
///
/// ```
/// use std::time::Duration;
/// use trueconf_bot::bot::ThrottleConfig;
/// let t = ThrottleConfig::new()
///     .global(30, Duration::from_secs(1))
///     .per_chat(1, Duration::from_secs(1));
/// # let _ = t;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThrottleConfig {
    global: Option<Rate>,
    per_chat: Option<Rate>,
}

impl ThrottleConfig {
    /// No limits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `count` requests per `per` in total.
    pub fn global(mut self, count: u32, per: Duration) -> Self {
        self.global = Some(Rate { count, per });
        self
    }

    /// At most `count` requests per `per` to any one chat (requests that name a chat).
    pub fn per_chat(mut self, count: u32, per: Duration) -> Self {
        self.per_chat = Some(Rate { count, per });
        self
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: Rate) -> Self {
        Self {
            tokens: f64::from(rate.count.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes one token and returns how long the caller must wait for it.
    fn reserve(&mut self, rate: Rate) -> Duration {
        let cap = f64::from(rate.count.max(1));
        let per_sec = cap / rate.per.as_secs_f64().max(1e-9);
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * per_sec).min(cap);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / per_sec)
        }
    }
}

pub(crate) struct Throttle {
    config: ThrottleConfig,
    global: Mutex<Option<Bucket>>,
    chats: DashMap<String, Bucket>,
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig) -> Option<Self> {
        if config.global.is_none() && config.per_chat.is_none() {
            return None;
        }
        Some(Self {
            global: Mutex::new(config.global.map(Bucket::full)),
            config,
            chats: DashMap::new(),
        })
    }

    pub(crate) async fn acquire(&self, chat: Option<&str>) {
        let mut wait = Duration::ZERO;
        if let Some(rate) = self.config.global {
            let mut g = crate::sync::lock(&self.global);
            if let Some(b) = g.as_mut() {
                wait = b.reserve(rate);
            }
        }
        if let (Some(rate), Some(chat)) = (self.config.per_chat, chat) {
            if self.chats.len() > 10_000 {
                // Forget idle chats: a full bucket carries no information.
                let cap = f64::from(rate.count.max(1));
                self.chats.retain(|_, b| {
                    b.tokens + b.last.elapsed().as_secs_f64() * cap / rate.per.as_secs_f64() < cap
                });
            }
            let w = self
                .chats
                .entry(chat.to_owned())
                .or_insert_with(|| Bucket::full(rate))
                .reserve(rate);
            wait = wait.max(w);
        }
        if !wait.is_zero() {
            tracing::trace!(?wait, chat, "throttled");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn global_bucket_spaces_requests_after_the_burst() {
        let t = Throttle::new(ThrottleConfig::new().global(2, Duration::from_secs(1)))
            .expect("configured");
        let start = Instant::now();
        for _ in 0..4 {
            t.acquire(None).await;
        }
        // Two go at once, the next two wait half a second each.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(990), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn chats_are_limited_independently() {
        let t = Throttle::new(ThrottleConfig::new().per_chat(1, Duration::from_secs(1)))
            .expect("configured");
        let start = Instant::now();
        t.acquire(Some("a")).await;
        t.acquire(Some("b")).await;
        assert!(start.elapsed() < Duration::from_millis(10));
        t.acquire(Some("a")).await;
        assert!(start.elapsed() >= Duration::from_millis(990));
    }
}
