//! Files sent from a URL: the body is downloaded first (the server wants the size before
//! the upload, and a `Content-Length` may be missing or wrong for dynamic sources), so the
//! declared size is the real one, as the official client's `URLInputFile` does.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::runtime::connection::TlsOptions;
use crate::runtime::connection::tls::{client_config, http_error, redact_url};

/// Default cap on a URL body held in memory: 64 MiB.
pub(crate) const DEFAULT_MAX_URL_SIZE: u64 = 64 << 20;

/// Redirects followed for a URL file (the bot's own requests follow none).
const MAX_REDIRECTS: usize = 5;

/// Where and how to fetch a URL file.
#[derive(Clone)]
pub(crate) struct UrlSource {
    pub url: String,
    pub max_size: u64,
    pub timeout: Duration,
}

impl std::fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The query or user info may authorise (a signed link): never shown.
        f.debug_struct("UrlSource")
            .field("url", &redact_url(&self.url))
            .field("max_size", &self.max_size)
            .finish()
    }
}

/// What the fetch learned: the body, and the name and MIME type the answer suggests.
pub(crate) struct Fetched {
    pub body: Bytes,
    pub name: Option<String>,
    pub mime: Option<String>,
}

/// The TLS settings for URL files: the system roots, always verified. Not the bot's own:
/// a private CA configured for the TrueConf server replaces the roots (public hosts would
/// fail), and `verify_ssl(false)`, meant for a test server, must not switch verification
/// off for any host on the internet. Loaded once per process.
fn public_tls() -> Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let config = Arc::new(client_config(&TlsOptions::default())?);
    Ok(CONFIG.get_or_init(|| config).clone())
}

/// Downloads `src` (TLS: [`public_tls`]).
///
/// The rules: only `http`/`https`; at most [`MAX_REDIRECTS`] redirects and never from
/// `https` to `http`; no `Referer`; the bot's token is never sent (this client carries no
/// credentials of the bot); the body is read to at most `max_size` bytes (a larger declared
/// or actual body is refused without reading on) within `timeout`; errors show the URL
/// without its query or user info.
pub(crate) async fn fetch(src: &UrlSource) -> Result<Fetched> {
    let shown = redact_url(&src.url);
    let parsed = reqwest::Url::parse(&src.url)
        .map_err(|e| Error::invalid("url", format!("{shown:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid(
            "url",
            format!("{shown:?}: only http and https URLs can be fetched"),
        ));
    }
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            attempt.error("redirect from https to http refused")
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*public_tls()?).clone())
        .user_agent(concat!("trueconf-bot-rs/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .referer(false)
        .connect_timeout(src.timeout)
        .build()
        .map_err(|e| http_error("HTTP client setup failed", e))?;
    let what = format!("file from {shown}");
    let mut resp = client
        .get(parsed)
        .timeout(src.timeout)
        .send()
        .await
        .map_err(|e| http_error(&what, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::http(
            Some(status.as_u16()),
            format!("{what}: the server answered {status}"),
        ));
    }
    let too_large = || {
        Error::invalid(
            "url",
            format!(
                "{what} is larger than {} bytes; not read further",
                src.max_size
            ),
        )
    };
    if resp.content_length().is_some_and(|n| n > src.max_size) {
        return Err(too_large());
    }
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mime = header(reqwest::header::CONTENT_TYPE)
        .map(|m| m.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|m| !m.is_empty());
    let name = header(reqwest::header::CONTENT_DISPOSITION)
        .as_deref()
        .and_then(name_from_disposition)
        .or_else(|| name_from_url(resp.url()));
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_error(&what, e))? {
        if (body.len() + chunk.len()) as u64 > src.max_size {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body: body.freeze(),
        name,
        mime,
    })
}

/// `filename="x.pdf"` / `filename=x.pdf` of a `Content-Disposition` (`filename*` with its
/// charset is taken when it is UTF-8 and needs no percent-decoding beyond ASCII).
fn name_from_disposition(value: &str) -> Option<String> {
    let mut plain = None;
    for part in value.split(';').map(str::trim) {
        let Some((key, v)) = part.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let v = v.trim();
        if key == "filename*" {
            let rest = v
                .strip_prefix("UTF-8''")
                .or_else(|| v.strip_prefix("utf-8''"))?;
            if let Some(decoded) = percent_decode(rest) {
                return clean_name(&decoded);
            }
        } else if key == "filename" {
            plain = clean_name(v.trim_matches('"'));
        }
    }
    plain
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k] == b'%' {
            let hex = s.get(k + 1..k + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            k += 3;
        } else {
            out.push(bytes[k]);
            k += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The last path segment of the final URL (after redirects).
fn name_from_url(url: &reqwest::Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    clean_name(&percent_decode(last).unwrap_or_else(|| last.to_owned()))
}

/// A file name without directories; `None` when nothing usable is left.
fn clean_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    (!base.is_empty() && base != "." && base != "..").then(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_disposition_then_url() {
        assert_eq!(
            name_from_disposition(r#"attachment; filename="report.pdf""#).as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            name_from_disposition(
                "attachment; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.txt; filename=x.txt"
            )
            .as_deref(),
            Some("отчёт.txt")
        );
        assert_eq!(
            name_from_disposition(r#"attachment; filename="../../etc/passwd""#).as_deref(),
            Some("passwd")
        );
        assert_eq!(name_from_disposition("inline"), None);
        let url = reqwest::Url::parse("https://cdn.example/a/b/photo%201.jpg?sig=1").unwrap();
        assert_eq!(name_from_url(&url).as_deref(), Some("photo 1.jpg"));
        let root = reqwest::Url::parse("https://cdn.example/").unwrap();
        assert_eq!(name_from_url(&root), None);
    }
}
