//! Every object of the Chatbot Connector protocol as a Rust type.
//!
//! Pure data: nothing here opens a socket or spawns an actor. Enums carry an `Unknown` variant
//! so a newer server never breaks an older bot; unknown fields are ignored.

mod macros;

pub mod button;
pub mod chat;
pub mod enums;
pub mod event;
pub mod file;
pub mod http;
pub mod message;
pub mod server;
pub mod vcard;

pub use button::{Button, InlineKeyboard, KeyboardBuilder};
pub use chat::{Chat, Participant};
pub use enums::{
    ActivityType, AnswerType, AuthorType, ButtonStyle, ButtonType, ChatType, CommandLevel,
    CommandStatus, CommandVisibility, EnvelopeType, ExtensionsMode, OAuthErrorKind, ParseMode,
    ReadyState, Role, SurveyKind,
};
pub use event::{ChatCreatedKind, CommandEvent, Event};
pub use file::{FileInfo, FilePreview, UploadLimits, is_webp};
pub use message::{Author, ChatRef, Content, Message, MessageKind};
pub use server::{ServerInfo, ServerVersion};
pub use vcard::Contact;
