//! The HTTP client every request of a run goes through, built once: TLS (custom trust, client
//! certificate), the headers that never change, no redirects, a pool sized for the concurrency,
//! and proxy support only when the environment's proxy settings cover the endpoint.

use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::config::Config;
use crate::shape::Shape;

/// `proxy`: where [`proxy_for`] says requests go through, if anywhere.
pub fn build(
    config: &Config,
    shape: Shape,
    proxy: Option<&Proxy>,
) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
    let headers = crate::headers::static_headers(config, shape).map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder();
    if proxy.is_none() {
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

/// A proxy that requests to the endpoint go through.
pub struct Proxy {
    /// To resolve and connect to.
    pub host: String,
    pub port: u16,
    /// `scheme://host:port`, never its credentials.
    pub shown: String,
    /// `Proxy-Authorization` for a proxy whose URL carries credentials.
    pub authorization: Option<HeaderValue>,
}

/// The proxy the environment's settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
/// read by the matcher reqwest itself uses) send requests for `url` through, if any. `write`'s
/// client and `check`'s probe both take their route from here, so a check cannot pass on a path
/// the sync does not take. The endpoint's scheme and host are the same for every request of a
/// run, so without a proxy the client is built without proxy support: the same requests,
/// without matching each one against the environment's proxies twice (a per-request cost of the
/// default client).
pub fn proxy_for(url: &reqwest::Url) -> Option<Proxy> {
    let uri = url.as_str().parse::<http::Uri>().ok()?;
    let intercept = hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri)?;
    let proxy = intercept.uri();
    let host = proxy.host()?;
    let port = proxy.port_u16().unwrap_or(match proxy.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Some(Proxy {
        shown: format!("{}://{host}:{port}", proxy.scheme_str().unwrap_or("http")),
        // An IPv6 address is written in brackets in a URI, without them in a lookup.
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        authorization: intercept.basic_auth().cloned(),
    })
}
