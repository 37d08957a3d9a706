//! destination-webhook: delivers the records of a sync (Valmi or Airbyte protocol on stdin) to
//! an HTTP endpoint, and reports on stdout what was acknowledged.
//!
//! Data flows one way: [`reader`] (stdin lines → [`protocol`] → [`dialect`], which encodes
//! records per the request's [`shape`] and the operation's [`routes`] through the [`encoder`])
//! → [`sink`] (the write loop: the [`backlog`] of the [`ack`] window and the [`ordering`]
//! scheduler) → [`delivery`] (HTTP; what
//! an answer means is [`policy`], why a sync stops is [`failure`], why a record is refused is
//! [`rejection`]) → [`outbox`] ([`checkpoint`]: when a STATE is emitted) → [`output`].
//! README.md's "Where things are" answers the usual questions file by file.

pub mod ack;
pub mod backlog;
pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod concurrency;
pub mod config;
pub mod delivery;
pub mod dialect;
pub mod discover;
pub mod encoder;
pub mod endpoint;
pub mod envelope;
pub mod failure;
pub mod files;
pub mod flatten;
pub mod header_template;
pub mod headers;
pub mod hmac_header;
pub mod idempotency;
pub mod json_value;
pub mod metrics;
pub mod oauth;
pub mod objects;
pub mod ordering;
pub mod outbox;
pub mod output;
pub mod path_template;
pub mod policy;
pub mod progress;
pub mod protocol;
pub mod proxy;
pub mod reader;
pub mod redact;
pub mod refresh;
pub mod rejection;
pub mod resume;
pub mod routes;
pub mod sample;
pub mod shape;
pub mod signals;
pub mod signing;
pub mod sink;
pub mod spec;
pub mod template;
pub mod tls;
pub mod validate;
pub mod write;
