//! Surveys: a message type (204) whose content is a link to a poll page, posted with
//! `sendSurvey` and partly rewritten with `editSurvey`.
//!
//! Surveys travel the ordinary message path; what is theirs alone is which fields a survey must
//! carry and which of them an edit may change.

use serde_json::{Value, json};

use super::State;
use super::payload::{Request, str_field};
use crate::testkit::wire::{ApiResult, E_BAD_PAYLOAD, MSG_SURVEY};

/// Fields every survey must have as strings.
const REQUIRED_FIELDS: [&str; 7] = [
    "url",
    "path",
    "title",
    "description",
    "buttonText",
    "secret",
    "alt",
];

/// Fields `editSurvey` replaces; all must be given.
const EDITABLE_FIELDS: [&str; 5] = ["path", "title", "description", "buttonText", "alt"];

/// The content of survey `current` after `edit`, a partial update of the survey fields.
pub(super) fn edited_survey(current: &Value, edit: &Value) -> ApiResult<Value> {
    let mut merged = current.clone();
    for key in EDITABLE_FIELDS {
        merged[key] = json!(str_field(edit, key)?);
    }
    Ok(merged)
}

impl State {
    /// `sendSurvey`.
    pub(super) fn api_send_survey(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let reply_to = req.opt_str_field("replyMessageId")?;
        let content = req.field("content")?;
        for key in REQUIRED_FIELDS {
            str_field(content, key)?;
        }
        content
            .get("appVersion")
            .filter(|version| version.is_number())
            .ok_or(E_BAD_PAYLOAD)?;
        let (id, timestamp) = self.post(
            req.login,
            chat,
            MSG_SURVEY,
            content.clone(),
            reply_to,
            req.except(),
        )?;
        Ok(json!({ "chatId": chat, "messageId": id, "timestamp": timestamp }))
    }

    /// `editSurvey`.
    pub(super) fn api_edit_survey(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        self.api_edit_of_kind(req, MSG_SURVEY)
    }
}
