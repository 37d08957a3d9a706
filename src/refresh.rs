//! Airbyte refreshes seen from an HTTP endpoint. A refresh re-sends a stream from the start
//! under a new `generation_id` (which changes the idempotency keys: [`crate::idempotency`]);
//! a truncating one (`minimum_generation_id` = `generation_id`) also asks the destination to
//! drop what older generations wrote. An endpoint has no table to truncate, so an object may
//! say how (`on_refresh`, sent once per such stream before any record, and it must succeed);
//! without it the connector says that the older data stays, rather than let the user believe
//! it is gone.

use reqwest::header::HeaderValue;
use serde_json::value::RawValue;

use crate::catalog::AirbyteStream;
use crate::config::{Config, DestinationObject, OperationRoutes, RefreshRequest, Route};
use crate::delivery::{Deliverer, Job};
use crate::dialect::{RecordLabel, Request};
use crate::encoder::Encoder;
use crate::envelope::Envelope;
use crate::protocol::{FailureType, Fatal};
use crate::routes::Routes;
use crate::shape::Shape;
use crate::signals::Signals;
use crate::template::{Activation, Facts};

/// The route key the refresh request is compiled under (a route of its own method); any key
/// would do, this one reads right in messages.
const AS_OPERATION: &str = "delete";

/// A truncating refresh's request, rendered for its stream, to send before any record.
pub struct Cleanup {
    pub stream: String,
    request: Request,
}

/// What `write` does about truncating refreshes: the requests to send first, and for streams
/// whose object has none, one INFO line each telling that older data is left in place.
pub fn plan(
    config: &Config,
    streams: &[AirbyteStream],
) -> Result<(Vec<Cleanup>, Vec<String>), String> {
    let mut cleanups = Vec::new();
    let mut notes = Vec::new();
    for stream in streams.iter().filter(|s| s.refresh.truncates()) {
        let object = stream
            .object
            .checked_sub(1)
            .map(|i| &config.objects[i])
            .and_then(|o| o.on_refresh.as_ref().map(|r| (o, r)));
        match object {
            Some((object, request)) => cleanups.push(Cleanup {
                stream: stream.name.clone(),
                request: render(config, object, request, stream)?,
            }),
            None => notes.push(format!(
                "stream '{}' is a truncating refresh (generation {}): records of older generations already at the endpoint are left in place, since its destination object has no on_refresh request; this generation's records are sent under new idempotency keys",
                stream.name,
                stream.refresh.generation_id.unwrap_or_default()
            )),
        }
    }
    Ok((cleanups, notes))
}

/// Why `object`'s refresh request cannot be compiled, if it cannot.
pub fn problem(config: &Config, object: &DestinationObject) -> Option<String> {
    let request = object.on_refresh.as_ref()?;
    compile(config, request).err().map(|e| e.to_string())
}

/// The refresh request as the one route of a connection, so it is built, signed and sent like
/// any record's request, with its own method.
fn compile(
    config: &Config,
    request: &RefreshRequest,
) -> Result<Encoder, crate::template::CompileError> {
    let mut own = config.clone();
    own.request = None;
    own.objects = Vec::new();
    own.routes = OperationRoutes {
        delete: Some(Route {
            skip: false,
            method: Some(request.method),
            path: request.path.clone(),
            body: request.body.clone(),
            headers: Some(request.headers.clone()),
        }),
        ..OperationRoutes::default()
    };
    let routes = Routes::compile(&own)?;
    Ok(Encoder::new(Shape::of(&own), own.url.url().clone(), routes))
}

fn render(
    config: &Config,
    object: &DestinationObject,
    request: &RefreshRequest,
    stream: &AirbyteStream,
) -> Result<Request, String> {
    let failed = |e: String| {
        format!(
            "objects '{}': on_refresh for stream '{}': {e}",
            object.name, stream.name
        )
    };
    let mut encoder = compile(config, request).map_err(|e| failed(e.to_string()))?;
    let key = crate::idempotency::refresh(&stream.name, stream.refresh.generation_id);
    let idempotency_key: HeaderValue = encoder.key_header(key);
    let sync_id = stream.refresh.sync_id.map(minijinja::Value::from);
    let facts = Facts {
        op: AS_OPERATION,
        stream: &stream.name,
        namespace: stream.namespace.as_deref(),
        row_num: None,
        message_id: 0,
        sync_mode: &stream.sync_mode,
        idempotency_key: &idempotency_key,
        primary_key: None,
        run_id: None,
        sync_id: sync_id.as_ref(),
        activation: Activation {
            refresh: stream.refresh,
            changes: None,
        },
    };
    let nothing = RawValue::from_string("{}".into()).expect("{} is JSON");
    let envelope = Envelope {
        message_id: 0,
        sync_mode: &stream.sync_mode,
        stream: Some(&stream.name),
        payload: &*nothing,
    };
    let payload = encoder
        .encode(envelope, 2, &facts, |_| Ok(()))
        .map_err(|e| failed(e.to_string()))?;
    Ok(Request {
        payload,
        idempotency_key,
        label: RecordLabel {
            message_id: 0,
            row_num: None,
        },
    })
}

/// Sends a refresh request, retried like any request; anything short of delivered stops the
/// sync, since records sent on top of data that should be gone would mislead.
pub async fn send(cleanup: Cleanup, deliverer: &Deliverer, signals: &Signals) -> Result<(), Fatal> {
    let job = Job {
        seq: 0,
        order_key: None,
        request: cleanup.request,
    };
    let settled = deliverer
        .deliver(std::iter::once(job).collect(), signals)
        .await;
    let refused = |why: String, failure_type| {
        Fatal::new(
            failure_type,
            format!("the on_refresh request of stream '{}' (a truncating refresh) did not succeed, so no record was sent: {why}", cleanup.stream),
            String::new(),
        )
    };
    match settled.result {
        Ok(acks) => match acks.get(0) {
            crate::ack::Ack::Delivered => Ok(()),
            crate::ack::Ack::Rejected(reason) => {
                Err(refused(reason.to_string(), FailureType::ConfigError))
            }
            crate::ack::Ack::Skipped => {
                Err(refused("it was skipped".into(), FailureType::SystemError))
            }
        },
        Err(failure) => {
            let fatal = Fatal::from(failure);
            Err(refused(fatal.message.to_string(), fatal.failure_type))
        }
    }
}
