//! `Debug` for config types that never shows a secret, so a config can be logged or put in a
//! panic message safely.

use std::fmt;

use super::{Auth, Config};
use crate::redact::Redacted;

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &crate::redact::shown_url(self.url.url().as_str()))
            .field("method", &self.method)
            .field("headers", &Redacted(self.headers.len()))
            .field("auth", &self.auth)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| Redacted(())),
            )
            .field("signing_secrets", &Redacted(self.signing_secrets.len()))
            .field(
                "hmac_signature",
                &self.hmac_signature.as_ref().map(|h| &h.header_name),
            )
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_retries", &self.max_retries)
            .field("concurrency", &self.concurrency)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("batch_size", &self.batch_size)
            .field("on_client_error", &self.on_client_error)
            .field("compression", &self.compression)
            .field("tls", &self.tls.as_ref().map(|_| Redacted(())))
            .field("proxy", &self.proxy.as_ref().map(|p| &p.url))
            .field("request", &self.request)
            .field(
                "routes",
                &self.routes.iter().map(|(op, _)| op).collect::<Vec<_>>(),
            )
            .field(
                "objects",
                &self.objects.iter().map(|o| &o.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
            Auth::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Auth::Oauth2ClientCredentials(oauth) => write!(
                f,
                "Oauth2ClientCredentials {{ token_url: {:?}, client_id: {:?}, client_secret: <redacted> }}",
                crate::redact::shown_url(&oauth.token_url),
                oauth.client_id
            ),
            Auth::ApiKey { header_name, .. } => {
                write!(
                    f,
                    "ApiKey {{ header_name: {header_name:?}, api_key: <redacted> }}"
                )
            }
        }
    }
}
