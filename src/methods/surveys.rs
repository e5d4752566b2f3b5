//! Survey methods (§8.6).

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{MessageSent, Request, messages::MessageEdit};
use crate::error::{Error, Result};
use crate::format::html;
use crate::types::SurveyKind;
use crate::types::message::SurveyContent;

const BUTTON_TEXT: &str = "{{Go to survey}}";

fn survey_url(server: &str) -> String {
    format!("https://{server}/webtools/survey")
}

/// The HTML fallback card. The title and campaign id often come from chat users (and the
/// domain from the server): the title is escaped as HTML text, the id percent-encoded as a
/// query value, the domain escaped for the quoted attribute, so none of them can close the
/// link or add markup.
fn survey_alt(server: &str, path: &str, title: &str) -> String {
    let server = html::escape_attr(server);
    let id = query_value(path);
    let title = html::escape(title);
    format!(
        "📊 <a href='https://{server}/webtools/survey?id={id}&error=autologin_not_supported'>{title}</a>"
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 40 random hex characters (the official client hashes the title with random salt; only
/// uniqueness matters).
fn random_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sendSurvey`: posts a survey from the server's survey web tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendSurvey {
    /// Target chat.
    pub chat_id: String,
    /// Message replied to; always sent (`null` when not replying).
    #[serde(default)]
    pub reply_message_id: Option<String>,
    /// The survey card.
    pub content: SurveyContent,
}

impl SendSurvey {
    /// Survey campaign `path` titled `title` on the server `server` (its domain, as in
    /// [`ServerInfo::domain`](crate::types::ServerInfo::domain)); named (not anonymous).
    pub fn new(
        chat_id: impl Into<String>,
        server: &str,
        path: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        let path = path.into();
        let title = title.into();
        SendSurvey {
            chat_id: chat_id.into(),
            reply_message_id: None,
            content: SurveyContent {
                url: survey_url(server),
                alt: Some(survey_alt(server, &path, &title)),
                title,
                path: Some(path),
                description: Some(SurveyKind::Named.as_str().to_owned()),
                button_text: Some(BUTTON_TEXT.to_owned()),
                app_version: Some(1),
                secret: Some(random_secret()),
            },
        }
    }

    /// Makes the survey anonymous (or named again).
    pub fn anonymous(mut self, anonymous: bool) -> Self {
        let kind = if anonymous {
            SurveyKind::Anonymous
        } else {
            SurveyKind::Named
        };
        self.content.description = Some(kind.as_str().to_owned());
        self
    }

    /// Replies to `message_id`.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_message_id = Some(message_id.into());
        self
    }
}

fn check_survey(path: &str, title: &str) -> Result<()> {
    if path.trim().is_empty() {
        return Err(Error::invalid("path", "must not be empty"));
    }
    if title.trim().is_empty() {
        return Err(Error::invalid("title", "must not be empty"));
    }
    Ok(())
}

impl Request for SendSurvey {
    const METHOD: &'static str = "sendSurvey";
    type Response = MessageSent;

    fn validate(&self) -> Result<()> {
        check_survey(
            self.content.path.as_deref().unwrap_or_default(),
            &self.content.title,
        )
    }
}

/// `content` of [`EditSurvey`] (no `url`, `appVersion` or `secret`, as the official client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditSurveyContent {
    /// Survey campaign id.
    pub path: String,
    /// Title.
    pub title: String,
    /// `{{Survey}}` or `{{Anonymous survey}}`.
    pub description: String,
    /// Button caption placeholder.
    pub button_text: String,
    /// HTML fallback.
    pub alt: String,
}

/// `editSurvey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditSurvey {
    /// The survey message.
    pub message_id: String,
    /// The new card.
    pub content: EditSurveyContent,
}

impl EditSurvey {
    /// Replaces survey message `message_id` with campaign `path` titled `title` on `server`.
    pub fn new(
        message_id: impl Into<String>,
        server: &str,
        path: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        let path = path.into();
        let title = title.into();
        EditSurvey {
            message_id: message_id.into(),
            content: EditSurveyContent {
                alt: survey_alt(server, &path, &title),
                path,
                title,
                description: SurveyKind::Named.as_str().to_owned(),
                button_text: BUTTON_TEXT.to_owned(),
            },
        }
    }

    /// Makes the survey anonymous (or named again).
    pub fn anonymous(mut self, anonymous: bool) -> Self {
        let kind = if anonymous {
            SurveyKind::Anonymous
        } else {
            SurveyKind::Named
        };
        self.content.description = kind.as_str().to_owned();
        self
    }
}

impl Request for EditSurvey {
    const METHOD: &'static str = "editSurvey";
    type Response = MessageEdit;

    fn validate(&self) -> Result<()> {
        check_survey(&self.content.path, &self.content.title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The link and the visible text of an alt, read back the way a client renders it.
    fn rendered(alt: &str) -> (String, String) {
        let rest = alt
            .strip_prefix("📊 <a href='")
            .expect("starts with the link");
        let (href, rest) = rest.split_once("'>").expect("one quoted href");
        let text = rest.strip_suffix("</a>").expect("one closing tag");
        assert!(!text.contains(['<', '>']), "markup in the text: {text}");
        (
            html::unescape(href).into_owned(),
            html::unescape(text).into_owned(),
        )
    }

    #[test]
    fn hostile_titles_and_paths_stay_text_in_the_alt() {
        let title =
            "</a><a href='https://evil.example'>Pay here</a><img src=x onerror=alert(1)> & 'q'";
        let path = "17&error=x' onclick='alert(1)";
        for alt in [
            SendSurvey::new("c", "video.example.com", path, title)
                .content
                .alt
                .unwrap(),
            EditSurvey::new("m", "video.example.com", path, title)
                .content
                .alt,
        ] {
            let (href, text) = rendered(&alt);
            assert_eq!(text, title, "{alt}");
            assert_eq!(
                href,
                "https://video.example.com/webtools/survey?id=17%26error%3Dx%27%20onclick%3D%27alert%281%29&error=autologin_not_supported",
                "{alt}"
            );
        }
    }

    #[test]
    fn plain_titles_and_paths_are_unchanged() {
        let s = SendSurvey::new(
            "c",
            "video.example.com",
            "employee_testing",
            "Employee survey",
        );
        assert_eq!(
            s.content.alt.as_deref(),
            Some(
                "📊 <a href='https://video.example.com/webtools/survey?id=employee_testing&error=autologin_not_supported'>Employee survey</a>"
            )
        );
    }
}
