//! Extractors for the typed model and for dialogs.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handler::{Ctx, Deps, ExtractError, FromEvent};
use crate::fsm::{Dialogue, KeyStrategy, Storage};
use crate::types::{CommandEvent, Event, Message};

impl FromEvent for Event {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        ctx.update().event().map_err(ExtractError::Decode)
    }
}

impl FromEvent for Message {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        match ctx.update().event().map_err(ExtractError::Decode)? {
            Event::Message(m) => Ok(m),
            _ => Err(ExtractError::Missing {
                method: ctx.update().method().to_string(),
                what: "message",
            }),
        }
    }
}

impl FromEvent for CommandEvent {
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        match ctx.update().event().map_err(ExtractError::Decode)? {
            Event::Command(c) => Ok(c),
            _ => Err(ExtractError::Missing {
                method: ctx.update().method().to_string(),
                what: "button press",
            }),
        }
    }
}

/// The dialog of the event's chat and author, in the `Arc<dyn Storage>` registered as a
/// dependency, keyed by the registered [`KeyStrategy`] (default
/// [`KeyStrategy::UserInChat`]) and the bot id (`self_id`, or `"bot"` while unknown).
impl<S> FromEvent for Dialogue<S>
where
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn from_event(ctx: &Ctx) -> Result<Self, ExtractError> {
        let storage =
            ctx.dependency::<Arc<dyn Storage>>()
                .ok_or(ExtractError::MissingDependency(
                    "Arc<dyn trueconf_bot::fsm::Storage> (register a storage with `DispatcherBuilder::storage`)",
                ))?;
        let strategy = ctx.dependency::<KeyStrategy>().unwrap_or_default();
        let u = ctx.update();
        let missing = |what| ExtractError::Missing {
            method: u.method().to_string(),
            what,
        };
        let chat = u.chat_id().ok_or_else(|| missing("chat id"))?;
        let key = strategy
            .key(ctx.self_id().unwrap_or("bot"), chat, u.author_id())
            .ok_or_else(|| missing("author (the dialog key strategy needs a user)"))?;
        Ok(Dialogue::new(storage, key))
    }

    fn check(deps: &Deps) -> Result<(), ExtractError> {
        if deps.contains::<Arc<dyn Storage>>() {
            Ok(())
        } else {
            Err(ExtractError::MissingDependency(
                "Arc<dyn trueconf_bot::fsm::Storage> (register a storage with `DispatcherBuilder::storage`)",
            ))
        }
    }
}
