//! What a config means for a run: the defaults of absent fields, Valmi's injected
//! `run_time_args` standing in for absent top-level ones, the run's identity, and every secret
//! the config holds.

use serde_json::Value;

use super::{Auth, Config, RunTimeArgs};
use crate::endpoint::basic_credential;
use crate::idempotency::RunScope;

const DEFAULT_TIMEOUT_SECONDS: f64 = 30.0;
const DEFAULT_MAX_RETRIES: u32 = 5;
const DEFAULT_CHUNK_SIZE: u64 = 300;
const DEFAULT_RECORDS_PER_METRIC: u64 = 10;

impl Config {
    /// The body template and what it is written in, when one is configured.
    pub fn body_template(&self) -> Option<(&str, super::ContentType)> {
        let request = self.request.as_ref()?;
        Some((request.body.as_deref()?, request.content_type))
    }

    fn run_time_args(&self) -> Option<&RunTimeArgs> {
        self.run_time_args.as_ref()
    }

    pub fn timeout(&self) -> std::time::Duration {
        let secs = self
            .timeout_seconds
            .or_else(|| self.run_time_args().and_then(|a| a.http_timeout))
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        std::time::Duration::from_secs_f64(secs)
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
            .or_else(|| self.run_time_args().and_then(|a| a.max_retries))
            .unwrap_or(DEFAULT_MAX_RETRIES)
    }

    pub fn chunk_size(&self) -> u64 {
        self.run_time_args()
            .and_then(|a| a.chunk_size)
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_CHUNK_SIZE)
    }

    pub fn records_per_metric(&self) -> u64 {
        self.run_time_args()
            .and_then(|a| a.records_per_metric)
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_RECORDS_PER_METRIC)
    }

    /// The run identity that makes Valmi idempotency keys repeat on a re-run of the same run.
    pub fn run_scope(&self) -> RunScope {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let args = self.run_time_args();
        match (
            args.and_then(|a| a.run_id.as_ref()),
            args.and_then(|a| a.sync_id.as_ref()),
        ) {
            (Some(run), _) => RunScope::Run(text(run)),
            (None, Some(sync)) => RunScope::Sync(text(sync)),
            (None, None) => RunScope::Unknown,
        }
    }

    /// The Standard Webhooks signing secrets, each with the field it came from (for messages):
    /// `signing_secret` first, then `signing_secrets` in order.
    pub fn standard_webhooks_secrets(&self) -> impl Iterator<Item = (String, &str)> {
        let first = self.signing_secret.as_deref();
        first
            .map(|s| ("signing_secret".to_string(), s))
            .into_iter()
            .chain(
                self.signing_secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("signing_secrets[{i}]"), s.as_str())),
            )
    }

    /// Every secret value in this config, so output can be scrubbed of them.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.auth {
            Auth::None => {}
            Auth::Bearer { token } => out.push(token.clone()),
            Auth::Basic { username, password } => {
                out.push(password.clone());
                out.push(basic_credential(username, password));
            }
            Auth::ApiKey { api_key, .. } => out.push(api_key.clone()),
            Auth::Oauth2ClientCredentials(oauth) => {
                out.push(oauth.client_secret.clone());
                out.push(crate::oauth::client_credential(oauth));
            }
        }
        out.extend(self.signing_secret.clone());
        out.extend(self.signing_secrets.iter().cloned());
        out.extend(self.hmac_signature.as_ref().map(|h| h.secret.clone()));
        out.extend(
            self.headers
                .iter()
                .filter_map(|h| h.split_once(':'))
                .filter(|(name, _)| crate::redact::is_sensitive_header(name))
                .map(|(_, value)| value.trim().to_string()),
        );
        if let Some(key) = self.tls.as_ref().and_then(|t| t.client_key.clone()) {
            out.push(key);
        }
        if let Some(proxy) = &self.proxy {
            out.extend(proxy.password.clone());
            out.extend(proxy.credential());
        }
        out.extend(self.url.secrets());
        out.extend(crate::redact::sensitive_query_values(self.url.url()));
        out.retain(|s| s.len() >= 3);
        out
    }
}
