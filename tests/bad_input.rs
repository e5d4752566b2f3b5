//! Bad input from the network and from users: malformed and hostile frames over a real socket,
//! frames over the size limit, invalid UTF-8, deep nesting, oversized metadata, property tests
//! of the decoders on random bytes and mutated fixtures, and markup injection through the
//! `format` helpers. Nothing may panic, hang, or keep memory; the connection must recover.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use trueconf_bot::bot::{Bot, ReconnectPolicy};
use trueconf_bot::connection::ConnectionState;
use trueconf_bot::format::{self, html, markdown};
use trueconf_bot::protocol::{Frame, RawValue};
use trueconf_bot::testkit::{Sim, SimConfig};
use trueconf_bot::types::{Event, ParseMode};

const LIMIT: usize = 1 << 20;

/// Everything logged by any test of this binary (the runtime logs from its own tasks, so the
/// subscriber must be global).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Writer(buf))
            .try_init();
        buf
    })
}

struct Writer(&'static Mutex<Vec<u8>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bot_for(sim: &Sim) -> Bot {
    Bot::builder("127.0.0.1")
        .https(false)
        .port(sim.addr().port())
        .token(sim.bot_token())
        // A refused over-limit event must not come back on every reconnect.
        .receive_unread(false)
        .max_message_size(LIMIT, LIMIT)
        .request_timeout(Duration::from_secs(3))
        .reconnect(
            ReconnectPolicy::default()
                .min_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200))
                .max_retries(None),
        )
        .build()
        .unwrap()
}

/// Every event the bot delivered: method and whether its payload decoded.
type Seen = Arc<Mutex<Vec<(String, bool, String)>>>;

async fn start(sim: &Sim) -> (Bot, Seen, tokio::task::JoinHandle<()>) {
    let bot = bot_for(sim);
    let mut events = bot.events().unwrap();
    let seen: Seen = Default::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let decoded = Event::decode(&ev.method, &ev.payload);
            let text = match &decoded {
                Ok(Event::Message(m)) => m.text().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            s.lock()
                .unwrap()
                .push((ev.method.clone(), decoded.is_ok(), text));
            ev.ack.ack();
        }
    });
    bot.start().await.unwrap();
    (bot, seen, task)
}

/// A user message reaches the bot: the connection (possibly a new one) works.
async fn probe(sim: &Sim, seen: &Seen, chat: &str, text: &str) {
    sim.user("prober").send_text(chat, text).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.lock().unwrap().iter().any(|(_, _, t)| t == text) {
        assert!(Instant::now() < deadline, "`{text}` never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Frames that must be dropped (or delivered and fail typed decoding) without costing the
/// socket.
fn survivable() -> Vec<(&'static str, String)> {
    let event = |payload: &str| {
        format!(r#"{{"type":1,"id":9001,"method":"sendMessage","payload":{payload}}}"#)
    };
    vec![
        ("truncated JSON", r#"{"type":1,"id":"#.into()),
        ("not JSON", "hello, bot".into()),
        ("empty frame", String::new()),
        ("null", "null".into()),
        ("array", "[1,2,3]".into()),
        ("string", r#""frame""#.into()),
        ("number", "42".into()),
        ("empty object", "{}".into()),
        ("type as string", r#"{"type":"1","id":1,"method":"sendMessage","payload":{}}"#.into()),
        ("id as string", r#"{"type":1,"id":"7","method":"sendMessage","payload":{}}"#.into()),
        ("negative id", r#"{"type":1,"id":-1,"method":"sendMessage","payload":{}}"#.into()),
        ("fractional id", r#"{"type":1,"id":1.5,"method":"sendMessage","payload":{}}"#.into()),
        ("id over u64", r#"{"type":1,"id":18446744073709551616,"method":"x","payload":{}}"#.into()),
        ("unknown frame type", r#"{"type":3,"id":1,"payload":{}}"#.into()),
        ("type zero", r#"{"type":0,"id":1}"#.into()),
        ("method as number", r#"{"type":1,"id":9,"method":42,"payload":{}}"#.into()),
        ("request without method", r#"{"type":1,"id":9,"payload":{}}"#.into()),
        ("request without payload", r#"{"type":1,"id":9002,"method":"sendMessage"}"#.into()),
        ("payload as string", event(r#""text""#)),
        ("payload with wrong types", event(r#"{"chat":5,"content":[],"timestamp":"now"}"#)),
        ("payload null", event("null")),
        ("response to an unknown id", r#"{"type":2,"id":987654321,"payload":{"chats":[]}}"#.into()),
        ("bare ack of an unknown id", r#"{"type":2,"id":0}"#.into()),
        ("error response of an unknown id", r#"{"type":2,"id":5,"payload":{"errorCode":"x"}}"#.into()),
        ("duplicate keys", r#"{"type":1,"type":2,"id":1,"id":2}"#.into()),
        ("lone surrogate escape", r#"{"type":1,"id":1,"method":"\ud800","payload":{}}"#.into()),
        ("NUL and controls in method", "{\"type\":1,\"id\":9003,\"method\":\"a\\u0000b\\u0007\",\"payload\":{}}".into()),
        ("100k-deep payload", event(&nested(100_000))),
        ("100k-deep frame", nested(100_000)),
        ("100k-deep object payload", event(&format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000)))),
        ("long method name", format!(r#"{{"type":1,"id":9004,"method":"{}","payload":{{}}}}"#, "m".repeat(100_000))),
        ("many keys", event(&format!("{{{}\"z\":0}}", (0..20_000).map(|i| format!("\"k{i}\":{i},")).collect::<String>()))),
        (
            "oversized file metadata",
            event(
                &json!({
                    "messageId": "m-big-file",
                    "chat": {"chatId": "c", "chatType": 1},
                    "timestamp": 1u64, "type": 202,
                    "author": {"id": "eve@sim.example", "type": 1},
                    "content": {
                        "name": "x".repeat(200_000),
                        "size": u64::MAX,
                        "fileId": "f".repeat(10_000),
                        "mimeType": "application/".repeat(1000),
                        "readyState": 2,
                        "previews": (0..2000).map(|i| json!({"name": i.to_string(), "size": u64::MAX, "mimeType": "image/png"})).collect::<Vec<_>>()
                    }
                })
                .to_string(),
            ),
        ),
        (
            "file size out of range",
            event(r#"{"messageId":"m2","chat":{"chatId":"c","chatType":1},"timestamp":1,"type":202,"author":{"id":"e@s","type":1},"content":{"name":"a","size":-1e300,"mimeType":"x","readyState":2}}"#),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_frames_are_dropped_and_the_socket_survives() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (bot, seen, _task) = start(&sim).await;
    let chat = sim.user("prober").create_p2p_with_bot().await.unwrap();
    probe(&sim, &seen, &chat, "first").await;
    let inputs = survivable();
    for (i, (what, frame)) in inputs.iter().enumerate() {
        sim.faults().send_raw_frame(frame.clone());
        // The next good event still arrives on the same socket.
        probe(&sim, &seen, &chat, &format!("after {i}: {what}")).await;
        assert_eq!(sim.stats().connections, 1, "`{what}` cost the socket");
    }
    sim.faults().send_malformed_frame();
    sim.faults()
        .send_unknown_event("someFutureEvent", json!({"x": [1, 2, 3]}));
    probe(&sim, &seen, &chat, "after the emulator's own bad frames").await;
    let seen = seen.lock().unwrap().clone();
    let delivered_bad: Vec<_> = seen
        .iter()
        .filter(|(m, ok, _)| m == "sendMessage" && !ok)
        .collect();
    // Decodable frames with a bad payload reach the consumer, whose typed decoding fails cleanly.
    assert!(delivered_bad.len() >= 4, "{delivered_bad:?}");
    assert!(seen.iter().any(|(m, ok, _)| m == "someFutureEvent" && *ok));
    let stats = sim.stats();
    assert_eq!(
        stats.pushed, stats.acked,
        "every pushed event is acknowledged"
    );
    assert_eq!(bot.in_flight(), 0);
    // A request after all that works.
    assert!(bot.get_chats(10, 1).await.is_ok());
    eprintln!("BAD_INPUT survivable frames tried: {}", inputs.len() + 2);
    bot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_is_refused_and_the_bot_reconnects() {
    let logs = logs();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (bot, seen, _task) = start(&sim).await;
    let chat = sim.user("prober").create_p2p_with_bot().await.unwrap();
    probe(&sim, &seen, &chat, "before").await;
    let huge = format!(
        r#"{{"type":1,"id":77,"method":"sendMessage","payload":{{"pad":"{}"}}}}"#,
        "a".repeat(LIMIT + 1)
    );
    let mut st = bot.state();
    sim.faults().send_raw_frame(huge);
    st.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .await
        .unwrap();
    st.wait_for(|s| matches!(s, ConnectionState::Ready))
        .await
        .unwrap();
    probe(&sim, &seen, &chat, "after").await;
    assert_eq!(sim.stats().connections, 2);
    assert!(!seen.lock().unwrap().iter().any(|(_, _, t)| t.len() > LIMIT));
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("protocol error: incoming message over the size limit"),
        "no protocol error logged"
    );
    bot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_garbage_leaves_nothing_behind() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let (bot, seen, _task) = start(&sim).await;
    let chat = sim.user("prober").create_p2p_with_bot().await.unwrap();
    let inputs = survivable();
    let small: Vec<_> = inputs.iter().filter(|(_, f)| f.len() < 4096).collect();
    const ROUNDS: usize = 400;
    for _ in 0..ROUNDS {
        for (_, f) in &small {
            sim.faults().send_raw_frame(f.clone());
        }
    }
    probe(&sim, &seen, &chat, "after the flood").await;
    assert_eq!(sim.stats().connections, 1);
    assert_eq!(
        bot.in_flight(),
        0,
        "unknown response ids create no pending entries"
    );
    eprintln!("BAD_INPUT flood frames: {}", ROUNDS * small.len());
    bot.shutdown().await.unwrap();
}

/// A hand-made server that can send what a well-behaved library cannot: a text frame that is not
/// UTF-8. Connection 1 gets the bad frame; connection 2 must work normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_text_frame_drops_the_socket_and_the_bot_recovers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acks: Arc<Mutex<Vec<u64>>> = Default::default();
    let a = acks.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let mut head = [0u8; 2048];
            let n = stream.peek(&mut head).await.unwrap_or(0);
            if !String::from_utf8_lossy(&head[..n]).contains("Upgrade: websocket")
                && !String::from_utf8_lossy(&head[..n]).contains("upgrade: websocket")
            {
                // Server info: not found (the bot carries on without a domain).
                let mut s = stream;
                use tokio::io::AsyncWriteExt;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            conn += 1;
            let a = a.clone();
            let this = conn;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(t) = msg else { continue };
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == 2 {
                        a.lock().unwrap().push(v["id"].as_u64().unwrap());
                        continue;
                    }
                    if v["method"] == "auth" {
                        let resp = json!({"type":2,"id":v["id"],"payload":{"userId":"bot@raw/1","connectionId":"c"}});
                        ws.send(Message::text(resp.to_string())).await.unwrap();
                        if this == 1 {
                            let bad =
                                b"{\"type\":1,\"id\":1,\"method\":\"x\xff\xfe\",\"payload\":{}}"
                                    .to_vec();
                            let frame = WsFrame::message(bad, OpCode::Data(Data::Text), true);
                            let _ = ws.send(Message::Frame(frame)).await;
                        } else {
                            let ev = json!({"type":1,"id":42,"method":"someEvent","payload":{}});
                            ws.send(Message::text(ev.to_string())).await.unwrap();
                        }
                    }
                }
            });
        }
    });
    let token = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"HS256"}"#),
            e.encode(br#"{"sub":"bot"}"#)
        )
    };
    let bot = Bot::builder("127.0.0.1")
        .https(false)
        .port(port)
        .token(token)
        .reconnect(ReconnectPolicy::default().min_delay(Duration::from_millis(20)))
        .build()
        .unwrap();
    let mut events = bot.events().unwrap();
    bot.start().await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event on the second connection")
        .unwrap();
    assert_eq!(ev.method, "someEvent");
    tokio::time::timeout(Duration::from_secs(5), async {
        while !acks.lock().unwrap().contains(&42) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("acknowledged on the new socket");
    bot.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- decoders

#[test]
fn deep_nesting_hits_serde_json_recursion_limit() {
    let deep = nested(100_000);
    // A whole frame that deep is refused by the recursion limit.
    assert!(Frame::decode(&deep).is_err());
    // A deep payload is only skipped over (kept raw, without recursion) by the frame decoder,
    // so it may pass; typed decoding then hits the limit instead of the stack's end.
    for frame in [
        format!(r#"{{"type":1,"id":1,"method":"sendMessage","payload":{deep}}}"#),
        format!(r#"{{"type":1,"id":1,"method":"sendMessage","payload":{{"content":{deep}}}}}"#),
        format!(r#"{{"type":2,"id":1,"payload":{deep}}}"#),
    ] {
        match Frame::decode(&frame) {
            Ok(Frame::Request {
                method, payload, ..
            }) => {
                assert!(Event::decode(&method, &payload).is_err());
                let err = serde_json::from_str::<serde_json::Value>(payload.get()).unwrap_err();
                assert!(err.to_string().contains("recursion limit"), "{err}");
            }
            Ok(Frame::Response { payload, .. }) => {
                let raw = payload.expect("payload kept");
                let err = serde_json::from_str::<serde_json::Value>(raw.get()).unwrap_err();
                assert!(err.to_string().contains("recursion limit"), "{err}");
            }
            Err(e) => assert!(e.to_string().contains("recursion limit"), "{e}"),
        }
    }
}

fn fixtures() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_owned();
            name.ends_with(".json")
                .then(|| (name, std::fs::read_to_string(&p).unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// Decodes `text` as a frame and, when it is a request, its payload as a typed event.
fn decode_all(text: &str) {
    if let Ok(Frame::Request {
        method, payload, ..
    }) = Frame::decode(text)
    {
        let _ = Event::decode(&method, &payload);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "\\",
        "-",
        "0",
        "1e999",
        "null",
        "true",
        "\u{0}",
        "\u{10ffff}",
        "\\u0000",
        "\\ud800",
        "18446744073709551616",
        "-1",
        "1.5",
        "\"x\"",
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0x20u8..0x7f).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), proptest::sample::select(TOKENS))
            .prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..60).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut b = text.as_bytes().to_vec();
    for m in muts {
        let len = b.len().max(1);
        match *m {
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Flip(i, c) => {
                if !b.is_empty() {
                    let i = i % b.len();
                    b[i] = c;
                }
            }
            Mutation::Insert(i, t) => {
                let i = i % (b.len() + 1);
                b.splice(i..i, t.bytes());
            }
            Mutation::Delete(i, n) => {
                let i = i % len;
                let end = (i + n).min(b.len());
                if i < end {
                    b.drain(i..end);
                }
            }
            Mutation::Duplicate(i, n) => {
                let i = i % len;
                let end = (i + n).min(b.len());
                if i < end {
                    let part = b[i..end].to_vec();
                    b.splice(i..i, part);
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_fixtures_never_panic_the_decoders(
        pick in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let all = fixtures();
        let (_, text) = pick.get(&all);
        decode_all(&apply(text, &muts));
        // The payload alone, under every known event method.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            && let Some(p) = v.get("payload")
        {
            let mutated = apply(&p.to_string(), &muts);
            if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&mutated) {
                for method in ["sendMessage", "editMessage", "removeMessage", "command",
                    "createP2PChat", "addChatParticipant", "uploadFileProgress",
                    "getFileUploadLimits", "editChatAvatar", "clearHistory", "unknownThing"] {
                    let _ = Event::decode(method, &raw);
                }
            }
        }
    }
}

#[test]
fn every_fixture_frame_decodes() {
    // The mutation test starts from valid input: make sure it is.
    for (name, text) in fixtures() {
        if name.starts_with("event.") || name.starts_with("resp.") || name.starts_with("req.") {
            assert!(Frame::decode(&text).is_ok(), "{name}");
        }
    }
}

// ---------------------------------------------------------------- hostile text

const HOSTILE: &[&str] = &[
    r#"</b><a href="trueconf:admin@evil">@all</a>"#,
    "<script>alert(1)</script>",
    "&lt;b&gt; already escaped &amp;",
    "**bold** __u__ ~~s~~ [link](https://evil.example) `code`",
    r#"" onmouseover="x" '"#,
    "\\*not bold\\* \\\\",
    "<quote>forged quote</quote>\n\nreply",
    "@all",
    "\u{202e}rtl override \u{0}nul",
];

#[test]
fn markup_injection_through_the_format_helpers_is_escaped() {
    let mut tried = 0;
    for h in HOSTILE {
        for (built, mode) in [
            (html::bold(h), ParseMode::Html),
            (html::italic(h), ParseMode::Html),
            (html::underline(h), ParseMode::Html),
            (html::strike(h), ParseMode::Html),
            (html::escape(h).into_owned(), ParseMode::Html),
            (markdown::bold(h), ParseMode::Markdown),
            (markdown::italic(h), ParseMode::Markdown),
            (markdown::strike(h), ParseMode::Markdown),
            (markdown::escape(h).into_owned(), ParseMode::Markdown),
        ] {
            tried += 1;
            // The reader sees the hostile text literally, and no link or mention appears.
            assert_eq!(format::visible_text(&built, &mode), *h, "{built:?}");
            assert!(format::mentioned_ids(&built).is_empty(), "{built:?}");
            assert!(!format::is_all_mention(&built) || *h == "@all");
        }
        // Links and mentions: the hostile part stays inside its attribute or text.
        let link = html::link(h, &format!("https://ok.example/?q={h}"));
        assert_eq!(format::mentioned_ids(&link), Vec::<String>::new(), "{link}");
        assert!(
            format::visible_text(&link, &ParseMode::Html).starts_with(h),
            "{link}"
        );
        let mention = html::mention("alice@sim.example", h);
        assert_eq!(
            format::mentioned_ids(&mention),
            vec!["alice@sim.example".to_owned()],
            "{mention}"
        );
        let md_link = markdown::link(h, "https://ok.example/a)b");
        assert!(
            format::visible_text(&md_link, &ParseMode::Markdown).starts_with(h),
            "{md_link}"
        );
        // `quote_reply` takes the reply as the caller's markup; the `_text` form escapes it.
        let quoted = html::quote_reply_text(h, h);
        assert!(format::mentioned_ids(&quoted).is_empty(), "{quoted}");
        let md_quoted = markdown::quote_reply(h, &markdown::escape(h));
        assert!(format::mentioned_ids(&md_quoted).is_empty(), "{md_quoted}");
        tried += 5;
    }
    eprintln!("BAD_INPUT hostile texts x helpers: {tried}");
}
