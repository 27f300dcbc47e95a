//! The HTTP edge: what a connection may cost, and Extra Horizon's error shape for the answers hyper
//! makes itself.
//!
//! hyper answers a few requests without calling the application: a request line over its fixed
//! 64 KiB limit (414), a head over its buffer (about 400 KiB) or with more than 100 headers (431),
//! a request it cannot parse (400). Those answers have an empty body. [`ErrorsInJson`] wraps a connection and rewrites
//! exactly those (a 4xx or 5xx head with `content-length: 0` written on its own, which the
//! application never sends, since every error it answers is JSON) into the `{code, name, message}`
//! JSON of every other error, keeping the status.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// How the HTTP edge treats slow and large requests, and whom it believes about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// How long a request's head may take to arrive (also how long an idle kept-alive connection
    /// stays open; the connection is then closed), and how long a body may pause between its
    /// parts (answered `408`).
    pub read_timeout: Duration,
    /// The reverse proxies whose `X-Forwarded-For`, `-Proto` and `-Host` are believed.
    pub trusted_proxies: Arc<[IpNet]>,
}

/// The read timeout unless configured.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for Edge {
    fn default() -> Self {
        Self {
            read_timeout: READ_TIMEOUT,
            trusted_proxies: Arc::new([]),
        }
    }
}

/// Parses a trusted proxy: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
pub fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text} is neither an IP address nor a network"))
}

/// Where a request came from, resolved once for everything that asks (the audit trail, the login
/// throttle, OAuth1 signatures): the client's address and the scheme and host it addressed. A
/// request from a trusted proxy is taken as the proxy says (the rightmost `X-Forwarded-For`
/// address that is not itself a trusted proxy, `X-Forwarded-Proto`, `X-Forwarded-Host`); any other
/// is taken as it arrived, whatever headers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub address: Option<IpAddr>,
    pub scheme: String,
    pub host: Option<String>,
}

impl Origin {
    /// The origin [`resolve_origin`] gave the request, or (for one that did not pass that layer)
    /// the request as it arrived, from its peer.
    pub fn of(parts: &axum::http::request::Parts) -> Self {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(|| Self::resolve(peer(&parts.extensions), &parts.headers, &[]))
    }

    fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Self {
        let trusts = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let host = first(axum::http::header::HOST.as_str()).map(str::to_owned);
        let Some(peer) = peer.filter(trusts) else {
            return Self {
                address: peer,
                scheme: "http".into(),
                host,
            };
        };
        let mut address = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            if !trusts(&address) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(hop) => address = hop,
                Err(_) => break,
            }
        }
        Self {
            address: Some(address),
            scheme: first("x-forwarded-proto").unwrap_or("http").to_owned(),
            host: first("x-forwarded-host").map(str::to_owned).or(host),
        }
    }
}

/// A layer's function: resolves the request's [`Origin`] into its extensions.
pub async fn resolve_origin(State(trusted): State<Arc<[IpNet]>>, mut request: Request) -> Request {
    let origin = Origin::resolve(peer(request.extensions()), request.headers(), &trusted);
    request.extensions_mut().insert(origin);
    request
}

/// The address of the connection's other end, as the server saw it.
fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// A connection whose error answers made by hyper are rewritten into Extra Horizon's JSON.
pub struct ErrorsInJson<T> {
    inner: T,
    /// A rewritten answer being written: its bytes, how many are written, and how many bytes of
    /// hyper's answer it stands for.
    replacing: Option<Replacing>,
}

struct Replacing {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<T> ErrorsInJson<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorsInJson<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorsInJson<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match rewritten(buf) {
                Some(bytes) => {
                    this.replacing = Some(Replacing {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some(replacing) = this.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while replacing.written < replacing.bytes.len() {
            let rest = &replacing.bytes[replacing.written..];
            match ready!(Pin::new(&mut this.inner).poll_write(cx, rest))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => replacing.written += n,
            }
        }
        let stands_for = replacing.stands_for;
        this.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// hyper's own error answer in `written` (a whole 4xx or 5xx head with `content-length: 0` and
/// nothing after it) rewritten with a JSON body; `None` for anything else.
fn rewritten(written: &[u8]) -> Option<Vec<u8>> {
    let head = written.strip_suffix(b"\r\n\r\n")?;
    if head.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    let status = StatusCode::from_bytes(parts.next()?.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let empty = headers.iter().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("content-length") && value.trim() == "0"
        })
    });
    let typed = headers.iter().any(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    });
    if !empty || typed {
        return None;
    }
    let body = ApiError::at_the_edge(status, "").body().to_string();
    let mut answer = format!("{version} {status}\r\ncontent-type: application/json\r\n");
    for line in headers {
        if !line
            .split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            answer.push_str(line);
            answer.push_str("\r\n");
        }
    }
    answer.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    axum::http::HeaderName::from_static(name),
                    value.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_about_the_client() {
        let trusted = [
            parse_proxy("10.0.0.0/8").unwrap(),
            parse_proxy("192.168.1.1").unwrap(),
        ];
        let forwarded = headers(&[
            ("host", "10.0.0.2:8080"),
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
        ]);
        let via_proxy = Origin::resolve(Some("10.0.0.1".parse().unwrap()), &forwarded, &trusted);
        assert_eq!(
            via_proxy,
            Origin {
                address: Some("203.0.113.7".parse().unwrap()),
                scheme: "https".into(),
                host: Some("api.example.com".into()),
            }
        );
        let direct = Origin::resolve(Some("203.0.113.9".parse().unwrap()), &forwarded, &trusted);
        assert_eq!(
            direct,
            Origin {
                address: Some("203.0.113.9".parse().unwrap()),
                scheme: "http".into(),
                host: Some("10.0.0.2:8080".into()),
            }
        );
        let garbled = headers(&[("x-forwarded-for", "not an address")]);
        let kept = Origin::resolve(Some("192.168.1.1".parse().unwrap()), &garbled, &trusted);
        assert_eq!(kept.address, Some("192.168.1.1".parse().unwrap()));
        assert!(parse_proxy("example.com").is_err());
    }

    #[test]
    fn hypers_own_error_answers_get_the_json_shape_and_keep_their_status() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(rewritten(hyper).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["name"], "BODY_FORMAT_EXCEPTION");
        assert_eq!(json["message"], "Request Header Fields Too Large");
    }

    #[test]
    fn the_applications_answers_are_left_alone() {
        let answers: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 10\r\n\r\n",
        ];
        for answer in answers {
            assert_eq!(
                rewritten(answer),
                None,
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_rewritten_only_from_an_empty_error_head(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(answer) = rewritten(&bytes) {
                prop_assert!(bytes.ends_with(b"\r\n\r\n"));
                let answer = String::from_utf8(answer).unwrap();
                prop_assert!(answer.contains("application/json"));
            }
        }
    }
}
