//! One rustls client configuration (ring provider) shared by the WebSocket and HTTP clients.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// How the server's TLS certificate is checked.
#[derive(Clone, Default)]
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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
