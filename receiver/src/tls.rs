//! HTTPS for the receiver: a certificate for 127.0.0.1 and localhost made at start-up, signed by
//! a CA made with it, so a client trusts the receiver by that CA's PEM alone (the connector's
//! `tls.ca_certificate`). HTTP/2 is offered by ALPN or not, so one benchmark can compare both.

use std::io;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// How the receiver speaks TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// Offer `h2` before `http/1.1` in ALPN; without it only `http/1.1` is offered.
    pub http2: bool,
}

/// The acceptor and the PEM of the CA that signed its certificate.
pub(crate) struct Identity {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) ca_pem: String,
}

impl Identity {
    pub(crate) fn new(tls: Tls) -> io::Result<Identity> {
        let failed = |e: rcgen::Error| io::Error::other(format!("cannot make a certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(failed)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
        let key = KeyPair::generate().map_err(failed)?;
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let cert = CertificateParams::new(names)
            .map_err(failed)?
            .signed_by(&key, &ca, &ca_key)
            .map_err(failed)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
            .map_err(io::Error::other)?;
        config.alpn_protocols = match tls.http2 {
            true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            false => vec![b"http/1.1".to_vec()],
        };
        Ok(Identity {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca.pem(),
        })
    }
}
