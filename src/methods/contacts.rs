//! Contact methods (§8.7).

use serde::{Deserialize, Serialize};

use super::request;

/// `getUserDisplayName`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetUserDisplayName {
    /// The user (a bare login is completed with the server domain).
    pub user_id: String,
}

impl GetUserDisplayName {
    /// The display name of `user_id`.
    pub fn new(user_id: impl Into<String>) -> Self {
        GetUserDisplayName {
            user_id: user_id.into(),
        }
    }
}

/// `getUserDisplayName` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisplayName {
    /// The user's display name.
    pub display_name: String,
}

request!(
    GetUserDisplayName,
    "getUserDisplayName",
    DisplayName,
    idempotent,
    users(user_id)
);
