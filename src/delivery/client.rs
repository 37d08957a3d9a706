//! The HTTP client every request of a run goes through, built once: TLS (custom trust, client
//! certificate), the headers that never change, no redirects, a pool sized for the concurrency,
//! and proxy support only when the environment's proxy settings cover the endpoint.

use std::time::Duration;

use crate::config::Config;
use crate::shape::Shape;

pub fn build(config: &Config, shape: Shape) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
    let headers = crate::headers::static_headers(config, shape).map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder();
    if !proxied(config.url.url()) {
        client = client.no_proxy();
    }
    client
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .pool_max_idle_per_host((config.concurrency as usize).max(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .http1_only()
        .build()
        .map_err(|e| format!("could not build the HTTP client: {}", e.without_url()))
}

/// Whether the environment's proxy settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
/// read by the matcher reqwest itself uses) send requests for `url` through a proxy. The
/// endpoint's scheme and host are the same for every request of a run, so when they do not, the
/// client is built without proxy support: the same requests, without matching each one against
/// the environment's proxies twice (a per-request cost of the default client).
fn proxied(url: &url::Url) -> bool {
    url.as_str().parse::<http::Uri>().map_or(true, |uri| {
        hyper_util::client::proxy::matcher::Matcher::from_system()
            .intercept(&uri)
            .is_some()
    })
}
