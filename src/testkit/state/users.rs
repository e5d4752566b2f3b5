//! Accounts as the protocol names them: `login@domain` ids, display names, and the accounts
//! scripted users and tests create on first mention.
//!
//! User ids arrive from the network in several spellings (with or without a `/resource`);
//! resolving them to a known login in one place keeps the 302 rule for unknown users uniform.

use serde_json::{Value, json};

use super::State;
use super::model::UserRecord;
use super::payload::Request;
use crate::testkit::wire::{ApiResult, E_ACCESS_DENIED};

impl State {
    /// The wire id of `login`, `login@domain`.
    pub(crate) fn full_id(&self, login: &str) -> String {
        format!("{login}@{}", self.domain)
    }

    /// Resolves a wire `userId` (`login@domain`, optionally `/resource`) to a known login.
    pub(super) fn login_of(&self, user_id: &str) -> ApiResult<String> {
        let bare = user_id.split('/').next().unwrap_or(user_id);
        let (login, domain) = bare.split_once('@').ok_or(E_ACCESS_DENIED)?;
        if domain != self.domain || !self.users.contains_key(login) {
            return Err(E_ACCESS_DENIED);
        }
        Ok(login.to_owned())
    }

    /// Creates the account `login` (no password, display name = capitalised login) if missing.
    pub(crate) fn ensure_user(&mut self, login: &str) {
        self.users
            .entry(login.to_owned())
            .or_insert_with(|| UserRecord {
                display_name: capitalized(login),
                password: None,
                disabled: false,
                bot: false,
            });
    }

    /// `getUserDisplayName`.
    pub(super) fn api_get_user_display_name(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let login = self.login_of(req.str_field("userId")?)?;
        let name = self
            .users
            .get(&login)
            .map(|user| user.display_name.clone())
            .unwrap_or_default();
        Ok(json!({ "displayName": name }))
    }
}

/// `login` with its first letter in upper case.
fn capitalized(login: &str) -> String {
    let mut chars = login.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
