//! The stored record, its on-disk encoding, and the clock used for expiry.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{StateError, StorageKey};
use crate::{Error, Result};

/// The dialog record kept per [`StorageKey`]: the current state, a free-form data map, and an
/// optional expiry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The user's state value (usually an enum) as JSON; `None` when the dialog has data but no
    /// state.
    pub state: Option<Value>,
    /// Data attached to the dialog (like aiogram's `FSMContext` data).
    pub data: Map<String, Value>,
    /// When the record stops existing, in Unix milliseconds; `None` = never.
    pub expires_at: Option<u64>,
}

impl StateRecord {
    /// Whether the record carries nothing worth keeping (no state and no data).
    pub fn is_empty(&self) -> bool {
        self.state.is_none() && self.data.is_empty()
    }

    /// Whether the record has expired at `now_ms` (Unix milliseconds).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// A [`StateRecord`] together with its revision: an opaque token that changes on every write,
/// used for compare-and-swap.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The record.
    pub record: StateRecord,
    /// The revision the backend stored with it.
    pub revision: u64,
}

/// The current encoding version, written into every record's header.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tcfsm";

// Revisions stay below 2^53 so that every backend (including Lua numbers in Redis) keeps them
// exact; random values (rather than a counter) make a recreated record never reuse the
// revision of a deleted one and let a writer recognise its own write after a lost reply.
const REVISION_LIMIT: u64 = 1 << 53;

/// A fresh revision, different from `previous`.
pub fn fresh_revision(previous: Option<u64>) -> u64 {
    loop {
        let r = rand::random_range(1..REVISION_LIMIT);
        if Some(r) != previous {
            return r;
        }
    }
}

#[derive(Serialize)]
struct BodyRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    state: &'a Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    data: &'a Map<String, Value>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    data: Map<String, Value>,
}

/// Encodes a record as `tcfsm <version> <revision> <expires_at|->\n<json body>`.
///
/// The header is plain text so the Redis backend can compare revisions in a Lua script
/// without parsing JSON, and so a future format change is detectable from the version.
pub fn encode(v: &Versioned) -> String {
    let exp = v
        .record
        .expires_at
        .map_or_else(|| "-".to_owned(), |e| e.to_string());
    let body = BodyRef {
        state: &v.record.state,
        data: &v.record.data,
    };
    // Serializing a tree of `serde_json::Value` cannot fail (keys are strings).
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
    format!("{MAGIC} {FORMAT_VERSION} {} {exp}\n{json}", v.revision)
}

/// Decodes what [`encode`] wrote; `key` names the record in errors.
pub fn decode(key: &StorageKey, raw: &str) -> Result<Versioned> {
    let corrupt = |reason: String| -> Error {
        StateError::Corrupt {
            key: key.to_string(),
            reason,
        }
        .into()
    };
    let (header, json) = raw
        .split_once('\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let mut parts = header.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(corrupt(format!("unknown header {header:?}")));
    }
    let version = parts.next().unwrap_or_default();
    if version != FORMAT_VERSION.to_string() {
        return Err(corrupt(format!(
            "unsupported format version {version:?} (this build reads {FORMAT_VERSION})"
        )));
    }
    let revision = parts
        .next()
        .and_then(|r| r.parse::<u64>().ok())
        .ok_or_else(|| corrupt(format!("bad revision in header {header:?}")))?;
    let expires_at = match parts.next() {
        Some("-") => None,
        Some(e) => Some(
            e.parse::<u64>()
                .map_err(|_| corrupt(format!("bad expiry {e:?}")))?,
        ),
        None => return Err(corrupt(format!("short header {header:?}"))),
    };
    let body: Body =
        serde_json::from_str(json).map_err(|e| corrupt(format!("bad JSON body: {e}")))?;
    Ok(Versioned {
        record: StateRecord {
            state: body.state,
            data: body.data,
            expires_at,
        },
        revision,
    })
}

/// A source of "now" for expiry decisions, injectable so tests need not sleep.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time in Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that only moves when told to; for tests of expiry.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `start_ms` (Unix milliseconds).
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_other_versions() {
        let key = StorageKey::new("bot", Some("chat"), Some("u@s"));
        let mut data = Map::new();
        data.insert("name".into(), Value::from("Ann"));
        let v = Versioned {
            record: StateRecord {
                state: Some(serde_json::json!({"Age": {"tries": 2}})),
                data,
                expires_at: Some(1_700_000_000_000),
            },
            revision: 42,
        };
        let raw = encode(&v);
        assert!(raw.starts_with("tcfsm 1 42 1700000000000\n"), "{raw}");
        assert_eq!(decode(&key, &raw).unwrap(), v);

        let future = raw.replacen("tcfsm 1", "tcfsm 2", 1);
        let err = decode(&key, &future).unwrap_err().to_string();
        assert!(
            err.contains("version") && err.contains("bot:chat:u@s"),
            "{err}"
        );
        assert!(decode(&key, "garbage").is_err());
    }
}
