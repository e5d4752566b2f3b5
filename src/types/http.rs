//! HTTP bodies of the token endpoints (§2, §2.1). Secrets are redacted from `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::enums::OAuthErrorKind;

const REDACTED: &str = "<redacted>";

/// `POST /bridge/api/client/v1/oauth/token` (password grant), and step 1 of the
/// OAuth-application flow (`POST /api/v4/oauth2/token`) with the application's `client_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// `"chat_bot"` for the Bridge endpoint; the OAuth application's id for step 1.
    pub client_id: String,
    /// `"password"`.
    pub grant_type: String,
    /// Account login.
    pub username: String,
    /// Account password.
    pub password: String,
}

impl TokenRequest {
    /// The Bridge password-grant body.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::oauth_app("chat_bot", username, password)
    }

    /// Step 1 of the OAuth-application flow.
    pub fn oauth_app(
        client_id: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        TokenRequest {
            client_id: client_id.into(),
            grant_type: "password".into(),
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("client_id", &self.client_id)
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .finish()
    }
}

/// A successful token response (every step that returns `access_token`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The token.
    pub access_token: String,
    /// `"JWT"` (Bridge) or `"bearer"` (web API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A standard OAuth 2.0 error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// Error kind.
    pub error: OAuthErrorKind,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The web API's error body (e.g. HTTP 400 `invalidScope` from `/api/v4/oauth2/token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebApiError {
    /// The error.
    pub error: WebApiErrorBody,
}

/// `error` of [`WebApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebApiErrorBody {
    /// Individual errors.
    #[serde(default)]
    pub errors: Vec<WebApiErrorItem>,
    /// HTTP-like code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}

/// One item of [`WebApiErrorBody::errors`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebApiErrorItem {
    /// Machine-readable reason, e.g. `"invalidScope"`.
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl WebApiError {
    /// Whether the OAuth application has no scope configured.
    pub fn is_invalid_scope(&self) -> bool {
        self.error.errors.iter().any(|e| e.reason == "invalidScope")
    }
}

/// Step 2 of the OAuth-application flow: `POST /bridge/api/client/v1/auth/web_rest_api_token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebRestApiTokenRequest {
    /// The bot's login.
    pub client_id: String,
    /// The web API token from step 1.
    pub token: String,
}

impl fmt::Debug for WebRestApiTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRestApiTokenRequest")
            .field("client_id", &self.client_id)
            .field("token", &REDACTED)
            .finish()
    }
}

/// Step 2 response.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebRestApiTokenResponse {
    /// Code to exchange in step 3.
    pub authorization_code: String,
}

impl fmt::Debug for WebRestApiTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRestApiTokenResponse")
            .field("authorization_code", &REDACTED)
            .finish()
    }
}

/// Step 3 of the OAuth-application flow: `POST /bridge/api/client/v1/auth/token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCodeTokenRequest {
    /// `"user"`.
    pub client_id: String,
    /// `"authorization_code"`.
    pub grant_type: String,
    /// The code from step 2.
    pub code: String,
}

impl AuthCodeTokenRequest {
    /// The step 3 body for `code`.
    pub fn new(code: impl Into<String>) -> Self {
        AuthCodeTokenRequest {
            client_id: "user".into(),
            grant_type: "authorization_code".into(),
            code: code.into(),
        }
    }
}

impl fmt::Debug for AuthCodeTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCodeTokenRequest")
            .field("client_id", &self.client_id)
            .field("grant_type", &self.grant_type)
            .field("code", &REDACTED)
            .finish()
    }
}
