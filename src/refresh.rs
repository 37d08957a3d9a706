//! Airbyte refreshes seen from an HTTP endpoint. A refresh re-sends a stream from the start
//! under a new `generation_id` (which changes the idempotency keys: [`crate::idempotency`]);
//! a truncating one (`minimum_generation_id` = `generation_id`) also asks the destination to
//! drop what older generations wrote. An endpoint has no table to truncate, so the connector
//! says so rather than let the user believe the old records are gone.

use crate::catalog::AirbyteStream;

/// One INFO line per stream whose refresh asks for older data to go, telling that it stays.
pub fn notes(streams: &[AirbyteStream]) -> Vec<String> {
    streams
        .iter()
        .filter(|s| s.refresh.truncates())
        .map(|s| {
            format!(
                "stream '{}' is a truncating refresh (generation {}): records of older generations already at the endpoint are left in place, since the webhook has no request that removes them; this generation's records are sent under new idempotency keys",
                s.name,
                s.refresh.generation_id.unwrap_or_default()
            )
        })
        .collect()
}
