//! The HTTP side of connecting: server info (§3) and tokens (§2, §2.1).

use serde::Deserialize;
use serde_json::json;

use super::state::{Failure, FailureKind};
use super::tls::{MAX_SMALL_BODY, http_error, read_small_body, redact_url};
use crate::error::Error;
use crate::runtime::config::{AuthSource, Config, Secret};
use crate::types::http::WebApiError;
use crate::types::{ServerInfo, ServerVersion, server::MIN_SERVER_VERSION};

/// Why connecting failed: worth retrying, or not.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Fatal(Failure),
    Transient(Error),
}

impl From<Error> for ConnectError {
    fn from(e: Error) -> Self {
        ConnectError::Transient(e)
    }
}

fn fatal(kind: FailureKind, message: impl Into<String>) -> ConnectError {
    ConnectError::Fatal(Failure::new(kind, message))
}

/// `GET /api/v4/server`. Transport errors (an answer over [`MAX_SMALL_BODY`] or slower than
/// the request timeout included) are transient; an unreadable answer only loses the domain
/// (bare user ids then go out as they are) and the version check.
pub(crate) async fn server_info(
    http: &reqwest::Client,
    config: &Config,
) -> Result<Option<ServerInfo>, ConnectError> {
    let url = format!("{}/api/v4/server", config.http_base());
    let resp = http
        .get(&url)
        // The client's read timeout only bounds each read; a body that drips forever needs
        // an overall deadline.
        .timeout(config.request_timeout)
        .send()
        .await
        .map_err(|e| http_error("server info", e))?;
    let status = resp.status();
    if !status.is_success() {
        tracing::warn!(%url, %status, "server info unavailable; bare user ids will not be completed");
        return Ok(None);
    }
    let body = read_small_body(resp, MAX_SMALL_BODY, "server info").await?;
    let info: ServerInfo = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(%url, error = %e, "unreadable server info; bare user ids will not be completed");
            return Ok(None);
        }
    };
    check_version(&info.product.version)?;
    Ok(Some(info))
}

/// Refuses servers older than 5.5.0 (no Chatbot Connector); an unparsable version only warns.
pub(crate) fn check_version(version: &str) -> Result<(), ConnectError> {
    match version.parse::<ServerVersion>() {
        Ok(v) if !v.supports_bots() => Err(fatal(
            FailureKind::UnsupportedServer,
            format!(
                "TrueConf Server {version} is too old: chat bots need {MIN_SERVER_VERSION} or newer"
            ),
        )),
        Ok(_) => Ok(()),
        Err(_) => {
            tracing::warn!(version, "unrecognised server version; continuing");
            Ok(())
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// Obtains a Bridge JWT from the configured credentials; `Ok(None)` for a fixed token.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    config: &Config,
) -> Result<Option<Secret>, ConnectError> {
    let base = config.http_base();
    match &config.auth {
        AuthSource::Token => Ok(None),
        AuthSource::Credentials { user, password } => {
            let body = json!({
                "client_id": "chat_bot",
                "grant_type": "password",
                "username": user,
                "password": password.expose(),
            });
            let url = format!("{base}/bridge/api/client/v1/oauth/token");
            let t: TokenResponse = post(http, config, &url, &body, "token").await?;
            Ok(Some(Secret::new(t.access_token)))
        }
        AuthSource::OAuthApp {
            client_id,
            user,
            password,
        } => {
            let body = json!({
                "client_id": client_id,
                "grant_type": "password",
                "username": user,
                "password": password.expose(),
            });
            let web: TokenResponse = post(
                http,
                config,
                &format!("{base}/api/v4/oauth2/token"),
                &body,
                "OAuth token",
            )
            .await?;
            #[derive(Deserialize)]
            struct Code {
                authorization_code: String,
            }
            let body = json!({"client_id": user, "token": web.access_token});
            let code: Code = post(
                http,
                config,
                &format!("{base}/bridge/api/client/v1/auth/web_rest_api_token"),
                &body,
                "authorization code",
            )
            .await?;
            let body = json!({
                "client_id": "user",
                "grant_type": "authorization_code",
                "code": code.authorization_code,
            });
            let t: TokenResponse = post(
                http,
                config,
                &format!("{base}/bridge/api/client/v1/auth/token"),
                &body,
                "Bridge token",
            )
            .await?;
            Ok(Some(Secret::new(t.access_token)))
        }
    }
}

/// One step of a token flow. The answer is read up to [`MAX_SMALL_BODY`] within the request
/// timeout; a redirect is refused, never followed (the body carries the password).
async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    config: &Config,
    url: &str,
    body: &serde_json::Value,
    what: &str,
) -> Result<T, ConnectError> {
    let resp = http
        .post(url)
        .timeout(config.request_timeout)
        .json(body)
        .send()
        .await
        .map_err(|e| http_error(what, e))?;
    let status = resp.status();
    if status.is_redirection() {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| format!(" to {}", redact_url(l)))
            .unwrap_or_default();
        return Err(fatal(
            FailureKind::Auth,
            format!(
                "{what}: the server answered HTTP {} (a redirect{to}); requests that carry \
                 credentials are not redirected: check the server's address, port and `https` \
                 setting",
                status.as_u16()
            ),
        ));
    }
    let bytes = read_small_body(resp, MAX_SMALL_BODY, what).await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            ConnectError::Transient(Error::http(
                Some(status.as_u16()),
                format!("{what}: unexpected response body: {e}"),
            ))
        });
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let error = body.get("error");
    let invalid_scope =
        serde_json::from_value::<WebApiError>(body.clone()).is_ok_and(|e| e.is_invalid_scope());
    let code = status.as_u16();
    match code {
        401 => Err(fatal(
            FailureKind::Auth,
            format!("{what}: invalid username, password or client id (HTTP 401)"),
        )),
        403 if error.and_then(|e| e.as_str()) == Some("auth_method_disabled") => Err(fatal(
            FailureKind::Auth,
            "password login is disabled on this server (HTTP 403 auth_method_disabled); \
             register an OAuth application and use `BotBuilder::oauth_app`",
        )),
        400 if invalid_scope => Err(fatal(
            FailureKind::Auth,
            "the OAuth application has no scope (HTTP 400 invalidScope); give it at least one \
             scope such as `version:read`",
        )),
        400..=499 => Err(fatal(
            FailureKind::Auth,
            format!("{what} request rejected with HTTP {code}"),
        )),
        _ => Err(ConnectError::Transient(Error::http(
            Some(code),
            format!("{what} request failed"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_gate() {
        assert!(check_version("5.5.3.1234").is_ok());
        assert!(check_version("5.5.0").is_ok());
        assert!(check_version("6.0").is_ok());
        assert!(matches!(
            check_version("5.4.9.1"),
            Err(ConnectError::Fatal(Failure {
                kind: FailureKind::UnsupportedServer,
                ..
            }))
        ));
        assert!(check_version("garbage").is_ok());
    }
}
