//! The protocol's enumerations (§10 of the protocol reference).
//!
//! Every enum whose value set may grow keeps an `Unknown` variant holding the raw wire value,
//! so a newer server never breaks an older bot.

use serde::{Deserialize, Serialize};

use super::macros::{int_enum, string_enum};

/// How the server renders a text (`parseMode`).
///
/// Decoding is lenient: a mode this crate does not know is read as [`ParseMode::Text`]
/// (shown verbatim), so a newer server never makes a whole message undecodable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
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

impl<'de> Deserialize<'de> for ParseMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match s.to_ascii_lowercase().as_str() {
            "markdown" => ParseMode::Markdown,
            "html" => ParseMode::Html,
            _ => ParseMode::Text,
        })
    }
}

int_enum! {
    /// The kind of a chat (`chatType`).
    ChatType {
        /// `0`: undefined.
        Undefined => 0,
        /// `1`: personal (peer-to-peer) chat.
        P2p => 1,
        /// `2`: group chat.
        Group => 2,
        /// `3`: system chat.
        System => 3,
        /// `5`: the "Favorites" (saved messages) chat.
        Favorites => 5,
        /// `6`: channel.
        Channel => 6,
    }
}

int_enum! {
    /// Who authored a message or performed an action (`author.type`).
    AuthorType {
        /// `0`: the server itself.
        System => 0,
        /// `1`: a user (or bot) account.
        User => 1,
    }
}

int_enum! {
    /// Whether a file can be downloaded yet (`readyState`).
    ReadyState {
        /// `0`: the file cannot be downloaded (gone or failed).
        NotAvailable => 0,
        /// `1`: the sender is still uploading it.
        Uploading => 1,
        /// `2`: `downloadUrl` is usable.
        Ready => 2,
    }
}

int_enum! {
    /// The envelope type (`type` of a message), which selects the shape of its `content`.
    EnvelopeType {
        /// `1`: a participant was added (system).
        AddParticipant => 1,
        /// `2`: a participant was removed (system).
        RemoveParticipant => 2,
        /// `21`: the chat title changed (system).
        EditChatTitle => 21,
        /// `22`: the chat avatar changed (system).
        EditChatAvatar => 22,
        /// `23`: the chat history was cleared (system).
        ClearChatHistory => 23,
        /// `110`: a participant's role was set (system).
        ParticipantRole => 110,
        /// `200`: a text message.
        PlainMessage => 200,
        /// `201`: a forwarded message.
        ForwardedMessage => 201,
        /// `202`: a file.
        Attachment => 202,
        /// `203`: a location.
        Location => 203,
        /// `204`: a survey.
        Survey => 204,
        /// `205`: a voice message.
        VoiceMessage => 205,
    }
}

impl EnvelopeType {
    /// Whether envelopes of this type are system notices rather than user messages.
    pub fn is_system(self) -> bool {
        self.code() < 200
    }
}

/// A chat participant's role. Decodes from the strings the official client uses and from the
/// documented integers 0–6; always encodes as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// `"owner"` / `0`: chat owner.
    Owner,
    /// `"admin"` / `1`: appointed moderator.
    Admin,
    /// `"user"` / `2`: regular participant.
    User,
    /// `"conf_owner"` / `3`: conference owner.
    ConfOwner,
    /// `"conf_moderator"` / `4`: conference moderator.
    ConfModerator,
    /// `"favorites_owner"` / `5`: owner of the Favorites chat.
    FavoritesOwner,
    /// `"writer"` / `6`: may post in a channel.
    Writer,
    /// A role this version of the crate does not know (an unknown integer is kept as its
    /// decimal text).
    Unknown(String),
}

impl Role {
    const TABLE: [(Role, &'static str); 7] = [
        (Role::Owner, "owner"),
        (Role::Admin, "admin"),
        (Role::User, "user"),
        (Role::ConfOwner, "conf_owner"),
        (Role::ConfModerator, "conf_moderator"),
        (Role::FavoritesOwner, "favorites_owner"),
        (Role::Writer, "writer"),
    ];

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Unknown(s) => s,
            known => Self::TABLE
                .iter()
                .find(|(r, _)| r == known)
                .map_or("", |(_, s)| s),
        }
    }

    /// The role for the documented integer value.
    pub fn from_code(code: u64) -> Role {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::TABLE.get(i))
            .map_or_else(|| Role::Unknown(code.to_string()), |(r, _)| r.clone())
    }
}

impl From<&str> for Role {
    fn from(s: &str) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, w)| *w == s)
            .map_or_else(|| Role::Unknown(s.to_owned()), |(r, _)| r.clone())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Role;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a role string or integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Role, E> {
                Ok(Role::from(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Role, E> {
                Ok(Role::from_code(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Role, E> {
                Ok(Role::Unknown(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

string_enum! {
    /// A transient activity indicator (`activityType` of `sendChatActivity`).
    ActivityType {
        /// `"typing"`.
        Typing => "typing",
        /// `"choosing_sticker"`.
        ChoosingSticker => "choosing_sticker",
        /// `"uploading_file"`.
        UploadingFile => "uploading_file",
    }
}

string_enum! {
    /// How a command is answered (`answerType` of `answerCommand`).
    AnswerType {
        /// `"complete"`.
        Complete => "complete",
        /// `"timeout"`.
        Timeout => "timeout",
        /// `"cancel"`.
        Cancel => "cancel",
        /// `"message"`.
        Message => "message",
    }
}

string_enum! {
    /// The status shown with a command answer (`message.status`).
    CommandStatus {
        /// `"unknown"`.
        Unspecified => "unknown",
        /// `"pending"`.
        Pending => "pending",
        /// `"running"`.
        Running => "running",
        /// `"ok"`.
        Ok => "ok",
        /// `"failed"`.
        Failed => "failed",
        /// `"canceled"`.
        Canceled => "canceled",
        /// `"timeout"`.
        Timeout => "timeout",
    }
}

string_enum! {
    /// How a command answer is displayed (`message.visibility`).
    CommandVisibility {
        /// `"default"`.
        Default => "default",
        /// `"toast"`.
        Toast => "toast",
        /// `"sticky"`.
        Sticky => "sticky",
        /// `"alert"`.
        Alert => "alert",
    }
}

string_enum! {
    /// The severity of a command answer (`message.level`).
    CommandLevel {
        /// `"info"`.
        Info => "info",
        /// `"warning"`.
        Warning => "warning",
        /// `"error"`.
        Error => "error",
        /// `"critical"`.
        Critical => "critical",
    }
}

string_enum! {
    /// The look of an inline button (`style`).
    ButtonStyle {
        /// `"default"`.
        Default => "default",
        /// `"primary"`.
        Primary => "primary",
        /// `"danger"`.
        Danger => "danger",
        /// `"success"`.
        Success => "success",
    }
}

string_enum! {
    /// What an inline button does (`type`).
    ButtonType {
        /// `"command"`: sends a command back to the bot.
        Command => "command",
        /// `"url"`: opens a link.
        Url => "url",
        /// `"message"`: the user's client sends (or drafts) a text.
        Message => "message",
        /// `"copy"`: copies data to the clipboard.
        Copy => "copy",
        /// `"share"`: shares the message.
        Share => "share",
    }
}

string_enum! {
    /// Whether an upload extension list is a whitelist or a blacklist (`extensions.mode`).
    ExtensionsMode {
        /// `"allow"`: only the listed extensions may be uploaded.
        Allow => "allow",
        /// `"block"`: the listed extensions may not be uploaded.
        Block => "block",
    }
}

string_enum! {
    /// The kind of a survey, carried in its `description` placeholder.
    SurveyKind {
        /// `"{{Survey}}"`: answers are attributed.
        Named => "{{Survey}}",
        /// `"{{Anonymous survey}}"`.
        Anonymous => "{{Anonymous survey}}",
    }
}

string_enum! {
    /// The `error` string of an OAuth token endpoint failure.
    OAuthErrorKind {
        /// `"invalid_request"`.
        InvalidRequest => "invalid_request",
        /// `"invalid_client"`.
        InvalidClient => "invalid_client",
        /// `"invalid_grant"`: wrong login or password.
        InvalidGrant => "invalid_grant",
        /// `"unsupported_grant_type"`.
        UnsupportedGrantType => "unsupported_grant_type",
        /// `"auth_method_disabled"`: password login is switched off on the server.
        AuthMethodDisabled => "auth_method_disabled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values() {
        let t: ChatType = serde_json::from_str("4").unwrap();
        assert_eq!(t, ChatType::Unknown(4));
        assert_eq!(serde_json::to_string(&t).unwrap(), "4");
        let a: ActivityType = serde_json::from_str("\"recording\"").unwrap();
        assert_eq!(a, ActivityType::Unknown("recording".into()));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"recording\"");
        assert_eq!(
            serde_json::from_str::<ButtonStyle>("\"danger\"").unwrap(),
            ButtonStyle::Danger
        );
        assert!(EnvelopeType::from(110).is_system());
        assert!(!EnvelopeType::from(205).is_system());
    }

    #[test]
    fn parse_mode_is_lenient() {
        let p: ParseMode = serde_json::from_str("\"HTML\"").unwrap();
        assert_eq!(p, ParseMode::Html);
        let p: ParseMode = serde_json::from_str("\"bbcode\"").unwrap();
        assert_eq!(p, ParseMode::Text);
        assert_eq!(
            serde_json::to_string(&ParseMode::Markdown).unwrap(),
            "\"markdown\""
        );
    }
}
