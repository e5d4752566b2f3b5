//! One client configuration shared by the WebSocket and HTTP clients: rustls (ring provider),
//! and the rules every HTTP request of the bot follows (no redirects, no `Referer`, HTTPS
//! only when TLS is on, small answers read up to a cap).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// How the server's TLS certificate is checked. The default verifies it against the system
/// roots.
#[derive(Clone)]
pub struct TlsOptions {
    /// `false` accepts any certificate (a warning is logged once per bot).
    pub verify: bool,
    /// PEM bundle of trusted CAs replacing the system roots (on-prem private CAs).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("verify", &self.verify)
            .field("custom_ca", &self.ca_pem.is_some())
            .finish()
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            verify: true,
            ca_pem: None,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs rustls' `ring` provider as the process-wide default, unless one is installed
/// already; returns whether this call installed it.
///
/// The crate's own TLS never needs this (it names its provider), but its `reqwest`
/// dependency turns on reqwest's `rustls-no-provider` feature, and cargo unifies features:
/// a `reqwest::Client::new()` in your own code would then find no provider and panic ("No
/// rustls crypto provider is configured"). [`Bot::builder`](crate::bot::Bot::builder) calls
/// this, so any HTTP client built after the first bot works; call it first thing in `main`
/// if your program builds one earlier. To use another provider, install it before either.
pub fn install_crypto_provider() -> bool {
    if CryptoProvider::get_default().is_some() {
        return false;
    }
    // Losing a race with another installer is fine: some provider is then installed.
    rustls::crypto::ring::default_provider()
        .install_default()
        .is_ok()
}

/// Builds the client configuration for `options`.
pub(crate) fn client_config(options: &TlsOptions) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::transport("TLS setup failed", e))?;
    if !options.verify {
        tracing::warn!(
            "TLS certificate verification is disabled: the server's identity is not checked"
        );
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &options.ca_pem {
        Some(pem) => {
            let mut added = 0;
            // rustls-pemfile is unmaintained (RUSTSEC-2025-0134); pki-types has the same parser.
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    Error::invalid("ca_certificate_pem", format!("unreadable PEM: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::invalid("ca_certificate_pem", format!("bad CA certificate: {e}"))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::invalid(
                    "ca_certificate_pem",
                    "no CERTIFICATE block found in the PEM data",
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!(error = %e, "could not load some system root certificates");
            }
            let (ok, bad) = roots.add_parsable_certificates(native.certs);
            if ok == 0 {
                tracing::warn!(
                    rejected = bad,
                    "no system root certificates found; TLS connections will fail unless a CA \
                     is configured with `ca_certificate_pem`"
                );
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The largest answer read from the server info and token endpoints, the upload response and
/// other small JSON answers: far above any real one, and a bound on what a hostile or broken
/// server can make the bot buffer.
pub(crate) const MAX_SMALL_BODY: usize = 1 << 20;

/// An HTTP client builder with the bot's TLS settings and request rules.
///
/// Redirects are never followed: the token requests carry the password in their body, which
/// reqwest re-sends on a 307/308 to whatever origin the `Location` names, and a download URL
/// authorises itself, so it would travel on as the `Referer`. A 3xx reaches the caller as an
/// answer, to be reported with its status. With TLS on, a plain `http` URL is refused.
pub(crate) fn http_client(tls: &ClientConfig, https: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .user_agent(concat!("trueconf-bot-rs/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .https_only(https)
}

/// An [`Error::Http`] for a reqwest failure, without the request's URL: a download URL
/// carries its own authorisation, and reqwest names the URL in `Display` and `Debug`. The
/// causes are kept in the message (they name no URL), so the error still says what broke.
pub(crate) fn http_error(what: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut message = format!("{what}: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    Error::Http {
        status: e.status().map(|s| s.as_u16()),
        message,
        source: Some(Box::new(e)),
    }
}

/// Reads a small answer's body, at most `cap` bytes: a longer one (declared or actual) is
/// refused with [`Error::Http`] as soon as it is known, without reading further.
pub(crate) async fn read_small_body(
    mut resp: reqwest::Response,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>> {
    let status = resp.status().as_u16();
    let too_large = || Error::Http {
        status: Some(status),
        message: format!("{what}: the answer is larger than {cap} bytes; not read further"),
        source: None,
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_error(what, e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL for messages: scheme, host, port and path, without the query (which may authorise)
/// or user info.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => {
            let end = url.find(['?', '#']).unwrap_or(url.len());
            url[..end].to_owned()
        }
    }
}

#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn with_tls_on_plain_http_urls_are_refused_before_connecting() {
        let tls = client_config(&TlsOptions {
            verify: false,
            ca_pem: None,
        })
        .unwrap();
        let client = http_client(&tls, true).build().unwrap();
        // Nothing listens on the discard port; only the scheme check can answer.
        let e = client.get("http://127.0.0.1:9/x").send().await.unwrap_err();
        assert!(e.is_builder(), "{e:?}");
    }

    #[test]
    fn redacted_urls_keep_no_query_or_user_info() {
        assert_eq!(
            redact_url("https://u:p@h.example:8443/files/1/download?token=s#f"),
            "https://h.example:8443/files/1/download"
        );
        assert_eq!(redact_url("not a url?token=s"), "not a url");
    }
}
