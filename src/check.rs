//! `check`: proves the endpoint can be reached (DNS, TCP, TLS with certificate validation)
//! without delivering anything, and says in one sentence what is wrong when it cannot.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::Config;

/// Runs every probe within the config's timeout; `Ok` carries the success message.
pub async fn check(config: &Config) -> Result<String, String> {
    let url = url::Url::parse(&config.url).map_err(|e| format!("url: not a valid URL ({e})"))?;
    let host = url.host_str().ok_or("url: has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("url: has no port")?;
    let budget = config.timeout();
    let shown = format!("{host}:{port}");

    let addrs: Vec<SocketAddr> = match timeout(
        budget,
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
    )
    .await
    {
        Err(_) => {
            return Err(format!(
                "could not resolve host {host}: timed out after {}",
                secs(budget)
            ))
        }
        Ok(Err(e)) => return Err(format!("could not resolve host {host}: {e}")),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if addrs.is_empty() {
        return Err(format!("could not resolve host {host}: no addresses"));
    }

    let stream = connect_any(&addrs, budget, &shown).await?;
    if url.scheme() == "https" {
        let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| format!("url: {host} is not a valid TLS server name ({e})"))?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        match timeout(budget, connector.connect(name, stream)).await {
            Err(_) => {
                return Err(format!(
                    "TLS handshake with {shown} timed out after {}",
                    secs(budget)
                ))
            }
            Ok(Err(e)) => return Err(describe_tls_error(&e, &shown)),
            Ok(Ok(_)) => {}
        }
        return Ok(format!(
            "connected to {shown} and verified its TLS certificate; no record was sent"
        ));
    }
    Ok(format!("connected to {shown}; no record was sent"))
}

/// Tries every resolved address (IPv4 and IPv6) in order; the first that accepts wins.
async fn connect_any(
    addrs: &[SocketAddr],
    budget: Duration,
    shown: &str,
) -> Result<TcpStream, String> {
    let mut last = String::new();
    for addr in addrs {
        match timeout(budget, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = format!("connection refused at {shown} ({addr})");
            }
            Ok(Err(e)) => last = format!("could not connect to {shown} ({addr}): {e}"),
            Err(_) => {
                last = format!(
                    "connection to {shown} ({addr}) timed out after {}",
                    secs(budget)
                )
            }
        }
    }
    Err(last)
}

fn describe_tls_error(e: &std::io::Error, shown: &str) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            format!("TLS certificate not trusted: {reason:?} (server {shown}); add its CA as tls.ca_certificate if it is a private CA")
        }
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("TLS handshake with {shown} refused by the server ({alert:?}); does it require a client certificate (tls.client_certificate)?")
        }
        Some(other) => format!("TLS handshake with {shown} failed: {other}"),
        None => format!("TLS handshake with {shown} failed: {e}"),
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
