//! `check`: proves the templates can make a request ([`crate::sample`]) and the endpoint can be
//! reached (DNS, TCP, TLS with certificate validation) without delivering anything, and says in
//! one sentence what is wrong when it cannot. Every step shares one deadline: the whole check
//! ends within `timeout_seconds`.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::config::Config;
use crate::delivery::{proxy_for, Proxy};
use crate::oauth::TokenSource;

/// How long to listen after a TLS 1.3 handshake: a server that refuses the client certificate
/// says so only after the client considers the handshake done.
const AFTER_HANDSHAKE: Duration = Duration::from_millis(300);

/// `Ok` carries the success message. A template that fails with its sample record fails the
/// check before anything is reached; a schema-less sample's failures are a note in the message.
pub async fn check(config: &Config) -> Result<String, String> {
    let samples = crate::sample::render_samples(config);
    if !samples.failures.is_empty() {
        return Err(format!(
            "a sample record cannot be sent: {}",
            samples.failures.join("; ")
        ));
    }
    let message = probe(config).await?;
    Ok(match samples.notes.is_empty() {
        true => message,
        false => format!(
            "{message}; note: a sample record whose fields are the text \"1\" did not render, which a real record may: {}",
            samples.notes.join("; ")
        ),
    })
}

/// Runs every probe within the config's timeout: the endpoint reached, and an OAuth2 token got
/// when the config has that auth. The route is `write`'s ([`proxy_for`]): behind a proxy, the
/// proxy is what is reached, and for https the endpoint's certificate is verified through the
/// proxy's tunnel, as the client does. Nothing is sent beyond that, so through a proxy to a
/// plain-http endpoint only the proxy is proved.
async fn probe(config: &Config) -> Result<String, String> {
    let deadline = Instant::now() + config.timeout();
    let reached = reach_endpoint(config).await?;
    let Some(tokens) = TokenSource::from_config(config)? else {
        return Ok(reached);
    };
    // OAuth2: the token `write` fetches first, so a refusing token endpoint fails the check in
    // its own words.
    match timeout_at(deadline, tokens.header()).await {
        Err(_) => Err(format!(
            "getting an OAuth2 token timed out (timeout_seconds is {}s)",
            config.timeout().as_secs_f64()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(_)) => {
            let route = reached.trim_end_matches("; no record was sent");
            Ok(format!("{route}; got an OAuth2 token; no record was sent"))
        }
    }
}

/// The route to the endpoint, proved as far as it can be without sending anything.
async fn reach_endpoint(config: &Config) -> Result<String, String> {
    let url = config.url.url();
    let host = url.host_str().ok_or("url: has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("url: has no port")?;
    let budget = Budget {
        deadline: Instant::now() + config.timeout(),
        seconds: config.timeout().as_secs_f64(),
    };
    let shown = format!("{host}:{port}");
    let bare_host = host.trim_matches(['[', ']']).to_string();
    let (stream, via) = match proxy_for(config).map_err(|e| e.to_string())? {
        None => {
            let what = format!("host {host}");
            let stream: Stream = Box::new(reach((&bare_host, port), &what, &shown, &budget).await?);
            (stream, String::new())
        }
        Some(proxy) => {
            let name = format!("proxy {}", proxy.shown);
            let resolve = format!("the proxy's host {}", proxy.host);
            let stream: Stream =
                Box::new(reach((&proxy.host, proxy.port), &resolve, &name, &budget).await?);
            // An https proxy is spoken to over TLS, as the client does, before anything else.
            let stream = match proxy.tls {
                true => {
                    let peer = (proxy.host.as_str(), "proxy.url");
                    Box::new(handshake(config, stream, peer, &name, &budget).await?)
                }
                false => stream,
            };
            if url.scheme() != "https" {
                return Ok(format!(
                    "connected to the {name}, which requests to {shown} go through; no record was sent"
                ));
            }
            let stream = tunnel(stream, &shown, &proxy, &budget).await?;
            (stream, format!(" through the {name}"))
        }
    };
    if url.scheme() != "https" {
        return Ok(format!("connected to {shown}; no record was sent"));
    }
    verify_tls(config, stream, &bare_host, &shown, &budget).await?;
    Ok(format!(
        "connected to {shown}{via} and verified its TLS certificate; no record was sent"
    ))
}

/// The one deadline every step shares, and how messages state it.
struct Budget {
    deadline: Instant,
    seconds: f64,
}

impl Budget {
    fn late(&self, what: &str) -> String {
        format!("{what} timed out (timeout_seconds is {}s)", self.seconds)
    }
}

/// DNS and a TCP connection to `host:port` (the endpoint's, or the proxy's); messages name the
/// host `what` and the address `shown`.
async fn reach(
    (host, port): (&str, u16),
    what: &str,
    shown: &str,
    budget: &Budget,
) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> =
        match timeout_at(budget.deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(budget.late(&format!("could not resolve {what}: lookup"))),
            Ok(Err(e)) => return Err(format!("could not resolve {what}: {e}")),
            Ok(Ok(addrs)) => addrs.collect(),
        };
    if addrs.is_empty() {
        return Err(format!("could not resolve {what}: no addresses"));
    }
    connect_any(&addrs, budget.deadline, shown)
        .await
        .map_err(|e| e.unwrap_or_else(|| budget.late(&format!("connecting to {shown}"))))
}

/// A byte stream `check` speaks through: TCP, TLS to an https proxy, or a tunnel in either.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// A TLS handshake with `bare_host` (the endpoint, or an https proxy) over `stream`, with
/// `write`'s TLS settings; messages name the peer as `shown`, and `field` the config field the
/// host came from.
async fn handshake(
    config: &Config,
    stream: Stream,
    (bare_host, field): (&str, &str),
    shown: &str,
    budget: &Budget,
) -> Result<tokio_rustls::client::TlsStream<Stream>, String> {
    let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(bare_host.to_string())
        .map_err(|e| format!("{field}: {bare_host} is not a valid TLS server name ({e})"))?;
    match timeout_at(
        budget.deadline,
        tokio_rustls::TlsConnector::from(tls).connect(name, stream),
    )
    .await
    {
        Err(_) => Err(budget.late(&format!("TLS handshake with {shown}"))),
        Ok(Err(e)) => Err(crate::tls::describe_failure(&e, shown)),
        Ok(Ok(session)) => Ok(session),
    }
}

/// The TLS handshake with the endpoint, with `write`'s TLS settings.
async fn verify_tls(
    config: &Config,
    stream: Stream,
    bare_host: &str,
    shown: &str,
    budget: &Budget,
) -> Result<(), String> {
    let mut session = handshake(config, stream, (bare_host, "url"), shown, budget).await?;
    let listen_until = budget.deadline.min(Instant::now() + AFTER_HANDSHAKE);
    let mut byte = [0u8; 1];
    if let Ok(Err(e)) = timeout_at(listen_until, session.read(&mut byte)).await {
        return Err(crate::tls::describe_failure(&e, shown));
    }
    Ok(())
}

/// Asks the proxy for a tunnel to `target` (`CONNECT`), as the HTTP client does before an https
/// request; the proxy's refusal is named as the proxy's.
async fn tunnel(
    mut stream: Stream,
    target: &str,
    proxy: &Proxy,
    budget: &Budget,
) -> Result<Stream, String> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = &proxy.authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let exchange = async {
        stream.write_all(&request).await?;
        read_head(&mut stream).await
    };
    let head = match timeout_at(budget.deadline, exchange).await {
        Err(_) => {
            return Err(budget.late(&format!("the proxy {}'s tunnel to {target}", proxy.shown)))
        }
        Ok(Err(e)) => {
            return Err(format!(
                "the proxy {} broke off the tunnel to {target}: {e}",
                proxy.shown
            ))
        }
        Ok(Ok(head)) => head,
    };
    let status_line = head.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(stream),
        _ => Err(format!(
            "the proxy {} refused a tunnel to {target}: {status_line}",
            proxy.shown
        )),
    }
}

/// The head of an HTTP answer (up to the blank line), at most 16 KiB.
async fn read_head(stream: &mut Stream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
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
            Ok(Err(e)) => last = Some(connect_failure(&e, shown, addr)),
            Err(_) => return Err(last),
        }
    }
    Err(last)
}

/// Why a connection to one address failed. A refusal is said in the words the troubleshooting
/// table lists (nothing listens there); any other failure keeps the system's words.
fn connect_failure(e: &std::io::Error, shown: &str, addr: &SocketAddr) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused at {shown} ({addr})"),
        _ => format!("could not connect to {shown} ({addr}): {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_named_as_such_and_other_failures_keep_their_words() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            connect_failure(&refused, "h:9", &addr),
            "connection refused at h:9 (127.0.0.1:9)"
        );
        let unreachable = std::io::Error::new(
            std::io::ErrorKind::NetworkUnreachable,
            "network is unreachable",
        );
        assert_eq!(
            connect_failure(&unreachable, "h:9", &addr),
            "could not connect to h:9 (127.0.0.1:9): network is unreachable"
        );
    }

    /// A proxy's answer to CONNECT is read to its blank line, however long its headers (up to
    /// 16 KiB), and not a byte further: what follows is the tunnel's.
    #[tokio::test]
    async fn a_proxy_answer_head_is_read_whole_and_no_further() {
        let head = format!(
            "HTTP/1.1 200 Connection established\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(8000)
        );
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        far.write_all(format!("{head}tunnel").as_bytes())
            .await
            .unwrap();
        let mut stream: Stream = Box::new(near);
        assert_eq!(read_head(&mut stream).await.unwrap(), head);
        let mut rest = [0u8; 6];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"tunnel");
    }
}
