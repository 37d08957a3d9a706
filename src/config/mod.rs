//! The connector's configuration: one Rust type that is both what `spec` publishes (through
//! schemars) and what `check`/`write` read (through serde), so the two can never disagree.
//!
//! Old Valmi configs (`{"url","method"}`, a `headers` list, an injected `run_time_args`) are valid
//! as they are; every newer field has a default.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::endpoint::Endpoint;

mod debug;
mod resolve;

/// Destination Webhook
///
/// Delivers every record of a sync to an HTTP endpoint: POST/PUT/PATCH with a JSON envelope,
/// or GET with the envelope flattened into query parameters.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(title = "Destination Webhook")]
pub struct Config {
    /// URL
    ///
    /// The endpoint (http:// or https://). Its own query string is kept; GET parameters are
    /// appended to it.
    #[schemars(
        with = "String",
        regex(pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$"),
        extend("order" = 0)
    )]
    pub url: Endpoint,

    /// HTTP method
    ///
    /// POST, PUT and PATCH send the JSON envelope as the body; GET flattens it into query
    /// parameters.
    #[serde(default)]
    #[schemars(extend("order" = 1))]
    pub method: Method,

    /// Extra headers
    ///
    /// Each entry is "Name: Value"; split on the first colon, both sides trimmed.
    #[serde(default)]
    #[schemars(extend("order" = 2))]
    pub headers: Vec<String>,

    /// Authentication
    #[serde(default)]
    #[schemars(extend("order" = 3))]
    pub auth: Auth,

    /// Signing secret
    ///
    /// When set, every request is signed per the Standard Webhooks specification
    /// (webhook-id, webhook-timestamp, webhook-signature). "whsec_" + base64, or raw text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("airbyte_secret" = true, "order" = 4))]
    pub signing_secret: Option<String>,

    /// More signing secrets
    ///
    /// For a receiver rotating its secret: each of these also signs every request, next to
    /// signing_secret, so webhook-signature carries one "v1," signature per secret,
    /// space-separated, and a receiver verifying with any one of them accepts the request.
    /// Same format as signing_secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("airbyte_secret" = true, "order" = 5))]
    pub signing_secrets: Vec<String>,

    /// HMAC signature header
    ///
    /// A signature in the convention of GitHub (X-Hub-Signature-256: sha256=<hex>), Shopify
    /// (X-Shopify-Hmac-Sha256: <base64>) and the like: HMAC-SHA256 with the secret over the exact
    /// body bytes sent (gzip-compressed when compression is gzip; empty for GET). Independent of
    /// the Standard Webhooks signature; both may be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("order" = 6))]
    pub hmac_signature: Option<HmacSignature>,

    /// Timeout (seconds)
    ///
    /// Whole-request timeout per attempt. Default 30 (or run_time_args.http_timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 3600.0), extend("default" = 30, "order" = 7))]
    pub timeout_seconds: Option<f64>,

    /// Maximum retries
    ///
    /// Retries after the first attempt, per request. Default 5 (or run_time_args.max_retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100), extend("default" = 5, "order" = 8))]
    pub max_retries: Option<u32>,

    /// Concurrency
    ///
    /// Requests in flight at most. Within it the connector finds the endpoint's capacity by
    /// itself: it starts at 16, grows while answers are fast, and backs off on 429/503, timeouts
    /// and rising latency. Records sharing a key are still delivered one after another, in input
    /// order.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 1024), extend("order" = 9))]
    pub concurrency: u32,

    /// Rate limit (requests per second)
    ///
    /// Upper bound on requests started per second. Unset = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001), extend("order" = 10))]
    pub rate_limit_per_second: Option<f64>,

    /// Batch size
    ///
    /// POST/PUT/PATCH only: records per request, sent as a JSON array of envelopes.
    /// 1 sends one envelope object per request (the Valmi format).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 10000), extend("order" = 11))]
    pub batch_size: u32,

    /// On client error
    ///
    /// What a non-retryable 4xx answer does: "reject" reports the record and goes on, "fail"
    /// stops the sync.
    #[serde(default)]
    #[schemars(extend("order" = 12))]
    pub on_client_error: OnClientError,

    /// Compression
    ///
    /// Request body compression (sent with Content-Encoding).
    #[serde(default)]
    #[schemars(extend("order" = 13))]
    pub compression: Compression,

    /// TLS
    ///
    /// A custom trust root and a client certificate for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("order" = 14))]
    pub tls: Option<TlsConfig>,

    /// Proxy
    ///
    /// An HTTP proxy every request (and check) goes through; https endpoints through a CONNECT
    /// tunnel, TLS end to end. When unset, the environment's HTTP_PROXY, HTTPS_PROXY, ALL_PROXY
    /// and NO_PROXY apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("order" = 15))]
    pub proxy: Option<ProxyConfig>,

    /// Request template
    ///
    /// A body of the receiver's own shape instead of the envelope, a path and headers per
    /// record, written in Jinja (minijinja). Unset = the envelope to url, byte for byte as without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("order" = 16))]
    pub request: Option<RequestTemplate>,

    /// Routes per operation
    ///
    /// A request per sync operation, keyed by the operation: Valmi's _valmi_sync_op (upsert,
    /// update, create, append, delete) or Airbyte's destination_sync_mode (append,
    /// append_dedup, overwrite, update, soft_delete; a record with _ab_cdc_deleted_at set is a
    /// delete). Each route's method, path, body and headers fall back to request and the
    /// top-level method; {"skip": true} acknowledges the operation's records without sending
    /// them. Operations without a route use request. Needs batch_size 1 unless every route
    /// skips.
    #[serde(default, skip_serializing_if = "OperationRoutes::is_empty")]
    #[schemars(extend("order" = 17))]
    pub routes: OperationRoutes,

    /// Destination objects
    ///
    /// Airbyte data activation: the kinds of record this endpoint takes (contacts, companies,
    /// events), each with its own request and routes, offered in Airbyte's mapping screen by
    /// discover and chosen per stream by its destination_object_name. The top-level request is
    /// the object named default. Needs batch_size 1. Unset = the top-level request only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("order" = 18))]
    pub objects: Vec<DestinationObject>,

    /// Run-time arguments
    ///
    /// Injected by Valmi's engine; not set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("order" = 19))]
    pub run_time_args: Option<RunTimeArgs>,
}

/// High enough for the adaptive limit to find the capacity of most endpoints by itself (one of
/// 64 requests at 50 ms gets 0.9 of its ideal from the default: BENCHMARKS.md).
fn default_concurrency() -> u32 {
    256
}

fn default_batch_size() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Method {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// How the connector proves who it is to the endpoint.
#[derive(Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    /// No authentication
    #[default]
    None,
    /// Bearer token
    Bearer {
        /// Token
        #[schemars(extend("airbyte_secret" = true))]
        token: String,
    },
    /// HTTP Basic
    Basic {
        /// Username
        username: String,
        /// Password
        #[schemars(extend("airbyte_secret" = true))]
        password: String,
    },
    /// API key in a header
    ApiKey {
        /// Header name
        header_name: String,
        /// API key
        #[schemars(extend("airbyte_secret" = true))]
        api_key: String,
    },
    /// OAuth2 client credentials
    ///
    /// A token fetched from the token endpoint (RFC 6749 section 4.4) before the first record,
    /// cached, refreshed ahead of its expiry and once when the endpoint answers 401, and sent as
    /// "Authorization: Bearer".
    Oauth2ClientCredentials(OAuth2),
}

/// The client-credentials grant's settings.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
pub struct OAuth2 {
    /// Token URL
    ///
    /// The authorization server's token endpoint (http:// or https://).
    // Not a secret (messages name it), but Airbyte's acceptance rules take any field named like
    // a token for one, and hiding it in the form costs nothing.
    #[schemars(extend("airbyte_secret" = true))]
    pub token_url: String,
    /// Client ID
    pub client_id: String,
    /// Client secret
    #[schemars(extend("airbyte_secret" = true))]
    pub client_secret: String,
    /// Scope
    ///
    /// Space-separated scopes to ask for. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Audience
    ///
    /// The API the token is for, as Auth0 and Okta ask. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Extra form parameters
    ///
    /// Each entry is "name=value", sent as is (e.g. "resource=https://api.example.com" for Azure AD v1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_params: Vec<String>,
    /// Client authentication
    ///
    /// How the client proves itself to the token endpoint: HTTP Basic (RFC 6749 section 2.3.1's
    /// preferred way) or client_id and client_secret in the form body.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Form,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnClientError {
    #[default]
    Reject,
    Fail,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// The request's body, path and headers as templates, and the media type the body is written in.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct RequestTemplate {
    /// Body template
    ///
    /// Jinja text rendered per record with record, op, stream, namespace, row_num,
    /// message_id, sync_mode, idempotency_key and envelope. A variable the record lacks rejects
    /// the record (use default(...) to allow it); in a JSON body inserted strings are escaped
    /// as JSON string contents. Unset = the envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Path template
    ///
    /// Path and query appended to url per record, e.g. "/contacts/{{ record.id }}?source=sync".
    /// Every inserted value is percent-encoded, so it can add no path segment, parameter or
    /// fragment; the scheme, host and port are always url's. Needs batch_size 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Batch body template
    ///
    /// The body of a request of batch_size records, rendered with records: the records' bodies
    /// (the body template's, parsed as JSON, or their envelopes), e.g.
    /// {"events": {{ records | tojson }}}. Unset = the JSON array of the bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_body: Option<String>,
    /// Header templates
    ///
    /// Each entry is "Name: template", e.g. "X-Tenant: {{ record.tenant }}", added to every
    /// request. A rendered value with CR, LF or another byte invalid in a header rejects the
    /// record; the headers the connector sets stay refused. Needs batch_size 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Content type
    ///
    /// What the rendered body is and the Content-Type it is sent with. A JSON body must render
    /// to valid JSON, else the record is rejected.
    #[serde(default)]
    pub content_type: ContentType,
}

/// A route per operation, each optional. Written as named fields rather than a map so the spec
/// lists the operations (Airbyte's forms and acceptance rules take no free-form maps) and a
/// misspelt operation is refused instead of never matching ([`crate::validate`] checks the
/// names, since Airbyte's rules forbid closing the schema).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct OperationRoutes {
    /// Upsert
    ///
    /// Valmi records whose _valmi_sync_op is upsert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsert: Option<Route>,
    /// Update
    ///
    /// Valmi records whose _valmi_sync_op is update; Airbyte records of streams in update mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Route>,
    /// Create
    ///
    /// Valmi records whose _valmi_sync_op is create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<Route>,
    /// Append
    ///
    /// Valmi records whose _valmi_sync_op is append; Airbyte records of streams in append mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<Route>,
    /// Delete
    ///
    /// Valmi records whose _valmi_sync_op is delete (mirror mode's removed rows); Airbyte records whose _ab_cdc_deleted_at is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<Route>,
    /// Append dedup
    ///
    /// Airbyte records of streams in append_dedup mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_dedup: Option<Route>,
    /// Overwrite
    ///
    /// Airbyte records of streams in overwrite mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<Route>,
    /// Soft delete
    ///
    /// Airbyte records of streams in soft_delete mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_delete: Option<Route>,
}

impl OperationRoutes {
    /// The operations a route can be keyed by, in field order.
    pub const OPERATIONS: [&'static str; 8] = [
        "upsert",
        "update",
        "create",
        "append",
        "delete",
        "append_dedup",
        "overwrite",
        "soft_delete",
    ];

    /// The configured routes, each with its operation's name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Route)> {
        let routes = [
            &self.upsert,
            &self.update,
            &self.create,
            &self.append,
            &self.delete,
            &self.append_dedup,
            &self.overwrite,
            &self.soft_delete,
        ];
        Self::OPERATIONS
            .into_iter()
            .zip(routes)
            .filter_map(|(op, route)| route.as_ref().map(|r| (op, r)))
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// One operation's request: each part unset falls back to `request` (and the top-level method).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct Route {
    /// Skip
    ///
    /// Send nothing for this operation's records; they are acknowledged and counted as skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
    /// HTTP method
    ///
    /// GET sends the record in the query as the top-level GET does; DELETE sends no body unless
    /// this route has a body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<RouteMethod>,
    /// Path template
    ///
    /// As request.path, for this operation, e.g. "/contacts/{{ record.id }}". Unset =
    /// request.path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Body template
    ///
    /// As request.body, for this operation. Unset = request.body (GET and DELETE: no body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Header templates
    ///
    /// As request.headers, for this operation. Unset = request.headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<String>>,
}

/// A destination object (Airbyte data activation): a name, what it takes, and its requests.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct DestinationObject {
    /// Name
    ///
    /// Shown in Airbyte's mapping screen and matched against a stream's
    /// destination_object_name, e.g. "contacts". Unique; "default" is the top-level request's.
    pub name: String,
    /// Matching fields
    ///
    /// Fields that identify a record of this object (Airbyte's matching keys), e.g. "email"
    /// (dots separate nesting: "address.zip"), each a field of json_schema or one its templates
    /// read. The first is the ordering and idempotency key of a stream that has no primary_key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matching_fields: Vec<String>,
    /// JSON schema
    ///
    /// The fields this object takes, as a JSON schema object, for Airbyte's mapping screen.
    /// Unset = the record fields its templates read, as strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Map<String, serde_json::Value>>,
    /// Request template
    ///
    /// As the top-level request, for this object's records. Unset = the top-level request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestTemplate>,
    /// Routes per operation
    ///
    /// As the top-level routes, for this object's records. Unset = the top-level routes.
    #[serde(default, skip_serializing_if = "OperationRoutes::is_empty")]
    pub routes: OperationRoutes,
    /// Refresh request
    ///
    /// Sent once before the records of a stream in a truncating refresh (Airbyte's
    /// minimum_generation_id equal to its generation_id), e.g. DELETE
    /// "/lists/{{ stream }}/members", to remove older data; it must succeed or the sync fails.
    /// Its templates see stream, namespace, generation_id, minimum_generation_id and sync_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_refresh: Option<RefreshRequest>,
}

/// The request that removes an object's older data before a truncating refresh.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
pub struct RefreshRequest {
    /// HTTP method
    pub method: RouteMethod,
    /// Path template
    ///
    /// Appended to url, e.g. "/lists/{{ stream }}/members".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Body template
    ///
    /// Unset = no body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Header templates
    ///
    /// Each entry is "Name: template".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RouteMethod {
    Post,
    Get,
    Put,
    Patch,
    Delete,
}

impl RouteMethod {
    pub fn http(self) -> reqwest::Method {
        match self {
            RouteMethod::Post => reqwest::Method::POST,
            RouteMethod::Get => reqwest::Method::GET,
            RouteMethod::Put => reqwest::Method::PUT,
            RouteMethod::Patch => reqwest::Method::PATCH,
            RouteMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ContentType {
    #[default]
    #[serde(rename = "application/json")]
    Json,
    #[serde(rename = "application/x-www-form-urlencoded")]
    Form,
    #[serde(rename = "text/plain")]
    Text,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Form => "application/x-www-form-urlencoded",
            ContentType::Text => "text/plain",
        }
    }
}

/// An HMAC-SHA256 signature header in a receiver's own convention.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
pub struct HmacSignature {
    /// Header name
    ///
    /// The header the signature goes in, e.g. X-Hub-Signature-256 or X-Shopify-Hmac-Sha256.
    pub header_name: String,
    /// Secret
    ///
    /// The HMAC key, used as its bytes (UTF-8), as GitHub and Shopify do.
    #[schemars(length(min = 1), extend("airbyte_secret" = true))]
    pub secret: String,
    /// Encoding
    ///
    /// How the 32-byte digest is written: lowercase hex (GitHub) or standard base64 (Shopify).
    #[serde(default)]
    pub encoding: DigestEncoding,
    /// Prefix
    ///
    /// Text before the encoded digest, e.g. "sha256=" for GitHub. Default none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Timestamp header
    ///
    /// When set, this header carries the attempt's Unix time in seconds and the signed text is
    /// "<timestamp>.<body>" (Stripe's signed payload), so a receiver can refuse replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestEncoding {
    #[default]
    Hex,
    Base64,
}

/// A proxy set in the config, for orchestrators that give a connector no environment variables.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
pub struct ProxyConfig {
    /// Proxy URL
    ///
    /// http://host:port or https://host:port (TLS to the proxy), without credentials.
    pub url: String,
    /// Username
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("airbyte_secret" = true))]
    pub password: Option<String>,
    /// Hosts that bypass the proxy
    ///
    /// As NO_PROXY: a domain (and its subdomains), an IP address or network (10.0.0.0/8), or *.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
}

/// PEM material for custom trust and mutual TLS. Certificates are not secret, but Airbyte's
/// acceptance rules mark every certificate-like field as a secret, and hiding them costs nothing.
#[derive(Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct TlsConfig {
    /// CA certificate (PEM)
    ///
    /// Added to the system trust roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("airbyte_secret" = true, "multiline" = true))]
    pub ca_certificate: Option<String>,
    /// Client certificate (PEM)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("airbyte_secret" = true, "multiline" = true))]
    pub client_certificate: Option<String>,
    /// Client key (PEM)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("airbyte_secret" = true, "multiline" = true))]
    pub client_key: Option<String>,
}

/// What Valmi's wrapper injects; unknown keys are kept so nothing the engine adds is lost.
#[derive(Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RunTimeArgs {
    /// HTTP timeout (seconds), used when timeout_seconds is absent
    ///
    /// At most 3600, like timeout_seconds; 0 or less means the default (30).
    // Unbounded, 1e20 overflowed `Duration` and crashed `check` and `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 3600.0))]
    pub http_timeout: Option<f64>,
    /// Retries, used when max_retries is absent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_retries: Option<u32>,
    /// Records per committed chunk
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub chunk_size: Option<u64>,
    /// Records between metric checkpoints
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub records_per_metric: Option<u64>,
    /// Run id (makes idempotency keys stable across a re-run)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Value>,
    /// Sync id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::RunScope;

    fn parse(v: Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn old_valmi_config_takes_defaults() {
        let c = parse(serde_json::json!({"url": "http://localhost:9090", "method": "POST"}));
        assert_eq!(c.method, Method::Post);
        assert_eq!(c.concurrency, 256);
        assert_eq!(c.batch_size, 1);
        assert_eq!(c.max_retries(), 5);
        assert_eq!(c.timeout(), std::time::Duration::from_secs(30));
        assert_eq!(c.chunk_size(), 300);
        assert_eq!(c.records_per_metric(), 10);
    }

    #[test]
    fn run_time_args_fill_absent_fields_only() {
        let c = parse(serde_json::json!({"url": "http://h", "run_time_args":
            {"http_timeout": 7, "max_retries": 2, "chunk_size": 4, "records_per_metric": 2, "run_id": "r1", "extra": 1}}));
        assert_eq!(c.timeout(), std::time::Duration::from_secs(7));
        assert_eq!(c.max_retries(), 2);
        assert_eq!((c.chunk_size(), c.records_per_metric()), (4, 2));
        assert_eq!(c.run_scope(), RunScope::Run("r1".into()));
        let c = parse(
            serde_json::json!({"url": "http://h", "timeout_seconds": 3, "max_retries": 0,
            "run_time_args": {"http_timeout": 7, "max_retries": 2, "sync_id": 42}}),
        );
        assert_eq!(c.timeout(), std::time::Duration::from_secs(3));
        assert_eq!(c.max_retries(), 0);
        assert_eq!(c.run_scope(), RunScope::Sync("42".into()));
    }

    /// A zero or negative `http_timeout` (the spec lets Valmi inject one) means the default, not
    /// a sync that times out at once or a panic; so does a chunk or metric interval of 0, which
    /// the spec refuses, for a config read without it.
    #[test]
    fn run_time_args_of_zero_mean_the_defaults() {
        for timeout in [0.0, -1.0] {
            let c = parse(serde_json::json!({"url": "http://h", "run_time_args":
                {"http_timeout": timeout, "chunk_size": 0, "records_per_metric": 0}}));
            assert_eq!(c.timeout(), std::time::Duration::from_secs(30));
            assert_eq!((c.chunk_size(), c.records_per_metric()), (300, 10));
        }
        let c = parse(serde_json::json!({"url": "http://h", "timeout_seconds": 0.5}));
        assert_eq!(c.timeout(), std::time::Duration::from_millis(500));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = parse(serde_json::json!({"url": "https://user:pw-s3cr3t@h/x",
            "auth": {"type": "bearer", "token": "tok-s3cr3t"}, "signing_secret": "whsec_s3cr3t",
            "signing_secrets": ["rot-s3cr3t"], "hmac_signature": {"header_name": "X-Sig", "secret": "hm-s3cr3t"},
            "headers": ["X-Api: hdr-s3cr3t"], "tls": {"client_key": "key-s3cr3t"}}));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.starts_with("Config { url: \"https://h/x\", method: Post, ")
                && shown.contains("auth: Bearer { token: <redacted> }"),
            "what is not secret is shown: {shown}"
        );
        for secret in ["pw-s3cr3t", "rot-s3cr3t", "hm-s3cr3t"] {
            assert!(c.secrets().iter().any(|s| s == secret), "{secret}");
        }
    }
}
