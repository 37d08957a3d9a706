//! Why a record was rejected: named once here, as a value, so checkpoints, reports and counts
//! read the reason instead of comparing strings. `code` is what the protocol echoes
//! (`rejection_code`, the summary's top reasons); `Display` is the sentence a person reads.

use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The record's `data` is unusable: not an object, or a primary key that cannot be read.
    #[error("{0}")]
    InvalidData(Cow<'static, str>),
    #[error("the record has no _valmi_meta, so its row and operation are unknown")]
    MissingValmiMeta,
    #[error("{0}")]
    InvalidValmiMeta(&'static str),
    #[error("the stream is not in the configured catalog")]
    UnknownStream,
    /// A record without a namespace whose stream name several catalog namespaces have.
    #[error("the stream is ambiguous: the record has no namespace, and the configured catalog has a stream of that name in each of the namespaces {0}")]
    AmbiguousStream(String),
    #[error("the record cannot be flattened into GET parameters: {0}")]
    NotFlattenable(crate::flatten::FlattenError),
    #[error("the GET URL would be {length} bytes, over the {limit}-byte limit; use POST for records this large")]
    UrlTooLong { length: usize, limit: usize },
    /// A request template could not be rendered for it (a missing field, a body that is not
    /// JSON): it is never sent half-rendered.
    #[error("{0}")]
    Template(crate::template::RenderError),
    /// The endpoint refused it with a non-retryable answer (`on_client_error: reject`).
    #[error("the endpoint answered HTTP {status}: {excerpt}")]
    Refused { status: u16, excerpt: String },
}

impl Rejection {
    /// The machine-readable reason (the HTTP status for an endpoint's refusal).
    pub fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Rejection::InvalidData(_) => "invalid_data",
            Rejection::MissingValmiMeta => "missing_valmi_meta",
            Rejection::InvalidValmiMeta(_) => "invalid_valmi_meta",
            Rejection::UnknownStream => "unknown_stream",
            Rejection::AmbiguousStream(_) => "ambiguous_stream",
            Rejection::NotFlattenable(e) => e.code(),
            Rejection::UrlTooLong { .. } => "url_too_long",
            Rejection::Template(e) => e.code(),
            Rejection::Refused { status, .. } => return Cow::Owned(status.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_sentences() {
        let refused = Rejection::Refused {
            status: 422,
            excerpt: "bad".into(),
        };
        assert_eq!(refused.code(), "422");
        assert_eq!(refused.to_string(), "the endpoint answered HTTP 422: bad");
        let long = Rejection::UrlTooLong {
            length: 20_000,
            limit: 16_384,
        };
        assert_eq!(long.code(), "url_too_long");
        assert!(long
            .to_string()
            .starts_with("the GET URL would be 20000 bytes"));
        assert_eq!(Rejection::UnknownStream.code(), "unknown_stream");
    }
}
