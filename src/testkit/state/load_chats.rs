//! The state's side of a load run: personal chats that keep no history, and load events built
//! as text.
//!
//! A load run pushes tens of thousands of events; building each one without a `Value` tree and
//! storing nothing per message keeps the emulator from being what the benchmark measures.

use tokio::time::Instant;

use super::State;
use super::model::ChatRecord;
use crate::testkit::load::event_text;
use crate::testkit::wire::{P2P, now_ms, uuid};

impl State {
    /// A personal chat of the load test: not listed by `getChats`, keeps no history.
    pub(crate) fn insert_load_chat(&mut self, id: &str, bot: &str, user: &str, index: u32) {
        self.chats.insert(
            id.to_owned(),
            ChatRecord::new(
                Some(format!("Load {index}")),
                P2P,
                vec![(bot.to_owned(), "user"), (user.to_owned(), "user")],
                Some(index),
            ),
        );
    }

    /// Pushes load event `seq`, built without a `Value` tree: this runs for every event.
    pub(crate) fn push_load_event(&mut self, bot: &str, chat: &str, user: &str, seq: u64) {
        let payload = format!(
            r#"{{"messageId":"{}","chatId":"{chat}","chat":{{"chatId":"{chat}","chatTitle":"Load","chatType":1}},"timestamp":{},"type":200,"author":{{"id":"{user}@{}","type":1}},"box":{{"id":{seq},"position":"{seq:010}"}},"content":{{"text":"{}","parseMode":"text"}},"isEdited":false}}"#,
            uuid(),
            now_ms(),
            self.domain,
            event_text(seq),
        );
        self.deliver(bot, None, "sendMessage", &payload.into(), false);
        if let Some(run) = self.load.as_mut() {
            run.sent(seq, Instant::now());
        }
    }
}
