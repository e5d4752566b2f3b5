//! An in-process, stateful emulator of the TrueConf server side of the Chatbot Connector
//! protocol, for tests, demos and benchmarks (feature `testkit`).
//!
//! The emulator speaks the real wire protocol over a real socket: HTTP token and upload
//! endpoints, the WebSocket at `/websocket/chat_bot`, JWT authorisation, acknowledgements and
//! re-delivery, and every client→server method with the documented error codes. Tests drive
//! scripted users ([`SimUser`]) and assert on what the bot sent.
//!
//! It is written on raw `serde_json::Value`, independently of the crate's own protocol types, so
//! a dialect mistake on the client side fails a test instead of being mirrored here.
//!
//! ```no_run
//! # async fn demo() -> trueconf_bot::Result<()> {
//! use trueconf_bot::testkit::{Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig::default()).await?;
//! println!("connect a bot to {} with token {}", sim.url(), sim.bot_token());
//! let alice = sim.user("alice");
//! let chat = alice.create_p2p_with_bot().await?;
//! alice.send_text(&chat, "hi").await?;
//! let answer = sim.expect_message(&chat).await?; // a typed `SimMessage`
//! assert_eq!(answer.text(), Some("hi"));
//! # Ok(()) }
//! ```
//!
//! To run a bot of this crate against it, see [`harness`](crate::harness) (`SimBot` starts a
//! dispatcher and returns once its session is authorised).
//!
//! Defaults ([`SimConfig::default`]): domain `sim.example`; the bot account `bot` (id
//! `bot@sim.example`, password `bot-password`, [`Sim::bot_token`] for a ready token); users are
//! created on first use ([`Sim::user`]), `alice` becoming `alice@sim.example` with display name
//! `Alice`; a free port on 127.0.0.1, plain HTTP/WS; `expect_*` waits give up after 5 s.
//!
//! What a test reads back is typed: [`SimMessage`] (kind, author, text, parse mode,
//! [`SimButton`]s, [`SimAttachment`], [`SimSurvey`]), [`SimChat`]. The waits
//! ([`Sim::expect_message`], [`Sim::expect_text`], [`Sim::expect_file`], [`Sim::expect_edit`],
//! [`Sim::expect_removed`], [`Sim::wait_for_bot`]) fail with [`Error::Timeout`] naming what
//! they waited for, or [`Error::Unexpected`] saying what came instead.
//!
//! With [`SimConfig::web`] the emulator also serves a chat page at its base URL (act as any
//! user in a browser, with a frame inspector); [`Sim::start_recording`] and [`Sim::replay`]
//! turn a session into a [`Transcript`] and play it back against a bot.
//!
//! [`Error::Timeout`]: crate::Error::Timeout
//! [`Error::Unexpected`]: crate::Error::Unexpected
//!
//! Acknowledgements: every event frame the emulator pushes is remembered until the client acks
//! it (`{"type":2,"id":N}`). Events still un-acked when a socket closes, and events for a bot
//! account that has no connection, are pushed again — as ordinary events, in their original
//! order — to the next connection of that account that authenticates with
//! `receiveUnread: true`. [`Sim::stats`] counts pushed, acked and re-delivered events.
//!
//! Faults ([`Sim::faults`]): drop a socket after N frames, delay responses, refuse handshakes
//! for a while, send a malformed frame or an unknown event, restart (close every socket, refuse
//! briefly, keep state), make a method fail with a chosen error code.
//!
//! Emulator conventions where the protocol leaves room (documented so tests can rely on them):
//! user ids must be complete (`login@domain`) and name a known user, otherwise error 302;
//! `getChatHistory` returns the `count` messages *before* `fromMessageId` (exclusive, or the
//! newest ones), oldest first; `getChats` answers `{"chats":[…]}`; roles are strings; a
//! caption given to `sendFile` becomes a separate message reported as `captionMessageId`.

// The public face is this file's re-exports; each file below says what it is for.
mod config;
mod faults;
mod jwt;
mod load;
mod pattern;
mod person;
mod records;
mod server;
mod shared;
mod sim;
mod state;
mod tap;
mod transcript;
mod user;
mod view;
mod web;
mod wire;

pub use config::{Account, ExtensionFilter, OAuthApp, SimConfig, UploadLimits};
pub use faults::Faults;
pub use load::{ChatIssues, Failover, LoadReport, LoadSpec};
pub use pattern::{PatternReader, is_pattern, pattern, pattern_byte};
pub use person::Person;
pub use records::{RecordedRequest, SentFile, SimFile, SimStats};
pub use sim::{ReplayOptions, Sim, TranscriptSink, eventually};
pub use transcript::{Action, Difference, ReplayReport, Side, Transcript, TranscriptEntry};
pub use user::{SimUser, Upload};
pub use view::{
    ButtonAction, ChatKind, MessageKind, SimAttachment, SimButton, SimChat, SimMessage, SimSurvey,
};
