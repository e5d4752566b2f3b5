//! # trueconf-bot
//!
//! An actor-based, supervised framework for writing chat bots for TrueConf Server over the
//! Chatbot Connector WebSocket API.
//!
//! ## Layout
//!
//! The crate is split into a pure **model** (no sockets, no actors), the **runtime actors**,
//! and the **dispatch** layer that turns events into handler calls. Dependencies point one
//! way: dispatch → runtime → model.
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`protocol`] | model | WebSocket frames (request / response / ack), encode and decode |
//! | [`types`] | model | every protocol object: envelopes, chats, files, events, buttons, enums |
//! | [`methods`] | model | one typed request per client→server method, tied to its response |
//! | [`error`] | model | the public [`Error`] type |
//! | [`format`](mod@format) | model | HTML / Markdown builders, escaping, visible length, text splitting |
//! | [`connection`] | runtime | the Connection actor: socket, auth, keepalive, reconnect |
//! | [`router`] | runtime | the RequestRouter actor: request ids, pending requests, timeouts |
//! | [`transfer`] | runtime | the FileTransfer actor: uploads, downloads, progress |
//! | [`supervisor`] | runtime | the Supervisor actor that owns and restarts the others |
//! | [`bot`] | runtime | the [`Bot`](bot::Bot) handle users call |
//! | [`dispatch`] | dispatch | routers, handlers, extractors, filters, middleware |
//! | [`conversation`] | dispatch | per-chat Conversation actors: ordering, bounded mailboxes |
//! | [`fsm`] | dispatch | finite-state dialogs and state storage backends |
//! | `testkit` | tests | a TrueConf server emulator (feature `testkit`) |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod format;
pub mod methods;
pub mod protocol;
pub mod types;

pub mod bot;
pub mod connection;
pub mod router;
pub mod supervisor;
pub mod transfer;

pub mod conversation;
pub mod dispatch;
pub mod fsm;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result};
