//! Standard Webhooks signature checking, so tests can assert the connector
//! signs exactly what it sends.

use std::io;

use hyper::HeaderMap;
use standardwebhooks::Webhook;

pub(crate) struct Verifier(Webhook);

impl Verifier {
    /// `whsec_<base64>` is decoded as the Standard Webhooks spec says; any other
    /// secret is used as raw bytes, matching senders that take a plain
    /// password-like secret.
    pub(crate) fn new(secret: &str) -> io::Result<Verifier> {
        let webhook = if secret.starts_with("whsec_") {
            Webhook::new(secret)
        } else {
            Webhook::from_bytes(secret.as_bytes().to_vec())
        };
        webhook.map(Verifier).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad signing secret: {e}"),
            )
        })
    }

    /// A compressed request is accepted if the signature covers either the
    /// bytes on the wire or the decompressed payload: the spec does not say
    /// which, and this receiver is not the place to decide it.
    pub(crate) fn is_valid(&self, headers: &HeaderMap, wire: &[u8], decoded: &[u8]) -> bool {
        self.0.verify(wire, headers).is_ok()
            || (decoded != wire && self.0.verify(decoded, headers).is_ok())
    }
}
