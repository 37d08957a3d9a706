//! One rustls client configuration, used by `check` for its handshake and by `write` for every
//! request, so a check that passes means the sync's TLS will too.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{0}: no PEM certificate found")]
    NoCertificate(&'static str),
    #[error("tls.{0}: {1}")]
    Pem(&'static str, String),
    #[error("tls.client_key: no PEM private key found")]
    NoKey,
    #[error("tls: client_certificate and client_key must be given together")]
    HalfClientAuth,
    #[error("tls: {0}")]
    Rustls(String),
}

fn certificates(pem: &str, field: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(field, e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(field));
    }
    Ok(certs)
}

pub fn client_config(tls: Option<&TlsConfig>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = tls.cloned().unwrap_or_default();
    if let Some(pem) = &tls.ca_certificate {
        for cert in certificates(pem, "ca_certificate")? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Pem("ca_certificate", e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.client_certificate, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "client_certificate")?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key.as_bytes())
                .map_err(|_| TlsError::NoKey)?
                .ok_or(TlsError::NoKey)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                TlsError::Rustls(format!(
                    "client certificate and key do not match or are unusable: {e}"
                ))
            })?
        }
        _ => return Err(TlsError::HalfClientAuth),
    };
    Ok(Arc::new(config))
}

/// A TLS failure in words a person can act on, or `None` when the error is not about TLS.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(mut e) = source {
        // An io::Error hides what it wraps from `source()`; look inside (they nest).
        while let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            e = inner;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(reason) => format!(
                    "TLS certificate not trusted: {reason:?}; if the server uses a private CA, set tls.ca_certificate"
                ),
                rustls::Error::AlertReceived(alert) => format!(
                    "the server refused the TLS handshake ({alert:?}); if it requires a client certificate, set tls.client_certificate and tls.client_key"
                ),
                rustls::Error::InvalidMessage(_) => {
                    "the server did not answer in TLS; is it plain http on this port?".to_string()
                }
                other => format!("TLS failed: {other}"),
            });
        }
        source = e.source();
    }
    None
}

/// `check`'s message for a failed handshake.
pub fn describe_failure(e: &std::io::Error, shown: &str) -> String {
    let tls = e.get_ref().and_then(|inner| explain(inner));
    match tls {
        Some(text) => format!("{text} (server {shown})"),
        None => format!("TLS handshake with {shown} failed: {e}"),
    }
}
