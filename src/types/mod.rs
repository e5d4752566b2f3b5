//! Every object of the Chatbot Connector protocol as a Rust type.
//!
//! Pure data: nothing here opens a socket or spawns an actor. Enums carry an `Unknown` variant
//! so a newer server never breaks an older bot.

use serde::{Deserialize, Serialize};

/// How the server renders a text (`parseMode`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParseMode {
    /// Plain text, shown verbatim.
    #[default]
    Text,
    /// `**bold**`, `*italic*`, `~~strike~~`, `[text](url)`.
    Markdown,
    /// `<b> <i> <s> <u> <a href>`.
    Html,
}
