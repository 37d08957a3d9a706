//! `check`: proves the endpoint can be reached (DNS, TCP, TLS with certificate validation)
//! without delivering anything, and says in one sentence what is wrong when it cannot. Every
//! step shares one deadline: the whole check ends within `timeout_seconds`.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::config::Config;

/// How long to listen after a TLS 1.3 handshake: a server that refuses the client certificate
/// says so only after the client considers the handshake done.
const AFTER_HANDSHAKE: Duration = Duration::from_millis(300);

/// Runs every probe within the config's timeout; `Ok` carries the success message.
pub async fn check(config: &Config) -> Result<String, String> {
    let url = config.url.url();
    let host = url.host_str().ok_or("url: has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("url: has no port")?;
    let budget = config.timeout();
    let deadline = Instant::now() + budget;
    let shown = format!("{host}:{port}");
    let bare_host = host.trim_matches(['[', ']']).to_string();
    let late = |what: &str| {
        format!(
            "{what} timed out (timeout_seconds is {}s)",
            budget.as_secs_f64()
        )
    };

    let addrs: Vec<SocketAddr> = match timeout_at(
        deadline,
        tokio::net::lookup_host((bare_host.as_str(), port)),
    )
    .await
    {
        Err(_) => return Err(late(&format!("could not resolve host {host}: lookup"))),
        Ok(Err(e)) => return Err(format!("could not resolve host {host}: {e}")),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if addrs.is_empty() {
        return Err(format!("could not resolve host {host}: no addresses"));
    }

    let stream = connect_any(&addrs, deadline, &shown)
        .await
        .map_err(|e| e.unwrap_or_else(|| late(&format!("connecting to {shown}"))))?;
    if url.scheme() != "https" {
        return Ok(format!("connected to {shown}; no record was sent"));
    }
    let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(bare_host)
        .map_err(|e| format!("url: {host} is not a valid TLS server name ({e})"))?;
    let mut session = match timeout_at(
        deadline,
        tokio_rustls::TlsConnector::from(tls).connect(name, stream),
    )
    .await
    {
        Err(_) => return Err(late(&format!("TLS handshake with {shown}"))),
        Ok(Err(e)) => return Err(crate::tls::describe_failure(&e, &shown)),
        Ok(Ok(session)) => session,
    };
    let listen_until = deadline.min(Instant::now() + AFTER_HANDSHAKE);
    let mut byte = [0u8; 1];
    if let Ok(Err(e)) = timeout_at(listen_until, session.read(&mut byte)).await {
        return Err(crate::tls::describe_failure(&e, &shown));
    }
    Ok(format!(
        "connected to {shown} and verified its TLS certificate; no record was sent"
    ))
}

/// Tries every resolved address (IPv4 and IPv6) in order; the first that accepts wins. `Err(None)`
/// means the deadline passed.
async fn connect_any(
    addrs: &[SocketAddr],
    deadline: Instant,
    shown: &str,
) -> Result<TcpStream, Option<String>> {
    let mut last = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Some(format!("connection refused at {shown} ({addr})"));
            }
            Ok(Err(e)) => last = Some(format!("could not connect to {shown} ({addr}): {e}")),
            Err(_) => return Err(last),
        }
    }
    Err(last)
}
