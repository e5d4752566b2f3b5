//! HS256 JWTs signed by the emulator, so `auth` can tell forged, expired and valid tokens apart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused, mapped to the `auth` error codes by the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not a JWT, or not signed by this emulator (201).
    Invalid,
    /// Signed by us, but `exp` has passed (203).
    Expired,
}

pub(crate) fn sign(secret: &[u8], sub: &str, exp: i64) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "sub": sub, "exp": exp, "iat": now_secs() });
    let body = B64.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let signature = B64.encode(mac(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Verifies signature and expiry; returns the `sub` claim.
pub(crate) fn verify(secret: &[u8], token: &str) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let signature = B64.decode(signature).map_err(|_| TokenError::Invalid)?;
    let mut hmac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::Invalid)?;
    hmac.update(header.as_bytes());
    hmac.update(b".");
    hmac.update(body.as_bytes());
    hmac.verify_slice(&signature)
        .map_err(|_| TokenError::Invalid)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(body).map_err(|_| TokenError::Invalid)?)
            .map_err(|_| TokenError::Invalid)?;
    let exp = claims["exp"].as_i64().ok_or(TokenError::Invalid)?;
    if exp <= now_secs() {
        return Err(TokenError::Expired);
    }
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or(TokenError::Invalid)
}

fn mac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut hmac = match HmacSha256::new_from_slice(secret) {
        Ok(hmac) => hmac,
        // HMAC accepts keys of any length.
        Err(_) => return Vec::new(),
    };
    hmac.update(data);
    hmac.finalize().into_bytes().to_vec()
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_forgery_and_expiry() {
        let t = sign(b"k", "bot@x", now_secs() + 60);
        assert_eq!(verify(b"k", &t), Ok("bot@x".into()));
        assert_eq!(verify(b"other", &t), Err(TokenError::Invalid));
        assert_eq!(verify(b"k", "a.b"), Err(TokenError::Invalid));
        let old = sign(b"k", "bot@x", now_secs() - 1);
        assert_eq!(verify(b"k", &old), Err(TokenError::Expired));
    }
}
