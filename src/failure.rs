//! Why delivery stops a sync, as one error type: each variant carries what its message needs,
//! and becomes the protocol's TRACE ERROR in one place ([`Fatal::from`]).

use crate::dialect::RecordLabel;
use crate::protocol::{FailureType, Fatal};

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Not sent: the sync was stopped by a signal before the request left. Its records stay
    /// unsettled; the signal is what the TRACE reports.
    #[error("not sent: the sync was stopped first")]
    Unsent,
    #[error("{endpoint} answered HTTP {status} to {label}, redirecting to {to}; redirects are not followed (a POST would turn into a GET, credentials would travel): set url to the final address")]
    Redirect {
        endpoint: String,
        status: u16,
        label: RecordLabel,
        /// Where to, as it may be printed.
        to: String,
    },
    #[error("{endpoint} refused the credentials with HTTP {status} for {label}: check auth and headers. Response: {excerpt}")]
    Unauthorized {
        endpoint: String,
        status: u16,
        label: RecordLabel,
        excerpt: String,
    },
    #[error("{endpoint}: {reason}")]
    TlsRefused {
        endpoint: String,
        label: RecordLabel,
        reason: String,
    },
    #[error("gave up on {label} after {attempts} attempts to {endpoint}: {}", .reason.trim())]
    GaveUp {
        endpoint: String,
        label: RecordLabel,
        attempts: u32,
        max_retries: u32,
        reason: String,
    },
    #[error("{label} could not be rendered (on_client_error is \"fail\"): {reason}")]
    Unrenderable {
        label: RecordLabel,
        reason: crate::template::RenderError,
    },
    #[error("{label} was refused by {endpoint} with HTTP {status} (on_client_error is \"fail\"): {excerpt}")]
    Refused {
        endpoint: String,
        status: u16,
        label: RecordLabel,
        records: usize,
        excerpt: String,
    },
}

impl Failure {
    fn failure_type(&self) -> FailureType {
        match self {
            Failure::GaveUp { .. } => FailureType::TransientError,
            _ => FailureType::ConfigError,
        }
    }

    /// The TRACE's `internal_message`: the figures behind the message.
    fn internal(&self) -> String {
        match self {
            Failure::Unsent => String::new(),
            Failure::Redirect { label, status, .. } => format!("{label} status={status}"),
            Failure::Unauthorized { status, .. } => format!("status={status}"),
            Failure::TlsRefused { label, .. } => label.to_string(),
            Failure::Unrenderable { reason, .. } => format!("code={}", reason.code()),
            Failure::GaveUp { max_retries, .. } => format!("max_retries={max_retries}"),
            Failure::Refused {
                status, records, ..
            } => format!("status={status} records={records}"),
        }
    }
}

impl From<Failure> for Fatal {
    fn from(failure: Failure) -> Self {
        Fatal::new(
            failure.failure_type(),
            failure.to_string(),
            failure.internal(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> RecordLabel {
        RecordLabel {
            message_id: 7,
            row_num: Some(7),
        }
    }

    /// Retries spent is worth a later run (`transient_error`); anything else is the settings'
    /// fault. `internal_message` carries the figures behind the message.
    #[test]
    fn each_failure_has_its_type_and_figures() {
        let gave_up = Fatal::from(Failure::GaveUp {
            endpoint: "http://h/".into(),
            label: label(),
            attempts: 4,
            max_retries: 3,
            reason: "timed out".into(),
        });
        assert_eq!(gave_up.failure_type, FailureType::TransientError);
        assert_eq!(gave_up.internal.as_str(), "max_retries=3");
        let refused = Fatal::from(Failure::Refused {
            endpoint: "http://h/".into(),
            status: 422,
            label: label(),
            records: 2,
            excerpt: String::new(),
        });
        assert_eq!(refused.failure_type, FailureType::ConfigError);
        assert_eq!(refused.internal.as_str(), "status=422 records=2");
        let redirect = Fatal::from(Failure::Redirect {
            endpoint: "http://h/".into(),
            status: 301,
            label: label(),
            to: "http://i/".into(),
        });
        assert_eq!(
            redirect.internal.as_str(),
            "record _valmi_row_num=7 status=301"
        );
        assert_eq!(Fatal::from(Failure::Unsent).internal.as_str(), "");
    }
}
