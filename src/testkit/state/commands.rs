//! Bot commands from buttons: a scripted user pressing a `command` button of a bot message,
//! and the bot answering a `waitReply` press with `answerCommand`.
//!
//! A press is the one event the emulator builds from a button's own fields (`to`, `id`,
//! `customData`, `waitReply`), so it checks the button exists instead of trusting the test.

use serde_json::{Value, json};

use super::State;
use super::payload::{Request, str_field};
use crate::testkit::wire::{ApiResult, E_BAD_PAYLOAD, E_NO_MESSAGE, uuid};

impl State {
    /// A user pressed the `command` button of a message: build and push the `command` event.
    pub(crate) fn press(
        &mut self,
        actor: &str,
        chat: &str,
        message_id: &str,
        command: &str,
    ) -> ApiResult<Option<String>> {
        self.role(chat, actor)?;
        let message = self.messages.get(message_id).ok_or(E_NO_MESSAGE)?;
        if message.chat != chat {
            return Err(E_NO_MESSAGE);
        }
        let button = message.content["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .find(|button| button["type"] == "command" && button["command"] == command)
            .cloned()
            .ok_or(E_NO_MESSAGE)?;
        let recipient = match button.get("to").and_then(Value::as_str) {
            Some(to) => self.login_of(to)?,
            None => message.author.clone(),
        };
        let wait_reply = button["waitReply"] == true;
        self.journal_press(actor, chat, message_id, command);
        let mut source = json!({
            "type": "button",
            "message": self.envelope(message_id, false),
            "waitReply": wait_reply,
        });
        if let Some(id) = button.get("id") {
            source["buttonId"] = id.clone();
        }
        let mut command_payload = json!({ "type": "command", "command": command });
        if let Some(data) = button.get("customData") {
            command_payload["customData"] = data.clone();
        }
        let mut payload = json!({ "commandSource": source, "commandPayload": command_payload });
        let command_id = wait_reply.then(uuid);
        if let Some(id) = &command_id {
            payload["commandId"] = json!(id);
            self.pending_commands.insert(id.clone());
        }
        self.deliver(
            &recipient,
            None,
            "command",
            &payload.to_string().into(),
            false,
        );
        Ok(command_id)
    }

    /// `answerCommand`: closes a pending `waitReply` press.
    pub(super) fn api_answer_command(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("commandId")?;
        let kind = req.str_field("answerType")?;
        if !matches!(kind, "complete" | "timeout" | "cancel" | "message") {
            return Err(E_BAD_PAYLOAD);
        }
        let text = req
            .payload
            .get("message")
            .map(|message| str_field(message, "text"))
            .transpose()?;
        if text.is_some_and(|text| text.is_empty() || text.len() > 255 || !text.is_ascii()) {
            return Err(E_BAD_PAYLOAD);
        }
        if !self.pending_commands.remove(id) {
            return Err(E_NO_MESSAGE);
        }
        Ok(json!({}))
    }
}
