//! Local sanity check of a JWT access token (§2.2), as the official client does before
//! connecting. The signature is not checked: only the server can do that.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::{Error, Result};

/// What the local check learned from a token's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `exp` claim, Unix seconds, if present.
    pub expires_at: Option<u64>,
    /// `sub` claim (the account), if present.
    pub subject: Option<String>,
}

/// Checks that `token` looks like a usable JWT at time `now`: no whitespace, three
/// `.`-separated parts with non-empty header and payload, both base64url-encoded JSON
/// objects, and an `exp` claim (if any) not in the past.
///
/// Malformed tokens are [`Error::InvalidArgument`] (argument `token`); an expired token is
/// [`Error::Auth`]. The token itself never appears in the error.
pub fn check(token: &str, now: SystemTime) -> Result<TokenInfo> {
    if token.is_empty() {
        return Err(Error::invalid("token", "must not be empty"));
    }
    if token.chars().any(char::is_whitespace) {
        return Err(Error::invalid("token", "must not contain whitespace"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(Error::invalid(
            "token",
            format!("a JWT has three '.'-separated parts; got {}", parts.len()),
        ));
    }
    if parts[0].is_empty() || parts[1].is_empty() {
        return Err(Error::invalid(
            "token",
            "JWT header and payload must not be empty",
        ));
    }
    decode_part("header", parts[0])?;
    let payload = decode_part("payload", parts[1])?;
    let expires_at = match payload.get("exp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or_else(|| Error::invalid("token", "JWT claim `exp` is not a number"))?,
        ),
    };
    if let Some(exp) = expires_at {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now_secs > exp {
            return Err(Error::Auth {
                reason: format!("token expired at {exp} (Unix seconds); now is {now_secs}"),
                code: None,
            });
        }
    }
    Ok(TokenInfo {
        expires_at,
        subject: payload
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn decode_part(which: &str, part: &str) -> Result<Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| Error::invalid("token", format!("JWT {which} is not base64url: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("token", format!("JWT {which} is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::invalid(
            "token",
            format!("JWT {which} is not a JSON object"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn accepts_valid_token_until_exp() {
        let t = jwt(r#"{"sub":"bot","exp":1000}"#);
        let info = check(&t, at(1000)).unwrap();
        assert_eq!(info.expires_at, Some(1000));
        assert_eq!(info.subject.as_deref(), Some("bot"));
        assert!(matches!(check(&t, at(1001)), Err(Error::Auth { .. })));
    }

    #[test]
    fn rejects_malformed_tokens() {
        for bad in [
            "",
            "a b.c.d",
            "abc.def",
            ".x.y",
            "!!!.e30.sig",
            "e30.bm90IGpzb24.sig",
            "a.b.c.d",
        ] {
            match check(bad, at(0)) {
                Err(Error::InvalidArgument { argument, .. }) => assert_eq!(argument, "token"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn padded_parts_are_accepted() {
        let t = format!(
            "{}==.{}=.s",
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(check(&t, at(0)).is_ok());
    }
}
